/**
 * Error classes of the FluxionDB client.
 *
 * Every promise the client returns rejects with a FluxionDBError (or a subclass), so callers
 * can branch with `instanceof` or on the stable `code` string. Errors that come from a server
 * reply carry the server's `code` and the `requestId` of the request; errors caused by
 * something else (a socket error, a timer) carry it as `cause`.
 */

/** FluxionDBErrorOptions are the optional fields every FluxionDBError carries. */
export interface FluxionDBErrorOptions {
  /** cause is the underlying error (a socket error, a close event, …). */
  cause?: unknown;
  /** requestId is the envelope id of the request that failed, when there was one. */
  requestId?: string;
}

// The package ships an ESM and a CommonJS build (and a browser one), each with its own copy of
// these classes; an application that loads two of them (its ESM code imports the package, a
// CommonJS dependency requires it) would see `instanceof` fail across the copies. So every
// class carries a brand in the global symbol registry (set with its name, below), every error
// the brands of its class and its bases, and `instanceof` a branded class checks the brand.
const BRAND = Symbol.for("@volandoo/fluxiondb-client/error-class");
const BRANDS = Symbol.for("@volandoo/fluxiondb-client/error-brands");

/** ownBrand is the brand a class sets itself (not one it inherits). */
function ownBrand(cls: unknown): string | undefined {
  return Object.prototype.hasOwnProperty.call(cls, BRAND) ? (cls as Record<symbol, string>)[BRAND] : undefined;
}

/** FluxionDBError is the base class of every error the client rejects with. */
export class FluxionDBError extends Error {
  /** code is a stable machine-readable code: a server code such as `bad_request`, or a client one. */
  readonly code: string;
  /** requestId is the envelope id of the failed request, if any. */
  readonly requestId?: string;

  /** `err instanceof SomeError` holds for errors of any copy of this package (ESM, CommonJS, browser). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    const brand = ownBrand(this);
    if (brand !== undefined && typeof value === "object" && value !== null) {
      const brands = (value as Record<symbol, unknown>)[BRANDS];
      if (Array.isArray(brands)) return brands.includes(brand);
    }
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }

  constructor(message: string, code: string, options: FluxionDBErrorOptions = {}) {
    // The cause is passed to Error so that Node prints it in stack traces.
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const brands: string[] = [];
    for (let c: unknown = new.target; typeof c === "function"; c = Object.getPrototypeOf(c)) {
      const brand = ownBrand(c);
      if (brand !== undefined) brands.push(brand);
    }
    Object.defineProperty(this, BRANDS, { value: brands });
    this.code = code;
    if (options.requestId !== undefined) this.requestId = options.requestId;
    if (options.cause !== undefined && (this as { cause?: unknown }).cause === undefined) {
      // Runtimes without ES2022 error causes still get the field.
      Object.defineProperty(this, "cause", { value: options.cause, writable: true, configurable: true });
    }
  }
}

/** ServerError is a request the server answered with an error reply. `code` is the server's code. */
export class ServerError extends FluxionDBError {
  /** serverMessage is the exact `error` text of the reply. */
  readonly serverMessage: string;

