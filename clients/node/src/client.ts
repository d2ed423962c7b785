/**
 * BaseClient holds every FluxionDB call, under both generations of names (PROTOCOL.md §4):
 * the v1 names (`insertMultipleDocumentRecords`, `fetchLatestDocumentRecords`, …) are aliases
 * of the v2 ones (`insertMultipleRecords`, `fetchLatestRecords`, …), and every call accepts
 * both spellings of its parameters. The entry points (index.ts for Node, browser.ts for
 * browsers) only choose the WebSocket implementation.
 *
 * Requests always go out with the v2 field names (`col`, `doc`), which our server and the
 * official v2 server read.
 */

import { Connection, type ConnectionState, type Reply } from "./connection.js";
import {
  AbortedError,
  AuthenticationError,
  ClosedError,
  ConnectionError,
  FluxionDBError,
  ServerError,
  SubscriptionLostError,
} from "./errors.js";
import { parseExact, stringify, type Timestamp } from "./json.js";
import { Subscription, type SubscriptionHost } from "./subscription.js";
import type {
  AddApiKeyParams,
  ApiKeyEntry,
  ClientOptions,
  CollectionParam,
  ConnectionInfo,
  DeleteCollectionParams,
  DeleteDocumentParams,
  DeleteRecord,
  DeleteRecordsRange,
  DeleteValueParams,
  FetchLatestRecordsParams,
  FetchRecordsParams,
  GetValueParams,
  GetValuesParams,
  InsertMessageRequest,
  LatestRecords,
  Logger,
  ManageApiKeyResponse,
  RemoveApiKeyParams,
  SetValueParams,
  StoredRecord,
  SubscribeOptions,
  SubscribeParams,
  SubscriptionHandlers,
  WebSocketConstructor,
} from "./types.js";

/** The message codes of PROTOCOL.md §3. */
const T = {
  insert: "ins",
  latest: "qry",
  collections: "cols",
  document: "qdoc",
  deleteDocument: "ddoc",
  deleteCollection: "dcol",
  deleteRecord: "drec",
  deleteRecords: "dmrec",
  deleteRange: "drrng",
  setValue: "sval",
  getValue: "gval",
  getValuesMatching: "gvalues",
  deleteValue: "rval",
  getAllValues: "gvals",
  getKeys: "gkeys",
  keys: "keys",
  connections: "conn",
  subscribe: "sub",
  unsubscribe: "unsub",
} as const;

// Keys whose integer values are timestamps, parsed exactly in bigint mode.
/** UNSUB_WAIT_MS caps how long Subscription.close() waits for the server's `unsub` reply. */
const UNSUB_WAIT_MS = 1000;

const TIMESTAMP_KEYS: ReadonlySet<string> = new Set(["ts", "from", "to", "fromTs", "toTs"]);

const DEFAULTS = {
  connectTimeout: 10_000,
  requestTimeout: 30_000,
  reconnectInterval: 500,
  maxReconnectInterval: 15_000,
  maxReconnectAttempts: Infinity,
  heartbeatInterval: 15_000,
  maxMessageSize: 512 * 1024 * 1024,
  bufferSize: 10_000,
};

// SubWire is what a subscription sends on every (re)subscribe besides snapshot/cursor.
interface SubWire {
  col: string;
  doc?: string;
  where?: string;
  filter?: string;
  interval?: number;
}

// SubState is the client's bookkeeping of one subscription.
interface SubState {
  wire: SubWire;
  timeout: number;
  resubscribeWithSnapshot: boolean;
  unlisten?: () => void;
}

type Loose = { col?: string; collection?: string; doc?: string; key?: string };

export class BaseClient<B extends boolean = false> {
  private readonly conn: Connection;
  private readonly requestTimeout: number;
  private readonly logger: Logger | undefined;
  // Every subscription not yet ended, and the ones live on the current socket by server id.
  private readonly live = new Map<Subscription<B>, SubState>();
  private readonly byId = new Map<string, Subscription<B>>();
  // Server ids of subscriptions nobody wants any more (a reply that came after an abort or a
  // timeout) that were already told to stop on this socket.
  private readonly orphans = new Set<string>();
  private readonly host: SubscriptionHost;

