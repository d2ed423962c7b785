/**
 * loadWebSocket of the browser build: the global WebSocket, and nothing else, so that a
 * browser bundle never contains the `ws` package.
 */

import type { WebSocketConstructor } from "./types.js";

export function loadWebSocket(): Promise<WebSocketConstructor> {
  const g = globalThis as { WebSocket?: WebSocketConstructor };
  if (typeof g.WebSocket !== "function") {
    return Promise.reject(new Error("no global WebSocket in this environment; pass the WebSocket option"));
  }
  return Promise.resolve(g.WebSocket);
}
