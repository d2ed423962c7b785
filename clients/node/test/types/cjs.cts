// Type-level check of the CommonJS entry as a consumer sees it (compiled by test/package.test.mjs).
import fluxion = require("@volandoo/fluxiondb-client");

const Client = fluxion.default;
const client: fluxion.FluxionDBClient = new Client({ url: "ws://localhost:8080", apiKey: "k" });
const named = new fluxion.FluxionDBClient({ url: "ws://localhost:8080", apiKey: "k", bigint: true });

export async function use(): Promise<void> {
  const latest = await client.fetchLatestDocumentRecords({ collection: "c", ts: 10 });
  const n: number = latest["d"]!.ts;
  const docs = await named.fetchDocument({ col: "c", doc: "d", to: 10n });
  const b: bigint = docs[0]!.ts;
  void [n, b];
  const e: unknown = null;
  if (e instanceof fluxion.TimeoutError) {
    const code: string = e.code;
    void code;
  }
}