  protected constructor(options: ClientOptions<B>, loadWebSocket: () => Promise<WebSocketConstructor>) {
    if (!options || typeof options.url !== "string" || options.url.length === 0) {
      throw new TypeError("FluxionDBClient: options.url is required");
    }
    if (typeof options.apiKey !== "string") {
      throw new TypeError("FluxionDBClient: options.apiKey must be a string");
    }
    const logger: Logger | undefined = options.logger ?? (options.showLogs ? console : undefined);
    const custom = options.WebSocket;
    this.requestTimeout = limit(options.requestTimeout, DEFAULTS.requestTimeout);
    this.conn = new Connection({
      url: options.url,
      apiKey: options.apiKey,
      connectionName: options.connectionName,
      connectTimeout: limit(options.connectTimeout, DEFAULTS.connectTimeout),
      reconnectInterval: delay(options.reconnectInterval, DEFAULTS.reconnectInterval),
      maxReconnectInterval: delay(options.maxReconnectInterval, DEFAULTS.maxReconnectInterval),
      maxReconnectAttempts: Math.max(1, nonNegative(options.maxReconnectAttempts, DEFAULTS.maxReconnectAttempts)),
      heartbeatInterval: limit(options.heartbeatInterval, DEFAULTS.heartbeatInterval),
      maxMessageSize: Math.max(1, nonNegative(options.maxMessageSize, DEFAULTS.maxMessageSize)),
      logger,
      parse: options.bigint ? (text) => parseExact(text, TIMESTAMP_KEYS) : JSON.parse,
      loadWebSocket: custom ? () => Promise.resolve(custom) : loadWebSocket,
    });
    this.logger = logger;
    this.host = {
      release: (sub, unsubId) => this.release(sub as Subscription<B>, unsubId),
      log: (level, message, fields) => this.log(level, message, fields),
    };
    this.conn.onUnsolicited = (msg) => this.onPush(msg);
    this.conn.onOpen = () => this.resumeAll();
    this.conn.onDown = (err, final) => this.onDown(err, final);
    this.conn.holdOpen = () => this.live.size > 0;
  }

  /** state is `idle`, `connecting`, `open` or `closed` (after close()). */
  get state(): ConnectionState {
    return this.conn.state;
  }

  /**
   * connect opens the connection and resolves once the server accepted the key. Calls connect
   * on their own, so this is optional; it surfaces a wrong URL or key early. After close() it
   * opens the client again.
   */
  connect(): Promise<void> {
    return this.conn.connect();
  }

  /**
   * close stops reconnecting, rejects every waiting call with ClosedError and closes the
   * socket. Every subscription ends as if closed: its iterator finishes. Later calls reject
   * with ClosedError until connect() is called.
   */
  close(): Promise<void> {
    for (const sub of [...this.live.keys()]) sub.end();
    this.byId.clear();
    this.orphans.clear();
    return this.conn.close();
  }

  // ---- time series -------------------------------------------------------------------------

  /** insertMultipleRecords inserts records (all or none). The same document and ts replaces. */
  async insertMultipleRecords(items: InsertMessageRequest[], timeout?: number): Promise<void> {
    if (!Array.isArray(items)) throw new TypeError("insertMultipleRecords: items must be an array");
    const rows = items.map((it) => ({ ts: it.ts, doc: doc(it), data: it.data, col: col(it) }));
    await this.call(T.insert, rows, timeout);
  }

  /** insertMultipleDocumentRecords is the v1 name of insertMultipleRecords. */
  insertMultipleDocumentRecords(items: InsertMessageRequest[], timeout?: number): Promise<void> {
    return this.insertMultipleRecords(items, timeout);
  }

  /** insertSingleRecord inserts one record. */
  insertSingleRecord(item: InsertMessageRequest, timeout?: number): Promise<void> {
    return this.insertMultipleRecords([item], timeout);
  }

  /** insertSingleDocumentRecord is the v1 name of insertSingleRecord. */
  insertSingleDocumentRecord(item: InsertMessageRequest, timeout?: number): Promise<void> {
    return this.insertMultipleRecords([item], timeout);
  }

