package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

const (
	// blockTargetBytes caps the encoded size of a block. It is a Go allocator size class, and
	// a block is sealed when its next record would not fit, so a sealed block wastes less than
	// one record of its allocation. 8 KiB keeps the copy-on-write cost of an out-of-order
	// insert small while the per-block index entry (96 bytes with its marks) stays under 1
	// byte/record.
	blockTargetBytes = 8192

	// blockMaxRecords caps the records of a block, so that scanning inside one block (Latest
	// below the newest record, Range start) is bounded and reverse iteration fits a stack
	// array. Tiny payloads fill a block by count before they fill it by bytes.
	blockMaxRecords = 256
)

// growSteps are the capacities the last (open) block of a document grows through. They are
// Go size classes, so the allocator adds no slack of its own, and above 2 KiB each step is
// at most 1.5x the previous one: 10,000 documents each holding a half-full open block is the
// steady state, and doubling would waste up to half of it.
var growSteps = [...]int{64, 128, 256, 512, 1024, 2048, 3072, 4096, 5376, 6784, blockTargetBytes}

// growCap returns the capacity to allocate for an open block that needs need bytes. Above
// blockTargetBytes (one oversized record) the allocation is exact.
func growCap(need int) int {
	for _, s := range growSteps {
		if s >= need {
			return s
		}
	}
	return need
}

// block is a run of records of one document in ascending ts order.
//
// Encoding of data, per record: uvarint(ts - previous ts) (the first record's delta is 0,
// relative to minTS), uvarint(len(payload)), payload. Timestamps are strictly ascending, so
// every delta after the first is > 0 and fits a uint64 even across the full int64 range.
//
// Once an Export has captured a block, data[:len(data)] never changes: the last block of a
// document may be extended in place beyond len(data) (appending writes only bytes no reader
// can see), and every other change builds new blocks. That is what lets Export hold block
// values without locks. A block no Export has captured (epoch) may take same-length
// replaces and a late record in place (replaceInPlace, insertInPlace); every reader but
// Export holds the collection lock.
// A block holds no pointer except data, so the GC sees one pointer per block, not per record.
type block struct {
	data    []byte
	minTS   int64
	maxTS   int64
	count   int32
	lastOff int32 // offset of the newest record, so Latest at or after maxTS is O(1)
	// marks is a sparse index: the offset and timestamp of records markEvery, 2·markEvery
	// and 3·markEvery, those the block holds (nMarks), so a walk that starts inside the block
	// (Latest at a time inside history, a range starting mid-block) decodes at most
	// markEvery records before the first one it wants instead of up to blockMaxRecords. A
	// block's bytes are only ever appended to (or the block is rebuilt by encodeBlock), so
	// marks stay valid as it grows. Inline, so that a block costs no extra allocation: 48
	// bytes per block, measured +0.5 byte per record (10M records of 50 bytes).
	marks [blockMaxRecords/markEvery - 1]mark
	// epoch is the collection's export count when data was allocated (0 when not known,
	// which is as safe: exports only grows from 0). While it equals the current count no
	// Export has captured data, so a writer may change it in place (replaceInPlace);
	// otherwise a frozen view may be reading it and every change builds a new block.
	epoch uint64
}

// markEvery is the spacing of a block's marks, in records.
const markEvery = 64

// mark locates one record of a block. off fits 16 bits: a block of more than one record
// holds at most blockTargetBytes.
type mark struct {
	ts  int64
	off uint16
}

// nMarks is how many of marks are set.
func (b *block) nMarks() int {
	return min(int(b.count-1)/markEvery, len(b.marks))
}

// addMark records that the record at off (timestamp ts) is the block's index-th (0-based),
// when index is a multiple of markEvery.
func (b *block) addMark(index int, ts int64, off int) {
	if k := index / markEvery; index%markEvery == 0 && k > 0 && k <= len(b.marks) {
		b.marks[k-1] = mark{ts: ts, off: uint16(off)}
	}
}

