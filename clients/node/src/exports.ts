// The exports both entry points share (everything except the client class itself).
export {
  FluxionDBError,
  ServerError,
  InvalidRequestError,
  PermissionDeniedError,
  NotFoundError,
  UnavailableError,
  RateLimitedError,
  AuthenticationError,
  TimeoutError,
  ConnectionError,
  ClosedError,
  SubscriptionLostError,
  AbortedError,
  type FluxionDBErrorOptions,
} from "./errors.js";
export type { ConnectionState } from "./connection.js";
export { Subscription } from "./subscription.js";
export type * from "./types.js";
export type * from "./compat.js";
