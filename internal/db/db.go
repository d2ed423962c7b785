package db

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/volandoo/fluxiondb/internal/auth"
	"github.com/volandoo/fluxiondb/internal/engine"
	"github.com/volandoo/fluxiondb/internal/pubsub"
	"github.com/volandoo/fluxiondb/internal/wal"
)

// Commit identifies a logged change (its WAL sequence number); Wait(ctx, c) returns once
// it is durable under the configured fsync policy. The zero Commit needs no wait
// (in-memory mode, or a change that did not need logging).
type Commit uint64

// DB is the database: engine + key set (+ log when persistent). Safe for concurrent use.
type DB struct {
	Engine *engine.Store
	Keys   *auth.Keys
	Hub    *pubsub.Hub // history of changes for live subscriptions

	mu  sync.Mutex // orders changes: log order = apply order = publish order
	seq uint64     // sequence number of the last change, under mu

	p *persist // nil in memory

	quickWait bool // Wait hands the caller's changes to the OS itself: no disk wait (QuickWait)
}

// Config configures Open.
type Config struct {
	MasterKey string
	// SubHistoryBytes bounds the change history kept for subscriptions (default 64 MiB);
	// SubRetention is how long it is kept recording after the last subscription ends, so
	// a client can resume after a reconnect (default 5 minutes).
	SubHistoryBytes int64
	SubRetention    time.Duration

	// Dir is the data folder; "" keeps everything in memory only. Open recovers the state
	// found there (latest snapshot + the log after it) before it returns.
	Dir string
	// Fsync says when a change counts as durable (wal.SyncAlways by default);
	// FlushInterval is the fsync period under wal.SyncInterval (default 1s).
	Fsync         wal.Policy
	FlushInterval time.Duration
	// SegmentSize is the log's segment size (default 64 MiB).
	SegmentSize int64
	// A snapshot is taken in the background when the log has grown by SnapshotBytes since
	// the last one (default 1 GiB; or by the last snapshot's size when larger), or when SnapshotAge has passed since it and anything
	// changed (default 1 hour). SnapshotCheck is how often that is checked (default 1s).
	SnapshotBytes int64
	SnapshotAge   time.Duration
	SnapshotCheck time.Duration
	// Logger receives recovery, snapshot and disk-trouble reports. Default slog.Default().
	Logger *slog.Logger

	// wrapLog lets tests put a fault-injecting layer between the DB and its log.
	wrapLog func(changeLog) changeLog
	// importing: Import opens the folder it is filling, which holds IMPORT-INCOMPLETE.
	importing bool
}

