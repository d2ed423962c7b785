// Type-level check of the ESM entry as a consumer sees it (compiled by test/package.test.mjs).
import FluxionDBClient, {
  FluxionDBClient as Named,
  FluxionDBError,
  AuthenticationError,
  ClosedError,
  ConnectionError,
  InvalidRequestError,
  PermissionDeniedError,
  ServerError,
  TimeoutError,
  type ClientOptions,
  type InsertMessageRequest,
  type StoredRecord,
} from "@volandoo/fluxiondb-client";

const options: ClientOptions = { url: "ws://localhost:8080", apiKey: "k", requestTimeout: 1000 };
const client: Named = new FluxionDBClient(options);
const exact = new FluxionDBClient({ url: "ws://x", apiKey: "k", bigint: true });

export async function use(): Promise<void> {
  const v1: InsertMessageRequest = { ts: 1, key: "d", data: "{}", collection: "c" };
  const v2: InsertMessageRequest = { ts: 1n, doc: "d", data: "{}", col: "c" };
  await client.insertMultipleDocumentRecords([v1, v2]);
  const recs: StoredRecord[] = await client.fetchDocument({ col: "c", doc: "d", to: 10 });
  const n: number = recs[0]!.ts;
  const latest = await exact.fetchLatestRecords({ collection: "c", ts: 10n });
  const b: bigint = latest["d"]!.ts;
  const value: string = await client.getValue({ col: "c", key: "k" }, 500);
  await client.close();
  // @ts-expect-error a collection name is required
  await client.fetchCollections().then(() => client.deleteCollection({}));
  void [n, b, value];
  const e: unknown = null;
  if (e instanceof FluxionDBError) {
    const code: string = e.code;
    const id: string | undefined = e.requestId;
    void [code, id];
  }
  void [AuthenticationError, ClosedError, ConnectionError, InvalidRequestError, PermissionDeniedError, ServerError, TimeoutError];
}
