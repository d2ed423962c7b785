/**
 * loadWebSocket picks the socket implementation of the Node build.
 *
 * On Node.js it is the `ws` package, even on Node 22+ where a global WebSocket exists: `ws`
 * reports a refused upgrade with its HTTP status and body, so a wrong API key becomes an
 * AuthenticationError instead of an anonymous connection failure. Bun and Deno, which
 * resolve this build too, use their global WebSocket. `ws` is imported lazily, so runtimes
 * that never need it never load it.
 */

import type { WebSocketConstructor } from "./types.js";

let cached: Promise<WebSocketConstructor> | undefined;

export function loadWebSocket(): Promise<WebSocketConstructor> {
  if (cached) return cached;
  const g = globalThis as { WebSocket?: WebSocketConstructor; Bun?: unknown; Deno?: unknown };
  const isNode = typeof process !== "undefined" && !!process.versions?.node && !g.Bun && !g.Deno;
  if (!isNode && typeof g.WebSocket === "function") {
    cached = Promise.resolve(g.WebSocket);
  } else {
    cached = import("ws").then(
      (m) => ((m as { default?: unknown }).default ?? (m as { WebSocket?: unknown }).WebSocket) as WebSocketConstructor,
    );
    // A failed import is not cached, so that a later call can try again.
    cached.catch(() => {
      cached = undefined;
    });
  }
  return cached;
}
