// Live subscriptions against the real server: the async iterator and the callback form,
// ordering, snapshot-then-live, filters, resume after the client's socket drops (no loss, no
// duplicate), unsub/close, AbortSignal, scopes and revocation, lost cursors, a slow consumer.

import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import WebSocket from "ws";
import FluxionDBClient, {
  AbortedError,
  AuthenticationError,
  ClosedError,
  FluxionDBError,
  InvalidRequestError,
  Subscription,
  SubscriptionLostError,
  TimeoutError,
} from "@volandoo/fluxiondb-client";
import { startServer, rejectsWith } from "./helpers/server.mjs";

let srv;
let writer;
before(async () => {
  srv = await startServer();
  writer = new FluxionDBClient({ url: srv.url, apiKey: srv.key });
  await writer.connect();
});
after(async () => {
  await writer?.close();
  await srv?.stop();
});

const opts = (extra = {}) => ({ url: srv.url, apiKey: srv.key, ...extra });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rec = (col, doc, ts, data = `${doc}@${ts}`) => ({ col, doc, ts, data });

/** take reads n events from an iterator, failing after ms. */
async function take(it, n, ms = 5000) {
  const out = [];
  const deadline = Date.now() + ms;
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`got ${out.length} of ${n} events within ${ms}ms: ${JSON.stringify(out.map(brief))}`);
    let timer;
    const r = await Promise.race([
      it.next(),
      new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`got ${out.length} of ${n} events within ${ms}ms`)), left))),
    ]).finally(() => clearTimeout(timer));
    if (r.done) throw new Error(`iterator ended after ${out.length} of ${n} events`);
    out.push(r.value);
  }
  return out;
}

/** quiet asserts that the iterator yields nothing for ms. */
async function quiet(it, ms = 150) {
  let timer;
  const r = await Promise.race([it.next(), new Promise((res) => (timer = setTimeout(() => res("quiet"), ms)))]);
  clearTimeout(timer);
  assert.equal(r, "quiet", `unexpected event ${JSON.stringify(r?.value)}`);
}

function brief(ev) {
  switch (ev.op) {
    case "ins":
      return `${ev.op} ${ev.col}/${ev.doc}@${ev.ts} ${ev.data}`;
    case "drec":
      return `${ev.op} ${ev.col}/${ev.doc}@${ev.ts}`;
    case "drrng":
      return `${ev.op} ${ev.col}/${ev.doc} ${ev.fromTs}..${ev.toTs}`;
    case "ddoc":
      return `${ev.op} ${ev.col}/${ev.doc}`;
    default:
      return `${ev.op} ${ev.col}`;
  }
}

/** freePort returns a port nothing listens on. */
async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * droppable returns a WebSocket class (passed as the public `WebSocket` option) whose sockets
 * the test can cut, and a gate that makes reconnect attempts fail while it is closed — so the
 * test decides what happens while the client is disconnected. The server keeps running.
 */
async function droppable() {
  const deadUrl = `ws://127.0.0.1:${await freePort()}`;
  const sockets = [];
  let blocked = false;
  class DroppableWebSocket extends WebSocket {
    constructor(url) {
      super(blocked ? deadUrl : url);
      sockets.push(this);
    }
  }
  return {
    WebSocket: DroppableWebSocket,
    get connects() {
      return sockets.length;
    },
    /** drop cuts the current socket at once (no close handshake) and blocks reconnects. */
    drop() {
      blocked = true;
      sockets.at(-1).terminate();
    },
    unblock() {
      blocked = false;
    },
  };
}

async function until(cond, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(10);
  }
}

