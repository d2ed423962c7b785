// The promises of PROTOCOL.md §4 the official client broke: no call ever hangs, errors are
// typed, reconnects work (and stop after close()), nothing is printed without a logger.

import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { inspect } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import FluxionDBClient, {
  AuthenticationError,
  ClosedError,
  ConnectionError,
  FluxionDBError,
  InvalidRequestError,
  TimeoutError,
} from "@volandoo/fluxiondb-client";
import { startServer, rejectsWith, packageDir } from "./helpers/server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
setFlagsFromString("--expose-gc"); // for the stalled-server test's memory figures

// Every console method is watched for the whole file: the client must print nothing.
const printed = [];
const consoleMethods = ["log", "info", "warn", "error", "debug", "trace"];
const originals = {};
before(() => {
  for (const m of consoleMethods) {
    originals[m] = console[m];
    console[m] = (...args) => printed.push([m, ...args]);
  }
});
after(() => {
  for (const m of consoleMethods) console[m] = originals[m];
});

let srv;
before(async () => {
  srv = await startServer();
});
after(async () => {
  await srv?.stop();
});

const opts = (extra = {}) => ({ url: srv.url, apiKey: srv.key, ...extra });

/** freePort returns a port nothing listens on. */
async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

describe("concurrency", () => {
  test("1000 concurrent calls on one client", async () => {
    const client = new FluxionDBClient(opts());
    try {
      const writes = Array.from({ length: 500 }, (_, i) =>
        client.insertSingleRecord({ ts: i + 1, doc: `d${i % 10}`, data: String(i), col: "conc" }),
      );
      const reads = Array.from({ length: 500 }, (_, i) => client.getValue({ col: "conc", key: `k${i}` }));
      const results = await Promise.all([...writes, ...reads]);
      assert.equal(results.length, 1000);
      assert.ok(results.slice(500).every((v) => v === ""));
      const latest = await client.fetchLatestRecords({ col: "conc", ts: 1000 });
      assert.equal(Object.keys(latest).length, 10);
      let total = 0;
      for (let d = 0; d < 10; d++) total += (await client.fetchDocument({ col: "conc", doc: `d${d}`, to: 1000 })).length;
      assert.equal(total, 500);
    } finally {
      await client.close();
    }
  });
});