  /**
   * fetchLatestRecords returns, per document, the latest record at or before `ts`. `doc` may
   * be a literal name or a `/regex/flags`; `where`/`filter` keep/drop by data content.
   */
  async fetchLatestRecords(params: FetchLatestRecordsParams, timeout?: number): Promise<LatestRecords<B>> {
    const p = params as FetchLatestRecordsParams & Loose;
    const reply = await this.call(
      T.latest,
      { col: col(p), ts: p.ts, doc: doc(p), from: p.from ?? 0, where: p.where, filter: p.filter },
      timeout,
    );
    return objectField(reply, "records") as LatestRecords<B>;
  }

  /** fetchLatestDocumentRecords is the v1 name of fetchLatestRecords. */
  fetchLatestDocumentRecords(params: FetchLatestRecordsParams, timeout?: number): Promise<LatestRecords<B>> {
    return this.fetchLatestRecords(params, timeout);
  }

  /** fetchDocument returns one document's records with from <= ts <= to, oldest first unless `reverse`. */
  async fetchDocument(params: FetchRecordsParams, timeout?: number): Promise<StoredRecord<B>[]> {
    const p = params as FetchRecordsParams & Loose;
    const reply = await this.call(
      T.document,
      {
        col: col(p),
        doc: doc(p),
        from: p.from ?? 0,
        to: p.to,
        limit: p.limit,
        reverse: p.reverse,
        where: p.where,
        filter: p.filter,
      },
      timeout,
    );
    return arrayField(reply, "records") as StoredRecord<B>[];
  }

  /**
   * fetchCollections lists every collection: those holding documents or key-value entries,
   * and those that record or key-value deletes emptied (only deleting a document, when the
   * collection then holds nothing, or deleting the collection removes one).
   */
  async fetchCollections(timeout?: number): Promise<string[]> {
    const reply = await this.call(T.collections, {}, timeout);
    return arrayField(reply, "collections") as string[];
  }

  /** deleteDocument removes a document from its collection, or from every collection when none is named. */
  async deleteDocument(params: DeleteDocumentParams, timeout?: number): Promise<void> {
    const p = params as DeleteDocumentParams & Loose;
    await this.call(T.deleteDocument, { doc: doc(p), col: col(p) }, timeout);
  }

  /** deleteCollection removes a collection with its records and key-value entries. */
  async deleteCollection(params: DeleteCollectionParams, timeout?: number): Promise<void> {
    await this.call(T.deleteCollection, { col: col(params) }, timeout);
  }

  /** deleteRecord removes the record with exactly timestamp `ts`. */
  async deleteRecord(params: DeleteRecord, timeout?: number): Promise<void> {
    await this.call(T.deleteRecord, { doc: doc(params), col: col(params), ts: params.ts }, timeout);
  }

  /** deleteDocumentRecord is the v1 name of deleteRecord. */
  deleteDocumentRecord(params: DeleteRecord, timeout?: number): Promise<void> {
    return this.deleteRecord(params, timeout);
  }

  /** deleteMultipleRecords removes many records (all or none), possibly across collections. */
  async deleteMultipleRecords(params: DeleteRecord[], timeout?: number): Promise<void> {
    if (!Array.isArray(params)) throw new TypeError("deleteMultipleRecords: params must be an array");
    await this.call(
      T.deleteRecords,
      params.map((r) => ({ doc: doc(r), col: col(r), ts: r.ts })),
      timeout,
    );
  }

  /** deleteMultipleDocumentRecords is the v1 name of deleteMultipleRecords. */
  deleteMultipleDocumentRecords(params: DeleteRecord[], timeout?: number): Promise<void> {
    return this.deleteMultipleRecords(params, timeout);
  }

  /** deleteRecordsRange removes a document's records with fromTs <= ts <= toTs. */
  async deleteRecordsRange(params: DeleteRecordsRange, timeout?: number): Promise<void> {
    await this.call(
      T.deleteRange,
      { doc: doc(params), col: col(params), fromTs: params.fromTs, toTs: params.toTs },
      timeout,
    );
  }

