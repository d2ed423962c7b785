// Every client method, under both generations of names and parameter spellings, against the
// real server; server error replies reject with the class their code names.

import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import FluxionDBClient, {
  FluxionDBClient as Named,
  FluxionDBError,
  ServerError,
  InvalidRequestError,
  PermissionDeniedError,
  NotFoundError,
} from "@volandoo/fluxiondb-client";
import { startServer, rejectsWith } from "./helpers/server.mjs";

let srv;
let client;
before(async () => {
  srv = await startServer();
  client = new FluxionDBClient({ url: srv.url, apiKey: srv.key, connectionName: "methods-test" });
  await client.connect();
});
after(async () => {
  await client?.close();
  await srv?.stop();
});

test("default and named exports are the same class", () => {
  assert.equal(FluxionDBClient, Named);
  assert.equal(client.state, "open");
});

describe("time series", () => {
  test("insert (v1 names, v1 fields) and fetchDocument", async () => {
    await client.insertMultipleDocumentRecords([
      { ts: 10, key: "dev-1", data: '{"t":1}', collection: "ts-v1" },
      { ts: 30, key: "dev-1", data: '{"t":3}', collection: "ts-v1" },
      { ts: 20, key: "dev-1", data: '{"t":2}', collection: "ts-v1" },
    ]);
    await client.insertSingleDocumentRecord({ ts: 5, key: "dev-2", data: "x", collection: "ts-v1" });
    assert.deepEqual(await client.fetchDocument({ collection: "ts-v1", key: "dev-1", from: 0, to: 100 }), [
      { ts: 10, data: '{"t":1}' },
      { ts: 20, data: '{"t":2}' },
      { ts: 30, data: '{"t":3}' },
    ]);
    assert.deepEqual(await client.fetchDocument({ collection: "ts-v1", key: "dev-2", to: 100 }), [{ ts: 5, data: "x" }]);
  });

  test("insert (v2 names, v2 fields); same doc and ts replaces", async () => {
    await client.insertMultipleRecords([
      { ts: 1, doc: "a", data: "a1", col: "ts-v2" },
      { ts: 2, doc: "a", data: "a2", col: "ts-v2" },
      { ts: 2, doc: "b", data: "b2 state:flying", col: "ts-v2" },
      { ts: 3, doc: "c", data: "c3 quality:bad", col: "ts-v2" },
    ]);
    await client.insertSingleRecord({ ts: 2, doc: "a", data: "a2-new", col: "ts-v2" });
    const recs = await client.fetchDocument({ col: "ts-v2", doc: "a", from: 0, to: 10 });
    assert.deepEqual(recs, [
      { ts: 1, data: "a1" },
      { ts: 2, data: "a2-new" },
    ]);
  });

  test("fetchDocument limit, reverse, where, filter", async () => {
    await client.insertMultipleRecords(
      Array.from({ length: 10 }, (_, i) => ({ ts: i + 1, doc: "d", data: i % 2 ? "odd" : "even", col: "ts-q" })),
    );
    const newest3 = await client.fetchDocument({ col: "ts-q", doc: "d", from: 1, to: 10, reverse: true, limit: 3 });
    assert.deepEqual(
      newest3.map((r) => r.ts),
      [10, 9, 8],
    );
    const odd = await client.fetchDocument({ col: "ts-q", doc: "d", to: 10, where: "odd" });
    assert.deepEqual(
      odd.map((r) => r.ts),
      [2, 4, 6, 8, 10],
    );
    const notOdd = await client.fetchDocument({ col: "ts-q", doc: "d", to: 10, filter: "odd" });
    assert.deepEqual(
      notOdd.map((r) => r.ts),
      [1, 3, 5, 7, 9],
    );
    assert.deepEqual(await client.fetchDocument({ col: "ts-q", doc: "missing", to: 10 }), []);
    assert.deepEqual(await client.fetchDocument({ col: "no-such-col", doc: "d", to: 10 }), []);
  });

  test("fetchLatestRecords / fetchLatestDocumentRecords: ts bound, doc regex, from, where, filter", async () => {
    assert.deepEqual(await client.fetchLatestRecords({ col: "ts-v2", ts: 100 }), {
      a: { ts: 2, data: "a2-new" },
      b: { ts: 2, data: "b2 state:flying" },
      c: { ts: 3, data: "c3 quality:bad" },
    });
    assert.deepEqual(await client.fetchLatestDocumentRecords({ collection: "ts-v2", ts: 1 }), { a: { ts: 1, data: "a1" } });
    assert.deepEqual(Object.keys(await client.fetchLatestRecords({ col: "ts-v2", ts: 100, doc: "/^[ab]$/" })).sort(), [
      "a",
      "b",
    ]);
    assert.deepEqual(Object.keys(await client.fetchLatestDocumentRecords({ collection: "ts-v2", ts: 100, key: "c" })), [
      "c",
    ]);
    assert.deepEqual(Object.keys(await client.fetchLatestRecords({ col: "ts-v2", ts: 100, from: 3 })), ["c"]);
    assert.deepEqual(Object.keys(await client.fetchLatestRecords({ col: "ts-v2", ts: 100, where: "state:flying" })), [
      "b",
    ]);
    assert.deepEqual(
      Object.keys(await client.fetchLatestRecords({ col: "ts-v2", ts: 100, filter: "quality:bad" })).sort(),
      ["a", "b"],
    );
    assert.deepEqual(await client.fetchLatestRecords({ col: "no-such-col", ts: 100 }), {});
  });

  test("fetchCollections", async () => {
    const cols = await client.fetchCollections();
    for (const c of ["ts-v1", "ts-v2", "ts-q"]) assert.ok(cols.includes(c), `${c} in ${cols}`);
  });

  test("deleteRecord / deleteDocumentRecord", async () => {
    await client.deleteRecord({ col: "ts-q", doc: "d", ts: 1 });
    await client.deleteDocumentRecord({ collection: "ts-q", key: "d", ts: 2 });
    const left = await client.fetchDocument({ col: "ts-q", doc: "d", to: 10 });
    assert.deepEqual(
      left.map((r) => r.ts),
      [3, 4, 5, 6, 7, 8, 9, 10],
    );
  });

  test("deleteMultipleRecords / deleteMultipleDocumentRecords", async () => {
    await client.deleteMultipleRecords([
      { col: "ts-q", doc: "d", ts: 3 },
      { col: "ts-q", doc: "d", ts: 4 },
    ]);
    await client.deleteMultipleDocumentRecords([{ collection: "ts-q", key: "d", ts: 5 }]);
    const left = await client.fetchDocument({ col: "ts-q", doc: "d", to: 10 });
    assert.deepEqual(
      left.map((r) => r.ts),
      [6, 7, 8, 9, 10],
    );
  });

  test("deleteRecordsRange", async () => {
    await client.deleteRecordsRange({ col: "ts-q", doc: "d", fromTs: 7, toTs: 9 });
    const left = await client.fetchDocument({ col: "ts-q", doc: "d", to: 10 });
    assert.deepEqual(
      left.map((r) => r.ts),
      [6, 10],
    );
  });

  test("deleteDocument (v1 and v2 fields)", async () => {
    await client.deleteDocument({ col: "ts-v2", doc: "a" });
    await client.deleteDocument({ collection: "ts-v2", key: "b" });
    assert.deepEqual(Object.keys(await client.fetchLatestRecords({ col: "ts-v2", ts: 100 })), ["c"]);
  });

  test("deleteDocument without a collection removes it everywhere", async () => {
    await client.insertMultipleRecords([
      { ts: 1, doc: "everywhere", data: "1", col: "dd-1" },
      { ts: 1, doc: "everywhere", data: "2", col: "dd-2" },
      { ts: 1, doc: "stay", data: "3", col: "dd-2" },
    ]);
    await client.deleteDocument({ doc: "everywhere" });
    assert.deepEqual(await client.fetchDocument({ col: "dd-1", doc: "everywhere", to: 5 }), []);
    assert.deepEqual(await client.fetchDocument({ col: "dd-2", doc: "everywhere", to: 5 }), []);
    assert.equal((await client.fetchDocument({ col: "dd-2", doc: "stay", to: 5 })).length, 1);
  });

  test("deleteCollection (v1 and v2 fields)", async () => {
    await client.deleteCollection({ col: "ts-q" });
    await client.deleteCollection({ collection: "ts-v1" });
    const cols = await client.fetchCollections();
    assert.ok(!cols.includes("ts-q") && !cols.includes("ts-v1"), String(cols));
  });
});