// Open creates the database. With cfg.Dir it recovers the state from the data folder
// first; damage there that recovery must not paper over is an error that names the file
// and offset and the repair command (wal.IsCorruption / snapshot.CorruptionError).
func Open(cfg Config) (*DB, error) {
	if cfg.SubHistoryBytes <= 0 {
		cfg.SubHistoryBytes = 64 << 20
	}
	if cfg.SubRetention <= 0 {
		cfg.SubRetention = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &DB{
		Engine: engine.New(),
		Keys:   auth.New(cfg.MasterKey),
		Hub:    pubsub.New(cfg.SubHistoryBytes, cfg.SubRetention),
	}
	if cfg.Dir != "" {
		if err := d.openPersist(cfg); err != nil {
			return nil, err
		}
	}
	d.quickWait = cfg.Dir == "" || cfg.Fsync != wal.SyncAlways
	return d, nil
}

// Paused runs fn while no change can happen, with the sequence number of the last change.
// Subscriptions use it to take a snapshot and start live delivery without a gap or a
// duplicate. fn must be quick: writers wait for it.
func (d *DB) Paused(fn func(seq uint64)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn(d.seq)
}

// Close stops background snapshots, writes and fsyncs everything logged and closes the
// log. Safe to call more than once.
func (d *DB) Close() error {
	if d.p == nil {
		return nil
	}
	return d.p.close()
}

// QuickWait reports whether Wait is quick: in memory, or when a change counts as done once
// the log has handed it to the OS (--fsync=interval or never), which Wait then does on the
// caller's goroutine. Under --fsync=always Wait waits for a shared fsync.
func (d *DB) QuickWait() bool { return d.quickWait }

// Wait blocks until c is durable, or ctx ends. An error means the change may not survive
// a crash (the disk is in trouble); the caller must not acknowledge it as done.
func (d *DB) Wait(ctx context.Context, c Commit) error {
	if c == 0 || d.p == nil {
		return nil
	}
	if err := d.p.log.Sync(ctx, uint64(c)); err != nil {
		return fmt.Errorf("sync the log: %w", err)
	}
	return nil
}

// change logs one state change (encode appends its op to a buffer, before the change mutex
// is taken: see encodedOp), applies it and publishes it to subscribers, in that order under
// the change mutex. events builds the
// change's events; it is called only while someone subscribes. If the change cannot be
// logged (disk trouble) nothing is applied and the error is returned.
func (d *DB) change(encode func([]byte) []byte, apply func(), events func() []pubsub.Event) (Commit, error) {
	var op *encodedOp
	if d.p != nil {
		op = encodeOp(encode)
		defer op.release()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var c Commit
	if d.p != nil {
		seq, err := d.p.log.AppendEncoded(op.appendTo)
		if err != nil {
			return 0, fmt.Errorf("log the change: %w", err)
		}
		c = Commit(seq)
		d.p.opBytes.Add(int64(wal.FrameHeaderSize + len(op.raw)))
	}
	apply()
	d.seq++
	d.Hub.PublishAt(d.seq, uint64(c), events)
	return c, nil
}

// Insert stores records; the same (collection, doc, ts) replaces.
func (d *DB) Insert(recs []engine.Record) (Commit, error) {
	return d.change(func(b []byte) []byte { return appendInsert(b, recs) },
		func() { d.Engine.Insert(recs) }, func() []pubsub.Event {
			ev := make([]pubsub.Event, len(recs))
			for i, r := range recs {
				ev[i] = pubsub.Event{Op: pubsub.OpInsert, Collection: r.Collection, Doc: r.Doc, TS: r.TS, Data: r.Data}
			}
			return dropReplaced(ev)
		})
}

// dropReplaced removes the insert events of records a later entry of the same batch replaced
// (the same collection, document and ts: the later one is stored), so that subscribers see
// only what was stored — a `where` subscription must not be told of a value that never was.
func dropReplaced(ev []pubsub.Event) []pubsub.Event {
	if len(ev) < 2 {
		return ev
	}
	type key struct {
		col, doc string
		ts       int64
	}
	last := make(map[key]int, len(ev))
	for i := range ev {
		last[key{ev[i].Collection, ev[i].Doc, ev[i].TS}] = i
	}
	if len(last) == len(ev) {
		return ev
	}
	out := ev[:0]
	for i := range ev {
		if last[key{ev[i].Collection, ev[i].Doc, ev[i].TS}] == i {
			out = append(out, ev[i])
		}
	}
	return out
}

// Deletes are logged whether or not they find anything (every op is a blind set or delete),
// but subscribers only hear of those that removed something: an event is a change.

// DeleteDoc removes a document; collection "" means every collection.
func (d *DB) DeleteDoc(collection, doc string) (Commit, error) {
	var from []string // the collections the document was removed from
	return d.change(func(b []byte) []byte {
		return appendString(appendString(append(b, opDeleteDoc), collection), doc)
	}, func() {
		if collection == "" {
			from = d.Engine.DeleteDocEverywhere(doc)
		} else if d.Engine.DeleteDoc(collection, doc) {
			from = []string{collection}
		}
	}, func() []pubsub.Event {
		// One event per collection that held the document: subscribers of the others hear
		// nothing, as of any delete that removed nothing of theirs.
		ev := make([]pubsub.Event, len(from))
		for i, col := range from {
			ev[i] = pubsub.Event{Op: pubsub.OpDeleteDoc, Collection: col, Doc: doc}
		}
		return ev
	})
}

// DeleteCollection removes a collection's documents and KV entries. Subscribers hear of it
// when it held documents (they do not see KV entries).
func (d *DB) DeleteCollection(collection string) (Commit, error) {
	var docs int
	return d.change(func(b []byte) []byte { return appendString(append(b, opDeleteCol), collection) },
		func() { docs = d.Engine.DeleteCollection(collection) }, func() []pubsub.Event {
			if docs == 0 {
				return nil
			}
			return []pubsub.Event{{Op: pubsub.OpDeleteCollection, Collection: collection}}
		})
}

// DeleteRecords removes the named records.
func (d *DB) DeleteRecords(keys []engine.RecordKey) (Commit, error) {
	removed := make([]bool, len(keys))
	return d.change(func(b []byte) []byte { return appendDeleteRecords(b, keys) },
		func() { d.Engine.DeleteRecords(keys, removed) }, func() []pubsub.Event {
			var ev []pubsub.Event
			for i, k := range keys {
				if removed[i] {
					ev = append(ev, pubsub.Event{Op: pubsub.OpDeleteRecord, Collection: k.Collection, Doc: k.Doc, TS: k.TS})
				}
			}
			return ev
		})
}

// DeleteRange removes a document's records with from <= ts <= to.
func (d *DB) DeleteRange(collection, doc string, from, to int64) (Commit, error) {
	var n int
	return d.change(func(b []byte) []byte { return appendDeleteRange(b, collection, doc, from, to) },
		func() { n = d.Engine.DeleteRange(collection, doc, from, to) }, func() []pubsub.Event {
			if n == 0 {
				return nil
			}
			return []pubsub.Event{{Op: pubsub.OpDeleteRange, Collection: collection, Doc: doc, TS: from, ToTS: to}}
		})
}

// SetValue sets a KV entry. KV changes are not streamed to subscribers.
func (d *DB) SetValue(collection, key, value string) (Commit, error) {
	return d.change(func(b []byte) []byte {
		return appendString(appendString(appendString(append(b, opSetValue), collection), key), value)
	}, func() { d.Engine.SetValue(collection, key, value) }, nil)
}

// DeleteValue removes a KV entry.
func (d *DB) DeleteValue(collection, key string) (Commit, error) {
	return d.change(func(b []byte) []byte {
		return appendString(appendString(append(b, opDeleteValue), collection), key)
	}, func() { d.Engine.DeleteValue(collection, key) }, nil)
}

// PutKey adds a scoped API key or changes its scope. Only the hash and hint are logged.
func (d *DB) PutKey(h auth.Hash, hint string, s auth.Scope) (Commit, error) {
	return d.change(func(b []byte) []byte { return appendPutKey(b, h, hint, s) },
		func() { d.Keys.Put(h, hint, s) }, nil)
}

// RemoveKey removes a scoped API key; found reports whether it existed.
func (d *DB) RemoveKey(h auth.Hash) (found bool, c Commit, err error) {
	c, err = d.change(func(b []byte) []byte { return append(append(b, opRemoveKey), h[:]...) },
		func() { found = d.Keys.Remove(h) }, nil)
	return found, c, err
}
