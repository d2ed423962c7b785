// An unsub is bound to its connection: never carried to the next one, where the same server id
// ("s1") names a different, live subscription.
import { test } from "node:test";
import assert from "node:assert/strict";
import FluxionDBClient from "@volandoo/fluxiondb-client";
import { startServer } from "./helpers/server.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("a queued unsub of a closed subscription must not end a new subscription after a reconnect", async () => {
  const s = await startServer();
  const client = new FluxionDBClient({ url: s.url, apiKey: s.key, reconnectInterval: 20, heartbeatInterval: 150 });
  try {
    await client.connect();
    const z = await client.subscribe({ col: "z" }); // "s1" on connection A
    await s.pause();
    // A 12 MiB insert (under the server's limit) fills the socket's send buffer (> 8 MiB):
    // later calls wait in the client's queue, unsent.
    void client.insertSingleRecord({ ts: 1, doc: "d", col: "big", data: "x".repeat(12 << 20) }).catch(() => undefined); // fills the send buffer
    const yP = client.subscribe({ col: "y" }); // queued
    const zId = z.serverIdNow;
    const zClosed = process.env.CONTROL ? Promise.resolve() : z.close(); // its unsub ("s1") queued behind it
    await sleep(600); // the heartbeat drops the stalled connection (no pong within 150 ms)
    s.resume(); // the client reconnects within ~20-40 ms, inside the unsub's 1 s cap
    const y = await yP; // sent on connection B: the server names it "s1"
    await zClosed;
    const got = [];
    (async () => {
      for await (const ev of y) got.push(ev);
    })().catch(() => {});
    await client.insertSingleRecord({ ts: 5, doc: "d", col: "y", data: "hello" });
    await sleep(500);
    assert.ok(got.length > 0, "subscription y received no event: the stale unsub for z ended it on the server");
  } finally {
    s.resume();
    await client.close();
    await s.stop();
  }
});