  // ---- key-value store ---------------------------------------------------------------------

  /** setValue stores `value` under `key` in the collection's key-value store. */
  async setValue(params: SetValueParams, timeout?: number): Promise<void> {
    await this.call(T.setValue, { col: col(params), key: name(params.key, "key"), value: params.value }, timeout);
  }

  /** getValue returns the value of `key`, or "" when there is none. */
  async getValue(params: GetValueParams, timeout?: number): Promise<string> {
    const reply = await this.call(T.getValue, { col: col(params), key: name(params.key, "key") }, timeout);
    return typeof reply.value === "string" ? reply.value : "";
  }

  /**
   * getValues returns key → value: every entry without `key`, else the entries whose key
   * matches `key` (a literal or `/regex/flags`).
   */
  async getValues(params: GetValuesParams, timeout?: number): Promise<Record<string, string>> {
    const c = col(params);
    const reply =
      params.key !== undefined && params.key.length > 0
        ? await this.call(T.getValuesMatching, { col: c, key: params.key }, timeout)
        : await this.call(T.getAllValues, { col: c }, timeout);
    return objectField(reply, "values") as Record<string, string>;
  }

  /** getKeys lists the keys of the collection's key-value store. */
  async getKeys(params: CollectionParam, timeout?: number): Promise<string[]> {
    const reply = await this.call(T.getKeys, { col: col(params) }, timeout);
    return arrayField(reply, "keys") as string[];
  }

  /** deleteValue removes one key-value entry. */
  async deleteValue(params: DeleteValueParams, timeout?: number): Promise<void> {
    await this.call(T.deleteValue, { col: col(params), key: name(params.key, "key") }, timeout);
  }

  // ---- management ---------------------------------------------------------------------------

  /** addApiKey creates an API key with a scope, or re-scopes an existing one. Master key only. */
  async addApiKey(params: AddApiKeyParams, timeout?: number): Promise<ManageApiKeyResponse> {
    const reply = await this.call(T.keys, { action: "add", key: params.key, scope: params.scope }, timeout);
    return apiKeyResponse(reply);
  }

  /** removeApiKey revokes an API key; its open connections are closed. Master key only. */
  async removeApiKey(params: RemoveApiKeyParams, timeout?: number): Promise<ManageApiKeyResponse> {
    const reply = await this.call(T.keys, { action: "remove", key: params.key }, timeout);
    return apiKeyResponse(reply);
  }

  /** listApiKeys lists the API keys (identifiers, never secrets). Master key only. */
  async listApiKeys(timeout?: number): Promise<ApiKeyEntry[]> {
    const reply = await this.call(T.keys, { action: "list" }, timeout);
    return arrayField(reply, "keys") as ApiKeyEntry[];
  }

  /** getConnections lists the server's live connections; `self` marks this client's. */
  async getConnections(timeout?: number): Promise<ConnectionInfo[]> {
    const reply = await this.call(T.connections, {}, timeout);
    return arrayField(reply, "connections") as ConnectionInfo[];
  }

  // ---- live subscriptions ------------------------------------------------------------------