describe("key-value store", () => {
  test("setValue, getValue, getKeys, getValues (all, literal, regex), deleteValue", async () => {
    await client.setValue({ col: "kv", key: "env.prod", value: "p" });
    await client.setValue({ collection: "kv", key: "env.dev", value: "d" });
    await client.setValue({ col: "kv", key: "other", value: "o" });
    assert.equal(await client.getValue({ col: "kv", key: "env.prod" }), "p");
    assert.equal(await client.getValue({ collection: "kv", key: "missing" }), "");
    assert.deepEqual((await client.getKeys({ col: "kv" })).sort(), ["env.dev", "env.prod", "other"]);
    assert.deepEqual(await client.getValues({ col: "kv" }), { "env.prod": "p", "env.dev": "d", other: "o" });
    assert.deepEqual(await client.getValues({ collection: "kv", key: "/^env\\./" }), { "env.prod": "p", "env.dev": "d" });
    assert.deepEqual(await client.getValues({ col: "kv", key: "other" }), { other: "o" });
    await client.deleteValue({ col: "kv", key: "other" });
    await client.deleteValue({ collection: "kv", key: "env.dev" });
    assert.deepEqual(await client.getKeys({ collection: "kv" }), ["env.prod"]);
    assert.deepEqual(await client.getKeys({ col: "no-such-kv" }), []);
    assert.deepEqual(await client.getValues({ col: "no-such-kv" }), {});
  });
});

