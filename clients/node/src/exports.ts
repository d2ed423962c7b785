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
  type FluxionDBErrorOptions,
} from "./errors.js";
export type { ConnectionState } from "./connection.js";
export type * from "./types.js";
