// The exact JSON parser and the bigint-aware encoder (src/json.ts), compiled from source with
// esbuild: parseExact must agree with JSON.parse on every document, keep big integers of the
// named keys exact, and reject malformed text with a SyntaxError (never hang, never accept).

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { packageDir } from "./helpers/server.mjs";

const esbuild = await import("esbuild");
const built = await esbuild.build({
  entryPoints: [join(packageDir, "src", "json.ts")],
  bundle: true,
  write: false,
  format: "esm",
  platform: "neutral",
  logLevel: "silent",
});
const { parseExact, stringify } = await import(
  "data:text/javascript;base64," + Buffer.from(built.outputFiles[0].text).toString("base64")
);
const TS = new Set(["ts"]);

// A small deterministic PRNG, so that failures reproduce.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomValue(r, depth) {
  const k = Math.floor(r() * (depth > 3 ? 5 : 7));
  switch (k) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return [0, -1, 1.5, -2.25e-7, 1e-300, 123456789, -0.5, 2 ** 53 - 1][Math.floor(r() * 8)];
    case 3: {
      const chars = ['"', "\\", "\n", "é", "😀", "a", "/", "\u0001", "{", "]", " "];
      let s = "";
      for (let i = Math.floor(r() * 8); i > 0; i--) s += chars[Math.floor(r() * chars.length)];
      return s;
    }
    case 4:
      return "plain";
    case 5:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default: {
      const o = {};
      for (let i = Math.floor(r() * 4); i > 0; i--) o[["a", "b", "ts", "data", "__proto__", "é"][Math.floor(r() * 6)]] = randomValue(r, depth + 1);
      return o;
    }
  }
}

test("parseExact agrees with JSON.parse on random documents (no bigint keys)", () => {
  const r = rng(42);
  for (let i = 0; i < 3000; i++) {
    const text = JSON.stringify(randomValue(r, 0), null, i % 3 === 0 ? 2 : undefined);
    assert.deepEqual(parseExact(text, new Set()), JSON.parse(text), text);
  }
});

test("parseExact returns ts integers as exact bigint, other numbers unchanged", () => {
  const text = '{"id":"7","records":[{"ts":9223372036854775807,"data":"{\\"ts\\":1}"},{"ts":-9007199254740993,"data":""}],"since":12,"ts":1.5}';
  assert.deepEqual(parseExact(text, TS), {
    id: "7",
    records: [
      { ts: 9223372036854775807n, data: '{"ts":1}' },
      { ts: -9007199254740993n, data: "" },
    ],
    since: 12,
    ts: 1.5,
  });
  const o = parseExact('{"__proto__":{"x":1}}', TS);
  assert.equal(Object.getPrototypeOf(o), Object.prototype);
  assert.deepEqual(Object.keys(o), ["__proto__"]);
});

test("parseExact rejects malformed text with a SyntaxError", () => {
  for (const bad of ["", "{", "[1,]", '{"a":}', '{"a" 1}', "01", "1.", "-", "tru", "nul", '"\\x"', '"a', '"\u0001"', "{} {}", "[1 2]", "{'a':1}", "NaN", "[".repeat(300) + "]".repeat(300)]) {
    assert.throws(() => parseExact(bad, TS), SyntaxError, JSON.stringify(bad));
  }
});

test("stringify writes bigint exactly, clamps to int64, and matches JSON.stringify otherwise", () => {
  assert.equal(stringify({ ts: 9223372036854775807n, a: [1n, -5n] }), '{"ts":9223372036854775807,"a":[1,-5]}');
  assert.equal(stringify({ to: Infinity, from: -Infinity }), '{"to":9223372036854775807,"from":-9223372036854775808}');
  assert.equal(stringify(2n ** 70n), "9223372036854775807");
  assert.equal(stringify(2 ** 60), "1152921504606846976");
  assert.equal(stringify(1e21), "9223372036854775807");
  assert.equal(stringify({ skip: undefined, f: () => 1, n: null }), '{"n":null}');
  const r = rng(7);
  for (let i = 0; i < 2000; i++) {
    const v = randomValue(r, 0);
    const text = stringify(v);
    assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(v)), text);
  }
});
