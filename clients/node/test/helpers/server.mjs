// Test helper: builds the real FluxionDB server from the repository root and runs it on
// 127.0.0.1 with an OS-chosen port (server-facts.md). No mocked server anywhere.

import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const packageDir = resolve(here, "..", "..");
export const repoRoot = resolve(packageDir, "..", "..");
const cacheDir = join(packageDir, ".cache");

/** serverBinary returns the path of the server binary: $FLUXIONDB_BIN, or one built from the repo. */
export function serverBinary() {
  if (process.env.FLUXIONDB_BIN) return process.env.FLUXIONDB_BIN;
  const bin = join(cacheDir, "fluxiondb");
  // Each test process rebuilds; `go build` reuses its cache, so after the first build this
  // is a cheap up-to-date check and never runs a stale server.
  mkdirSync(cacheDir, { recursive: true });
  execFileSync("go", ["build", "-o", bin, "./cmd/fluxiondb"], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
  if (!existsSync(bin)) throw new Error(`go build did not produce ${bin}`);
  return bin;
}

let builtBin;
const running = new Set();
// A test that fails half-way must not leave a server (possibly SIGSTOPped) behind.
process.on("exit", () => {
  for (const p of running) {
    try {
      p.kill("SIGKILL");
    } catch {}
  }
});

/**
 * startServer starts the server and resolves once it logged its listening address.
 * Returns { url, port, key, proc, stop(), kill(), pause(), resume() }.
 */
export async function startServer({ key = "master-test-key", port = 0, args = [] } = {}) {
  builtBin ??= serverBinary();
  const proc = spawn(builtBin, [`--secret-key=${key}`, "--host=127.0.0.1", `--port=${port}`, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  const addr = await new Promise((resolveAddr, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`server did not log its address within 20s; stderr:\n${log}`));
    }, 20_000);
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (chunk) => {
      if (log.length < 65536) log += chunk;
      const m = /msg=listening addr=(\S+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolveAddr(m[1]);
      }
    });
    proc.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening; stderr:\n${log}`));
    });
  });
  proc.stderr.resume();
  running.add(proc);
  proc.on("exit", () => running.delete(proc));
  // Neither the child nor its pipe keeps the test process alive; the exit hook above kills it.
  proc.unref();
  proc.stderr.unref?.();
  const exited = new Promise((r) => proc.on("exit", (code, signal) => r({ code, signal })));
  const actualPort = Number(addr.slice(addr.lastIndexOf(":") + 1));
  const srv = {
    url: `ws://${addr}`,
    addr,
    port: actualPort,
    key,
    proc,
    exited,
    log: () => log,
    /** stop sends SIGTERM (graceful) and waits for the exit. */
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGCONT");
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
    },
    /** kill sends SIGKILL and waits for the exit. */
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      const keepAlive = setTimeout(() => {}, 10_000); // the child is unref'd; wait for it anyway
      await exited;
      clearTimeout(keepAlive);
    },
    /** pause stops the process (SIGSTOP) and resolves once the kernel reports it stopped. */
    async pause() {
      proc.kill("SIGSTOP");
      // Signal delivery is asynchronous; a busy machine may let the server run on for a while.
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        const stat = readFileSync(`/proc/${proc.pid}/stat`, "utf8");
        if (/^\d+ \(.*\) [Tt]/.test(stat)) return;
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error("server did not stop after SIGSTOP");
    },
    resume() {
      proc.kill("SIGCONT");
    },
  };
  return srv;
}

/** rejectsWith asserts that promise rejects with an instance of cls, and returns the error. */
export async function rejectsWith(promise, cls, code) {
  try {
    await promise;
  } catch (err) {
    if (!(err instanceof cls)) {
      throw new Error(`expected ${cls.name}, got ${err?.name}: ${err?.message}`, { cause: err });
    }
    if (code !== undefined && err.code !== code) {
      throw new Error(`expected code ${code}, got ${err.code}: ${err.message}`, { cause: err });
    }
    return err;
  }
  throw new Error(`expected a rejection with ${cls.name}, but it resolved`);
}
