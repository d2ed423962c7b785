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
  Subscription,
  SubscriptionLostError,
  AbortedError,
  type SubscriptionEvent,
  type SubscribeParams,
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

export async function subscriptions(): Promise<void> {
  const params: SubscribeParams = { col: "c", doc: "/^d/", snapshot: true };
  // Any standard AbortSignal fits; this consumer compiles without DOM or Node types.
  const signal = { aborted: false, addEventListener() {}, removeEventListener() {} };
  const sub: Subscription = await client.subscribe({ ...params, bufferSize: 100, signal });
  const snap: number | undefined = sub.snapshot?.["d"]?.ts;
  for await (const ev of sub) {
    const cursor: string = ev.cursor;
    if (ev.op === "ins") {
      const ts: number = ev.ts;
      const data: string = ev.data;
      void [ts, data];
    } else if (ev.op === "drrng") {
      const range: number = ev.toTs - ev.fromTs;
      void range;
    } else if (ev.op === "reset") {
      const reason: FluxionDBError = ev.reason;
      void [reason, ev.records];
    }
    void cursor;
  }
  const exactSub = await exact.subscribe({ collection: "c" }, {
    onEvent: (ev: SubscriptionEvent<true>) => {
      if (ev.op === "drec") {
        const b: bigint = ev.ts;
        void b;
      }
    },
    onError: (err) => {
      if (err instanceof SubscriptionLostError) {
        const c: string = err.cursor;
        void c;
      }
    },
  });
  const ended: FluxionDBError | undefined = await exactSub.done;
  await exactSub.close();
  // @ts-expect-error an insert event has no fromTs
  void ((ev: SubscriptionEvent) => ev.op === "ins" && ev.fromTs);
  void [snap, ended, AbortedError];
}
