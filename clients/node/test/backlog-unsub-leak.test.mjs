// An unsub skips the send backlog: Subscription.close() while more than 8 MiB wait in the
// socket's send buffer must still end the subscription on the server (queued behind the
// backlog, the unsub expired unsent after its 1 s cap and was never sent again).
import { test } from "node:test";
import assert from "node:assert/strict";
import FluxionDBClient from "@volandoo/fluxiondb-client";
import { startServer } from "./helpers/server.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const gauge = async (s) => {
  const text = await (await fetch(`http://${s.addr}/metrics`)).text();
  return Number(/^fluxiondb_subscriptions (\S+)/m.exec(text)?.[1]);
};

test("a subscription closed during a send backlog is unsubscribed on the server", async () => {
  const s = await startServer();
  const client = new FluxionDBClient({ url: s.url, apiKey: s.key });
  try {
    await client.connect();
    const z = await client.subscribe({ col: "z" });
    const zId = z.serverIdNow;
    let afterClose = 0;
    const orig = client.conn.onUnsolicited;
    client.conn.onUnsolicited = (msg) => {
      if (msg.sub === zId && msg.type === "event") afterClose++;
      orig(msg);
    };
    await s.pause();
    const big = client.insertSingleRecord({ ts: 1, doc: "d", col: "big", data: "x".repeat(12 << 20) });
    await z.close(); // returns after the 1 s cap; its unsub is still queued, unsent
    await sleep(300);
    s.resume();
    await big;
    afterClose = 0;
    for (let i = 1; i <= 5; i++) await client.insertSingleRecord({ ts: i, doc: "d", col: "z", data: "e" });
    await sleep(300);
    const live = await gauge(s);
    assert.equal(live, 0, "the closed subscription is still live on the server");
  } finally {
    s.resume();
    await client.close();
    await s.stop();
  }
});