// seek returns where a forward walk of b's records that wants those with ts >= target (or
// the newest one <= target) can start: the offset and index of the last marked record with
// ts < target and the timestamp of the record before it (what readRec needs to decode it),
// or the block's start (0, 0, minTS).
func (b *block) seek(target int64) (off, idx int, prev int64) {
	lo, hi := 0, b.nMarks()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if b.marks[m].ts < target {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0, 0, b.minTS
	}
	m := b.marks[lo-1]
	delta, n := binary.Uvarint(b.data[m.off:])
	if n <= 0 { // cannot happen for a mark addMark set; walk from the start instead
		return 0, 0, b.minTS
	}
	return int(m.off), lo * markEvery, int64(uint64(m.ts) - delta)
}

// remark sets b's marks for the records from the one at off (index idx, preceded by a record
// at ts prev) to the end: after an edit in place moved them.
func (b *block) remark(off, idx int, prev int64) {
	for ; ; idx++ {
		ts, _, next, ok := readRec(b.data, off, prev)
		if !ok {
			return
		}
		b.addMark(idx, ts, off)
		prev, off = ts, next
	}
}

// editInPlace applies recs (ascending, unique ts) to b's own bytes when an in-place edit
// fits: same-length replaces (replaceInPlace), or one record that is new to b
// (insertInPlace) or replaces one of another length (resizeInPlace). Like spliceBlock it
// reports how many of b's records recs replaced and their payload bytes; ok is false, and b
// unchanged, when no edit fits. The caller must own b's bytes (block.epoch).
func editInPlace(b *block, recs []entry) (replaced int, replacedBytes int64, ok bool) {
	if replaceInPlace(b, recs) {
		for _, r := range recs {
			replacedBytes += int64(len(r.data)) // same lengths as the payloads replaced
		}
		return len(recs), replacedBytes, true
	}
	if len(recs) != 1 {
		return 0, 0, false
	}
	if insertInPlace(b, recs[0]) {
		return 0, 0, true
	}
	if old, ok := resizeInPlace(b, recs[0]); ok {
		return 1, int64(old), true
	}
	return 0, 0, false
}

// replaceInPlace overwrites the payloads of b's records with recs' (ascending, unique ts)
// when every one of them replaces a record of b with a payload of the same length, so the
// block's bytes keep their layout: a client re-sending records it sent before (a retried
// batch) changes a few bytes instead of copying the block. It reports false, changing
// nothing, when any record of recs is new to b or changes length. The caller must own b's
// bytes: no Export may have captured them (block.epoch).
func replaceInPlace(b *block, recs []entry) bool {
	var at [spliceMaxRecords]int // offset of each record's payload in b.data
	if len(recs) > len(at) {
		return false
	}
	off, _, prev := b.seek(recs[0].ts)
	for i, r := range recs {
		for {
			ts, p, next, ok := readRec(b.data, off, prev)
			if !ok || ts > r.ts {
				return false
			}
			prev, off = ts, next
			if ts == r.ts {
				if len(p) != len(r.data) {
					return false
				}
				at[i] = next - len(p)
				break
			}
		}
	}
	for i, r := range recs {
		copy(b.data[at[i]:], r.data)
	}
	return true
}

// insertInPlace adds r — a record older than b's newest, whose ts b does not hold — into
// the spare capacity of b's allocation: the bytes after it move up, the record after it gets
// its new ts delta, and the marks from there on are set again. A late record that lands in
// a document's open block (which grows through allocator size classes) costs a short move
// instead of a copy of the block and a new allocation. It reports false, changing nothing,
// when r is not older than b's newest, b holds r's ts, or the result does not fit b's
// capacity or a block's limits. The caller must own b's bytes (block.epoch).
func insertInPlace(b *block, r entry) bool {
	if int(b.count) >= blockMaxRecords || r.ts >= b.maxTS {
		return false
	}
	// Find the record r goes before: its offset, its index, and the ts of the one before it.
	off, idx, prev := b.seek(r.ts)
	var next int64
	for {
		ts, _, end, ok := readRec(b.data, off, prev)
		if !ok || ts == r.ts {
			return false
		}
		if ts > r.ts {
			next = ts
			break
		}
		prev, off = ts, end
		idx++
	}
	var oldDelta, newDelta uint64 // the next record's delta before; r's delta
	if idx > 0 {
		oldDelta, newDelta = uint64(next)-uint64(prev), uint64(r.ts)-uint64(prev)
	}
	nextDelta := uint64(next) - uint64(r.ts)
	recLen, oldLen, nextLen := recSize(newDelta, len(r.data)), uvarintLen(oldDelta), uvarintLen(nextDelta)
	n := len(b.data)
	size := n + recLen + nextLen - oldLen
	if size > cap(b.data) || size > blockTargetBytes {
		return false
	}
	data := b.data[:size]
	copy(data[off+recLen+nextLen:], data[off+oldLen:n]) // the next record's length and payload on
	binary.AppendUvarint(appendRec(data[off:off], newDelta, r.data), nextDelta)
	b.data = data
	b.count++
	if int(b.lastOff) == off {
		b.lastOff += int32(recLen) // the newest record is the next one: r's bytes are before it
	} else {
		b.lastOff += int32(size - n) // it is after the next one, which changed length too
	}
	if idx == 0 {
		b.minTS, prev = r.ts, r.ts
	}
	b.remark(off, idx, prev) // from r on
	return true
}

