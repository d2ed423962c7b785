// The browser build (dist/browser.js) against the real server, with a global WebSocket that
// offers only what a browser's does: no HTTP status on a refused upgrade, no error details,
// no terminate(). It wraps `ws` here because Node 20 has no global WebSocket.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import WS from "ws";
import { packageDir, rejectsWith, startServer } from "./helpers/server.mjs";

class BrowserLikeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  #ws;
  constructor(url) {
    this.#ws = new WS(url);
    this.#ws.on("error", () => {}); // reported below as a bare event, as browsers do
  }
  get readyState() {
    return this.#ws.readyState;
  }
  send(data) {
    this.#ws.send(data);
  }
  close(code, reason) {
    this.#ws.close(code, reason);
  }
  addEventListener(type, listener) {
    if (type === "message") this.#ws.on("message", (data, isBinary) => listener({ data: isBinary ? data : data.toString() }));
    else if (type === "open") this.#ws.on("open", () => listener({}));
    else if (type === "error") this.#ws.on("error", () => listener({ type: "error" }));
    else if (type === "close") this.#ws.on("close", (code, reason) => listener({ code, reason: reason.toString() }));
  }
}

let srv;
let mod;
before(async () => {
  srv = await startServer();
  globalThis.WebSocket = BrowserLikeWebSocket;
  mod = await import(pathToFileURL(join(packageDir, "dist", "browser.js")).href);
});
after(async () => {
  delete globalThis.WebSocket;
  await srv?.stop();
});

test("browser build: default and named export, calls work over the global WebSocket", async () => {
  assert.equal(mod.default, mod.FluxionDBClient);
  const client = new mod.default({ url: srv.url, apiKey: srv.key, bigint: true });
  try {
    await client.insertMultipleRecords([{ ts: 9007199254740993n, doc: "d", data: "x", col: "browser" }]);
    assert.deepEqual(await client.fetchDocument({ col: "browser", doc: "d", to: Infinity }), [
      { ts: 9007199254740993n, data: "x" },
    ]);
  } finally {
    await client.close();
  }
});

test("browser build: a refused key rejects (ConnectionError: the status is hidden) and is not retried forever", async () => {
  const client = new mod.FluxionDBClient({ url: srv.url, apiKey: "wrong", connectTimeout: 2000, maxReconnectAttempts: 2, reconnectInterval: 10 });
  const err = await rejectsWith(client.fetchCollections(), mod.FluxionDBError);
  assert.ok(err instanceof mod.ConnectionError || err instanceof mod.AuthenticationError, err.name);
  await client.close();
});

test("browser build: close() with calls in flight, and a lost connection, never hang", async () => {
  const s = await startServer();
  const client = new mod.FluxionDBClient({ url: s.url, apiKey: s.key, maxReconnectAttempts: 1, reconnectInterval: 10 });
  try {
    await client.connect();
    await s.pause();
    const lost = Promise.allSettled([client.fetchCollections(), client.getKeys({ col: "c" })]);
    await s.kill();
    for (const r of await lost) {
      assert.equal(r.status, "rejected");
      assert.ok(r.reason instanceof mod.ConnectionError, r.reason?.name);
    }
    const closing = Promise.allSettled([client.fetchCollections()]);
    await client.close();
    const [r] = await closing;
    assert.ok(r.reason instanceof mod.ClosedError || r.reason instanceof mod.ConnectionError, r.reason?.name);
  } finally {
    await client.close();
    await s.kill();
  }
});
