// Package wal is FluxionDB's segmented write-ahead log.
//
// # Model
//
// Every state change is encoded by the caller into an opaque payload and appended as a
// frame. Frames get consecutive sequence numbers starting at 1. A frame on disk is
//
//	length uint32 LE | crc32c(length field ‖ payload) uint32 LE | payload
//
// (docs/format-wal.md has the byte diagram). Frames live in segment files named after the
// sequence number of their first frame, 20 digits: 00000000000000000001.wal. A frame never
// spans segments; a new segment starts when the current one would pass Options.SegmentSize,
// at Cut, and at the first write after Open (the log never appends to a file that existed
// before it was opened). The number of a frame is its segment's first number plus its index
// in the segment, so frames carry no sequence field; numbering continuity between segments is
// what detects missing or truncated segments.
//
// # Usage
//
//	log, err := wal.Open(dir, wal.Options{Policy: wal.SyncAlways, MinSeq: snapshotSeq})
//	err = log.Replay(snapshotSeq, apply)     // before the first Append
//	seq, err := log.Append(payload)          // or AppendEncoded; under the caller's apply lock, in apply order
//	err = log.Sync(ctx, seq)                 // outside the lock: waits for durability
//
// Snapshots: seq := log.Cut() (under the apply lock, at the snapshot's start), then
// log.Flush(ctx) so the frames before seq are on disk whatever the policy, write the
// snapshot, and once it is durable log.RemoveBefore(oldest retained snapshot's seq).
//
// # Group commit
//
// Append only encodes into an in-memory buffer. Rounds write the segment files: each round
// takes everything buffered, writes it with one write call per segment, and, under
// SyncAlways, fsyncs once; every Sync waiter whose frame the round covered wakes up. One
// round runs at a time (Log.tok). The flusher goroutine runs them when woken and on its
// timers; under SyncInterval and SyncNever a Sync caller that finds no round running runs
// one itself (callerRound), since all it needs is its frames handed to the OS, and waking the
// flusher and being woken back would cost two thread hand-offs per request. Under SyncAlways
// waiters always leave the round to the flusher, which is what makes them share an fsync.
// While an fsync runs, new frames accumulate and the next round carries them all, so N
// concurrent writers share one fsync. Under SyncInterval (ticks) and at segment rolls under
// SyncInterval and SyncNever the fsync runs in the background while writing continues, so
// those policies never stall writers on the disk. Under both, a background fsync also starts
// whenever the frames written since the last one hold backgroundSyncBytes (8 MiB) of
// buffers: that bounds the copies kept for a rewrite (below) and lets their buffers be
// reused, and it only ever makes data durable sooner than the policy promises.
//
// AppendEncoded lets the caller encode its payload straight into the log's buffer, so a
// change is encoded once and never copied before the write.
//
// # Recovery
//
// Open reads the last segment. A damaged tail there that reaches the end of the file — a
// partial header, a length running past the end, a zero-filled tail, or a CRC mismatch in
// the final frame — is what a crash during a write leaves; it is truncated, logged and
// reported by TailReport. Anything else (a bad frame with good data after it, a length over
// MaxPayload, damage in an earlier segment, a segment with too few or too many frames for the
// numbering) is a *CorruptionError naming file and offset; Replay finds damage in earlier
// segments. Repair cuts the log at the first damage and moves the rest aside; it is never
// run automatically. Limitation: a bit flip in the length field of the last frames that still
// points past the end of the file looks exactly like a torn write and is treated as one.
//
// # Disk trouble
//
// When a write or fsync fails (ENOSPC, EIO), every Sync waiting on a frame that is not yet
// durable gets the error, and Append refuses new frames until the log has recovered. After a
// failed fsync Linux may have dropped the dirty pages and marked them clean, so a later fsync
// of the same file could "succeed" without the data: the log closes that descriptor and never
// trusts the file beyond its last successfully fsynced offset. Every RetryInterval the flusher
// tries to recover: cut the file back to that offset (removing it if nothing in it was
// durable), write every not-yet-durable frame again from the copies kept in memory into a new
// segment, fsync it and the folder. Only then are frames acknowledged again, so nothing is
// ever acknowledged on the strength of the failed file. Frames kept for this are bounded: a
// roll always fsyncs, and under SyncInterval and SyncNever so does every backgroundSyncBytes
// of frames, so about that much plus what was buffered when trouble began.
// Frames whose Sync returned an error may still become durable by that rewrite; they were
// applied in memory by the caller, so disk and memory converge.
//
// A failed write (a full disk) is gentler: no fsync failed, so the frames written before it
// are in the OS — acknowledged under SyncInterval and SyncNever — and stay in the file where a
// crash finds them. Recovery fsyncs the segment, cuts only the failed chunk's partial bytes
// and writes the chunks not yet written into a new segment (recoverKept).
//
// Under SyncInterval and SyncNever a frame is acknowledged once written to the OS; after a
// failed fsync such frames may exist only in memory until the rewrite succeeds.
//
// # Concurrency
//
// Append, AppendEncoded, Sync, Flush, Cut, RemoveBefore, Stats and Close are safe for
// concurrent use.
// Replay must run before the first Append. A flock on dir/LOCK keeps a second process out.
package wal