// resizeInPlace replaces b's record at r.ts by r when r's payload has another length (same
// lengths: replaceInPlace): the bytes after it move by the difference, and the offsets of the
// marks after it with them. A value re-sent with a longer or shorter payload (a corrected
// reading) then costs a short move instead of a copy of the block. It returns the replaced
// payload's length and true, or false, changing nothing, when b does not hold r.ts, the
// lengths are equal, or the result does not fit b's capacity or a block's limits. The caller
// must own b's bytes (block.epoch).
func resizeInPlace(b *block, r entry) (old int, ok bool) {
	if r.ts < b.minTS || r.ts > b.maxTS {
		return 0, false
	}
	off, _, prev := b.seek(r.ts)
	for {
		ts, p, next, ok := readRec(b.data, off, prev)
		if !ok || ts > r.ts {
			return 0, false
		}
		if ts < r.ts {
			prev, off = ts, next
			continue
		}
		if len(p) == len(r.data) {
			return 0, false
		}
		_, dn := binary.Uvarint(b.data[off:]) // the delta stays
		at := off + dn                        // where the payload's length starts
		n := len(b.data)
		size := n - (next - at) + uvarintLen(uint64(len(r.data))) + len(r.data)
		if size > cap(b.data) || (b.count > 1 && size > blockTargetBytes) {
			return 0, false
		}
		data := b.data[:max(n, size)]
		tail := at + uvarintLen(uint64(len(r.data))) + len(r.data)
		copy(data[tail:], data[next:n]) // the records after it
		copy(data[binary.PutUvarint(data[at:], uint64(len(r.data)))+at:], r.data)
		b.data = data[:size]
		shift := size - n
		if int(b.lastOff) > off {
			b.lastOff += int32(shift)
		}
		for k := range b.nMarks() {
			if int(b.marks[k].off) > off {
				b.marks[k].off = uint16(int(b.marks[k].off) + shift)
			}
		}
		return len(p), true
	}
}

// deleteInPlace removes b's record at ts from b's bytes: the bytes after it move down, the
// record after it gets its new ts delta, and the marks from there on are set again. A
// single-record delete (drec) then costs a short move instead of a copy of the block. It
// returns the removed payload's length and whether b held ts; b must keep at least one record
// (count > 1), and the caller must own b's bytes (block.epoch).
func deleteInPlace(b *block, ts int64) (payload int, found bool) {
	if b.count < 2 || ts < b.minTS || ts > b.maxTS {
		return 0, false
	}
	// Walk from the last mark before ts (its record is older than ts) to the record at ts,
	// keeping the offset and ts of the one before it.
	off, idx, prev := b.seek(ts)
	prevOff := -1
	var p []byte
	end := 0
	for {
		t, pl, next, ok := readRec(b.data, off, prev)
		if !ok || t > ts {
			return 0, false
		}
		if t == ts {
			p, end = pl, next
			break
		}
		prev, prevOff, off = t, off, next
		idx++
	}
	n := len(b.data)
	if end == n { // the newest record: the one before it becomes the newest
		b.data = b.data[:off]
		b.count--
		b.maxTS, b.lastOff = prev, int32(prevOff)
	} else {
		// The record after it now follows prev (or opens the block: delta 0).
		oldDelta, dn := binary.Uvarint(b.data[end:])
		if dn <= 0 {
			return 0, false
		}
		next := int64(uint64(ts) + oldDelta)
		newDelta := uint64(0)
		if idx > 0 {
			newDelta = uint64(next) - uint64(prev)
		}
		rest := b.data[end+dn : n] // the next record's length and payload, and all after it
		size := off + uvarintLen(newDelta) + len(rest)
		w := binary.AppendUvarint(b.data[:off], newDelta)
		copy(b.data[len(w):size], rest)
		b.data = b.data[:size]
		b.count--
		if int(b.lastOff) == end {
			b.lastOff = int32(off) // the next record was the newest
		} else {
			b.lastOff -= int32(n - size)
		}
		if idx == 0 {
			b.minTS, prev = next, next
		}
		b.remark(off, idx, prev) // from the next record on
	}
	for k := b.nMarks(); k < len(b.marks); k++ {
		b.marks[k] = mark{} // past the last record now
	}
	return len(p), true
}

