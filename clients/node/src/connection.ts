/**
 * Connection owns the one WebSocket of a client: connecting, the ready handshake, matching
 * replies to requests by id, reconnecting, and closing.
 *
 * The rule that shapes it: no promise ever hangs. Every request is in `pending` from the call
 * until it settles, and each way out of a connection (timeout, socket loss, failed reconnects,
 * close) settles the requests it strands:
 *
 *   - a request waits for the connection and its reply together, bounded by its timeout;
 *   - requests already sent when the socket drops reject with ConnectionError (the server
 *     may or may not have applied them; they are not resent);
 *   - requests not yet sent wait for the reconnect, until their timeout, an authentication
 *     failure, `maxReconnectAttempts` failed attempts in a row, or close();
 *   - close() rejects everything with ClosedError and stops every timer.
 *
 * Frames without an `id` go to `onUnsolicited`: the server's pushed subscription frames.
 * Subscriptions (subscription.ts, client.ts) also use `onOpen` to re-subscribe after a
 * reconnect, `onDown` to learn that the socket is gone (and whether the connection gave up),
 * a request's synchronous `onReply` to register a subscription before the next frame is
 * read, and `holdOpen` to keep the process alive while live subscriptions wait for a reconnect.
 */

import {
  AuthenticationError,
  ClosedError,
  ConnectionError,
  FluxionDBError,
  InvalidRequestError,
  TimeoutError,
  serverError,
} from "./errors.js";
import type { Logger, WebSocketConstructor, WebSocketLike } from "./types.js";

/** Reply is a decoded reply frame. */
export type Reply = Record<string, unknown>;

/** ConnectionConfig is the resolved form of the client options the connection needs. */
export interface ConnectionConfig {
  url: string;
  apiKey: string;
  connectionName?: string;
  connectTimeout: number;
  reconnectInterval: number;
  maxReconnectInterval: number;
  maxReconnectAttempts: number;
  heartbeatInterval: number;
  maxMessageSize: number;
  logger?: Logger;
  parse: (text: string) => unknown;
  loadWebSocket: () => Promise<WebSocketConstructor>;
}

interface Pending {
  readonly id: string;
  frame: string; // emptied once sent, so that a slow reply does not pin a large request
  readonly resolve: (reply: Reply) => void;
  readonly reject: (err: FluxionDBError) => void;
  // onReply runs synchronously with the reply frame, before any later frame is handled: `ws`
  // may deliver several frames in one tick, before a promise continuation could run.
  readonly onReply?: (reply: Reply) => void;
  timer?: ReturnType<typeof setTimeout>;
  sent: boolean;
  size?: number; // the frame's bytes once sent: who a 1009 close was for
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (err: FluxionDBError) => void;
  timer?: ReturnType<typeof setTimeout>;
}

const OPEN = 1;

// wsLike is the part of the `ws` package's API beyond WHATWG that improves error reports.
interface WsExtras {
  on?(event: "unexpected-response", cb: (req: unknown, res: HttpResponseLike) => void): void;
  on?(event: "pong", cb: () => void): void;
  ping?(): void;
  terminate?(): void;
}
interface HttpResponseLike {
  statusCode?: number;
  setEncoding?(enc: string): void;
  on(event: "data", cb: (chunk: string) => void): void;
  on(event: "end" | "error" | "close", cb: () => void): void;
}

/** State is where the connection is in its life. */
export type ConnectionState = "idle" | "connecting" | "open" | "closed";

export class Connection {
  /** onUnsolicited receives frames that carry no id of a pending request. */
  onUnsolicited?: (msg: Reply) => void;
  /** onOpen runs each time a connection is established, after queued requests were sent. */
  onOpen?: () => void;
  /**
   * onDown runs when an established socket is lost (`final` false: a reconnect follows) and
   * when the connection gives up (`final` true: revoked key, too many failed attempts).
   * close() does not call it.
   */
  onDown?: (err: FluxionDBError, final: boolean) => void;
  /** holdOpen, when it returns true, lets reconnect timers keep a Node process alive. */
  holdOpen?: () => boolean;

