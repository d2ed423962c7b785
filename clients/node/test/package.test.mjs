// The published package: its contents, its exports for ESM, CommonJS and TypeScript
// consumers, and a browser bundle without `ws`.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { join } from "node:path";
import { packageDir } from "./helpers/server.mjs";

const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

test("npm pack ships dist, README, CHANGELOG, LICENSE and package.json only", () => {
  const out = execFileSync(npm, ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: packageDir, encoding: "utf8" });
  const files = JSON.parse(out)[0].files.map((f) => f.path).sort();
  for (const want of [
    "package.json",
    "README.md",
    "CHANGELOG.md",
    "LICENSE",
    "dist/index.js",
    "dist/index.cjs",
    "dist/index.d.ts",
    "dist/index.d.cts",
    "dist/browser.js",
    "dist/browser.d.ts",
  ]) {
    assert.ok(files.includes(want), `${want} missing from ${files}`);
  }
  for (const f of files) {
    assert.ok(/^(package\.json|README\.md|CHANGELOG\.md|LICENSE|dist\/)/.test(f), `unexpected file in the package: ${f}`);
  }
});

test("npm pack from a checkout without dist builds it first (prepack)", () => {
  // dist/ is not in git: a pack or publish from a fresh clone, or an install from git, shipped
  // package.json and the docs only, and require() failed.
  const dir = mkdtempSync(join(tmpdir(), "fluxiondb-pack-"));
  try {
    for (const f of ["package.json", "tsconfig.json", "tsup.config.ts", "src"]) {
      cpSync(join(packageDir, f), join(dir, f), { recursive: true });
    }
    symlinkSync(join(packageDir, "node_modules"), join(dir, "node_modules"), "dir");
    const out = execFileSync(npm, ["pack", "--dry-run", "--json"], { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const files = JSON.parse(out.slice(out.search(/^\[/m)))[0].files.map((f) => f.path);
    for (const want of ["dist/index.js", "dist/index.cjs", "dist/index.d.ts", "dist/browser.js"]) {
      assert.ok(files.includes(want), `${want} missing from ${files}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the declarations do not show the client's internals", () => {
  const decls = readdirSync(join(packageDir, "dist")).filter((f) => /\.d\.c?ts$/.test(f));
  assert.ok(decls.length >= 4, decls.join(","));
  for (const f of decls) {
    const dts = readFileSync(join(packageDir, "dist", f), "utf8");
    assert.doesNotMatch(dts, /resumeGen|@internal/, f);
  }
});

test("LICENSE is the repository's", () => {
  const root = readFileSync(new URL("../../../LICENSE", import.meta.url), "utf8");
  assert.equal(readFileSync(new URL("../LICENSE", import.meta.url), "utf8"), root);
  assert.equal(pkg.license, "Apache-2.0");
  assert.match(root, /Apache License/);
});

test("package.json: name, engines, exports with types for import, require and browser", () => {
  assert.equal(pkg.name, "@volandoo/fluxiondb-client");
  assert.equal(pkg.engines.node, ">=20");
  const dot = pkg.exports["."];
  assert.equal(dot.import.types, "./dist/index.d.ts");
  assert.equal(dot.require.types, "./dist/index.d.cts");
  assert.equal(dot.browser.types, "./dist/browser.d.ts");
  assert.deepEqual(Object.keys(dot), ["browser", "import", "require"]);
});

test("ESM import: default and named export", async () => {
  const m = await import("@volandoo/fluxiondb-client");
  assert.equal(typeof m.FluxionDBClient, "function");
  assert.equal(m.default, m.FluxionDBClient);
  assert.equal(m.LTDBClient, m.FluxionDBClient, "the first official SDK's name for the class");
  const web = await import(join(packageDir, "dist", "browser.js"));
  assert.equal(web.LTDBClient, web.FluxionDBClient);
  assert.ok(new m.ClosedError() instanceof m.FluxionDBError);
  assert.equal(new m.ClosedError().name, "ClosedError");
  assert.ok(import.meta.resolve("@volandoo/fluxiondb-client").endsWith("/dist/index.js"));
});

test("errors are instanceof across the ESM, CommonJS and browser copies of the classes", async () => {
  // An application whose ESM code imports the package while a CommonJS dependency requires
  // it holds two copies of every class (the dual-package hazard); instanceof must still work.
  const esm = await import("@volandoo/fluxiondb-client");
  const cjs = require("@volandoo/fluxiondb-client");
  const web = await import(join(packageDir, "dist", "browser.js"));
  assert.notEqual(esm.ServerError, cjs.ServerError, "the test needs two copies");
  for (const [from, to] of [[cjs, esm], [esm, cjs], [web, esm], [esm, web]]) {
    const e = new from.PermissionDeniedError("permission denied", "permission_denied");
    assert.ok(e instanceof to.PermissionDeniedError);
    assert.ok(e instanceof to.ServerError);
    assert.ok(e instanceof to.FluxionDBError);
    assert.ok(e instanceof Error);
    assert.ok(!(e instanceof to.NotFoundError), "a sibling class must not match");
    assert.ok(!(e instanceof to.TimeoutError));
    assert.ok(new from.ClosedError() instanceof to.ClosedError);
    assert.ok(!(new from.ClosedError() instanceof to.ServerError));
  }
  assert.ok(!(new Error("x") instanceof esm.FluxionDBError));
  assert.ok(!({ code: "timeout" } instanceof esm.TimeoutError));
  assert.ok(!(null instanceof esm.FluxionDBError));
  // A user's own subclass still works the ordinary way.
  class MyError extends esm.FluxionDBError {}
  assert.ok(new MyError("m", "mine") instanceof MyError);
  assert.ok(new MyError("m", "mine") instanceof cjs.FluxionDBError);
  assert.ok(!(new esm.FluxionDBError("m", "x") instanceof MyError));
});

test("CommonJS require: default and named export", () => {
  const resolved = execFileSync(process.execPath, [join(packageDir, "test", "fixtures", "consumer.cjs")], {
    cwd: packageDir,
    encoding: "utf8",
  });
  assert.ok(resolved.endsWith("/dist/index.cjs"), resolved);
  assert.ok(require.resolve("@volandoo/fluxiondb-client").endsWith("/dist/index.cjs"));
});

test("types resolve for ESM and CommonJS consumers (tsc, node16 resolution)", () => {
  const tsc = join(packageDir, "node_modules", "typescript", "bin", "tsc");
  try {
    execFileSync(process.execPath, [tsc, "-p", join(packageDir, "test", "types", "tsconfig.json")], {
      cwd: packageDir,
      encoding: "utf8",
    });
  } catch (err) {
    assert.fail(`tsc failed:\n${err.stdout}${err.stderr}`);
  }
});

test("a browser bundle does not contain ws; the Node bundle does load it", async () => {
  const esbuild = await import("esbuild");
  const bundle = async (platform) => {
    const r = await esbuild.build({
      stdin: {
        contents: 'import C from "@volandoo/fluxiondb-client"; globalThis.C = new C({ url: "ws://x", apiKey: "k" });',
        resolveDir: packageDir,
      },
      bundle: true,
      write: false,
      metafile: true,
      platform,
      format: "esm",
      logLevel: "silent",
    });
    return { inputs: Object.keys(r.metafile.inputs), text: r.outputFiles[0].text };
  };
  const browser = await bundle("browser");
  assert.ok(browser.inputs.some((i) => i.endsWith("dist/browser.js")), browser.inputs.join(","));
  assert.ok(!browser.inputs.some((i) => /node_modules\/ws\//.test(i)), browser.inputs.join(","));
  assert.ok(!/["']ws["']/.test(browser.text), "browser bundle names the ws module");

  const node = await bundle("node");
  assert.ok(node.inputs.some((i) => i.endsWith("dist/index.js")), node.inputs.join(","));
  assert.ok(node.inputs.some((i) => /node_modules\/ws\//.test(i)), "node bundle should include ws");
});