// uvarintLen is the encoded length of binary.AppendUvarint(nil, v).
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// recSize is the encoded size of one record with the given delta and payload length.
func recSize(delta uint64, n int) int {
	return uvarintLen(delta) + uvarintLen(uint64(n)) + n
}

// appendRec appends the encoding of one record to dst.
func appendRec(dst []byte, delta uint64, payload []byte) []byte {
	dst = binary.AppendUvarint(dst, delta)
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	return append(dst, payload...)
}

// readRec decodes the record at data[off:] whose predecessor has timestamp prev. It returns
// the offset of the next record; ok is false at the end of data or on malformed input.
func readRec(data []byte, off int, prev int64) (ts int64, payload []byte, next int, ok bool) {
	if off >= len(data) {
		return 0, nil, off, false
	}
	// Both varints are usually one byte (a small ts step, a payload under 128 bytes): take
	// that case inline, as scans read every record this way. (Written out twice on purpose:
	// a helper for it does not inline and cost 40% more instructions per Range.)
	var delta uint64
	if c := data[off]; c < 0x80 {
		delta = uint64(c)
		off++
	} else {
		d, n := binary.Uvarint(data[off:])
		if n <= 0 {
			return 0, nil, off, false
		}
		delta = d
		off += n
	}
	if off >= len(data) {
		return 0, nil, off, false
	}
	var l uint64
	if c := data[off]; c < 0x80 {
		l = uint64(c)
		off++
	} else {
		v, n := binary.Uvarint(data[off:])
		if n <= 0 {
			return 0, nil, off, false
		}
		l = v
		off += n
	}
	if l > uint64(len(data)-off) {
		return 0, nil, off, false
	}
	end := off + int(l)
	return int64(uint64(prev) + delta), data[off:end:end], end, true
}

// payloadAt returns the payload of the record encoded at data[off:].
func payloadAt(data []byte, off int32) []byte {
	_, p, _, _ := readRec(data, int(off), 0)
	return p
}

// errBadBlock reports a block encoding that decodeBlock rejects.
var errBadBlock = errors.New("engine: malformed block")

// decodeBlock validates and walks an encoded block whose first record has timestamp base,
// calling fn for every record. Unlike the hot-path readers it checks everything (truncation,
// non-ascending or overflowing timestamps), so it is the decoder the fuzz target exercises.
func decodeBlock(base int64, data []byte, fn func(ts int64, payload []byte)) (count int, err error) {
	prev := base
	for off := 0; off < len(data); count++ {
		delta, n := binary.Uvarint(data[off:])
		if n <= 0 {
			return count, fmt.Errorf("record %d at offset %d: bad ts delta: %w", count, off, errBadBlock)
		}
		if count == 0 && delta != 0 {
			return count, fmt.Errorf("record 0: delta %d, want 0: %w", delta, errBadBlock)
		}
		if count > 0 && (delta == 0 || delta > uint64(math.MaxInt64)-uint64(prev)) {
			return count, fmt.Errorf("record %d at offset %d: ts delta %d out of range: %w", count, off, delta, errBadBlock)
		}
		l, m := binary.Uvarint(data[off+n:])
		if m <= 0 || l > uint64(len(data)-off-n-m) {
			return count, fmt.Errorf("record %d at offset %d: bad payload length: %w", count, off, errBadBlock)
		}
		start := off + n + m
		end := start + int(l)
		ts := int64(uint64(prev) + delta)
		fn(ts, data[start:end:end])
		prev, off = ts, end
	}
	return count, nil
}

