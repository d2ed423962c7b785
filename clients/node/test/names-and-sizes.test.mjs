// Names checked in every call, and frame sizes measured without copying the frame.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import WS from "ws";
import FluxionDBClient from "@volandoo/fluxiondb-client";
import { packageDir, startServer } from "./helpers/server.mjs";

test("deleteDocument refuses a collection name with a lone surrogate, as every other call does", async () => {
  const s = await startServer();
  const client = new FluxionDBClient({ url: s.url, apiKey: s.key });
  try {
    // "c\uFFFD" is a real collection; "c\ud800" would be read as it.
    await client.insertSingleRecord({ ts: 1, doc: "d", data: "keep me", col: "c\uFFFD" });
    await assert.rejects(client.insertSingleRecord({ ts: 2, doc: "d", data: "x", col: "c\ud800" }), TypeError);
    const r = await client.deleteDocument({ col: "c\ud800", doc: "d" }).then(() => "resolved", (e) => e);
    const left = await client.fetchDocument({ col: "c\uFFFD", doc: "d", to: 5 });
    assert.ok(r instanceof TypeError, "deleteDocument with a lone-surrogate collection was sent");
  } finally {
    await client.close();
    await s.stop();
  }
});

test("browser build: sending a request does not copy its whole frame just to measure it", async () => {
  const s = await startServer();
  class BrowserLike {
    #ws;
    constructor(url) { this.#ws = new WS(url); this.#ws.on("error", () => {}); }
    get readyState() { return this.#ws.readyState; }
    get bufferedAmount() { return this.#ws.bufferedAmount; }
    send(d) { const b = globalThis.Buffer; globalThis.Buffer = realBuffer; try { this.#ws.send(d); } finally { globalThis.Buffer = b; } }
    close(c, r) { this.#ws.close(c, r); }
    addEventListener(type, l) {
      if (type === "message") this.#ws.on("message", (d, bin) => l({ data: bin ? d : d.toString() }));
      else if (type === "error") this.#ws.on("error", () => l({ type: "error" }));
      else if (type === "close") this.#ws.on("close", (code, reason) => l({ code, reason: reason.toString() }));
    }
  }
  const realBuffer = globalThis.Buffer;
  globalThis.WebSocket = BrowserLike;
  const mod = await import(pathToFileURL(join(packageDir, "dist", "browser.js")).href);
  const client = new mod.default({ url: s.url, apiKey: s.key });
  const enc = TextEncoder.prototype.encode;
  let largest = 0;
  try {
    await client.connect();
    TextEncoder.prototype.encode = function (str) { largest = Math.max(largest, str.length); return enc.call(this, str); };
    delete globalThis.Buffer; // as in a browser, while the call sends its frame (synchronously)
    const call = client.insertSingleRecord({ ts: 1, doc: "d", col: "b", data: "z".repeat(8 << 20) });
    globalThis.Buffer = realBuffer;
    await call;
    assert.ok(largest < 1 << 20, `the client encoded a ${(largest / 1048576).toFixed(1)} MiB string to measure one frame`);
  } finally {
    globalThis.Buffer = realBuffer;
    TextEncoder.prototype.encode = enc;
    delete globalThis.WebSocket;
    await client.close();
    await s.stop();
  }
});