describe("authentication", () => {
  test("unknown key: AuthenticationError from connect() and from calls, no retry loop", async () => {
    const client = new FluxionDBClient(opts({ apiKey: "wrong-key", reconnectInterval: 10 }));
    const err = await rejectsWith(client.connect(), AuthenticationError, "unauthenticated");
    assert.match(err.message, /401|Unknown API key/);
    assert.equal(client.state, "idle");
    await rejectsWith(client.fetchCollections(), AuthenticationError);
    await client.close();
  });

  test("missing key: AuthenticationError", async () => {
    const client = new FluxionDBClient(opts({ apiKey: "" }));
    const err = await rejectsWith(client.fetchCollections(), AuthenticationError);
    assert.match(err.message, /401|Missing API key/);
    await client.close();
  });

  test("a revoked key closes the session: AuthenticationError, no reconnect", async () => {
    const admin = new FluxionDBClient(opts());
    await admin.addApiKey({ key: "short-lived", scope: "read_write" });
    const user = new FluxionDBClient(opts({ apiKey: "short-lived", reconnectInterval: 10 }));
    try {
      await user.connect();
      await admin.removeApiKey({ key: "short-lived" });
      // The server closes the user's socket (1008 API key revoked); calls then fail typed.
      const deadline = Date.now() + 5000;
      let err;
      while (Date.now() < deadline) {
        try {
          await user.fetchCollections();
        } catch (e) {
          err = e;
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(err instanceof AuthenticationError, `got ${err?.name}: ${err?.message}`);
      await rejectsWith(user.fetchCollections(), AuthenticationError);
    } finally {
      await user.close();
      await admin.close();
    }
  });
});

describe("timeouts", () => {
  test("Infinity (or anything a timer cannot wait) means no limit, not an immediate timeout", async () => {
    const warnings = [];
    const onWarning = (w) => warnings.push(w);
    process.on("warning", onWarning);
    const logged = [];
    const logger = { debug() {}, info() {}, warn: (m) => logged.push(m), error: (m) => logged.push(m) };
    const client = new FluxionDBClient(
      opts({ requestTimeout: Infinity, connectTimeout: Infinity, heartbeatInterval: Infinity, reconnectInterval: 2 ** 40, logger }),
    );
    try {
      // The first call waits for the connection: a 1 ms timer (what Node makes of Infinity)
      // rejected it with "not connected within Infinityms".
      await client.insertSingleRecord({ ts: 1, doc: "d", data: "x", col: "inf" }, Infinity);
      assert.deepEqual(await client.getKeys({ col: "inf" }, 2 ** 31), []);
      await new Promise((r) => setTimeout(r, 300)); // an Infinity heartbeat pinged every ms, and dropped the socket
      assert.equal((await client.fetchDocument({ col: "inf", doc: "d", to: Infinity }, 2 ** 40)).length, 1);
      assert.deepEqual(logged, []);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings.map((w) => w.name), []);
    } finally {
      process.off("warning", onWarning);
      await client.close();
    }
  });

  test("calls that gave up waiting for a connection release their requests", async () => {
    const client = new FluxionDBClient({ url: `ws://127.0.0.1:${await freePort()}`, apiKey: "k", reconnectInterval: 50 });
    const big = "x".repeat(100_000);
    try {
      const calls = Array.from({ length: 200 }, (_, i) =>
        client.insertSingleRecord({ ts: i + 1, doc: "d", data: big, col: "c" }, 30).catch((e) => e),
      );
      for (const e of await Promise.all(calls)) assert.ok(e instanceof FluxionDBError, String(e));
      // White box: what still waits for a connection holds no request text (it held every
      // 100 KB frame until the server came back or close()).
      const queue = client["conn"]["queue"];
      assert.ok(queue.length <= 64, `queue holds ${queue.length} settled calls`);
      assert.ok(queue.every((p) => p.frame === ""), "a rejected call kept its frame");
    } finally {
      await client.close();
    }
  });

  test("requestTimeout and per-call timeout: TimeoutError when the server does not answer", async () => {
    const frozen = await startServer();
    const client = new FluxionDBClient({ url: frozen.url, apiKey: frozen.key, requestTimeout: 300 });
    try {
      await client.connect();
      await frozen.pause(); // SIGSTOP: the socket stays open, nothing answers
      const t0 = Date.now();
      const err = await rejectsWith(client.fetchCollections(), TimeoutError, "timeout");
      assert.ok(Date.now() - t0 < 2000);
      assert.equal(typeof err.requestId, "string");
      await rejectsWith(client.getValue({ col: "c", key: "k" }, 50), TimeoutError);
      frozen.resume();
      assert.deepEqual(await client.fetchCollections(), []);
    } finally {
      frozen.resume();
      await client.close();
      await frozen.stop();
    }
  });

  test("heartbeat: a connection that answers nothing is dropped and reconnected, not kept open forever", async () => {
    const frozen = await startServer();
    const lines = [];
    const logger = { warn: (msg, f) => lines.push([msg, f]), info() {}, debug() {}, error() {} };
    const client = new FluxionDBClient({ url: frozen.url, apiKey: frozen.key, heartbeatInterval: 200, logger });
    try {
      await client.connect();
      await frozen.pause(); // SIGSTOP: no FIN, no RST, no pong
      const deadline = Date.now() + 3000;
      while (client.state === "open" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.notEqual(client.state, "open", "still open 3 s after the server stopped answering");
      assert.ok(lines.some(([m]) => /no answer to ping/.test(m)), JSON.stringify(lines));
      frozen.resume();
      assert.deepEqual(await client.fetchCollections(), []);
      assert.equal(client.state, "open");
    } finally {
      frozen.resume();
      await client.close();
      await frozen.stop();
    }
  });

  test("connectTimeout: connect() to a server that never answers the upgrade", async () => {
    const frozen = await startServer();
    await frozen.pause();
    const client = new FluxionDBClient({ url: frozen.url, apiKey: frozen.key, connectTimeout: 300, requestTimeout: 600 });
    try {
      const t0 = Date.now();
      const err = await rejectsWith(client.connect(), FluxionDBError);
      assert.ok(err instanceof TimeoutError || err instanceof ConnectionError, err.name);
      assert.ok(Date.now() - t0 < 2000);
      await rejectsWith(client.fetchCollections(), FluxionDBError);
    } finally {
      await client.close();
      frozen.resume();
      await frozen.stop();
    }
  });

  test("nothing listening: ConnectionError within connectTimeout; maxReconnectAttempts gives up early", async () => {
    const url = `ws://127.0.0.1:${await freePort()}`;
    const a = new FluxionDBClient({ url, apiKey: "k", connectTimeout: 500, reconnectInterval: 20 });
    const e1 = await rejectsWith(a.connect(), ConnectionError, "connection");
    assert.match(e1.message, /ECONNREFUSED|could not connect/);
    await a.close();

    const b = new FluxionDBClient({ url, apiKey: "k", maxReconnectAttempts: 2, reconnectInterval: 10, requestTimeout: 5000 });
    const t0 = Date.now();
    const e2 = await rejectsWith(b.fetchCollections(), ConnectionError);
    assert.match(e2.message, /after 2 attempts/);
    assert.ok(Date.now() - t0 < 2000);
    await b.close();
  });
});

describe("disconnects", () => {
  test("server killed and restarted under a live client: in-flight calls reject, then calls work again", async () => {
    const first = await startServer();
    const client = new FluxionDBClient({
      url: first.url,
      apiKey: first.key,
      reconnectInterval: 50,
      maxReconnectInterval: 200,
      requestTimeout: 10_000,
    });
    let second;
    try {
      await client.insertSingleRecord({ ts: 1, doc: "d", data: "before", col: "restart" });
      await first.pause(); // hold the next calls in flight on the server side
      const inFlight = Promise.allSettled(Array.from({ length: 20 }, () => client.fetchCollections()));
      await new Promise((r) => setTimeout(r, 50));
      await first.kill();
      const settled = await inFlight;
      for (const s of settled) {
        assert.equal(s.status, "rejected");
        assert.ok(s.reason instanceof ConnectionError, `${s.reason?.name}: ${s.reason?.message}`);
      }

      // Calls made while the server is down wait for the reconnect.
      const waiting = client.insertSingleRecord({ ts: 2, doc: "d", data: "after", col: "restart" });
      waiting.catch(() => {}); // awaited below; this only marks the rejection as handled
      await new Promise((r) => setTimeout(r, 300));
      second = await startServer({ key: first.key, port: first.port });
      await waiting;
      assert.equal(client.state, "open");
      // In-memory server: only the write made after the restart is there.
      assert.deepEqual(await client.fetchDocument({ col: "restart", doc: "d", to: 10 }), [{ ts: 2, data: "after" }]);
    } finally {
      await client.close();
      await first.kill();
      await second?.stop();
    }
  });

  test("a call with no time limit made while reconnecting keeps the process alive until it settles", async () => {
    // requestTimeout 0 gives the call no timer of its own; the reconnect wait must hold the
    // process, or it ends with the call unsettled (and the write lost).
    const first = await startServer();
    const child = spawn(process.execPath, [join(here, "fixtures", "untimed-call.mjs"), first.url, first.key], {
      cwd: packageDir,
      stdio: ["pipe", "pipe", "inherit"],
    });
    let out = "";
    let gone = false;
    const exited = new Promise((r) => child.on("exit", (code) => ((gone = true), r(code))));
    child.stdout.setEncoding("utf8");
    // output resolves once the child printed want, and fails if it exits without printing it.
    const output = (want) =>
      new Promise((resolveOut, reject) => {
        const check = () => {
          if (out.includes(want)) resolveOut();
          else if (gone) reject(new Error(`the child exited before printing ${want}; output: ${JSON.stringify(out)}`));
        };
        child.stdout.on("data", (c) => ((out += c), check()));
        exited.then(check);
        check();
      });
    let second;
    try {
      await output("connected");
      await first.kill();
      await new Promise((r) => setTimeout(r, 200)); // the client has seen the loss and waits to retry
      child.stdin.write("go\n");
      await new Promise((r) => setTimeout(r, 500));
      second = await startServer({ key: first.key, port: first.port });
      await output("inserted");
      assert.equal(await exited, 0);
      const check = new FluxionDBClient({ url: second.url, apiKey: second.key });
      try {
        assert.deepEqual(await check.fetchDocument({ col: "untimed", doc: "d", to: 10 }), [{ ts: 1, data: "untimed" }]);
      } finally {
        await check.close();
      }
    } finally {
      child.kill("SIGKILL");
      await first.kill();
      await second?.stop();
    }
  });

  test("an idle close (--idle-timeout) is not followed by a reconnect loop; the next call connects", async () => {
    const s = await startServer({ args: ["--idle-timeout=200ms", "--ping-interval=50ms"] });
    const opened = async () => {
      const text = await (await fetch(`http://${s.addr}/metrics`)).text();
      return Number(/^fluxiondb_connections_total (\S+)$/m.exec(text)?.[1]);
    };
    const client = new FluxionDBClient({ url: s.url, apiKey: s.key, reconnectInterval: 20, maxReconnectInterval: 100 });
    try {
      await client.fetchCollections();
      await new Promise((r) => setTimeout(r, 1500)); // several idle periods
      assert.equal(await opened(), 1, "connections opened while the client was idle");
      assert.deepEqual(await client.fetchCollections(), []);
      assert.equal(await opened(), 2, "the call reconnected");
    } finally {
      await client.close();
      await s.stop();
    }
  });

  test("graceful server shutdown rejects in-flight calls with ConnectionError", async () => {
    const s = await startServer();
    const client = new FluxionDBClient({ url: s.url, apiKey: s.key, maxReconnectAttempts: 1, reconnectInterval: 10 });
    try {
      await client.connect();
      await s.pause();
      const p = Promise.allSettled([client.fetchCollections()]);
      s.resume();
      // Stop races the reply: either the call answered, or it failed typed. It never hangs.
      const stopping = s.stop();
      const r = await p;
      await stopping;
      if (r[0].status === "rejected") assert.ok(r[0].reason instanceof ConnectionError, r[0].reason?.name);
      await rejectsWith(client.fetchCollections(), ConnectionError);
    } finally {
      await client.close();
    }
  });
});

describe("oversized requests", () => {
  test("a frame over the server's limit (close 1009) rejects as too_large (InvalidRequestError); the client reconnects", async () => {
    const s = await startServer({ args: ["--max-message-size=4096"] });
    const client = new FluxionDBClient({ url: s.url, apiKey: s.key, reconnectInterval: 20 });
    try {
      await client.connect();
      const err = await rejectsWith(
        client.insertSingleRecord({ ts: 1, doc: "d", data: "x".repeat(10_000), col: "big" }),
        FluxionDBError,
      );
      assert.ok(err instanceof InvalidRequestError && err.code === "too_large", `${err.name}: ${err.message}`);
      assert.match(err.message, /larger than the server's message size limit/);
      await client.insertSingleRecord({ ts: 1, doc: "d", data: "small", col: "big" });
      assert.deepEqual(await client.fetchDocument({ col: "big", doc: "d", to: 5 }), [{ ts: 1, data: "small" }]);
    } finally {
      await client.close();
      await s.stop();
    }
  });
});

describe("oversized requests beside valid ones", () => {
  test("a 1009 close names only the oversized request; the valid ones in flight are plain connection losses", async () => {
    const s = await startServer({ args: ["--max-message-size=1MiB"] });
    const client = new FluxionDBClient({ url: s.url, apiKey: s.key, reconnectInterval: 20 });
    try {
      await client.connect();
      await s.pause(); // the big frame stays in the socket buffers until the server runs again
      const big = client.insertSingleRecord({ ts: 1, doc: "big", data: "x".repeat(8 << 20), col: "c" }).then(
        () => null,
        (e) => e,
      );
      await new Promise((r) => setTimeout(r, 100));
      const small = [];
      for (let g = 0; g < 8; g++) {
        small.push(
          client.insertSingleRecord({ ts: 1, doc: `d${g}`, data: "small", col: "c" }).then(
            () => null,
            (e) => e,
          ),
        );
      }
      await new Promise((r) => setTimeout(r, 100));
      s.resume();
      const bigErr = await big;
      // The oversized request is an invalid one (too_large), not a connection loss to retry:
      // sent again, it would close the connection again for everyone on it.
      assert.ok(bigErr instanceof InvalidRequestError, `${bigErr?.name}: ${bigErr?.message}`);
      assert.equal(bigErr.code, "too_large");
      assert.match(bigErr.message, /a request was larger than the server's message size limit/);
      assert.ok(bigErr.cause instanceof ConnectionError);
      for (const err of await Promise.all(small)) {
        if (err === null) continue;
        assert.ok(err instanceof ConnectionError, `${err.name}: ${err.message}`);
        assert.match(err.message, /another request on it was larger .*this one was not/);
      }
    } finally {
      await client.close();
      await s.stop();
    }
  });
});

describe("a stalled server", () => {
  test("requests wait unsent in the client once the socket's send buffer is full: a timeout drops them, and their frames are not held", async () => {
    const s = await startServer();
    const client = new FluxionDBClient({ url: s.url, apiKey: s.key, requestTimeout: 300 });
    const gc = runInNewContext("gc");
    try {
      await client.connect();
      gc();
      const base = process.memoryUsage();
      await s.pause();
      const data = "x".repeat(256 * 1024);
      const results = await Promise.all(
        Array.from({ length: 256 }, (_, i) =>
          client.insertSingleRecord({ ts: i + 1, doc: "d", col: "stall", data: data + i }).then(
            () => null,
            (e) => e,
          ),
        ),
      );
      assert.ok(results.every((e) => e instanceof TimeoutError), String(results.find((e) => !(e instanceof TimeoutError))));
      const unsent = results.filter((e) => /was not sent/.test(e.message)).length;
      assert.ok(unsent > 200, `${unsent} of 256 timed-out calls say they were not sent`);
      await new Promise((r) => setTimeout(r, 50));
      gc();
      const now = process.memoryUsage();
      const grown = (now.external + now.heapUsed - base.external - base.heapUsed) / 1048576;
      assert.ok(grown < 24, `${grown.toFixed(1)} MiB still held by 256 calls of 256 KiB that all timed out`);
      s.resume();
      // The calls reported as not sent were not applied once the server ran again.
      const stored = await client.fetchDocument({ col: "stall", doc: "d", from: 0, to: 1000 });
      assert.ok(stored.length <= 256 - unsent, `${stored.length} records stored, though ${unsent} calls were never sent`);
    } finally {
      s.resume();
      await client.close();
      await s.stop();
    }
  });
});

describe("memory of a call in flight", () => {
  test("once its frame is handed to the socket, a call waiting for its reply keeps no encoded copy of its request", async () => {
    const s = await startServer();
    const client = new FluxionDBClient({ url: s.url, apiKey: s.key, requestTimeout: 5000 });
    const gc = runInNewContext("gc");
    try {
      await client.connect();
      await s.pause();
      gc();
      const base = process.memoryUsage().heapUsed;
      const call = client.insertSingleRecord({ ts: 1, doc: "d", col: "mem", data: "y".repeat(12 << 20) }).then(
        () => null,
        (e) => e,
      );
      await new Promise((r) => setTimeout(r, 100));
      gc();
      const held = (process.memoryUsage().heapUsed - base) / 1048576;
      s.resume();
      assert.equal(await call, null);
      // The caller's own 12 MiB string stays (the call's arguments hold it until it settles);
      // the encoded request (another 12 MiB) must not.
      assert.ok(held < 18, `${held.toFixed(1)} MiB of heap held by one sent call of 12 MiB awaiting its reply`);
    } finally {
      s.resume();
      await client.close();
      await s.stop();
    }
  });
});

describe("secrets in the URL", () => {
  test("errors and logs never quote the API key when the URL carries it (?api-key= or user:pass@)", async () => {
    for (const url of ["ws://127.0.0.1:1?api-key=TOPSECRET", "ws://user:TOPSECRET@127.0.0.1:1"]) {
      const logged = [];
      const rec = (...a) => logged.push(a);
      const client = new FluxionDBClient({
        url,
        apiKey: "TOPSECRET",
        maxReconnectAttempts: 1,
        logger: { debug: rec, info: rec, warn: rec, error: rec },
      });
      const err = await client.connect().then(
        () => assert.fail("connected to a closed port"),
        (e) => e,
      );
      await client.close();
      assert.ok(!inspect(err, { depth: 10 }).includes("TOPSECRET"), `error quotes the key: ${err.message}`);
      assert.ok(!JSON.stringify(logged).includes("TOPSECRET"), `logger got the key: ${JSON.stringify(logged)}`);
      assert.match(err.message, /127\.0\.0\.1:1/); // the address is still there
    }
  });
});

describe("replies over maxMessageSize", () => {
  test("a reply over the client's maxMessageSize rejects with a ConnectionError that says so", async () => {
    const client = new FluxionDBClient(opts({ maxMessageSize: 1000 }));
    try {
      await client.insertSingleRecord({ col: "big", doc: "d", ts: 1, data: "x".repeat(2000) });
      const err = await rejectsWith(client.fetchDocument({ col: "big", doc: "d", from: 0, to: 10 }), ConnectionError);
      assert.match(err.message, /maxMessageSize \(1000 bytes\)/);
      assert.ok((await client.fetchCollections()).includes("big")); // reconnected
    } finally {
      await client.close();
    }
  });
});

describe("close()", () => {
  test("a second close() waits for the socket like the first", async () => {
    const frozen = await startServer();
    const client = new FluxionDBClient({ url: frozen.url, apiKey: frozen.key, heartbeatInterval: 0 });
    try {
      await client.connect();
      await frozen.pause(); // the close handshake gets no answer: close() waits about a second
      const t0 = Date.now();
      const first = client.close();
      await client.close();
      assert.ok(Date.now() - t0 >= 500, `second close() resolved after ${Date.now() - t0}ms, before the socket closed`);
      await first;
    } finally {
      frozen.resume();
      await frozen.stop();
    }
  });

  test("close() with calls in flight rejects them with ClosedError and stops everything", async () => {
    const client = new FluxionDBClient(opts());
    await client.connect();
    await srv.pause(); // keep the calls in flight
    try {
      const calls = Array.from({ length: 50 }, (_, i) => client.getValue({ col: "c", key: `k${i}` }));
      const queued = new FluxionDBClient(opts({ url: `ws://127.0.0.1:${await freePort()}` }));
      const waitingForConnection = queued.fetchCollections();
      const all = Promise.allSettled([...calls, waitingForConnection]);
      await new Promise((r) => setTimeout(r, 50));
      const t0 = Date.now();
      await Promise.all([client.close(), queued.close()]);
      assert.ok(Date.now() - t0 < 1500);
      const settled = await all;
      for (const s of settled) {
        assert.equal(s.status, "rejected");
        assert.ok(s.reason instanceof ClosedError, `${s.reason?.name}: ${s.reason?.message}`);
        assert.equal(s.reason.code, "closed");
      }
      assert.equal(client.state, "closed");
      await rejectsWith(client.fetchCollections(), ClosedError);
      await client.close(); // idempotent
    } finally {
      srv.resume();
    }
  });

  test("close() during a reconnect stops it; connect() reopens", async () => {
    const s = await startServer();
    const client = new FluxionDBClient({ url: s.url, apiKey: s.key, reconnectInterval: 20, maxReconnectInterval: 50 });
    try {
      await client.connect();
      await s.kill();
      await new Promise((r) => setTimeout(r, 100)); // a few failed reconnect attempts
      assert.equal(client.state, "connecting");
      await client.close();
      assert.equal(client.state, "closed");
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(client.state, "closed");
      await rejectsWith(client.fetchCollections(), ClosedError);

      const again = await startServer({ key: s.key, port: s.port });
      try {
        await client.connect();
        assert.deepEqual(await client.fetchCollections(), []);
      } finally {
        await client.close();
        await again.stop();
      }
    } finally {
      await s.kill();
    }
  });
});

describe("logging", () => {
  test("nothing was printed to the console by any test above", () => {
    assert.deepEqual(printed, []);
  });

  test("a logger option receives diagnostics", async () => {
    const lines = [];
    const logger = {
      debug: (m) => lines.push(["debug", m]),
      info: (m) => lines.push(["info", m]),
      warn: (m) => lines.push(["warn", m]),
    };
    const client = new FluxionDBClient(opts({ logger }));
    await client.fetchCollections();
    await client.close();
    assert.ok(lines.some(([l, m]) => l === "info" && m === "connected"), JSON.stringify(lines));
  });
});

describe("error details", () => {
  test("wss:// to a server without TLS says to use ws://", async () => {
    const client = new FluxionDBClient({ url: srv.url.replace(/^ws:/, "wss:"), apiKey: srv.key, connectTimeout: 2000, maxReconnectAttempts: 1 });
    try {
      const err = await rejectsWith(client.connect(), FluxionDBError);
      assert.match(err.message, /use a ws:\/\/ URL/);
    } finally {
      await client.close();
    }
  });

  test("a malformed URL's error does not carry the API key", async () => {
    const apiKey = "sup3r s3cret/key";
    for (const url of ["ws//localhost:1", "127.0.0.1:1", "ws://"]) {
      const client = new FluxionDBClient({ url, apiKey });
      try {
        const err = await rejectsWith(client.connect(), ConnectionError);
        const shown = inspect(err, { depth: 5 });
        for (const form of [apiKey, encodeURIComponent(apiKey), new URLSearchParams({ k: apiKey }).toString().slice(2)]) {
          assert.ok(!shown.includes(form), `${url}: the key shows in ${shown}`);
        }
        assert.ok(err.cause instanceof Error, "the cause is kept");
      } finally {
        await client.close();
      }
    }
  });

  test("a rejected call's stack names the caller", async () => {
    const client = new FluxionDBClient(opts());
    try {
      async function callerNamedInTheStack() {
        await client.deleteRecord({ col: "", doc: "d", ts: 1 }); // refused: col is required
      }
      const err = await rejectsWith(callerNamedInTheStack(), FluxionDBError);
      assert.match(err.stack, /callerNamedInTheStack/);
      assert.match(err.stack, new RegExp(`^${err.name}: `));
    } finally {
      await client.close();
    }
  });
});