// entry is a decoded record used while rebuilding blocks (never stored).
type entry struct {
	ts   int64
	data []byte
}

// appendEntries decodes every record of b onto dst.
func appendEntries(dst []entry, b *block) []entry {
	prev := b.minTS
	for off := 0; ; {
		ts, p, next, ok := readRec(b.data, off, prev)
		if !ok {
			return dst
		}
		dst = append(dst, entry{ts, p})
		prev, off = ts, next
	}
}

// encodeBlock builds one exactly-sized block from ascending, unique entries (len > 0).
func encodeBlock(es []entry) block {
	size := 0
	prev := es[0].ts
	for _, e := range es {
		size += recSize(uint64(e.ts)-uint64(prev), len(e.data))
		prev = e.ts
	}
	buf := make([]byte, 0, size)
	b := block{minTS: es[0].ts, count: int32(len(es))}
	prev = es[0].ts
	var last int
	for i, e := range es {
		last = len(buf)
		b.addMark(i, e.ts, last)
		buf = appendRec(buf, uint64(e.ts)-uint64(prev), e.data)
		prev = e.ts
	}
	b.data, b.maxTS, b.lastOff = buf, prev, int32(last)
	return b
}

// appendBlocks encodes ascending, unique entries as one or more blocks appended to dst. It
// splits into evenly sized blocks within blockTargetBytes/blockMaxRecords, so a rebuilt block
// that overflows becomes two half-full blocks rather than a full one and a sliver.
func appendBlocks(dst []block, es []entry) []block {
	if len(es) == 0 {
		return dst
	}
	total := 0
	prev := es[0].ts
	for _, e := range es {
		total += recSize(uint64(e.ts)-uint64(prev), len(e.data))
		prev = e.ts
	}
	chunks := max((total+blockTargetBytes-1)/blockTargetBytes, (len(es)+blockMaxRecords-1)/blockMaxRecords)
	if chunks <= 1 && total <= blockTargetBytes {
		return append(dst, encodeBlock(es))
	}
	target := min((total+chunks-1)/chunks, blockTargetBytes)
	perChunk := (len(es) + chunks - 1) / chunks
	for len(es) > 0 {
		size, n := 0, 0
		for n < len(es) && n < perChunk {
			delta := uint64(0)
			if n > 0 {
				delta = uint64(es[n].ts) - uint64(es[n-1].ts)
			}
			rs := recSize(delta, len(es[n].data))
			if n > 0 && size+rs > target {
				break
			}
			size += rs
			n++
		}
		dst = append(dst, encodeBlock(es[:n]))
		es = es[n:]
	}
	return dst
}