  /**
   * subscribe starts a live subscription (PROTOCOL.md §7) and resolves once the server
   * accepted it. Iterate it (`for await (const ev of sub)`) or pass `onEvent`/`onError`.
   * After a reconnect the client subscribes again from the last cursor it received: events
   * are neither lost nor repeated. When that is impossible the subscription ends with
   * SubscriptionLostError (or, with `resubscribeWithSnapshot`, starts over with a `reset` event).
   */
  async subscribe(
    params: SubscribeParams & SubscribeOptions,
    handlers: SubscriptionHandlers<B> = {},
  ): Promise<Subscription<B>> {
    const p = params as SubscribeParams & SubscribeOptions & Loose;
    const bufferSize = p.bufferSize ?? DEFAULTS.bufferSize;
    if (!Number.isInteger(bufferSize) || bufferSize < 1) throw new TypeError("subscribe: bufferSize must be a positive integer");
    const signal = p.signal;
    if (signal?.aborted) throw new AbortedError("subscribe aborted", { cause: signal.reason });
    const d = p.doc ?? p.key;
    const wire: SubWire = { col: col(p), doc: d || undefined, where: p.where, filter: p.filter, interval: p.interval };
    const st: SubState = {
      wire,
      timeout: p.timeout === undefined ? this.requestTimeout : limit(p.timeout, this.requestTimeout),
      resubscribeWithSnapshot: p.resubscribeWithSnapshot === true,
    };

    let sub: Subscription<B> | undefined;
    let abandoned = false;
    // start runs with the reply frame, before any event frame after it is handled.
    const start = (reply: Reply, reason?: SubscriptionLostError): void => {
      const id = String(reply.sub);
      if (abandoned) {
        this.unsubOrphan(id);
        return;
      }
      sub = new Subscription<B>(this.host, reply, bufferSize, handlers);
      this.live.set(sub, st);
      this.byId.set(id, sub);
      if (reason) sub.reset(sub.snapshot ?? {}, sub.receivedCursor, reason, wire.col);
    };
    const request = (payload: Record<string, unknown>, reason?: SubscriptionLostError) =>
      this.conn.request(T.subscribe, stringify(payload), st.timeout, (reply) => start(reply, reason));

    let pending: Promise<unknown> = request({ ...wire, snapshot: p.snapshot || undefined, cursor: p.cursor || undefined }).catch(
      (err: unknown) => {
        // A saved cursor the server cannot resume from.
        if (!(err instanceof ServerError && err.code === "cursor_expired")) throw err;
        const lost = new SubscriptionLostError(err.message, "cursor_expired", p.cursor ?? "", { cause: err });
        if (!st.resubscribeWithSnapshot) throw lost;
        return request({ ...wire, snapshot: true }, lost);
      },
    );
    if (signal) {
      let onAbort!: () => void;
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => {
          abandoned = true;
          reject(new AbortedError("subscribe aborted", { cause: signal.reason }));
        };
        signal.addEventListener("abort", onAbort, { once: true });
      });
      pending = Promise.race([pending, aborted]).finally(() => signal.removeEventListener("abort", onAbort));
    }
    try {
      await pending;
    } catch (err) {
      abandoned = true;
      if (sub) {
        // Aborted after the reply was handled but before this continuation ran.
        await sub.close();
      }
      throw err;
    }
    const s = sub!;
    if (signal) {
      const onAbort = () => void s.close();
      signal.addEventListener("abort", onAbort, { once: true });
      st.unlisten = () => signal.removeEventListener("abort", onAbort);
    }
    return s;
  }

  private log(level: keyof Logger, message: string, fields?: Record<string, unknown>): void {
    const fn = this.logger?.[level];
    if (fn) {
      try {
        fn.call(this.logger, message, fields);
      } catch {
        // A broken logger must not break the client.
      }
    }
  }

  // release is the end of a subscription on the client's side; unsubId names it on the server.
  private async release(sub: Subscription<B>, unsubId: string | undefined): Promise<void> {
    const st = this.live.get(sub);
    this.live.delete(sub);
    st?.unlisten?.();
    sub.resumeGen++;
    if (unsubId === undefined) return;
    if (this.byId.get(unsubId) === sub) this.byId.delete(unsubId);
    // Only on the socket that knows the id: after a reconnect it would name nothing (or another subscription).
    if (this.conn.state !== "open") return;
    this.orphans.add(unsubId); // frames already on their way are dropped without a second unsub
    try {
      // The subscription has ended here already; waiting for the server's word is a courtesy,
      // capped so that close() (and a `break` out of `for await`) never hangs on a slow or
      // stopped server. The unsub still completes on the server if it answers later.
      // (requestTimeout 0 means no limit, which must not lift the cap.)
      const wait = this.requestTimeout > 0 ? Math.min(this.requestTimeout, UNSUB_WAIT_MS) : UNSUB_WAIT_MS;
      await this.conn.request(T.unsubscribe, stringify({ sub: unsubId }), wait, undefined, true);
    } catch {
      // not_found: the server had already ended it; a lost connection ended it too; timed out.
    }
  }

  private unsubOrphan(id: string): void {
    if (this.orphans.has(id) || this.conn.state !== "open") return;
    this.orphans.add(id);
    this.conn.request(T.unsubscribe, stringify({ sub: id }), this.requestTimeout, undefined, true).catch(() => undefined);
  }

  // onPush routes the server's pushed frames: events and overflow signals.
  private onPush(msg: Reply): void {
    const id = typeof msg.sub === "string" ? msg.sub : undefined;
    if (id === undefined) {
      this.log("debug", "ignored a frame without a pending request", { type: msg.type });
      return;
    }
    const sub = this.byId.get(id);
    if (!sub) {
      // Events of a subscription nobody holds, or the reply to a `sub` request that timed
      // out (it carries the request's id): the server keeps the subscription until told.
      if (msg.type === "event" || typeof msg.id === "string") this.unsubOrphan(id);
      return;
    }
    if (msg.type === "event") {
      sub.deliver(msg);
    } else if (msg.type === "overflow") {
      // The server has ended it: nothing to unsubscribe.
      this.byId.delete(id);
      sub.detach();
      const text = typeof msg.error === "string" ? msg.error : "subscription fell behind the server's change history";
      const lost = new SubscriptionLostError(text, "cursor_expired", sub.receivedCursor);
      const st = this.live.get(sub);
      if (st?.resubscribeWithSnapshot) this.restart(sub, st, lost);
      else sub.fail(lost);
    }
  }

  // onDown: the socket is gone, and with it every server-side subscription.
  private onDown(err: FluxionDBError, final: boolean): void {
    this.byId.clear();
    this.orphans.clear();
    for (const sub of this.live.keys()) {
      sub.detach();
      sub.resumeGen++;
    }
    if (final) {
      // The key was revoked or the connection gave up: the subscriptions cannot go on.
      for (const sub of [...this.live.keys()]) sub.fail(err);
    }
  }

  // resumeAll subscribes every live subscription again, each from the last cursor it received.
  private resumeAll(): void {
    for (const [sub, st] of this.live) {
      if (sub.serverIdNow === undefined) this.resume(sub, st);
    }
  }

  private resume(sub: Subscription<B>, st: SubState): void {
    const gen = ++sub.resumeGen;
    this.resubscribe(sub, st, { ...st.wire, cursor: sub.receivedCursor }, gen)
      .then((reply) => {
        if (reply) this.log("debug", "subscription resumed", { sub: sub.id, cursor: sub.receivedCursor });
      })
      .catch((err: unknown) => {
        if (gen !== sub.resumeGen || sub.closed) return;
        if (err instanceof ServerError && err.code === "cursor_expired") {
          const lost = new SubscriptionLostError(
            `subscription could not resume after a reconnect: ${err.message}`,
            "cursor_expired",
            sub.receivedCursor,
            { cause: err },
          );
          if (st.resubscribeWithSnapshot) this.restart(sub, st, lost);
          else sub.fail(lost);
          return;
        }
        this.settleResumeError(sub, err);
      });
  }

  // restart subscribes again with a snapshot and hands the consumer a reset event.
  private restart(sub: Subscription<B>, st: SubState, reason: SubscriptionLostError): void {
    const gen = ++sub.resumeGen;
    this.resubscribe(sub, st, { ...st.wire, snapshot: true }, gen, (reply) => {
      const records = reply.records && typeof reply.records === "object" ? reply.records : {};
      sub.reset(records as never, String(reply.cursor ?? ""), reason, st.wire.col);
    }).catch((err: unknown) => {
      if (gen !== sub.resumeGen || sub.closed) return;
      this.settleResumeError(sub, err);
    });
  }

  // resubscribe sends `sub` for an existing subscription and attaches the reply synchronously,
  // before the first event frame that follows it is handled. Resolves undefined when stale.
  private resubscribe(
    sub: Subscription<B>,
    st: SubState,
    payload: Record<string, unknown>,
    gen: number,
    then?: (reply: Reply) => void,
  ): Promise<Reply | undefined> {
    return this.conn
      .request(T.subscribe, stringify(payload), st.timeout, (reply) => {
        const id = String(reply.sub);
        if (gen !== sub.resumeGen || sub.closed) {
          this.unsubOrphan(id);
          return;
        }
        sub.attach(id, String(reply.cursor ?? ""));
        this.byId.set(id, sub);
        then?.(reply);
      })
      .then((reply) => (gen === sub.resumeGen ? reply : undefined));
  }

  private settleResumeError(sub: Subscription<B>, err: unknown): void {
    // A lost socket: the next reconnect tries again. close() and revocation end it elsewhere.
    if (err instanceof ConnectionError || err instanceof ClosedError || err instanceof AuthenticationError) return;
    sub.fail(
      err instanceof FluxionDBError ? err : new FluxionDBError(`re-subscribe failed: ${String(err)}`, "internal", { cause: err }),
    );
  }

  private async call(type: string, payload: unknown, timeout: number | undefined): Promise<Reply> {
    const ms = timeout === undefined ? this.requestTimeout : limit(timeout, this.requestTimeout);
    try {
      return await this.conn.request(type, stringify(payload), ms);
    } catch (err) {
      // The error was made in a socket or timer callback, whose stack names none of the
      // caller's code. Taken again here, after the await, V8 adds the awaiting callers
      // (`at async main (app.js:12)`), which is what a reader of the stack looks for.
      if (err instanceof FluxionDBError && typeof Error.captureStackTrace === "function") {
        Error.captureStackTrace(err);
      }
      throw err;
    }
  }
}

