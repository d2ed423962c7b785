import { defineConfig } from "tsup";

// `npm run build` empties dist first (not tsup's `clean`, which would race the parallel build).
// Two builds: the Node one (ESM + CommonJS) may import `ws`; the browser one (ESM) must not.
// Declarations for both entries come from one pass of the first build (one TypeScript
// program instead of two halves the build time).
export default defineConfig([
  {
    entry: { index: "src/index.ts" },
    format: ["esm", "cjs"],
    platform: "node",
    target: "node20",
    dts: { entry: { index: "src/index.ts", browser: "src/browser.ts" } },
    sourcemap: true,
    external: ["ws"],
  },
  {
    entry: { browser: "src/browser.ts" },
    format: ["esm"],
    platform: "browser",
    target: "es2020",
    sourcemap: true,
  },
]);