  constructor(serverMessage: string, code: string, options: FluxionDBErrorOptions = {}) {
    super(serverMessage, code, options);
    this.serverMessage = serverMessage;
  }
}

/** InvalidRequestError is a request the server rejected as malformed (`bad_request`, `unknown_type`, `too_large`). */
export class InvalidRequestError extends ServerError {}

/** PermissionDeniedError is a request the key's scope does not allow (`permission_denied`, `forbidden`). */
export class PermissionDeniedError extends ServerError {}

/** NotFoundError is a reply saying the named thing does not exist (`not_found`, e.g. `api key not found`). */
export class NotFoundError extends ServerError {}

/**
 * UnavailableError is a write the server could not make durable (`unavailable`): it may or may
 * not have been applied; every write is idempotent, so retrying is safe.
 */
export class UnavailableError extends ServerError {}

/** RateLimitedError is a request refused because the caller sent too much (`rate_limited`). */
export class RateLimitedError extends ServerError {}

/** AuthenticationError is a connection the server refused: missing, unknown or revoked API key. */
export class AuthenticationError extends FluxionDBError {
  constructor(message: string, options: FluxionDBErrorOptions = {}) {
    super(message, "unauthenticated", options);
  }
}

/** TimeoutError is a connect or request that did not finish within its time limit. */
export class TimeoutError extends FluxionDBError {
  constructor(message: string, options: FluxionDBErrorOptions = {}) {
    super(message, "timeout", options);
  }
}

/**
 * ConnectionError is a request that failed because the connection could not be made or was
 * lost before the reply arrived. A write that failed this way may or may not have been applied.
 */
export class ConnectionError extends FluxionDBError {
  constructor(message: string, options: FluxionDBErrorOptions = {}) {
    super(message, "connection", options);
  }
}

/** ClosedError is a request made after, or still waiting when, `close()` was called. */
export class ClosedError extends FluxionDBError {
  constructor(message = "client closed", options: FluxionDBErrorOptions = {}) {
    super(message, "closed", options);
  }
}

/**
 * SubscriptionLostError ends a subscription that could not go on without a gap:
 *
 *   - `cursor_expired`: the server no longer keeps the changes since the subscription's
 *     cursor (it fell behind the server's bounded history — an `overflow` frame — or it tried
 *     to resume after a reconnect to a server that was restarted or had evicted them);
 *   - `buffer_full`: the consumer of the async iterator did not keep up and `bufferSize`
 *     events were waiting.
 *
 * Either way, subscribe again (with `snapshot: true` to start from the current state, or with
 * `cursor` to continue from `cursor` when the code is `buffer_full`).
 */
export class SubscriptionLostError extends FluxionDBError {
  /** cursor is the subscription's last cursor: every event up to it was delivered. */
  readonly cursor: string;

  constructor(message: string, code: "cursor_expired" | "buffer_full", cursor: string, options: FluxionDBErrorOptions = {}) {
    super(message, code, options);
    this.cursor = cursor;
  }
}

/** AbortedError is a subscribe() whose AbortSignal fired before the server answered. `cause` is the signal's reason. */
export class AbortedError extends FluxionDBError {
  constructor(message = "aborted", options: FluxionDBErrorOptions = {}) {
    super(message, "aborted", options);
  }
}

// Names are set on the prototypes, not from new.target.name, so that they survive minifiers;
// the same names are the classes' brands (instanceof across copies, above).
for (const [cls, name] of [
  [FluxionDBError, "FluxionDBError"],
  [ServerError, "ServerError"],
  [InvalidRequestError, "InvalidRequestError"],
  [PermissionDeniedError, "PermissionDeniedError"],
  [NotFoundError, "NotFoundError"],
  [UnavailableError, "UnavailableError"],
  [RateLimitedError, "RateLimitedError"],
  [AuthenticationError, "AuthenticationError"],
  [TimeoutError, "TimeoutError"],
  [ConnectionError, "ConnectionError"],
  [ClosedError, "ClosedError"],
  [SubscriptionLostError, "SubscriptionLostError"],
  [AbortedError, "AbortedError"],
] as const) {
  Object.defineProperty(cls.prototype, "name", { value: name, writable: true, configurable: true });
  Object.defineProperty(cls, BRAND, { value: name });
}

// Replies of the official server carry no `code`; these texts (PROTOCOL.md §2) are stable,
// so they still map to the right class.
const textCodes: Record<string, string> = {
  "permission denied": "permission_denied",
  "only the master key may manage API keys": "forbidden",
  "api key cannot be removed": "forbidden",
  "api key not found": "not_found",
  "invalid scope": "bad_request",
  "api key cannot be empty": "bad_request",
  "unknown action": "bad_request",
};

/** serverError turns an error reply into the error class its code names. */
export function serverError(message: string, code: string | undefined, requestId: string): ServerError {
  const c = code && code.length > 0 ? code : (textCodes[message] ?? "unknown");
  const opts = { requestId };
  switch (c) {
    case "bad_request":
    case "unknown_type":
    case "too_large":
      return new InvalidRequestError(message, c, opts);
    case "permission_denied":
    case "forbidden":
      return new PermissionDeniedError(message, c, opts);
    case "not_found":
      return new NotFoundError(message, c, opts);
    case "unavailable":
      return new UnavailableError(message, c, opts);
    case "rate_limited":
      return new RateLimitedError(message, c, opts);
    default:
      return new ServerError(message, c, opts);
  }
}