  private readonly cfg: ConnectionConfig;
  private st: ConnectionState = "idle";
  private closing: Promise<void> | undefined; // close() in progress
  private sock: WebSocketLike | null = null;
  private attemptSock: WebSocketLike | null = null;
  private readonly pending = new Map<string, Pending>();
  private queue: Pending[] = [];
  // drainTimer, while set, sends the queue's requests as the socket's send buffer empties.
  private drainTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly waiters = new Set<Waiter>();
  private failures = 0;
  private everOpened = false;
  private lastError: FluxionDBError | undefined;
  private backoffTimer: ReturnType<typeof setTimeout> | undefined;
  private seq = 0;
  // generation changes on every attempt and on close, so that events of an abandoned socket are ignored.
  private generation = 0;

  constructor(cfg: ConnectionConfig) {
    this.cfg = cfg;
    this.shownUrl = redactUrl(cfg.url);
  }

  /** shownUrl is the server URL as errors and logs show it: no query string, no password. */
  private readonly shownUrl: string;

  /** state tells whether the connection is idle, connecting, open, or closed by close(). */
  get state(): ConnectionState {
    return this.st;
  }

  /** inFlight is the number of requests not yet settled. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * connect resolves once the server's ready frame arrived. It waits at most `connectTimeout`,
   * across reconnect attempts. After close() it opens the client again.
   */
  connect(): Promise<void> {
    if (this.st === "closed") this.st = "idle";
    if (this.st === "open") return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { resolve, reject };
      if (this.cfg.connectTimeout > 0) {
        w.timer = setTimeout(() => {
          this.waiters.delete(w);
          const last = this.lastError;
          reject(
            last
              ? new ConnectionError(`could not connect within ${this.cfg.connectTimeout}ms: ${last.message}`, { cause: last })
              : new TimeoutError(`could not connect within ${this.cfg.connectTimeout}ms`),
          );
        }, this.cfg.connectTimeout);
      }
      this.waiters.add(w);
      this.ensureConnecting();
      if (!w.timer) this.holdProcess();
    });
  }

  /**
   * request sends one request and resolves with its reply; a reply carrying `error` rejects
   * with the ServerError subclass its code names. `timeout` <= 0 means no time limit.
   */
  request(
    type: string,
    data: string,
    timeout: number,
    onReply?: (reply: Reply) => void,
    socketBound = false,
  ): Promise<Reply> {
    if (this.st === "closed") return Promise.reject(new ClosedError("client is closed"));
    return new Promise<Reply>((resolve, reject) => {
      this.seq = (this.seq + 1) % Number.MAX_SAFE_INTEGER;
      const id = this.seq.toString(36);
      const p: Pending = {
        id,
        frame: `{"id":"${id}","type":${JSON.stringify(type)},"data":${JSON.stringify(data)}}`,
        resolve,
        reject,
        onReply,
        sent: false,
      };
      // The timer's closure shares this scope: drop the data, or it lives until the call
      // settles although the frame holding it is released once sent.
      data = "";
      if (timeout > 0) p.timer = setTimeout(() => this.expire(p, timeout), timeout);
      this.pending.set(id, p);
      if (socketBound) {
        // A request that names something of this socket (an unsub's subscription id): sent now,
        // ahead of any backlog, or not at all — queued, it could reach the next connection,
        // where the same id names another subscription.
        if (this.st === "open" && this.sock) {
          this.transmit(p, this.sock);
        } else {
          this.settle(p, new ConnectionError("not connected: the request names something of the connection that was lost", { requestId: id }));
        }
        return;
      }
      if (this.st === "open" && this.sock) {
        if (this.queue.length === 0 && !backedUp(this.sock)) {
          this.transmit(p, this.sock);
        } else {
          // The socket's send buffer is full (a stalled server or link): wait in the queue, in
          // order, unsent, so that a timeout drops a request that was never sent (and so never
          // applied) and its frame is not held by the socket.
          this.queue.push(p);
          this.scheduleDrain();
        }
      } else {
        this.queue.push(p);
        this.ensureConnecting();
        if (!p.timer) this.holdProcess();
      }
    });
  }

  /**
   * close rejects every waiting call with ClosedError, stops reconnecting and closes the
   * socket. It resolves when the socket has closed (at most about a second later).
   */
  close(): Promise<void> {
    const wasClosed = this.st === "closed";
    if (wasClosed && this.closing) return this.closing; // a second close() waits like the first
    this.st = "closed";
    this.generation++;
    clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
    this.failAll(new ClosedError("client closed"), true);
    const socks = [this.sock, this.attemptSock].filter((s): s is WebSocketLike => s !== null);
    this.sock = null;
    this.attemptSock = null;
    if (wasClosed || socks.length === 0) return Promise.resolve();
    const closing = Promise.all(socks.map((s) => closeSocket(s))).then(() => {
      if (this.closing === closing) this.closing = undefined;
    });
    this.closing = closing;
    return closing;
  }

  private log(level: keyof Logger, message: string, fields?: Record<string, unknown>): void {
    const fn = this.cfg.logger?.[level];
    if (fn) {
      try {
        fn.call(this.cfg.logger, message, fields);
      } catch {
        // A broken logger must not break the client.
      }
    }
  }

  private scheduleDrain(): void {
    if (this.drainTimer) return;
    this.drainTimer = setTimeout(() => {
      this.drainTimer = undefined;
      this.drain();
    }, drainPoll);
  }

  /** drain sends queued requests while the socket's send buffer has room. */
  private drain(): void {
    const sock = this.sock;
    if (this.st !== "open" || !sock) return; // opened() sends the queue on the next connection
    while (this.queue.length > 0 && !backedUp(sock)) {
      const p = this.queue.shift()!;
      if (this.pending.get(p.id) !== p) continue; // settled (timed out) while queued
      this.transmit(p, sock);
    }
    if (this.queue.length > 0) this.scheduleDrain();
  }

  private transmit(p: Pending, sock: WebSocketLike): void {
    p.sent = true;
    const frame = p.frame;
    p.frame = "";
    p.size = byteLength(frame);
    try {
      sock.send(frame);
    } catch (err) {
      this.settle(p, new ConnectionError("could not send the request", { cause: err, requestId: p.id }));
    }
  }

  private expire(p: Pending, timeout: number): void {
    if (this.pending.get(p.id) !== p) return;
    const err = p.sent
      ? new TimeoutError(`no reply within ${timeout}ms`, { requestId: p.id })
      : this.st === "open"
        ? new TimeoutError(
            `not sent within ${timeout}ms: the connection's send buffer stayed full (the server is not reading); the request was not sent`,
            { requestId: p.id },
          )
        : this.lastError
        ? new ConnectionError(`not connected within ${timeout}ms: ${this.lastError.message}`, {
            cause: this.lastError,
            requestId: p.id,
          })
        : new TimeoutError(`not connected within ${timeout}ms`, { requestId: p.id });
    this.settle(p, err);
    this.maybeGoIdle();
  }

  private settle(p: Pending, result: Reply | FluxionDBError): void {
    if (this.pending.get(p.id) !== p) return;
    this.pending.delete(p.id);
    clearTimeout(p.timer);
    if (!p.sent) {
      // Still queued for a connection (it timed out, or the wait was given up): its frame
      // goes now, and the queue is pruned once mostly settled, so a long outage under steady
      // calls holds nothing of the calls already rejected.
      p.frame = "";
      if (this.queue.length > 64 && this.queue.length > 2 * this.pending.size) {
        this.queue = this.queue.filter((q) => this.pending.get(q.id) === q);
      }
    }
    if (result instanceof FluxionDBError) {
      p.reject(result);
      return;
    }
    if (p.onReply) {
      try {
        p.onReply(result);
      } catch (err) {
        this.log("error", "reply handler threw", { error: describe(err) });
      }
    }
    p.resolve(result);
  }

  // failAll rejects waiters and queued requests, and also sent ones when includeSent is set.
  private failAll(err: FluxionDBError, includeSent: boolean): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiters.clear();
    for (const p of [...this.pending.values()]) {
      if (p.sent && !includeSent) continue;
      this.settle(p, withRequestId(err, p.id));
    }
    this.queue = [];
  }

  private ensureConnecting(): void {
    if (this.st !== "idle") return;
    this.st = "connecting";
    void this.attempt();
  }

  // someoneWaits: a connect() or a call not yet sent waits for the connection.
  private someoneWaits(): boolean {
    return this.waiters.size > 0 || this.queue.some((p) => this.pending.has(p.id));
  }

  // maybeGoIdle stops retrying a connection that nobody waits for and that never worked:
  // reconnecting in the background is for clients that had a session.
  private maybeGoIdle(): void {
    if (this.st !== "connecting" || this.everOpened || this.attemptSock) return;
    if (this.someoneWaits()) return;
    this.generation++;
    clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    this.st = "idle";
  }

  private async attempt(): Promise<void> {
    const gen = ++this.generation;
    let WS: WebSocketConstructor;
    try {
      WS = await this.cfg.loadWebSocket();
    } catch (err) {
      if (gen === this.generation) this.giveUp(new ConnectionError("no WebSocket implementation available", { cause: err }));
      return;
    }
    if (gen !== this.generation) return;

    let sock: WebSocketLike;
    try {
      // The third argument is `ws`'s options (the largest message it accepts; its own default
      // is 100 MiB, below the server's largest reply); WHATWG sockets ignore it.
      const Ctor = WS as unknown as new (url: string, protocols?: undefined, options?: { maxPayload: number }) => WebSocketLike;
      sock = new Ctor(this.connectUrl(), undefined, { maxPayload: this.cfg.maxMessageSize });
    } catch (err) {
      // A malformed URL: retrying cannot help. The constructor's message quotes the URL it
      // was given, key and all: the cause keeps it without the key, so logging the error
      // does not leak it.
      this.giveUp(new ConnectionError(`cannot connect to ${this.shownUrl}`, { cause: withoutSecret(err, this.cfg.apiKey) }));
      return;
    }
    this.attemptSock = sock;
    this.log("debug", "connecting", { url: this.shownUrl });

    let ready = false;
    let done = false;
    let socketError: unknown;
    let refusal: { status: number; body: string } | undefined;

    const fail = (err: FluxionDBError) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (this.attemptSock === sock) this.attemptSock = null;
      abandon(sock);
      if (gen !== this.generation) return;
      this.attemptFailed(err);
    };

    const timer =
      this.cfg.connectTimeout > 0
        ? setTimeout(
            () => fail(new TimeoutError(`no ready frame from ${this.shownUrl} within ${this.cfg.connectTimeout}ms`)),
            this.cfg.connectTimeout,
          )
        : undefined;

    // With `ws`, a refused upgrade shows its HTTP status and body (e.g. 401 "Unknown API key").
    const extras = sock as unknown as WsExtras;
    if (typeof extras.on === "function") {
      extras.on("unexpected-response", (_req, res) => {
        const status = res.statusCode ?? 0;
        let body = "";
        res.setEncoding?.("utf8");
        res.on("data", (chunk: string) => {
          if (body.length < 1024) body += chunk;
        });
        const finish = () => {
          if (refusal) return;
          refusal = { status, body: body.trim().slice(0, 200) };
          fail(refusalError(this.shownUrl, refusal));
        };
        res.on("end", finish);
        res.on("error", finish);
        res.on("close", finish);
      });
    }

    sock.addEventListener("error", (ev: { error?: unknown; message?: string }) => {
      socketError = ev?.error ?? (ev?.message ? new Error(ev.message) : undefined);
      if (ready && gen === this.generation && this.sock === sock) {
        this.log("warn", "socket error", { error: describe(socketError) });
      }
    });

    sock.addEventListener("message", (ev: { data: unknown }) => {
      if (gen !== this.generation) {
        // An attempt that was given up (close(), or a newer attempt) must not linger.
        if (this.sock !== sock) abandon(sock);
        return;
      }
      const text = typeof ev.data === "string" ? ev.data : undefined;
      if (ready) {
        if (text === undefined) {
          this.log("warn", "ignored a binary frame");
          return;
        }
        this.onFrame(text);
        return;
      }
      // The first frame of a session is {"type":"ready",…}; requests wait for it.
      let msg: unknown;
      try {
        msg = text === undefined ? undefined : JSON.parse(text);
      } catch {
        msg = undefined;
      }
      if (msg && typeof msg === "object" && (msg as Reply).type === "ready") {
        ready = true;
        done = true;
        clearTimeout(timer);
        this.attemptSock = null;
        this.opened(sock);
      } else {
        this.log("warn", "unexpected frame before the ready frame", { frame: text?.slice(0, 200) });
      }
    });

    sock.addEventListener("close", (ev: { code?: number; reason?: string }) => {
      const code = ev?.code ?? 1006;
      const reason = ev?.reason ? String(ev.reason) : "";
      if (!ready) {
        if (refusal) return;
        const detail = reason || describe(socketError) || `closed with code ${code}`;
        // The v1 server accepted the upgrade, then closed with 1008 and the reason.
        if (code === 1008) fail(new AuthenticationError(`connection refused: ${detail}`, { cause: socketError }));
        else if (/Unexpected server response: 40[13]/.test(detail))
          fail(new AuthenticationError(`connection refused: ${detail}`, { cause: socketError }));
        else {
          // wss:// to a port without TLS: OpenSSL's "wrong version number" says nothing useful.
          const hint = /wrong version number|EPROTO/.test(detail) && /^wss:/i.test(this.cfg.url)
            ? " (the server does not speak TLS on this port: use a ws:// URL)"
            : "";
          fail(new ConnectionError(`could not connect to ${this.shownUrl}: ${detail}${hint}`, { cause: socketError }));
        }
        return;
      }
      if (gen !== this.generation || this.sock !== sock) return;
      this.lost(code, reason, socketError);
    });
  }

  private connectUrl(): string {
    const params = new URLSearchParams();
    params.set("api-key", this.cfg.apiKey);
    if (this.cfg.connectionName) params.set("name", this.cfg.connectionName);
    const u = this.cfg.url;
    return u + (u.includes("?") ? "&" : "?") + params.toString();
  }

  private opened(sock: WebSocketLike): void {
    this.st = "open";
    this.sock = sock;
    this.failures = 0;
    this.lastError = undefined;
    this.everOpened = true;
    this.log("info", "connected", { url: this.shownUrl });
    this.heartbeat(sock);
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve();
    }
    this.waiters.clear();
    const queued = this.queue;
    this.queue = [];
    for (const p of queued) {
      if (this.pending.get(p.id) !== p) continue; // expired while waiting
      if (this.sock !== sock || this.queue.length > 0 || backedUp(sock)) {
        this.queue.push(p); // the socket closed during the flush, or its buffer is full
        continue;
      }
      this.transmit(p, sock);
    }
    if (this.queue.length > 0 && this.sock === sock) this.scheduleDrain();
    this.notify(() => this.onOpen?.());
  }

  // heartbeat pings the server every heartbeatInterval and drops the socket when a whole
  // interval passed without a pong or any frame: a connection that died without a FIN or RST
  // (a dropped network, a frozen server) would otherwise look open forever, every call timing
  // out and subscriptions waiting in silence. Only `ws` can ping; browsers' sockets cannot.
  private heartbeat(sock: WebSocketLike): void {
    const ws = sock as unknown as WsExtras;
    const every = this.cfg.heartbeatInterval;
    if (every <= 0 || typeof ws.ping !== "function" || typeof ws.on !== "function") return;
    let heard = true;
    const alive = () => {
      heard = true;
    };
    ws.on("pong", alive);
    sock.addEventListener("message", alive);
    const timer = setInterval(() => {
      if (this.sock !== sock) {
        clearInterval(timer);
        return;
      }
      if (!heard) {
        clearInterval(timer);
        this.log("warn", "no answer to ping; dropping the connection", { afterMs: every });
        this.lost(1006, `no answer to ping within ${every}ms`, undefined);
        abandon(sock);
        return;
      }
      heard = false;
      try {
        ws.ping!();
      } catch {
        // Closing already: the close event follows.
      }
    }, every);
    (timer as { unref?: () => void }).unref?.();
  }

  private notify(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log("error", "connection hook threw", { error: describe(err) });
    }
  }

  private lost(code: number, reason: string, cause: unknown): void {
    this.sock = null;
    let detail = `connection lost (code ${code}${reason ? `: ${reason}` : ""})`;
    if (/max payload/i.test(describe(cause))) {
      // `ws` refused a frame from the server over maxMessageSize (it reports the close as 1006).
      detail = `connection lost: a reply was larger than the client's maxMessageSize (${this.cfg.maxMessageSize} bytes); raise it or ask for less (code 1009)`;
    } else if (code === 1009) {
      // The server closes the socket on a frame over its --max-message-size (16 MiB by default):
      // every request in flight fails; split the batch that was too large.
      detail = `connection lost: a request was larger than the server's message size limit (code 1009${reason ? `: ${reason}` : ""})`;
    }
    this.log("warn", "disconnected", { code, reason });
    if (code === 1008 && /api key/i.test(reason)) {
      // The key was revoked: reconnecting would only be refused.
      this.giveUp(new AuthenticationError(detail, { cause }));
      return;
    }
    const err = new ConnectionError(detail, { cause });
    const tooLarge = code === 1009 && !/max payload/i.test(describe(cause)) ? oversized(reason, this.pending.values()) : undefined;
    for (const p of [...this.pending.values()]) {
      if (!p.sent) continue;
      if (tooLarge && !tooLarge(p)) {
        // Lost with the connection, but valid: safe to send again.
        const other = new ConnectionError(
          `connection lost: the server closed the connection because another request on it was larger than its message size limit (code 1009${reason ? `: ${reason}` : ""}); this one was not`,
          { cause },
        );
        this.settle(p, withRequestId(other, p.id));
        continue;
      }
      if (tooLarge) {
        // This request is the one the server refused: an invalid request, not to be sent again
        // as it is (a retry would close the connection again, for everyone on it).
        this.settle(
          p,
          new InvalidRequestError(`request frame over the server's --max-message-size: ${detail}`, "too_large", {
            cause: err,
            requestId: p.id,
          }),
        );
        continue;
      }
      this.settle(p, withRequestId(err, p.id));
    }
    this.lastError = err;
    if (code === 1000 && !this.someoneWaits() && !this.holdOpen?.()) {
      // The server closed an idle connection (--idle-timeout): reconnecting at once would be
      // closed again a period later, forever, which is what the operator set the timeout to
      // avoid. The next call connects.
      this.st = "idle";
      this.notify(() => this.onDown?.(err, false));
      return;
    }
    this.st = "connecting";
    this.scheduleRetry();
    this.notify(() => this.onDown?.(err, false));
  }

  private attemptFailed(err: FluxionDBError): void {
    this.lastError = err;
    this.log("warn", "connection attempt failed", { error: err.message, failures: this.failures + 1 });
    if (err instanceof AuthenticationError) {
      this.giveUp(err);
      return;
    }
    this.failures++;
    if (this.failures >= this.cfg.maxReconnectAttempts) {
      this.giveUp(
        new ConnectionError(`could not connect after ${this.failures} attempts: ${err.message}`, { cause: err }),
      );
      return;
    }
    this.maybeGoIdle();
    if (this.st === "connecting") this.scheduleRetry();
  }

  private scheduleRetry(): void {
    // Exponential backoff with "equal jitter": half the delay fixed, half random, so that many
    // clients dropped together do not come back together.
    const exp = Math.min(this.cfg.maxReconnectInterval, this.cfg.reconnectInterval * 2 ** Math.min(this.failures, 30));
    const delay = exp / 2 + Math.random() * (exp / 2);
    this.log("debug", "reconnecting", { delayMs: Math.round(delay), failures: this.failures });
    const gen = this.generation;
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      if (gen !== this.generation || this.st !== "connecting") return;
      void this.attempt();
    }, delay);
    // The wait alone must not keep a Node process alive; a waiting request's own timer does.
    if (!this.holdsProcess()) (this.backoffTimer as { unref?: () => void }).unref?.();
  }

  // holdsProcess says whether the reconnect wait must keep a Node process alive: for live
  // subscriptions (holdOpen), and for calls with no time limit of their own (requestTimeout or
  // connectTimeout 0), which would otherwise be left unsettled as the process ended.
  private holdsProcess(): boolean {
    if (this.holdOpen?.()) return true;
    for (const w of this.waiters) if (!w.timer) return true;
    return this.queue.some((p) => !p.timer && this.pending.has(p.id));
  }

  // holdProcess keeps the pending reconnect wait from letting the process end (holdsProcess).
  private holdProcess(): void {
    (this.backoffTimer as { ref?: () => void } | undefined)?.ref?.();
  }

  private giveUp(err: FluxionDBError): void {
    this.lastError = err;
    clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    this.st = "idle";
    this.everOpened = false;
    this.failures = 0;
    const sock = this.sock;
    this.sock = null;
    if (sock) abandon(sock);
    this.failAll(err, true);
    this.notify(() => this.onDown?.(err, true));
  }

  private onFrame(text: string): void {
    let msg: unknown;
    try {
      msg = this.cfg.parse(text);
    } catch (err) {
      this.log("warn", "ignored a frame that is not JSON", { error: describe(err), frame: text.slice(0, 200) });
      return;
    }
    if (!msg || typeof msg !== "object" || Array.isArray(msg)) {
      this.log("warn", "ignored a frame that is not a JSON object", { frame: text.slice(0, 200) });
      return;
    }
    const reply = msg as Reply;
    const p = typeof reply.id === "string" ? this.pending.get(reply.id) : undefined;
    if (p) {
      if (typeof reply.error === "string") {
        this.settle(p, serverError(reply.error, typeof reply.code === "string" ? reply.code : undefined, p.id));
      } else {
        this.settle(p, reply);
      }
      return;
    }
    if (this.onUnsolicited) {
      try {
        this.onUnsolicited(reply);
      } catch (err) {
        this.log("error", "unsolicited frame handler threw", { error: describe(err) });
      }
      return;
    }
    this.log("debug", "ignored a frame without a pending request", { frame: text.slice(0, 200) });
  }
}