describe("management", () => {
  test("getConnections shows this connection with its name", async () => {
    const conns = await client.getConnections();
    const me = conns.find((c) => c.self);
    assert.ok(me, JSON.stringify(conns));
    assert.equal(me.name, "methods-test");
    assert.equal(typeof me.since, "number");
    assert.equal(typeof me.ip, "string");
  });

  test("addApiKey, listApiKeys, scoped access, removeApiKey", async () => {
    const added = await client.addApiKey({ key: "reader-key", scope: "readonly" });
    assert.deepEqual(added, { status: "ok", scope: "readonly" });
    const rescoped = await client.addApiKey({ key: "writer-key", scope: "Read-Write" });
    assert.equal(rescoped.scope, "read_write");

    const keys = await client.listApiKeys();
    assert.ok(keys.length >= 3, JSON.stringify(keys));
    for (const k of keys) {
      assert.ok(!k.key.includes("reader-key") && !k.key.includes(srv.key), `secret in list: ${k.key}`);
    }
    assert.ok(keys.some((k) => k.scope === "readonly" && k.deletable === true));
    assert.ok(keys.some((k) => k.deletable === false));

    const reader = new FluxionDBClient({ url: srv.url, apiKey: "reader-key" });
    try {
      await client.insertSingleRecord({ ts: 1, doc: "d", data: "x", col: "scoped" });
      assert.equal((await reader.fetchDocument({ col: "scoped", doc: "d", to: 5 })).length, 1);
      const denied = await rejectsWith(
        reader.insertSingleRecord({ ts: 2, doc: "d", data: "x", col: "scoped" }),
        PermissionDeniedError,
        "permission_denied",
      );
      assert.equal(denied.message, "permission denied");
      assert.equal(typeof denied.requestId, "string");
      await rejectsWith(reader.addApiKey({ key: "x", scope: "readonly" }), PermissionDeniedError);
      // The connection stays usable after an error reply.
      assert.equal(await reader.getValue({ col: "kv", key: "env.prod" }), "p");
    } finally {
      await reader.close();
    }

    const writer = new FluxionDBClient({ url: srv.url, apiKey: "writer-key" });
    try {
      await writer.insertSingleRecord({ ts: 3, doc: "d", data: "y", col: "scoped" });
      await rejectsWith(writer.deleteCollection({ col: "scoped" }), PermissionDeniedError, "permission_denied");
    } finally {
      await writer.close();
    }

    assert.deepEqual(await client.removeApiKey({ key: "reader-key" }), { status: "ok" });
    await client.removeApiKey({ key: "writer-key" });
  });
});

