// Type-level check: TypeScript written against the official SDKs' exported names compiles
// (PROTOCOL.md §4; compiled by test/package.test.mjs).
import FluxionDBClient, { LTDBClient } from "@volandoo/fluxiondb-client";
import type {
  LTDBInsertMessageRequest,
  LTDBFetchLatestRecordsParams,
  LTDBFetchRecordsParams,
  LTDBQueryResponse,
  LTDBQueryCollectionResponse,
  LTDBApiKeyScope,
  LTDBDeleteRecord,
  LTDBDeleteDocumentParams,
  LTDBSetValueParams,
  LTDBGetValueParams,
  LTDBCollectionParam,
  LTDBManageApiKeyResponse,
  QueryResponse,
  QueryCollectionResponse,
  CollectionsResponse,
  InsertMessageResponse,
  KeyValueResponse,
  KeyValueAllKeysResponse,
  KeyValueAllValuesResponse,
  ConnectionsResponse,
  ManageApiKeyResponse,
  ApiKeyScope,
} from "@volandoo/fluxiondb-client";

const v1 = new LTDBClient({ url: "ws://localhost:8080", apiKey: "K" });
const v2: FluxionDBClient = v1;

export async function firstGeneration(): Promise<LTDBQueryResponse["records"]> {
  const rec: LTDBInsertMessageRequest = { ts: 1, key: "d", data: "{}", collection: "c" };
  const key: string = rec.key; // the official shape: fields are plain strings
  const q: LTDBFetchLatestRecordsParams = { collection: "c", ts: 1 };
  const h: LTDBFetchRecordsParams = { collection: "c", key: "d", from: 0, to: 1 };
  const scope: LTDBApiKeyScope = "readonly";
  await v1.insertMultipleDocumentRecords([rec]);
  const hist: LTDBQueryCollectionResponse["records"] = await v1.fetchDocument(h);
  const dr: LTDBDeleteRecord = { key, collection: "c", ts: 1 };
  await v1.deleteDocumentRecord(dr);
  const dd: LTDBDeleteDocumentParams = { key, collection: "c" };
  await v1.deleteDocument(dd);
  const sv: LTDBSetValueParams = { collection: "c", key: "k", value: "v" };
  await v1.setValue(sv);
  const gv: LTDBGetValueParams = { collection: "c", key: "k" };
  const value: string = await v1.getValue(gv);
  const cp: LTDBCollectionParam = { collection: "c" };
  await v1.getKeys(cp);
  const r: LTDBManageApiKeyResponse = await v1.addApiKey({ key: "x", scope });
  void [hist, value, r.error];
  return v1.fetchLatestDocumentRecords(q);
}

export async function secondGeneration(): Promise<void> {
  const latest: QueryResponse["records"] = await v2.fetchLatestRecords({ col: "c", ts: 1 });
  const hist: QueryCollectionResponse["records"] = await v2.fetchDocument({ col: "c", doc: "d", from: 0, to: 1 });
  const cols: CollectionsResponse["collections"] = await v2.fetchCollections();
  const value: KeyValueResponse["value"] = await v2.getValue({ col: "c", key: "k" });
  const keys: KeyValueAllKeysResponse["keys"] = await v2.getKeys({ col: "c" });
  const values: KeyValueAllValuesResponse["values"] = await v2.getValues({ col: "c", key: "/k/" });
  const conns: ConnectionsResponse["connections"] = await v2.getConnections();
  const added: ManageApiKeyResponse = await v2.addApiKey({ key: "x", scope: "readonly" });
  const scopes: ApiKeyScope[] = (await v2.listApiKeys()).map((k) => k.scope);
  const none: InsertMessageResponse | undefined = undefined;
  void [latest, hist, cols, value, keys, values, conns, added.error, scopes, none];
}
