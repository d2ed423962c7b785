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

	"github.com/volandoo/fluxiondb/internal/auth"
	"github.com/volandoo/fluxiondb/internal/engine"
)

// Commit identifies a logged change; Wait(ctx, c) returns once it is durable under the
// configured fsync policy. The zero Commit needs no wait (in-memory mode).
type Commit uint64

// DB is the database: engine + key set (+ log when persistent). Safe for concurrent use.
type DB struct {
	Engine *engine.Store
	Keys   *auth.Keys

	mu sync.Mutex // orders changes: log order = apply order
}

// Config configures Open.
type Config struct {
	MasterKey string
}

// Open creates an in-memory database.
func Open(cfg Config) (*DB, error) {
	return &DB{Engine: engine.New(), Keys: auth.New(cfg.MasterKey)}, nil
}

// Close releases the database. Safe to call more than once.
func (d *DB) Close() error { return nil }

// Wait blocks until c is durable, or ctx ends.
func (d *DB) Wait(ctx context.Context, c Commit) error { return nil }

// change applies one state change in log order.
func (d *DB) change(apply func()) (Commit, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	apply()
	return 0, nil
}

// Insert stores records; the same (collection, doc, ts) replaces.
func (d *DB) Insert(recs []engine.Record) (Commit, error) {
	return d.change(func() { d.Engine.Insert(recs) })
}

// DeleteDoc removes a document; collection "" means every collection.
func (d *DB) DeleteDoc(collection, doc string) (Commit, error) {
	return d.change(func() { d.Engine.DeleteDoc(collection, doc) })
}

// DeleteCollection removes a collection's documents and KV entries.
func (d *DB) DeleteCollection(collection string) (Commit, error) {
	return d.change(func() { d.Engine.DeleteCollection(collection) })
}

// DeleteRecords removes the named records.
func (d *DB) DeleteRecords(keys []engine.RecordKey) (Commit, error) {
	return d.change(func() { d.Engine.DeleteRecords(keys) })
}

// DeleteRange removes a document's records with from <= ts <= to.
func (d *DB) DeleteRange(collection, doc string, from, to int64) (Commit, error) {
	return d.change(func() { d.Engine.DeleteRange(collection, doc, from, to) })
}

// SetValue sets a KV entry.
func (d *DB) SetValue(collection, key, value string) (Commit, error) {
	return d.change(func() { d.Engine.SetValue(collection, key, value) })
}

// DeleteValue removes a KV entry.
func (d *DB) DeleteValue(collection, key string) (Commit, error) {
	return d.change(func() { d.Engine.DeleteValue(collection, key) })
}

// PutKey adds a scoped API key or changes its scope.
func (d *DB) PutKey(h auth.Hash, hint string, s auth.Scope) (Commit, error) {
	return d.change(func() { d.Keys.Put(h, hint, s) })
}

// RemoveKey removes a scoped API key; found reports whether it existed.
func (d *DB) RemoveKey(h auth.Hash) (found bool, c Commit, err error) {
	c, err = d.change(func() { found = d.Keys.Remove(h) })
	return found, c, err
}
