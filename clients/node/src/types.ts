/**
 * Public types of the FluxionDB client.
 *
 * Parameters accept both generations of field names (PROTOCOL.md §3): the collection as `col`
 * or `collection`, the document as `doc` or `key` (in document-bearing calls; in key-value
 * calls `key` is always the KV key). When both spellings are given, the v2 one (`col`, `doc`)
 * wins, as on the server.
 */

import type { Timestamp } from "./json.js";
import type { FluxionDBError } from "./errors.js";

export type { Timestamp };

/** TimestampOf is the type timestamps come back as: number, or bigint when the client has `bigint: true`. */
export type TimestampOf<B extends boolean> = B extends true ? bigint : number;

/** CollectionName names a collection as `col` (v2) or `collection` (v1). */
export type CollectionName = { col: string; collection?: string } | { collection: string; col?: string };

/** DocumentName names a document as `doc` (v2) or `key` (v1). */
export type DocumentName = { doc: string; key?: string } | { key: string; doc?: string };

/** InsertMessageRequest is one record to insert. `data` is an opaque string (usually JSON text). */
export type InsertMessageRequest = CollectionName & DocumentName & { ts: Timestamp; data: string };

/** FetchLatestRecordsParams selects the latest record at or before `ts` of every (matching) document. */
export type FetchLatestRecordsParams = CollectionName & {
  /** ts is the inclusive upper bound. */
  ts: Timestamp;
  /** doc limits the query to one document, or to the names matching a `/regex/flags`. */
  doc?: string;
  /** key is the v1 spelling of `doc`. */
  key?: string;
  /** from drops documents whose latest record is older than this (0 = no bound). */
  from?: Timestamp;
  /** where keeps records whose data contains this text (or matches `/regex/flags`). */
  where?: string;
  /** filter drops records whose data contains this text (or matches `/regex/flags`). */
  filter?: string;
};

/** FetchRecordsParams selects the records of one document with `from <= ts <= to`. */
export type FetchRecordsParams = CollectionName &
  DocumentName & {
    from?: Timestamp;
    to: Timestamp;
    /** limit keeps the first N records after ordering (0 or absent = all). */
    limit?: number;
    /** reverse orders newest first; with `limit` it returns the newest N. */
    reverse?: boolean;
    where?: string;
    filter?: string;
  };

/** DeleteDocumentParams names a document; without a collection it is removed from every collection. */
export type DeleteDocumentParams = DocumentName & { col?: string; collection?: string };

/** DeleteCollectionParams names a collection to delete with its records and KV entries. */
export type DeleteCollectionParams = CollectionName;

/** DeleteRecord names the one record with exactly timestamp `ts`. */
export type DeleteRecord = CollectionName & DocumentName & { ts: Timestamp };

/** DeleteRecordsRange names a document's records with `fromTs <= ts <= toTs`. */
export type DeleteRecordsRange = CollectionName & DocumentName & { fromTs: Timestamp; toTs: Timestamp };

/** CollectionParam names the collection of a key-value call. */
export type CollectionParam = CollectionName;

/** SetValueParams sets `key` to `value` in the collection's key-value store. */
export type SetValueParams = CollectionName & { key: string; value: string };

/** GetValueParams names one key-value entry. */
export type GetValueParams = CollectionName & { key: string };

/** DeleteValueParams names one key-value entry to remove. */
export type DeleteValueParams = CollectionName & { key: string };

/** GetValuesParams selects every entry (no key), one literal key, or the keys matching `/regex/flags`. */
export type GetValuesParams = CollectionName & { key?: string };

/** ApiKeyScope is the canonical name of a scope. The server also accepts looser spellings. */
export type ApiKeyScope = "readonly" | "read_write" | "read_write_delete";

/** AddApiKeyParams creates (or re-scopes) an API key. */
export type AddApiKeyParams = { key: string; scope: ApiKeyScope | (string & {}) };

/** RemoveApiKeyParams names an API key to revoke. */
export type RemoveApiKeyParams = { key: string };

/**
 * ManageApiKeyResponse is the reply to `addApiKey` / `removeApiKey`. `id` and `error` are
 * the official client's fields, kept for code that reads them: this client never sets
 * `error` (a refused request rejects with a FluxionDBError).
 */
