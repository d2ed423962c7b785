/**
 * Type names the official SDKs exported, so that TypeScript written against them compiles
 * unchanged (PROTOCOL.md §4). Values of these types are accepted wherever this client takes
 * its own parameter types (which accept both generations of names); the response types
 * describe the reply objects of the official clients, whose fields (`records`, `value`, …)
 * are what this client's methods return.
 *
 * The first generation's names carry the `LTDB` prefix and the v1 field names
 * (`collection`, `key`); the second generation's (`QueryResponse`, …) the v2 ones.
 */

import type { ApiKeyEntry, ApiKeyScope, ConnectionInfo, LatestRecords, StoredRecord } from "./types.js";

// Second generation: the response types (its parameter types share this client's names).

/** QueryResponse is the reply to a latest-records query (`fetchLatestRecords` returns its `records`). */
export type QueryResponse<B extends boolean = false> = { id: string; records: LatestRecords<B> };
/** QueryCollectionResponse is the reply to a history query (`fetchDocument` returns its `records`). */
export type QueryCollectionResponse<B extends boolean = false> = { id: string; records: StoredRecord<B>[] };
/** CollectionsResponse is the reply to `fetchCollections` (which returns its `collections`). */
export type CollectionsResponse = { id: string; collections: string[] };
/** InsertMessageResponse is the reply to an insert (this client's inserts resolve to nothing). */
export type InsertMessageResponse = { id: string };
/** KeyValueResponse is the reply to `getValue` (which returns its `value`). */
export type KeyValueResponse = { id: string; value: string };
/** KeyValueAllKeysResponse is the reply to `getKeys` (which returns its `keys`). */
export type KeyValueAllKeysResponse = { id: string; keys: string[] };
/** KeyValueAllValuesResponse is the reply to `getValues` (which returns its `values`). */
export type KeyValueAllValuesResponse = { id: string; values: Record<string, string> };
/** ConnectionsResponse is the reply to `getConnections` (which returns its `connections`). */
export type ConnectionsResponse = { id: string; connections: ConnectionInfo[] };
/** ManageApiKeyParams is the `keys` message's data for add and remove. */
export type ManageApiKeyParams = { action: "add" | "remove"; key: string; scope?: ApiKeyScope };
/** ListApiKeysResponse is the reply to `listApiKeys` (which returns its `keys`). */
export type ListApiKeysResponse = { id: string; status: string; keys: ApiKeyEntry[] };

// First generation (LTDB): v1 field names.

export type LTDBApiKeyScope = ApiKeyScope;
export type LTDBInsertMessageRequest = { ts: number; key: string; data: string; collection: string };
export type LTDBManageApiKeyParams = { action: "add" | "remove"; key: string; scope?: LTDBApiKeyScope };
export type LTDBAddApiKeyParams = { key: string; scope: LTDBApiKeyScope };
export type LTDBRemoveApiKeyParams = { key: string };
export type LTDBManageApiKeyResponse = { id?: string; status?: string; error?: string; scope?: string };
export type LTDBInsertMessageResponse = InsertMessageResponse;
export type LTDBQueryResponse<B extends boolean = false> = QueryResponse<B>;
export type LTDBQueryCollectionResponse<B extends boolean = false> = QueryCollectionResponse<B>;
export type LTDBCollectionsResponse = CollectionsResponse;
export type LTDBKeyValueResponse = KeyValueResponse;
export type LTDBKeyValueAllKeysResponse = KeyValueAllKeysResponse;
export type LTDBKeyValueAllValuesResponse = KeyValueAllValuesResponse;
export type LTDBCollectionParam = { collection: string };
export type LTDBFetchLatestRecordsParams = { collection: string; ts: number; key?: string; from?: number };
export type LTDBDeleteCollectionParams = { collection: string };
export type LTDBFetchRecordsParams = {
  collection: string;
  key: string;
  from: number;
  to: number;
  limit?: number;
  reverse?: boolean;
};
export type LTDBDeleteDocumentParams = { key: string; collection: string };
export type LTDBDeleteRecord = { key: string; collection: string; ts: number };
export type LTDBSetValueParams = { collection: string; key: string; value: string };
export type LTDBGetValueParams = { collection: string; key: string };
export type LTDBGetValuesParams = { collection: string; key?: string };
export type LTDBDeleteValueParams = { collection: string; key: string };
