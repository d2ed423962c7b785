// Package db is the one entry point for every change of FluxionDB's state: records, KV
// entries and API keys. It puts the in-memory engine, the write-ahead log and the key set
// behind a single ordered sequence of changes.
//
// Every change goes through change(): under one mutex it is (1) logged, when persistence is on,
// and (2) applied to memory, so the log order is exactly the apply order and a replay rebuilds
// the same state. The caller then waits for durability (Wait) before it acknowledges, outside
// the mutex, so concurrent writers share one fsync (group commit in internal/wal).
//
// Reads go straight to the engine; they never take the change mutex.
package db

import (
	"context"
	"sync"
	"time"

	"github.com/volandoo/fluxiondb/internal/auth"
	"github.com/volandoo/fluxiondb/internal/engine"
	"github.com/volandoo/fluxiondb/internal/pubsub"
)

// Commit identifies a logged change; Wait(ctx, c) returns once it is durable under the
// configured fsync policy. The zero Commit needs no wait (in-memory mode).
type Commit uint64

// DB is the database: engine + key set (+ log when persistent). Safe for concurrent use.
type DB struct {
	Engine *engine.Store
	Keys   *auth.Keys
	Hub    *pubsub.Hub // history of changes for live subscriptions

	mu  sync.Mutex // orders changes: log order = apply order = publish order
	seq uint64     // sequence number of the last change, under mu
}

// Config configures Open.
type Config struct {
	MasterKey string
	// SubHistoryBytes bounds the change history kept for subscriptions (default 64 MiB);
	// SubRetention is how long it is kept recording after the last subscription ends, so
	// a client can resume after a reconnect (default 5 minutes).
	SubHistoryBytes int64
	SubRetention    time.Duration
}

// Open creates an in-memory database.
func Open(cfg Config) (*DB, error) {
	if cfg.SubHistoryBytes <= 0 {
		cfg.SubHistoryBytes = 64 << 20
	}
	if cfg.SubRetention <= 0 {
		cfg.SubRetention = 5 * time.Minute
	}
	return &DB{
		Engine: engine.New(),
		Keys:   auth.New(cfg.MasterKey),
		Hub:    pubsub.New(cfg.SubHistoryBytes, cfg.SubRetention),
	}, nil
}

// Paused runs fn while no change can happen, with the sequence number of the last change.
// Subscriptions use it to take a snapshot and start live delivery without a gap or a
// duplicate. fn must be quick: writers wait for it.
func (d *DB) Paused(fn func(seq uint64)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn(d.seq)
}

// Close releases the database. Safe to call more than once.
func (d *DB) Close() error { return nil }

// Wait blocks until c is durable, or ctx ends.
func (d *DB) Wait(ctx context.Context, c Commit) error { return nil }

// change applies one state change in order and publishes it to subscribers. events builds
// the change's events; it is called only while someone subscribes.
func (d *DB) change(apply func(), events func() []pubsub.Event) (Commit, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	apply()
	d.seq++
	d.Hub.Publish(d.seq, events)
	return 0, nil
}

// Insert stores records; the same (collection, doc, ts) replaces.
func (d *DB) Insert(recs []engine.Record) (Commit, error) {
	return d.change(func() { d.Engine.Insert(recs) }, func() []pubsub.Event {
		ev := make([]pubsub.Event, len(recs))
		for i, r := range recs {
			ev[i] = pubsub.Event{Op: pubsub.OpInsert, Collection: r.Collection, Doc: r.Doc, TS: r.TS, Data: r.Data}
		}
		return ev
	})
}

// DeleteDoc removes a document; collection "" means every collection.
func (d *DB) DeleteDoc(collection, doc string) (Commit, error) {
	return d.change(func() { d.Engine.DeleteDoc(collection, doc) }, func() []pubsub.Event {
		return []pubsub.Event{{Op: pubsub.OpDeleteDoc, Collection: collection, Doc: doc}}
	})
}

// DeleteCollection removes a collection's documents and KV entries.
func (d *DB) DeleteCollection(collection string) (Commit, error) {
	return d.change(func() { d.Engine.DeleteCollection(collection) }, func() []pubsub.Event {
		return []pubsub.Event{{Op: pubsub.OpDeleteCollection, Collection: collection}}
	})
}

// DeleteRecords removes the named records.
func (d *DB) DeleteRecords(keys []engine.RecordKey) (Commit, error) {
	return d.change(func() { d.Engine.DeleteRecords(keys) }, func() []pubsub.Event {
		ev := make([]pubsub.Event, len(keys))
		for i, k := range keys {
			ev[i] = pubsub.Event{Op: pubsub.OpDeleteRecord, Collection: k.Collection, Doc: k.Doc, TS: k.TS}
		}
		return ev
	})
}

// DeleteRange removes a document's records with from <= ts <= to.
func (d *DB) DeleteRange(collection, doc string, from, to int64) (Commit, error) {
	return d.change(func() { d.Engine.DeleteRange(collection, doc, from, to) }, func() []pubsub.Event {
		return []pubsub.Event{{Op: pubsub.OpDeleteRange, Collection: collection, Doc: doc, TS: from, ToTS: to}}
	})
}

// SetValue sets a KV entry. KV changes are not streamed to subscribers.
func (d *DB) SetValue(collection, key, value string) (Commit, error) {
	return d.change(func() { d.Engine.SetValue(collection, key, value) }, nil)
}

// DeleteValue removes a KV entry.
func (d *DB) DeleteValue(collection, key string) (Commit, error) {
	return d.change(func() { d.Engine.DeleteValue(collection, key) }, nil)
}

// PutKey adds a scoped API key or changes its scope.
func (d *DB) PutKey(h auth.Hash, hint string, s auth.Scope) (Commit, error) {
	return d.change(func() { d.Keys.Put(h, hint, s) }, nil)
}

// RemoveKey removes a scoped API key; found reports whether it existed.
func (d *DB) RemoveKey(h auth.Hash) (found bool, c Commit, err error) {
	c, err = d.change(func() { found = d.Keys.Remove(h) }, nil)
	return found, c, err
}