function col(p: { col?: string; collection?: string }): string {
  return name(p.col ?? p.collection ?? "", "collection");
}

function doc(p: { doc?: string; key?: string }): string {
  return name(p.doc ?? p.key ?? "", "document");
}

/**
 * name refuses a name that is not well-formed UTF-16 (a lone surrogate): the server reads it
 * as U+FFFD, so two such names that differ only there would be one document or key, and the
 * later write would silently replace the earlier one.
 */
function name<T>(s: T, what: string): T {
  if (typeof s === "string" && !wellFormed(s)) {
    throw new TypeError(`${what} name ${JSON.stringify(s)} holds a lone surrogate (not valid Unicode): the server would store it as U+FFFD`);
  }
  return s;
}

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function wellFormed(s: string): boolean {
  const native = (s as unknown as { isWellFormed?: () => boolean }).isWellFormed;
  return native ? native.call(s) : !loneSurrogate.test(s);
}

function nonNegative(v: number | undefined, dflt: number): number {
  return typeof v === "number" && !Number.isNaN(v) && v >= 0 ? v : dflt;
}

// Timers take at most 2^31-1 ms (~24.8 days); a longer one fires at once (Node warns).
const MAX_TIMER_MS = 2 ** 31 - 1;

// limit reads a time limit or period where 0 means none: longer than a timer can wait
// (Infinity among them) is none too.
function limit(v: number | undefined, dflt: number): number {
  const ms = nonNegative(v, dflt);
  return ms > MAX_TIMER_MS ? 0 : ms;
}

// delay reads a wait between attempts: at least 1 ms, at most what a timer can wait.
function delay(v: number | undefined, dflt: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(1, nonNegative(v, dflt)));
}

function arrayField(reply: Reply, name: string): unknown[] {
  const v = reply[name];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw malformed(reply, name);
  return v;
}

function objectField(reply: Reply, name: string): Record<string, unknown> {
  const v = reply[name];
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw malformed(reply, name);
  return v as Record<string, unknown>;
}

function apiKeyResponse(reply: Reply): ManageApiKeyResponse {
  const out: ManageApiKeyResponse = { status: typeof reply.status === "string" ? reply.status : "ok" };
  if (typeof reply.scope === "string") out.scope = reply.scope;
  return out;
}

function malformed(reply: Reply, field: string): FluxionDBError {
  return new FluxionDBError(`malformed reply: field ${field} has the wrong type`, "malformed_reply", {
    requestId: typeof reply.id === "string" ? reply.id : undefined,
  });
}

export type { Timestamp };
