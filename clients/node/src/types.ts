/**
 * Public types of the FluxionDB client.
 *
 * Parameters accept both generations of field names (PROTOCOL.md §3): the collection as `col`
 * or `collection`, the document as `doc` or `key` (in document-bearing calls; in key-value
 * calls `key` is always the KV key). When both spellings are given, the v2 one (`col`, `doc`)
 * wins, as on the server.
 */

import type { Timestamp } from "./json.js";

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

/** ManageApiKeyResponse is the reply to `addApiKey` / `removeApiKey`. */
export type ManageApiKeyResponse = { status: string; scope?: string };

/** ApiKeyEntry is one key of `listApiKeys`; `key` is an identifier, never the secret. */
export type ApiKeyEntry = { key: string; scope: string; deletable: boolean };

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
  /** bigint: true returns timestamps as exact bigint values (see README). Default false. */
  bigint?: B;
  /** logger receives diagnostics; without it the client prints nothing. */
  logger?: Logger;
  /** showLogs: true is shorthand for `logger: console` (option of the official client). */
  showLogs?: boolean;
  /** WebSocket overrides the socket implementation. */
  WebSocket?: WebSocketConstructor;
}