// spliceBlock builds the block holding b's records, without those with from <= ts <= to
// (none when from > to), merged with recs (ascending, unique ts; recs win on equal ts),
// without decoding and re-encoding all of them: runs of b's records whose encoding does not
// change are copied as they are, and only the records of recs and the old record right after
// each change (its ts delta changes) are encoded. raw is scratch space for the result, which
// is then copied into an exactly sized allocation. ok is false when the result does not fit
// one block (the caller then splits it, appendBlocks; gone is then 0) or is empty (every
// record removed). gone and goneBytes count b's records replaced or removed and their
// payload bytes.
//
// It walks only the records between the first change and the last one: the walk starts at
// b's last mark before the first change (the records before it, and their marks, stay as
// they are), and once every change is behind it and the result holds as many records as b
// did up to there, the rest of b — its bytes, and its marks moved by the change in length —
// is copied unwalked. So a replace walks ~markEvery/2 records instead of the whole block; an
// insert or delete still walks to the end, as it moves every later record's index (and so
// the marks).
//
// This is the cost of an out-of-order insert, a replace or a single-record delete. Against
// decoding every record and encoding the block again it took re-sending 1M records over
// 10,000 documents from 79–95k to 126–137k records/s end to end, and BenchmarkInsertOutOfOrder
// from 125–137k to 154–167k (BENCHMARKS.md); the copy-on-write allocation remains.
func spliceBlock(b *block, recs []entry, from, to int64, raw []byte) (nb block, rawOut []byte, gone int, goneBytes int64, ok bool) {
	data := b.data
	dst := raw[:0]
	var (
		runStart, off int       // the run of b's bytes [runStart, off) is still to be copied
		prevOld       = b.minTS // ts of b's record before off
		prevOut       int64     // ts of the last record put in the result
		count         int       // records in the result
		idx           int       // index in b of the record at off
		lastOff       int       // offset of the result's last record
	)
	// Start at b's last mark before the first change: the records before it keep their
	// bytes, indexes and marks.
	first := int64(math.MaxInt64)
	if len(recs) > 0 {
		first = recs[0].ts
	}
	if from <= to {
		first = min(first, from)
	}
	if o, i, p := b.seek(first); i > 0 {
		off, idx, count = o, i, i
		prevOld, prevOut, nb.minTS = p, p, b.minTS
		k := i / markEvery
		copy(nb.marks[:k-1], b.marks[:k-1]) // the walk sets mark k-1 (the record at off) on
	}
	// emit encodes one record at the end of the result, after the pending run.
	emit := func(ts int64, payload []byte) {
		dst = append(dst, data[runStart:off]...)
		delta := uint64(0)
		if count > 0 {
			delta = uint64(ts) - uint64(prevOut)
		}
		if count == 0 {
			nb.minTS = ts
		}
		lastOff = len(dst)
		nb.addMark(count, ts, lastOff)
		dst = appendRec(dst, delta, payload)
		prevOut = ts
		count++
		runStart = off
	}
	ts, p, next, more := readRec(data, off, prevOld)
	for more || len(recs) > 0 {
		// kept: b's record at off keeps its encoding (its predecessor is the same).
		kept := (off == 0 && count == 0) || (off > 0 && count > 0 && prevOut == prevOld)
		if kept && len(recs) == 0 && (from > to || ts > to) && count == idx {
			// Nothing changes from here on and every record keeps its index: copy the rest
			// of b, and its marks from index idx on, moved by the change in length.
			shift := len(dst) - runStart
			for k := max((idx+markEvery-1)/markEvery-1, 0); k < b.nMarks(); k++ {
				nb.marks[k] = mark{ts: b.marks[k].ts, off: uint16(int(b.marks[k].off) + shift)}
			}
			if count == 0 {
				nb.minTS = b.minTS
			}
			count, prevOut, lastOff = int(b.count), b.maxTS, int(b.lastOff)+shift
			off = len(data)
			break
		}
		switch {
		case !more || (len(recs) > 0 && recs[0].ts < ts):
			emit(recs[0].ts, recs[0].data) // new record before b's record at off
			recs = recs[1:]
			continue
		case len(recs) > 0 && recs[0].ts == ts:
			emit(recs[0].ts, recs[0].data) // replaces b's record at off
			recs = recs[1:]
			gone++
			goneBytes += int64(len(p))
			runStart = next
		case from <= ts && ts <= to: // removed
			dst = append(dst, data[runStart:off]...)
			runStart = next
			gone++
			goneBytes += int64(len(p))
		case kept:
			// Kept, and its delta from the record before it is the same as in b: it
			// stays in the run to copy.
			if count == 0 {
				nb.minTS = ts
			}
			lastOff = len(dst) + off - runStart
			nb.addMark(count, ts, lastOff)
			prevOut = ts
			count++
		default:
			emit(ts, p) // kept, but the record before it changed
			runStart = next
		}
		prevOld, off = ts, next
		idx++
		ts, p, next, more = readRec(data, off, prevOld)
	}
	dst = append(dst, data[runStart:off]...)
	if count == 0 {
		return block{}, dst, gone, goneBytes, false // every record removed
	}
	if count > blockMaxRecords || (count > 1 && len(dst) > blockTargetBytes) {
		return block{}, dst, 0, 0, false
	}
	nb.data = append([]byte(nil), dst...)
	nb.maxTS, nb.count, nb.lastOff = prevOut, int32(count), int32(lastOff)
	return nb, dst, gone, goneBytes, true
}