export type ManageApiKeyResponse = { status: string; scope?: string; id?: string; error?: string };

/**
 * ApiKeyEntry is one key of `listApiKeys`; `key` is an identifier, never the secret. `id`, from
 * this server, is the key's stable non-reversible identifier (the official server sent none).
 */
export type ApiKeyEntry = { key: string; id?: string; scope: ApiKeyScope; deletable: boolean };

/** StoredRecord is one record as the server returns it. */
export type StoredRecord<B extends boolean = false> = { ts: TimestampOf<B>; data: string };

/** LatestRecords maps a document name to its latest record. */
export type LatestRecords<B extends boolean = false> = Record<string, StoredRecord<B>>;

/** ConnectionInfo describes one live connection to the server. */
export type ConnectionInfo = {
  ip: string;
  /** since is how many milliseconds the connection has been open. */
  since: number;
  /** name is the connection's `connectionName`, or null. */
  name: string | null;
  /** self is true for the connection of the caller. */
  self: boolean;
};

/**
 * Logger receives the client's diagnostics. The client prints nothing unless one is given.
 * `console` fits.
 */
export interface Logger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info?(message: string, fields?: Record<string, unknown>): void;
  warn?(message: string, fields?: Record<string, unknown>): void;
  error?(message: string, fields?: Record<string, unknown>): void;
}

/** WebSocketLike is the part of the WHATWG WebSocket API the client uses. */
export interface WebSocketLike {
  readonly readyState: number;
  /** bytes handed to send() not yet written to the network (both `ws` and browsers have it). */
  readonly bufferedAmount?: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: any) => void): void;
}

/** WebSocketConstructor builds a socket for a URL: the global WebSocket, `ws`, or a test double. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** ClientOptions configure a FluxionDBClient. Times are in milliseconds. */
export interface ClientOptions<B extends boolean = false> {
  /** url of the server, e.g. `ws://localhost:8080`. */
  url: string;
  /** apiKey is sent as the `api-key` query parameter. */
  apiKey: string;
  /** connectionName labels the connection in `getConnections()` and the server's logs. */
  connectionName?: string;
  /** connectTimeout bounds one connection attempt (socket + ready frame) and `connect()`. Default 10000. */
  connectTimeout?: number;
  /** requestTimeout bounds a request from call to reply, including a wait for the connection. 0 = none. Default 30000. */
  requestTimeout?: number;
  /** reconnectInterval is the first reconnect delay; it doubles per failed attempt. Default 500. */
  reconnectInterval?: number;
  /** maxReconnectInterval caps the reconnect delay. Default 15000. */
  maxReconnectInterval?: number;
  /** maxReconnectAttempts is how many attempts in a row may fail before waiting calls are rejected. Default Infinity. */
  maxReconnectAttempts?: number;
  /**
   * heartbeatInterval: on Node.js (`ws`) the client pings the server this often and drops a
   * connection that answered nothing for a whole interval (then reconnects as after any
   * loss). 0 = off. Default 15000. Browsers' sockets cannot ping.
   */
  heartbeatInterval?: number;
  /** maxMessageSize is the largest reply the client accepts on Node.js (`ws`), in bytes. Default 512 MiB (the server's replies are at most 256 MiB by default). */
  maxMessageSize?: number;
  /** bigint: true returns timestamps as exact bigint values (see README). Default false. */
  bigint?: B;
  /** logger receives diagnostics; without it the client prints nothing. */
  logger?: Logger;
  /** showLogs: true is shorthand for `logger: console` (option of the official client). */
  showLogs?: boolean;
  /** WebSocket overrides the socket implementation. */
  WebSocket?: WebSocketConstructor;
}

// ---- live subscriptions -------------------------------------------------------------------

/** AbortSignalLike is the part of the standard AbortSignal that `subscribe` uses. */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