describe("events", () => {
  test("async iterator: inserts of many documents arrive in order per document, each once", async () => {
    const client = new FluxionDBClient(opts());
    try {
      const sub = await client.subscribe({ col: "order" });
      assert.ok(sub instanceof Subscription);
      assert.equal(sub.snapshot, undefined);
      assert.match(sub.cursor, /^[0-9a-f]+-\d+$/);
      const it = sub[Symbol.asyncIterator]();
      // 60 batches over 4 documents from two writers at once, out of ts order within a document.
      const writer2 = new FluxionDBClient(opts());
      const sent = [];
      const batches = [];
      for (let i = 1; i <= 60; i++) {
        const batch = [rec("order", `d${i % 4}`, 1000 - i), rec("order", `d${(i + 1) % 4}`, 2000 + i)];
        batches.push(batch);
      }
      await Promise.all([
        (async () => {
          for (const b of batches.slice(0, 30)) {
            await writer.insertMultipleRecords(b);
            sent.push(...b);
          }
        })(),
        (async () => {
          for (const b of batches.slice(30)) {
            await writer2.insertMultipleRecords(b);
            sent.push(...b);
          }
        })(),
      ]);
      await writer2.close();
      const got = await take(it, 120);
      await quiet(it);
      // Per document, events come in the order the writes were applied; per writer that is
      // the order it sent them.
      for (const half of [batches.slice(0, 30).flat(), batches.slice(30).flat()]) {
        for (let d = 0; d < 4; d++) {
          const want = half.filter((r) => r.doc === `d${d}`).map((r) => r.data);
          const seen = got.filter((e) => e.doc === `d${d}` && want.includes(e.data)).map((e) => e.data);
          assert.deepEqual(seen, want);
        }
      }
      assert.deepEqual(got.map((e) => e.data).sort(), sent.map((r) => r.data).sort());
      for (const e of got) {
        assert.equal(e.op, "ins");
        assert.equal(e.col, "order");
        assert.equal(typeof e.ts, "number");
        assert.equal(typeof e.cursor, "string");
      }
      assert.equal(sub.cursor, got.at(-1).cursor);
      await sub.close();
    } finally {
      await client.close();
    }
  });

  test("callback form: onEvent gets every event, the subscription cannot also be iterated", async () => {
    const client = new FluxionDBClient(opts());
    try {
      const got = [];
      const sub = await client.subscribe({ col: "cb" }, { onEvent: (ev) => got.push(ev) });
      assert.throws(() => sub[Symbol.asyncIterator](), TypeError);
      for (let i = 1; i <= 20; i++) await writer.insertSingleRecord(rec("cb", "d", i));
      await until(() => got.length === 20);
      assert.deepEqual(
        got.map((e) => e.ts),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      assert.equal(sub.cursor, got.at(-1).cursor);
      await sub.close();
      assert.equal(await sub.done, undefined);
    } finally {
      await client.close();
    }
  });

  test("an async onEvent that rejects is reported to the logger, and the subscription goes on", async () => {
    const errors = [];
    const logger = { error: (msg, f) => errors.push([msg, f]), warn() {}, info() {}, debug() {} };
    const client = new FluxionDBClient(opts({ logger }));
    let rejected = 0;
    const onRejection = () => rejected++;
    process.on("unhandledRejection", onRejection);
    try {
      const got = [];
      await client.subscribe(
        { col: "cbasync" },
        {
          onEvent: async (ev) => {
            got.push(ev.ts);
            if (ev.ts === 1) throw new Error("handler failed");
          },
        },
      );
      for (let i = 1; i <= 3; i++) await writer.insertSingleRecord(rec("cbasync", "d", i));
      await until(() => got.length === 3 && errors.length === 1);
      assert.match(errors[0][0], /onEvent threw/);
      assert.equal(errors[0][1].error, "handler failed");
      await sleep(20);
      assert.equal(rejected, 0, "the handler's rejection was left unhandled");
    } finally {
      process.off("unhandledRejection", onRejection);
      await client.close();
    }
  });

  test("next() called several times without waiting: each call gets the next event, then done after close()", async () => {
    const client = new FluxionDBClient(opts());
    try {
      const sub = await client.subscribe({ col: "nexts" });
      const it = sub[Symbol.asyncIterator]();
      assert.throws(() => sub[Symbol.asyncIterator](), TypeError); // one consumer
      const calls = [it.next(), it.next(), it.next()];
      for (let i = 1; i <= 2; i++) await writer.insertSingleRecord(rec("nexts", "d", i));
      const [a, b] = await Promise.all(calls.slice(0, 2));
      assert.deepEqual([a.value.ts, b.value.ts], [1, 2]);
      await sub.close();
      assert.deepEqual(await calls[2], { done: true, value: undefined });
    } finally {
      await client.close();
    }
  });

  test("deletes are events too, with their fields", async () => {
    const client = new FluxionDBClient(opts());
    try {
      const sub = await client.subscribe({ collection: "del" });
      const it = sub[Symbol.asyncIterator]();
      await writer.insertMultipleRecords([rec("del", "a", 1), rec("del", "a", 2), rec("del", "a", 3), rec("del", "b", 1)]);
      await writer.deleteRecord({ col: "del", doc: "a", ts: 1 });
      await writer.deleteRecordsRange({ col: "del", doc: "a", fromTs: 2, toTs: 3 });
      await writer.deleteDocument({ col: "del", doc: "b" });
      await writer.insertSingleRecord(rec("del", "c", 9));
      await writer.deleteCollection({ col: "del" });
      const got = await take(it, 9);
      assert.deepEqual(got.map(brief), [
        "ins del/a@1 a@1",
        "ins del/a@2 a@2",
        "ins del/a@3 a@3",
        "ins del/b@1 b@1",
        "drec del/a@1",
        "drrng del/a 2..3",
        "ddoc del/b",
        "ins del/c@9 c@9",
        "dcol del",
      ]);
      assert.equal("data" in got[4], false);
      await sub.close();
    } finally {
      await client.close();
    }
  });

  test("filters: exact document, /regex/ documents, where and filter on data", async () => {
    const client = new FluxionDBClient(opts());
    try {
      const exact = (await client.subscribe({ col: "flt", doc: "dev-1" }))[Symbol.asyncIterator]();
      const regex = (await client.subscribe({ col: "flt", key: "/^DEV-[12]$/i" }))[Symbol.asyncIterator]();
      const where = (await client.subscribe({ col: "flt", where: "state:flying" }))[Symbol.asyncIterator]();
      const filter = (await client.subscribe({ col: "flt", filter: "/quality:(bad|poor)/" }))[Symbol.asyncIterator]();
      const other = (await client.subscribe({ col: "flt-other" }))[Symbol.asyncIterator]();
      await writer.insertMultipleRecords([
        rec("flt", "dev-1", 1, "state:flying"),
        rec("flt", "dev-2", 1, "state:parked quality:bad"),
        rec("flt", "dev-3", 1, "state:flying quality:poor"),
        rec("flt", "dev-10", 1, "quality:good"),
      ]);
      const data = async (it, n) => (await take(it, n)).map((e) => `${e.doc} ${e.data}`);
      assert.deepEqual(await data(exact, 1), ["dev-1 state:flying"]);
      assert.deepEqual(await data(regex, 2), ["dev-1 state:flying", "dev-2 state:parked quality:bad"]);
      assert.deepEqual(await data(where, 2), ["dev-1 state:flying", "dev-3 state:flying quality:poor"]);
      assert.deepEqual(await data(filter, 2), ["dev-1 state:flying", "dev-10 quality:good"]);
      await Promise.all([quiet(exact), quiet(regex), quiet(where), quiet(filter), quiet(other)]);
    } finally {
      await client.close();
    }
  });

  test("interval coalesces rapid updates of one document to the latest", async () => {
    const client = new FluxionDBClient(opts());
    try {
      const got = [];
      await client.subscribe({ col: "coal", interval: 200 }, { onEvent: (e) => got.push(e) });
      for (let i = 1; i <= 20; i++) await writer.insertSingleRecord(rec("coal", "a", i));
      await until(() => got.some((e) => e.ts === 20));
      assert.ok(got.length < 20, `${got.length} events for 20 updates`);
      assert.deepEqual(
        got.map((e) => e.ts),
        [...got.map((e) => e.ts)].sort((a, b) => a - b),
      );
    } finally {
      await client.close();
    }
  });

  test("bigint mode: event timestamps are exact bigints", async () => {
    const client = new FluxionDBClient(opts({ bigint: true }));
    try {
      const sub = await client.subscribe({ col: "big-ev", snapshot: true });
      assert.deepEqual(sub.snapshot, {});
      const it = sub[Symbol.asyncIterator]();
      await writer.insertSingleRecord({ col: "big-ev", doc: "d", ts: 9223372036854775807n, data: "max" });
      // The range must hold the record: a delete that removes nothing sends no event.
      await writer.deleteRecordsRange({ col: "big-ev", doc: "d", fromTs: 9007199254740993n, toTs: 9223372036854775807n });
      const [ins, rng] = await take(it, 2);
      assert.equal(ins.ts, 9223372036854775807n);
      assert.equal(rng.fromTs, 9007199254740993n);
      assert.equal(rng.toTs, 9223372036854775807n);
    } finally {
      await client.close();
    }
  });

  test("bad subscriptions reject typed; the client stays usable", async () => {
    const client = new FluxionDBClient(opts());
    try {
      await rejectsWith(client.subscribe({ col: "" }), InvalidRequestError, "bad_request");
      await rejectsWith(client.subscribe({ col: "c", interval: -1 }), InvalidRequestError, "bad_request");
      await rejectsWith(client.subscribe({ col: "c", snapshot: true, cursor: "x-1" }), InvalidRequestError, "bad_request");
      await assert.rejects(client.subscribe({ col: "c", bufferSize: 0 }), TypeError);
      assert.ok(Array.isArray(await client.fetchCollections()));
    } finally {
      await client.close();
    }
  });
});

describe("snapshot then live", () => {
  test("concurrent inserts: the snapshot and the events join without a gap or a duplicate", async () => {
    const client = new FluxionDBClient(opts());
    const docs = ["a", "b", "c", "d"];
    let stop = false;
    let written = 0;
    let limit = Infinity;
    // Each batch writes ts i to every document; the subscription lands in the middle: after 50
    // batches, and 100 more follow it.
    const writing = (async () => {
      for (let i = 1; i <= limit && !stop; i++) {
        await writer.insertMultipleRecords(docs.map((d) => rec("snap", d, i)));
        written = i;
      }
    })();
    try {
      await until(() => written >= 50);
      const sub = await client.subscribe({ col: "snap", snapshot: true });
      limit = written + 100;
      const it = sub[Symbol.asyncIterator]();
      await writing;
      const N = written;
      const snapTs = Object.fromEntries(docs.map((d) => [d, sub.snapshot[d]?.ts ?? 0]));
      assert.ok(Object.values(snapTs).some((t) => t > 0 && t < N), `subscribed outside the writes: ${JSON.stringify(snapTs)}`);
      for (const d of docs) assert.equal(sub.snapshot[d]?.data ?? `${d}@0`, `${d}@${snapTs[d]}`);
      const expected = docs.reduce((n, d) => n + (N - snapTs[d]), 0);
      const got = await take(it, expected, 10_000);
      await quiet(it);
      for (const d of docs) {
        const ts = got.filter((e) => e.doc === d).map((e) => e.ts);
        assert.deepEqual(
          ts,
          Array.from({ length: N - snapTs[d] }, (_, i) => snapTs[d] + i + 1),
          `document ${d} after snapshot ts ${snapTs[d]}`,
        );
      }
    } finally {
      stop = true;
      await writing;
      await client.close();
    }
  });
});

describe("reconnect", () => {
  test("the client's socket drops: events written meanwhile arrive once, in order, after the resume", async () => {
    const net = await droppable();
    const client = new FluxionDBClient(opts({ WebSocket: net.WebSocket, reconnectInterval: 20, maxReconnectInterval: 100 }));
    try {
      const sub = await client.subscribe({ col: "resume", doc: "/^r/" });
      const it = sub[Symbol.asyncIterator]();
      for (let i = 1; i <= 5; i++) await writer.insertSingleRecord(rec("resume", "r1", i));
      // Two events are consumed; three are received but still buffered when the socket drops.
      assert.deepEqual((await take(it, 2)).map((e) => e.ts), [1, 2]);
      await sleep(50); // let events 3–5 arrive into the buffer

      net.drop();
      await until(() => client.state === "connecting");
      // Written while the client cannot connect (its reconnects fail at the gate).
      for (let i = 6; i <= 10; i++) await writer.insertSingleRecord(rec("resume", "r1", i));
      await writer.insertSingleRecord(rec("resume", "other", 1)); // not selected
      await writer.deleteRecord({ col: "resume", doc: "r1", ts: 6 });
      await sleep(100);
      assert.equal(client.state, "connecting");
      net.unblock();
      await until(() => client.state === "open");
      for (let i = 11; i <= 12; i++) await writer.insertSingleRecord(rec("resume", "r1", i));

      const got = (await take(it, 11)).map(brief);
      assert.deepEqual(got, [
        ...[3, 4, 5, 6, 7, 8, 9, 10].map((i) => `ins resume/r1@${i} r1@${i}`),
        "drec resume/r1@6",
        "ins resume/r1@11 r1@11",
        "ins resume/r1@12 r1@12",
      ]);
      await quiet(it);
      assert.ok(net.connects > 1, "the client reconnected");
      assert.equal(sub.closed, false);
      await sub.close();
    } finally {
      await client.close();
    }
  });

  test("a drop with callbacks and several subscriptions: each resumes from its own cursor", async () => {
    const net = await droppable();
    const client = new FluxionDBClient(opts({ WebSocket: net.WebSocket, reconnectInterval: 20, maxReconnectInterval: 100 }));
    try {
      const a = [];
      const b = [];
      await client.subscribe({ col: "multi", doc: "a" }, { onEvent: (e) => a.push(e.ts) });
      await client.subscribe({ col: "multi", doc: "b" }, { onEvent: (e) => b.push(e.ts) });
      await writer.insertMultipleRecords([rec("multi", "a", 1), rec("multi", "b", 1)]);
      await until(() => a.length === 1 && b.length === 1);
      for (let round = 0; round < 3; round++) {
        net.drop();
        await until(() => client.state === "connecting");
        await writer.insertMultipleRecords([rec("multi", "a", 10 + round), rec("multi", "b", 20 + round)]);
        net.unblock();
        await until(() => client.state === "open");
      }
      await writer.insertMultipleRecords([rec("multi", "a", 99), rec("multi", "b", 99)]);
      await until(() => a.at(-1) === 99 && b.at(-1) === 99);
      assert.deepEqual(a, [1, 10, 11, 12, 99]);
      assert.deepEqual(b, [1, 20, 21, 22, 99]);
    } finally {
      await client.close();
    }
  });

  test("a restarted server cannot resume the cursor: the iterator throws SubscriptionLostError after the buffered events", async () => {
    const s = await startServer();
    const w = new FluxionDBClient({ url: s.url, apiKey: s.key });
    const client = new FluxionDBClient({ url: s.url, apiKey: s.key, reconnectInterval: 20, maxReconnectInterval: 100 });
    let s2;
    try {
      const errors = [];
      const sub = await client.subscribe({ col: "lost" }, { onError: (e) => errors.push(e) });
      const it = sub[Symbol.asyncIterator]();
      await w.insertSingleRecord(rec("lost", "d", 1));
      await until(() => sub.receivedCursor !== sub.cursor); // received, not consumed
      await w.close();
      await s.kill();
      s2 = await startServer({ key: s.key, port: s.port });
      const err = await sub.done;
      assert.ok(err instanceof SubscriptionLostError, `${err?.name}: ${err?.message}`);
      assert.equal(err.code, "cursor_expired");
      assert.equal(errors.length, 1);
      assert.equal(errors[0], err);
      // The event received before the loss is still delivered, then the error — never a silent gap.
      assert.deepEqual((await take(it, 1)).map((e) => e.ts), [1]);
      await assert.rejects(it.next(), (e) => e === err);
      assert.deepEqual(await it.next(), { done: true, value: undefined });
      assert.equal(sub.error, err);
      assert.equal(client.state, "open"); // the client itself is fine
    } finally {
      await client.close();
      await w.close();
      await s.kill();
      await s2?.stop();
    }
  });

  test("resubscribeWithSnapshot: a lost cursor becomes a reset event with the current state", async () => {
    const s = await startServer();
    const client = new FluxionDBClient({ url: s.url, apiKey: s.key, reconnectInterval: 20, maxReconnectInterval: 100 });
    let s2;
    let w2;
    try {
      const sub = await client.subscribe({ col: "rs", resubscribeWithSnapshot: true });
      const it = sub[Symbol.asyncIterator]();
      await s.kill();
      s2 = await startServer({ key: s.key, port: s.port });
      w2 = new FluxionDBClient({ url: s2.url, apiKey: s2.key });
      await w2.insertMultipleRecords([rec("rs", "x", 5), rec("rs", "y", 7)]);
      const [reset] = await take(it, 1);
      assert.equal(reset.op, "reset");
      assert.equal(reset.col, "rs");
      assert.ok(reset.reason instanceof SubscriptionLostError);
      assert.equal(reset.reason.code, "cursor_expired");
      // The reset holds what was written before it took effect; later writes follow as events.
      const seen = { ...reset.records };
      await w2.insertSingleRecord(rec("rs", "x", 6));
      for (const ev of await take(it, 1 + (2 - Object.keys(seen).length))) {
        if (ev.op === "ins") seen[ev.doc] = { ts: ev.ts, data: ev.data };
      }
      assert.deepEqual(seen, { x: { ts: 6, data: "x@6" }, y: { ts: 7, data: "y@7" } });
      assert.equal(sub.closed, false);
    } finally {
      await client.close();
      await w2?.close();
      await s.kill();
      await s2?.stop();
    }
  });
});

describe("cursors", () => {
  test("subscribe from a saved cursor: continues exactly after it; a foreign cursor is cursor_expired", async () => {
    const client = new FluxionDBClient(opts());
    try {
      const first = await client.subscribe({ col: "cur" });
      const it1 = first[Symbol.asyncIterator]();
      await writer.insertSingleRecord(rec("cur", "d", 1));
      await take(it1, 1);
      const saved = first.cursor;
      await first.close();
      await writer.insertSingleRecord(rec("cur", "d", 2));
      await writer.insertSingleRecord(rec("cur", "d", 3));
      const again = await client.subscribe({ col: "cur", cursor: saved });
      assert.deepEqual((await take(again[Symbol.asyncIterator](), 2)).map((e) => e.ts), [2, 3]);

      const err = await rejectsWith(client.subscribe({ col: "cur", cursor: "deadbeef-1" }), SubscriptionLostError, "cursor_expired");
      assert.equal(err.cursor, "deadbeef-1");
      assert.equal(err.cause?.code, "cursor_expired");

      // With resubscribeWithSnapshot a foreign cursor starts over from a snapshot instead.
      const fresh = await client.subscribe({ col: "cur", cursor: "deadbeef-1", resubscribeWithSnapshot: true });
      const [reset] = await take(fresh[Symbol.asyncIterator](), 1);
      assert.equal(reset.op, "reset");
      assert.deepEqual(reset.records, { d: { ts: 3, data: "d@3" } });
      assert.deepEqual(fresh.snapshot, reset.records);
    } finally {
      await client.close();
    }
  });

  test("a consumer slower than bufferSize: SubscriptionLostError buffer_full after the buffered events; its cursor resumes without loss", async () => {
    const client = new FluxionDBClient(opts());
    try {
      const sub = await client.subscribe({ col: "slow", bufferSize: 5 });
      const it = sub[Symbol.asyncIterator]();
      for (let i = 1; i <= 12; i++) await writer.insertSingleRecord(rec("slow", "d", i));
      const err = await sub.done;
      assert.ok(err instanceof SubscriptionLostError, `${err?.name}: ${err?.message}`);
      assert.equal(err.code, "buffer_full");
      const delivered = [];
      for (;;) {
        try {
          const r = await it.next();
          assert.equal(r.done, false);
          delivered.push(r.value.ts);
        } catch (e) {
          assert.equal(e, err);
          break;
        }
      }
      // Frames are taken whole, and the server may put several inserts' events in one frame:
      // at least bufferSize events were delivered, in order and without a gap, and fewer than all.
      const k = delivered.length;
      assert.ok(k >= 5 && k < 12, `delivered ${k} events`);
      assert.deepEqual(delivered, Array.from({ length: k }, (_, i) => i + 1));
      assert.equal(sub.cursor, err.cursor);
      const rest = await client.subscribe({ col: "slow", cursor: err.cursor });
      const expected = Array.from({ length: 12 - k }, (_, i) => k + 1 + i);
      assert.deepEqual((await take(rest[Symbol.asyncIterator](), expected.length)).map((e) => e.ts), expected);
    } finally {
      await client.close();
    }
  });
});

describe("server overflow", () => {
  test("a subscriber that stops reading falls out of the server's history: overflow ends it with SubscriptionLostError", async () => {
    // The server keeps 64 MiB of history. The client's socket stops reading while 80 MiB are
    // written (well within --write-timeout, so the server does not close it as a slow consumer;
    // a short outbound queue so that the server does not hold the events in it instead); when
    // it reads again, the server's pump finds its next change evicted and sends `overflow`.
    const s = await startServer({ args: ["--write-timeout=60s", "--outbound-queue=4"] });
    const sockets = [];
    class Tracked extends WebSocket {
      constructor(url) {
        super(url);
        sockets.push(this);
      }
    }
    const client = new FluxionDBClient({ url: s.url, apiKey: s.key, WebSocket: Tracked });
    const w = new FluxionDBClient({ url: s.url, apiKey: s.key });
    try {
      const errors = [];
      const sub = await client.subscribe({ col: "ovf" }, { onError: (e) => errors.push(e) });
      let received = 0;
      const loop = (async () => {
        try {
          for await (const _ of sub) received++;
        } catch (e) {
          return e;
        }
      })();
      sockets[0]._socket.pause();
      const big = "x".repeat(1 << 20);
      for (let i = 1; i <= 80; i++) await w.insertSingleRecord({ col: "ovf", doc: "d", ts: i, data: big });
      sockets[0]._socket.resume();
      let timer;
      const err = await Promise.race([
        loop,
        new Promise((r) => (timer = setTimeout(() => r(new Error(`no overflow; received ${received}`)), 10_000))),
      ]).finally(() => clearTimeout(timer));
      assert.ok(err instanceof SubscriptionLostError, `${err?.name}: ${err?.message}`);
      assert.equal(err.code, "cursor_expired");
      assert.match(err.message, /fell behind/);
      assert.deepEqual(errors, [err]);
      assert.ok(received < 80, `received ${received}`);
      assert.equal(client.state, "open"); // the connection itself survives
    } finally {
      await client.close();
      await w.close();
      await s.stop();
    }
  });
});

describe("ending", () => {
  test("close() and break never wait long for a server that stopped answering", async () => {
    const s = await startServer();
    const client = new FluxionDBClient({ url: s.url, apiKey: s.key, requestTimeout: 30000 });
    try {
      const a = await client.subscribe({ col: "frozen" });
      const b = await client.subscribe({ col: "frozen" });
      await client.insertSingleRecord(rec("frozen", "d", 1));
      const it = b[Symbol.asyncIterator]();
      assert.equal((await it.next()).value.ts, 1);
      await s.pause(); // SIGSTOP: the socket stays open, nothing answers the unsub
      let t0 = Date.now();
      await a.close();
      assert.ok(Date.now() - t0 < 2500, `close() took ${Date.now() - t0} ms`);
      assert.equal(a.closed, true);
      t0 = Date.now();
      await it.return(); // what `break` out of `for await` does
      assert.ok(Date.now() - t0 < 2500, `break took ${Date.now() - t0} ms`);
      assert.equal(b.closed, true);
    } finally {
      s.resume();
      await client.close();
      await s.stop();
    }
  });

  test("close() and break end the iterator and unsubscribe on the server", async () => {
    const client = new FluxionDBClient(opts());
    try {
      const sub = await client.subscribe({ col: "end" });
      const start = sub.cursor;
      const loop = (async () => {
        const seen = [];
        for await (const ev of sub) seen.push(ev.ts);
        return seen;
      })();
      await writer.insertSingleRecord(rec("end", "d", 1));
      await until(() => sub.cursor !== start); // consumed by the loop
      await sub.close();
      assert.deepEqual(await loop, [1]);
      assert.equal(sub.closed, true);
      assert.equal(await sub.done, undefined);
      await sub.close(); // idempotent

      const broken = await client.subscribe({ col: "end" });
      await writer.insertSingleRecord(rec("end", "d", 2));
      for await (const ev of broken) {
        assert.equal(ev.ts, 2);
        break;
      }
      assert.equal(broken.closed, true);
      // Both are gone on the server: unsub of their ids says not_found.
      await rejectsWith(clientUnsub(client, sub.id), FluxionDBError, "not_found");
      await rejectsWith(clientUnsub(client, broken.id), FluxionDBError, "not_found");
    } finally {
      await client.close();
    }
  });

  test("client.close() ends every subscription: iterators finish, done resolves, later subscribe rejects ClosedError", async () => {
    const client = new FluxionDBClient(opts());
    const errors = [];
    const a = await client.subscribe({ col: "cc" }, { onError: (e) => errors.push(e) });
    const b = await client.subscribe({ col: "cc", doc: "x" });
    const loops = [a, b].map(async (s) => {
      let n = 0;
      for await (const _ of s) n++;
      return n;
    });
    await client.close();
    assert.deepEqual(await Promise.all(loops), [0, 0]);
    assert.deepEqual(await Promise.all([a.done, b.done]), [undefined, undefined]);
    assert.deepEqual(errors, []);
    await rejectsWith(client.subscribe({ col: "cc" }), ClosedError, "closed");
  });

  test("AbortSignal: aborting ends the subscription; an aborted signal rejects with AbortedError", async () => {
    const client = new FluxionDBClient(opts());
    try {
      const ac = new AbortController();
      const sub = await client.subscribe({ col: "abort", signal: ac.signal });
      const start = sub.cursor;
      const loop = (async () => {
        const seen = [];
        for await (const ev of sub) seen.push(ev.ts);
        return seen;
      })();
      await writer.insertSingleRecord(rec("abort", "d", 1));
      await until(() => sub.cursor !== start); // consumed by the loop
      ac.abort();
      assert.deepEqual(await loop, [1]);
      assert.equal(sub.closed, true);

      const pre = AbortSignal.abort(new Error("not wanted"));
      const err = await rejectsWith(client.subscribe({ col: "abort", signal: pre }), AbortedError, "aborted");
      assert.equal(err.cause.message, "not wanted");

      // Aborted while the server is frozen: subscribe rejects at once, the late reply is unsubscribed.
      const s = await startServer();
      const c2 = new FluxionDBClient({ url: s.url, apiKey: s.key });
      try {
        await c2.connect();
        await s.pause();
        const ac2 = new AbortController();
        const p = c2.subscribe({ col: "abort", signal: ac2.signal });
        await sleep(30);
        ac2.abort();
        await rejectsWith(p, AbortedError);
        s.resume();
        assert.ok(Array.isArray(await c2.fetchCollections()));
      } finally {
        s.resume();
        await c2.close();
        await s.stop();
      }
    } finally {
      await client.close();
    }
  });
});

describe("stalled server", () => {
  /** subscriptions reads the server's live subscription count from /metrics. */
  async function subscriptions(server) {
    const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
    return Number(/^fluxiondb_subscriptions (\d+)/m.exec(text)?.[1]);
  }

  test("a subscribe that timed out is unsubscribed when its reply comes late", { timeout: 15_000 }, async () => {
    const frozen = await startServer();
    const client = new FluxionDBClient({ url: frozen.url, apiKey: frozen.key, heartbeatInterval: 0 });
    try {
      await client.connect();
      await frozen.pause();
      await rejectsWith(client.subscribe({ col: "quiet", timeout: 100 }), TimeoutError);
      frozen.resume();
      const deadline = Date.now() + 3000;
      let n;
      while ((n = await subscriptions(frozen)) !== 0 && Date.now() < deadline) await sleep(20);
      assert.equal(n, 0, "the server still holds the subscription nobody awaits");
    } finally {
      frozen.resume();
      await client.close();
      await frozen.stop();
    }
  });

  test("requestTimeout 0: closing a subscription on a stalled server still waits at most about a second", { timeout: 15_000 }, async () => {
    const frozen = await startServer();
    const client = new FluxionDBClient({ url: frozen.url, apiKey: frozen.key, requestTimeout: 0, heartbeatInterval: 0 });
    try {
      const sub = await client.subscribe({ col: "c" });
      await frozen.pause();
      const t0 = Date.now();
      await sub.close();
      assert.ok(Date.now() - t0 < 3000, `close() took ${Date.now() - t0}ms`);
    } finally {
      frozen.resume();
      await client.close();
      await frozen.stop();
    }
  });
});

describe("keys", () => {
  test("a readonly key can subscribe; revoking it ends the subscription with AuthenticationError", async () => {
    await writer.addApiKey({ key: "sub-reader", scope: "readonly" });
    const reader = new FluxionDBClient(opts({ apiKey: "sub-reader", reconnectInterval: 20 }));
    try {
      const errors = [];
      const sub = await reader.subscribe({ col: "ro" }, { onError: (e) => errors.push(e) });
      const it = sub[Symbol.asyncIterator]();
      await writer.insertSingleRecord(rec("ro", "d", 1));
      assert.equal((await take(it, 1))[0].ts, 1);
      await writer.removeApiKey({ key: "sub-reader" });
      const err = await sub.done;
      assert.ok(err instanceof AuthenticationError, `${err?.name}: ${err?.message}`);
      await assert.rejects(it.next(), (e) => e === err);
      assert.deepEqual(errors, [err]);
    } finally {
      await reader.close();
    }
  });
});

/** clientUnsub sends a raw `unsub` on the client's socket, to prove the server forgot the id. */
function clientUnsub(client, id) {
  // The client has no public unsub-by-id (close() is the way); its connection's request is
  // reachable from JavaScript.
  return client["conn"].request("unsub", JSON.stringify({ sub: id }), 5000);
}
