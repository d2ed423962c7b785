// The design document's Node example (shared/seed/README.md) runs unchanged against our
// server: the fixture is the README's code block byte for byte; only the port of the URL is
// pointed at the test server (the README hard-codes 8080).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageDir, repoRoot, startServer } from "./helpers/server.mjs";

function runExample(srv, name) {
  const src = readFileSync(join(packageDir, "test", "fixtures", name), "utf8");
  assert.ok(src.includes('"ws://localhost:8080"'));
  // Written inside the package so that the bare import resolves to this package (self-reference).
  mkdirSync(join(packageDir, ".cache"), { recursive: true });
  const file = join(packageDir, ".cache", name);
  writeFileSync(file, src.replace("ws://localhost:8080", `ws://localhost:${srv.port}`));
  return new Promise((resolve) => {
    execFile(process.execPath, [file], { cwd: packageDir, timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ err, stdout, stderr }),
    );
  });
}

test("the fixture is the README's Node example", (t) => {
  const readme = [join(repoRoot, "..", "shared", "seed", "README.md"), "/work/shared/seed/README.md"].find(existsSync);
  const fixture = readFileSync(join(packageDir, "test", "fixtures", "seed-example.mjs"), "utf8");
  if (!readme) {
    t.diagnostic("shared/seed/README.md not found beside the repository; compared nothing");
    return;
  }
  const text = readFileSync(readme, "utf8");
  const block = /## Node\.js Client[\s\S]*?```js\n([\s\S]*?)```/.exec(text);
  assert.ok(block, "README has a Node example");
  assert.equal(fixture, block[1]);
});

for (const name of ["seed-example.mjs", "seed-example-v2-fields.mjs"]) {
  test(`seed example runs unchanged: ${name}`, async (t) => {
    // A fresh server per example, so that each sees only its own record.
    const srv = await startServer({ key: "YOUR_SECRET_KEY" });
    t.after(() => srv.stop());
    const { err, stdout, stderr } = await runExample(srv, name);
    assert.equal(err, null, `example failed: ${err?.message}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
    assert.equal(stderr, "");
    assert.match(stdout, /\[ 'sensors' \]|'sensors'/);
    assert.match(stdout, /'device-1': \{ ts: \d+, data: '\{"temperature":22\.5\}' \}/);
    assert.match(stdout, /\[ \{ ts: \d+, data: '\{"temperature":22\.5\}' \} \]/);
  });
}