/** SubscribeParams selects what a subscription receives (PROTOCOL.md §7). */
export type SubscribeParams = CollectionName & {
  /** doc selects one document, or the names matching a `/regex/flags` (absent = every document). */
  doc?: string;
  /** key is the v1 spelling of `doc`. */
  key?: string;
  /** where keeps inserted records whose data contains this text (or matches `/regex/flags`). */
  where?: string;
  /** filter drops inserted records whose data contains this text (or matches `/regex/flags`). */
  filter?: string;
  /**
   * snapshot: true — `subscription.snapshot` holds the latest record of each selected
   * document, and events start right after it (no gap, no duplicate).
   */
  snapshot?: boolean;
  /** cursor resumes from a cursor of an earlier subscription (excludes `snapshot`). */
  cursor?: string;
  /** interval (ms, 0–3600000) coalesces events: at most one per document per interval, the latest. */
  interval?: number;
};

/** SubscribeOptions tune a subscription's behaviour on the client. */
export interface SubscribeOptions {
  /** signal ends the subscription when it aborts (before the reply: subscribe rejects with AbortedError). */
  signal?: AbortSignalLike;
  /**
   * bufferSize is how many events may wait for a slow async-iterator consumer: an event frame
   * that arrives while bufferSize or more wait ends the subscription with SubscriptionLostError
   * `buffer_full` (frames are kept whole, so up to one frame more may wait). Default 10000.
   * Unused with onEvent.
   */
  bufferSize?: number;
  /**
   * resubscribeWithSnapshot: when the subscription cannot continue without a gap (cursor
   * expired after a reconnect, or an overflow), subscribe again with a snapshot and deliver a
   * `reset` event instead of ending with SubscriptionLostError. Default false.
   */
  resubscribeWithSnapshot?: boolean;
  /** timeout (ms) for the `sub` request, the client's requestTimeout by default. */
  timeout?: number;
}

/** SubscriptionHandlers is the callback form of a subscription. */
export interface SubscriptionHandlers<B extends boolean = false> {
  /**
   * onEvent receives every event, in order, as it arrives. With it the subscription does not
   * buffer and cannot also be iterated. A returned promise is not awaited.
   */
  onEvent?: (event: SubscriptionEvent<B>) => void;
  /** onError receives the error that ended the subscription (never called for close()). */
  onError?: (error: FluxionDBError) => void;
}

/** EventBase is what every subscription event carries. */
interface EventBase {
  /** col is the collection the change was made in. */
  col: string;
  /**
   * cursor covers this event and every event delivered with it in one frame: save it once
   * you have handled them all (`subscription.cursor` does exactly that) to resume later.
   */
  cursor: string;
}

/** InsertEvent: a record was stored (or replaced: same document and ts). */
export interface InsertEvent<B extends boolean = false> extends EventBase {
  op: "ins";
  doc: string;
  ts: TimestampOf<B>;
  data: string;
}

/** DeleteRecordEvent: the record with exactly `ts` was deleted. */
export interface DeleteRecordEvent<B extends boolean = false> extends EventBase {
  op: "drec";
  doc: string;
  ts: TimestampOf<B>;
}

/** DeleteRangeEvent: the document's records with fromTs <= ts <= toTs were deleted. */
export interface DeleteRangeEvent<B extends boolean = false> extends EventBase {
  op: "drrng";
  doc: string;
  fromTs: TimestampOf<B>;
  toTs: TimestampOf<B>;
}

/** DeleteDocumentEvent: the document was removed from `col` (a delete from every collection sends one per collection that held it). */
export interface DeleteDocumentEvent extends EventBase {
  op: "ddoc";
  doc: string;
}

/** DeleteCollectionEvent: the collection was removed. */
export interface DeleteCollectionEvent extends EventBase {
  op: "dcol";
}

/**
 * ResetEvent (only with `resubscribeWithSnapshot`): the subscription could not continue
 * without a gap and started over. Drop what you derived from earlier events; `records` is the
 * current latest record of each selected document, and events continue after it.
 */
export interface ResetEvent<B extends boolean = false> extends EventBase {
  op: "reset";
  records: LatestRecords<B>;
  /** reason is why the subscription had to start over (a SubscriptionLostError). */
  reason: FluxionDBError;
}

/** SubscriptionEvent is one change pushed to a subscription; branch on `op`. */
export type SubscriptionEvent<B extends boolean = false> =
  | InsertEvent<B>
  | DeleteRecordEvent<B>
  | DeleteRangeEvent<B>
  | DeleteDocumentEvent
  | DeleteCollectionEvent
  | ResetEvent<B>;
