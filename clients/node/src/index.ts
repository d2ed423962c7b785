/**
 * @volandoo/fluxiondb-client — the FluxionDB client for Node.js (and Bun, Deno).
 *
 * ```ts
 * import FluxionDBClient from "@volandoo/fluxiondb-client";
 * const client = new FluxionDBClient({ url: "ws://localhost:8080", apiKey: "KEY" });
 * await client.insertMultipleRecords([{ ts: 1, doc: "d", col: "c", data: "{}" }]);
 * await client.close();
 * ```
 *
 * The browser build (browser.ts) exports the same API without the `ws` package.
 */

import { BaseClient } from "./client.js";
import type { ClientOptions } from "./types.js";
import { loadWebSocket } from "./websocket-node.js";

/** FluxionDBClient is a connection to one FluxionDB server; see BaseClient for its calls. */
export class FluxionDBClient<B extends boolean = false> extends BaseClient<B> {
  constructor(options: ClientOptions<B>) {
    super(options, loadWebSocket);
  }
}

export default FluxionDBClient;
export { BaseClient };
/** LTDBClient is the name the first official SDK also gave the client class. */
export { FluxionDBClient as LTDBClient };
export * from "./exports.js";
