/**
 * Subscription is one live subscription (PROTOCOL.md §7): an async iterable of the changes the
 * server pushes, or a callback target (onEvent/onError).
 *
 * The model: the server names a subscription (`s1`) and tags every event frame with a cursor
 * that covers all changes up to the frame's last event. The subscription remembers two cursors:
 *
 *   - the received cursor, of the last frame that arrived. After a reconnect the client
 *     subscribes again from it, so events already received (even if still buffered) are not
 *     sent twice and events that happened meanwhile are not lost;
 *   - the consumed cursor (`cursor`), of the last frame whose events were all handed to the
 *     consumer: what an application saves to resume in another process or session.
 *
 * It ends in one of three ways, each exactly once: close() (or the client's close(), or the
 * AbortSignal) ends it quietly — the iterator finishes; an error (SubscriptionLostError, a
 * revoked key, a connection that gave up) is thrown by the iterator once the events received
 * before it were consumed, and passed to onError. No event is ever dropped silently.
 */

import type { Reply } from "./connection.js";
import { FluxionDBError, SubscriptionLostError } from "./errors.js";
import type { LatestRecords, Logger, SubscriptionEvent, SubscriptionHandlers } from "./types.js";

/** SubscriptionHost is what a subscription needs from its client. Internal. */
export interface SubscriptionHost {
  /** release forgets the subscription and, given the server's id of it, sends `unsub`. */
  release(sub: Subscription<boolean>, unsubId: string | undefined): Promise<void>;
  log(level: keyof Logger, message: string, fields?: Record<string, unknown>): void;
}

interface Waiter<B extends boolean> {
  resolve: (r: IteratorResult<SubscriptionEvent<B>>) => void;
  reject: (err: unknown) => void;
}

// lastOfFrame marks the events after which the consumed cursor may advance.
const lastOfFrame = new WeakSet<object>();

export class Subscription<B extends boolean = false> implements AsyncIterable<SubscriptionEvent<B>> {
  /**
   * snapshot holds the latest record of each selected document when the subscription was made
   * with `snapshot: true` (events start right after it), otherwise undefined.
   */
  readonly snapshot: LatestRecords<B> | undefined;
  /** done resolves when the subscription has ended: with the error that ended it, or undefined. */
  readonly done: Promise<FluxionDBError | undefined>;

  private readonly host: SubscriptionHost;
  private readonly handlers: SubscriptionHandlers<B>;
  private readonly bufferSize: number;
  private serverId: string | undefined;
  private lastId: string;
  private received: string;
  private consumed: string;
  private queue: SubscriptionEvent<B>[] = [];
  private head = 0;
  // Calls of next() waiting for an event (for-await makes one at a time; manual callers may make more).
  private waiters: Waiter<B>[] = [];
  private iterating = false;
  private ended = false;
  private endError: FluxionDBError | undefined;
  private errorThrown = false;
  private resolveDone!: (err: FluxionDBError | undefined) => void;
  private closing: Promise<void> | undefined;
  /** @internal generation of resubscribe attempts, so that a stale outcome is ignored. */
  resumeGen = 0;

