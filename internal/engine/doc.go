// Package engine is FluxionDB's in-memory store: collections → documents → records ordered
// by timestamp, plus a string key-value map per collection. It is pure (no I/O); durability
// is the WAL's job, and the server's filters (regex, where/filter) arrive as predicates.
//
// # Model
//
// A Store holds collections by name. A collection holds documents and KV entries under one
// sync.RWMutex; the Store's own lock only guards the collection map. A collection is
// created by the first insert or KV set into it and removed by DeleteCollection, or by a
// DeleteDoc after which it holds no documents and no KV entries; record and KV deletes that
// empty it leave it in place (the contract: drec, dmrec, drrng and rval never remove one).
//
// A document is a time series: records (int64 ts, opaque payload bytes) in ascending ts
// order, one record per ts (inserting an existing ts replaces it). A document with no
// records does not exist.
//
// # Memory layout
//
// There is no heap object per record. A document is a small index of blocks; each block is
// one exactly-sized []byte holding up to blockMaxRecords records encoded as
// uvarint(ts delta) uvarint(len) payload, with the block's minTS, maxTS, count and the
// offset of its newest record kept in the index (see block.go). The GC sees one pointer per
// block. For 50-byte payloads a record costs its payload plus ~2 bytes of encoding plus a
// fraction of the open block's spare capacity and the index (measured by TestMemory).
//
// In-order appends (ts newer than the document's newest) write into the spare capacity of
// the document's last block, which grows through allocator size classes up to
// blockTargetBytes and is then sealed; that is amortised O(1) with no per-record allocation.
// Any other change (out-of-order insert, replace, delete) builds new blocks that are swapped
// into the index: copy-on-write. A few records into or out of a block are spliced — the
// unchanged runs of its bytes copied as they are (spliceBlock); larger merges decode the
// touched blocks and encode them again, split to size. Exceptions, taken only when no Export
// has captured the block since its bytes were allocated (block.epoch): a replace by a
// payload of the same length (a re-sent record) overwrites the payload in place
// (replaceInPlace); one late record, or one replace by a payload of another length, that
// fits the block's spare capacity is written into it (insertInPlace, resizeInPlace); and a
// single-record delete takes the record out of the block's bytes (deleteInPlace).
//
// # Snapshots
//
// Bytes below a block's length never change once an Export has captured the block (the
// in-place changes above check the block's epoch), so Export captures only each document's
// block-index slice under a collection's read lock (O(documents); ~1 ms for 10,000
// documents holding 10 million records) and decodes records afterwards without any lock.
// Capturing bumps the collection's export epoch, and a writer copies a document's index
// before its first change after that (collection.own), so captured indexes stay intact.
// The result is fuzzy across collections (each collection is consistent at its own
// moment); because every mutation is a blind set or delete, replaying the WAL from the
// export's start over it yields the exact state.
//
// # Costs
//
// Latest: O(log n) per document (O(1) when the query ts is at or after the newest record).
// Range: O(log n + k) plus the scan of one block to reach the start. Inserts of k records
// into one document out of order: O(k log k + touched blocks × block size).
package engine