function withRequestId(err: FluxionDBError, requestId: string): FluxionDBError {
  // One error object per request, so that each carries its own requestId.
  const Ctor = err.constructor as new (message: string, options: { cause?: unknown; requestId?: string }) => FluxionDBError;
  if (Ctor === AuthenticationError || Ctor === ConnectionError || Ctor === ClosedError || Ctor === TimeoutError) {
    return new Ctor(err.message, { cause: (err as { cause?: unknown }).cause, requestId });
  }
  return err;
}

function refusalError(url: string, r: { status: number; body: string }): FluxionDBError {
  const text = r.body ? `HTTP ${r.status}: ${r.body}` : `HTTP ${r.status}`;
  if (r.status === 401 || r.status === 403) return new AuthenticationError(`connection refused: ${text}`);
  return new ConnectionError(`could not connect to ${url}: ${text}`);
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err === undefined || err === null) return "";
  return String(err);
}

// abandon drops a socket at once: terminate() in `ws`, close() elsewhere.
function abandon(sock: WebSocketLike): void {
  try {
    const t = (sock as unknown as WsExtras).terminate;
    if (typeof t === "function") t.call(sock);
    else sock.close();
  } catch {
    // Already closed.
  }
}

function closeSocket(sock: WebSocketLike): Promise<void> {
  return new Promise<void>((resolve) => {
    if (sock.readyState === 3) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      abandon(sock);
      resolve();
    }, 1000);
    (timer as { unref?: () => void }).unref?.();
    sock.addEventListener("close", () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      if (sock.readyState === OPEN) sock.close(1000, "client closed");
      else abandon(sock);
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

// withoutSecret returns err, or a copy of it whose message no longer holds secret (as given or
// as a query parameter encodes it) nor a URL's password.
function withoutSecret(err: unknown, secret: string): unknown {
  if (!secret || !(err instanceof Error)) return err;
  let message = err.message.replace(/(\/\/[^/@:\s]*):[^/@\s]*@/g, "$1:[redacted]@"); // a URL's password
  for (const form of new Set([secret, encodeURIComponent(secret), new URLSearchParams({ k: secret }).toString().slice(2)])) {
    message = message.split(form).join("[redacted]");
  }
  if (message === err.message) return err;
  const copy = new Error(message);
  copy.name = err.name;
  return copy;
}

/** byteLength is a string's length in UTF-8 bytes (a frame's size on the wire), without copying it. */
function byteLength(s: string): number {
  if (typeof Buffer !== "undefined") return Buffer.byteLength(s);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4; // a surrogate pair: one 4-byte character
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * oversized tells which requests a 1009 close was for: those over the limit the close reason
 * names ("read limited at N bytes", the text of the WebSocket library FluxionDB uses: the limit
 * is N-1), or, when the reason does not say, the largest request in flight.
 */
function oversized(reason: string, pending: Iterable<Pending>): (p: Pending) => boolean {
  const m = /read limited at (\d+) bytes/.exec(reason);
  let limit: number;
  if (m) {
    limit = Number(m[1]) - 1;
  } else {
    let largest = 0;
    for (const p of pending) if (p.sent) largest = Math.max(largest, p.size ?? 0);
    limit = largest - 1;
  }
  return (p) => (p.size ?? 0) > limit;
}

/**
 * redactUrl is url without its query string (the form `?api-key=…` carries the key) and with
 * any password masked, for errors and logs.
 */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "redacted";
    u.search = "";
    u.hash = "";
    return u.toString();
  } catch {
    return url.replace(/[?#].*$/s, "").replace(/\/\/[^/@]*@/, "//[redacted]@");
  }
}

/**
 * sendHighWater: above this many bytes waiting in the socket's send buffer, requests wait in
 * the client's queue instead (FIFO, unsent). A stalled server or link otherwise let every
 * request's frame pile up in the socket, held until the heartbeat dropped it, and delivered
 * (applied) if the server resumed after the calls had timed out.
 */
const sendHighWater = 8 << 20;

/** drainPoll is how often a backed-up queue looks for room in the send buffer, in ms. */
const drainPoll = 5;

function backedUp(sock: WebSocketLike): boolean {
  return (sock.bufferedAmount ?? 0) > sendHighWater;
}
