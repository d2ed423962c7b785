// Test runner entry: builds the server once, then runs every test file with node:test.
// FLUXIONDB_BIN, when set, names a server binary to use instead of building one.

import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { packageDir, serverBinary } from "./helpers/server.mjs";

const env = { ...process.env };
if (!env.FLUXIONDB_BIN) env.FLUXIONDB_BIN = serverBinary();
const only = process.argv.slice(2);
const files = (only.length ? only : readdirSync(join(packageDir, "test")).filter((f) => f.endsWith(".test.mjs")).map((f) => join("test", f))).sort();
const r = spawnSync(process.execPath, ["--test", "--test-concurrency=1", ...files], { cwd: packageDir, env, stdio: "inherit" });
process.exit(r.status ?? 1);
