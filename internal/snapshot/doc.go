// Package snapshot writes and reads FluxionDB snapshot files: the whole in-memory state at
// a point in the write-ahead log, so start-up loads one file and replays only the log after
// it (docs/format-snapshot.md has the byte layout).
//
// # Model
//
// A snapshot starts at WAL sequence number seq, obtained from wal.Log.Cut under the apply
// lock. The state is then exported without stopping writers (engine.Store.Export freezes one
// collection at a time), so the snapshot is fuzzy: each entry reflects some moment at or
// after seq. Replaying the log from seq over it yields the exact state, because every logged
// mutation is a blind set or delete.
//
// The file reuses the WAL framing (length + CRC32C per frame): a header frame (magic,
// version, seq, creation time), body frames of about 64 KiB holding collections, documents
// with their records (timestamps delta-encoded) and KV entries, an "extra" section of opaque
// blobs supplied by the caller (hashed API keys), and a trailer with counts and a checksum
// chained over every frame's CRC. A partial or damaged file never verifies.
//
// # Usage
//
//	seq := log.Cut()                                   // under the apply lock
//	log.Flush(ctx)                                     // frames before seq are on disk
//	res, err := snapshot.Write(dir, seq, func(e snapshot.Exporter) error {
//		return store.Export(e)
//	}, keyBlobs, snapshot.WriteOptions{})
//	log.RemoveBefore(res.OldestRetainedSeq)            // keep the log the fallback needs
//
//	info, err := snapshot.Latest(dir, logger)         // start-up: newest that verifies
//	_, err = snapshot.Load(info.Path, sink)            // sink feeds engine Insert/SetValue
//	log, err := wal.Open(walDir, wal.Options{MinSeq: info.Seq})
//	err = log.Replay(info.Seq, apply)
//
// Write: temp file in dir, buffered writes, fsync, rename, fsync dir; the newest Keep (2)
// snapshots are kept. Latest verifies candidates newest first; a damaged newest one with an
// older valid one is logged and renamed <name>.corrupt; a damaged only snapshot is a
// *CorruptionError naming the file. Load verifies as it streams, so call it on what Latest
// returned.
package snapshot
