// Package db is the one entry point for every change of FluxionDB's state: records, KV
// entries and API keys. It puts the in-memory engine, the write-ahead log and the key set
// behind a single ordered sequence of changes.
//
// # Changes
//
// Every change goes through change(). When persistence is on its op is first encoded, and
// compressed when that pays, on the caller's goroutine (ops.go, compress.go;
// docs/persistence.md has the layout); then, under one mutex, it is (1) copied into the log's
// buffer, (2) applied to memory and (3) published to subscribers, so the log order is
// exactly the apply order and a replay rebuilds the same state. Logging comes
// first so that a change the disk refuses (full, I/O error) is rejected before anything
// changed. The caller then waits for durability (Wait → wal.Log.Sync) before it
// acknowledges, outside the mutex, so concurrent writers share one fsync (group commit).
//
// Reads go straight to the engine; they never take the change mutex, so they keep working
// while the disk is in trouble.
//
// # Persistence
//
// With Config.Dir the data folder holds wal/ (internal/wal) and snapshots/
// (internal/snapshot). Open loads the newest snapshot that verifies and replays the log
// from the snapshot's start. A background loop writes a snapshot when the log has grown
// by SnapshotBytes or SnapshotAge has passed with changes: Cut under the change mutex (no
// I/O), Flush, export the engine collection by collection (writers of a collection wait
// only while its block index is copied) plus the hashed API keys, then remove the log
// segments before the oldest snapshot kept. Every op is a blind set or delete, so the
// log replayed over that fuzzy snapshot yields the exact state.
//
// Lock order: DB.mu, then the log's and the engine's own locks. Snapshot holds snapMu
// (one snapshot at a time) across the whole write and DB.mu only for the Cut.
package db