describe("server errors reject with the right class", () => {
  test("validation errors: InvalidRequestError (bad_request)", async () => {
    const e1 = await rejectsWith(client.fetchLatestRecords({ col: "x", ts: 0 }), InvalidRequestError, "bad_request");
    assert.ok(e1 instanceof ServerError && e1 instanceof FluxionDBError);
    assert.equal(e1.name, "InvalidRequestError");
    await rejectsWith(client.insertMultipleRecords([{ ts: 1, doc: "", data: "x", col: "c" }]), InvalidRequestError, "bad_request");
    await rejectsWith(client.fetchDocument({ col: "c", doc: "d", from: 10, to: 5 }), InvalidRequestError);
    await rejectsWith(client.addApiKey({ key: "k", scope: "superuser" }), InvalidRequestError);
    await rejectsWith(client.addApiKey({ key: "", scope: "readonly" }), InvalidRequestError);
  });

  test("a rejected batch applies nothing", async () => {
    await rejectsWith(
      client.insertMultipleRecords([
        { ts: 1, doc: "ok", data: "x", col: "atomic" },
        { ts: 1, doc: "", data: "x", col: "atomic" },
      ]),
      InvalidRequestError,
    );
    assert.deepEqual(await client.fetchDocument({ col: "atomic", doc: "ok", to: 5 }), []);
  });

  test("unknown key: NotFoundError; the master key: PermissionDeniedError (forbidden)", async () => {
    const nf = await rejectsWith(client.removeApiKey({ key: "never-added" }), NotFoundError, "not_found");
    assert.equal(nf.message, "api key not found");
    const fb = await rejectsWith(client.removeApiKey({ key: srv.key }), PermissionDeniedError, "forbidden");
    assert.equal(fb.message, "api key cannot be removed");
  });
});

describe("timestamps", () => {
  const big = 9007199254740993n; // 2^53 + 1: not representable as a double
  const max = 9223372036854775807n;

  test("bigint mode round-trips int64 timestamps exactly", async () => {
    const exact = new FluxionDBClient({ url: srv.url, apiKey: srv.key, bigint: true });
    try {
      await exact.insertMultipleRecords([
        { ts: big, doc: "big", data: '{"ts":1}', col: "bigint" },
        { ts: max, doc: "big", data: "max", col: "bigint" },
        { ts: 7, doc: "big", data: "small", col: "bigint" },
      ]);
      const recs = await exact.fetchDocument({ col: "bigint", doc: "big", from: 0n, to: max });
      assert.deepEqual(recs, [
        { ts: 7n, data: "small" },
        { ts: big, data: '{"ts":1}' },
        { ts: max, data: "max" },
      ]);
      const latest = await exact.fetchLatestRecords({ col: "bigint", ts: big });
      assert.deepEqual(latest, { big: { ts: big, data: '{"ts":1}' } });
      await exact.deleteRecord({ col: "bigint", doc: "big", ts: big });
      assert.deepEqual(
        (await exact.fetchDocument({ col: "bigint", doc: "big", to: max })).map((r) => r.ts),
        [7n, max],
      );
      // Non-timestamp numbers stay numbers.
      const conns = await exact.getConnections();
      assert.equal(typeof conns[0].since, "number");
    } finally {
      await exact.close();
    }
  });

  test("number mode: Infinity as an upper bound means int64 max; big values round to doubles", async () => {
    const recs = await client.fetchDocument({ col: "bigint", doc: "big", to: Infinity });
    assert.deepEqual(
      recs.map((r) => r.ts),
      [7, 9223372036854775807],
    );
    assert.equal(recs[1].ts, Number(max)); // 2^63 as a double: documented precision loss
  });
});

describe("names that are not valid Unicode", () => {
  test("a name with a lone surrogate is refused: the server would merge it with others", async () => {
    const s = await startServer();
    const client = new FluxionDBClient({ url: s.url, apiKey: s.key });
    try {
      for (const call of [
        () => client.insertSingleDocumentRecord({ ts: 1, key: "\ud800", data: "one", collection: "surr" }),
        () => client.insertSingleRecord({ ts: 1, doc: "d", data: "x", col: "c\udc00" }),
        () => client.setValue({ collection: "c", key: "k\ud801", value: "v" }),
        () => client.fetchLatestRecords({ col: "c", ts: 1, doc: "\ud800x" }),
      ]) {
        await assert.rejects(call(), (err) => err instanceof TypeError && /lone surrogate/.test(err.message));
      }
      // Well-formed astral characters are fine.
      await client.insertSingleRecord({ ts: 1, doc: "\u{1F600}", data: "ok", col: "surr" });
      assert.deepEqual(await client.fetchDocument({ col: "surr", doc: "\u{1F600}", to: 5 }), [{ ts: 1, data: "ok" }]);
    } finally {
      await client.close();
      await s.stop();
    }
  });
});