  /** @internal Subscriptions are made by client.subscribe(). */
  constructor(host: SubscriptionHost, reply: Reply, bufferSize: number, handlers: SubscriptionHandlers<B>) {
    this.host = host;
    this.handlers = handlers;
    this.bufferSize = bufferSize;
    this.serverId = String(reply.sub);
    this.lastId = this.serverId;
    this.received = this.consumed = String(reply.cursor ?? "");
    const rec = reply.records;
    this.snapshot = rec && typeof rec === "object" && !Array.isArray(rec) ? (rec as LatestRecords<B>) : undefined;
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** id is the server's name of the subscription on the current connection (it is given anew after a reconnect). */
  get id(): string {
    return this.lastId;
  }

  /**
   * cursor covers every event handed to the consumer so far (all events of the frames it has
   * fully consumed). Pass it as `cursor` to subscribe() to resume from there, on the same
   * server process, within its kept history.
   */
  get cursor(): string {
    return this.consumed;
  }

  /** closed is true once the subscription has ended, by close() or by an error. */
  get closed(): boolean {
    return this.ended;
  }

  /** error is the error that ended the subscription, if one did. */
  get error(): FluxionDBError | undefined {
    return this.endError;
  }

  /**
   * close ends the subscription: the server is told (`unsub`), events not yet consumed are
   * dropped, the iterator finishes. It never rejects, and is idempotent.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.ended) return (this.closing = Promise.resolve());
    const id = this.serverId;
    this.finish(undefined);
    this.dropQueue();
    this.closing = this.host.release(this, id).catch(() => undefined);
    return this.closing;
  }

  /**
   * The async iterator: `for await (const ev of sub)`. Breaking out of the loop closes the
   * subscription. One consumer per subscription, and none when `onEvent` is given.
   */
  [Symbol.asyncIterator](): AsyncIterator<SubscriptionEvent<B>> {
    if (this.handlers.onEvent) throw new TypeError("this subscription delivers its events to onEvent; it cannot also be iterated");
    if (this.iterating) throw new TypeError("a subscription can be iterated only once");
    this.iterating = true;
    return {
      next: () => this.next(),
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  private next(): Promise<IteratorResult<SubscriptionEvent<B>>> {
    if (this.head < this.queue.length) return Promise.resolve({ done: false, value: this.take() });
    if (this.ended) {
      if (this.endError && !this.errorThrown) {
        this.errorThrown = true;
        return Promise.reject(this.endError);
      }
      return Promise.resolve({ done: true, value: undefined });
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private take(): SubscriptionEvent<B> {
    const ev = this.queue[this.head]!;
    this.queue[this.head] = undefined as never; // let it be collected
    this.head++;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (lastOfFrame.has(ev)) this.consumed = ev.cursor;
    return ev;
  }

  private get buffered(): number {
    return this.queue.length - this.head;
  }

  private dropQueue(): void {
    this.queue = [];
    this.head = 0;
  }

  private emit(events: SubscriptionEvent<B>[]): void {
    if (events.length === 0) return;
    const onEvent = this.handlers.onEvent;
    if (onEvent) {
      for (const ev of events) {
        this.callHandler("onEvent", onEvent, ev);
        if (this.ended) return; // the handler closed it
        if (lastOfFrame.has(ev)) this.consumed = ev.cursor;
      }
      return;
    }
    for (const ev of events) this.queue.push(ev);
    while (this.waiters.length > 0 && this.buffered > 0) this.waiters.shift()!.resolve({ done: false, value: this.take() });
  }

  // finish marks the end; the iterator sees it once the queue is drained.
  private finish(err: FluxionDBError | undefined): void {
    this.ended = true;
    this.endError = err;
    this.serverId = undefined;
    this.resolveDone(err);
    // Waiting calls exist only while the queue is empty: the first gets the error, if any.
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) {
      if (err && !this.errorThrown) {
        this.errorThrown = true;
        w.reject(err);
      } else {
        w.resolve({ done: true, value: undefined });
      }
    }
  }

  // ---- called by the client ----------------------------------------------------------------

  /** @internal serverIdNow is the id the subscription has on the current socket, if any. */
  get serverIdNow(): string | undefined {
    return this.serverId;
  }

  /** @internal receivedCursor is where a re-subscription continues. */
  get receivedCursor(): string {
    return this.received;
  }

  /** @internal attach records the server's id for the subscription on a (new) socket. */
  attach(id: string, cursor: string): void {
    this.serverId = id;
    this.lastId = id;
    this.received = cursor;
  }

  /** @internal detach forgets the server's id: the socket is gone, or the server ended it. */
  detach(): void {
    this.serverId = undefined;
  }

  /** @internal deliver takes an event frame. */
  deliver(frame: Reply): void {
    if (this.ended) return;
    const cursor = typeof frame.cursor === "string" ? frame.cursor : this.received;
    const raw = Array.isArray(frame.events) ? frame.events : [];
    if (!this.handlers.onEvent && this.buffered >= this.bufferSize) {
      // Whole frames or nothing: everything buffered is covered by `received`, so the error's
      // cursor is exactly where a new subscription would continue.
      this.fail(
        new SubscriptionLostError(
          `subscription ${this.lastId}: ${this.buffered} events wait for the consumer (bufferSize ${this.bufferSize}); the subscription was ended`,
          "buffer_full",
          this.received,
        ),
      );
      return;
    }
    const events: SubscriptionEvent<B>[] = [];
    for (const e of raw) {
      if (e && typeof e === "object") events.push({ ...(e as object), cursor } as SubscriptionEvent<B>);
    }
    if (events.length > 0) lastOfFrame.add(events[events.length - 1]!);
    this.received = cursor;
    this.emit(events);
  }

  /** @internal reset delivers the marker of a snapshot restart. */
  reset(records: LatestRecords<B>, cursor: string, reason: FluxionDBError, col: string): void {
    if (this.ended) return;
    this.received = cursor;
    const ev = { op: "reset", col, records, reason, cursor } as SubscriptionEvent<B>;
    lastOfFrame.add(ev);
    this.emit([ev]);
  }

  /** @internal fail ends the subscription with an error (the server is told when it still knows it). */
  fail(err: FluxionDBError): void {
    if (this.ended) return;
    const id = this.serverId;
    this.finish(err);
    void this.host.release(this, id).catch(() => undefined);
    const onError = this.handlers.onError;
    if (onError) this.callHandler("onError", onError, err);
  }

  // callHandler runs a user handler. A throw, or the rejection of an async handler (not left
  // unhandled), goes to the logger; the subscription goes on.
  private callHandler<T>(which: "onEvent" | "onError", fn: (arg: T) => unknown, arg: T): void {
    const failed = (err: unknown) =>
      this.host.log("error", `subscription ${which} threw`, { sub: this.lastId, error: err instanceof Error ? err.message : String(err) });
    try {
      const r = fn(arg);
      if (r instanceof Promise) r.catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  /** @internal end ends the subscription quietly without telling the server (the client is closing). */
  end(): void {
    if (this.ended) return;
    this.finish(undefined);
    this.dropQueue();
    void this.host.release(this, undefined).catch(() => undefined);
  }
}
