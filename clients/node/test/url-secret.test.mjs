// A password in the server URL stays out of errors, their causes included.
import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import FluxionDBClient from "@volandoo/fluxiondb-client";

test("a password in a URL the socket constructor refuses stays out of the error", async () => {
  const client = new FluxionDBClient({ url: "ws://user:TOPSECRET@127.0.0.1:99999", apiKey: "k", maxReconnectAttempts: 1 });
  const err = await client.connect().then(() => assert.fail("connected"), (e) => e);
  await client.close();
  assert.ok(!inspect(err, { depth: 10 }).includes("TOPSECRET"), "the error quotes the password");
});
