package engine

import "sync/atomic"

import "slices"

// document is the time series of one document: blocks in ascending, non-overlapping ts order
// (blocks[i].maxTS < blocks[i+1].minTS), none empty. Guarded by its collection's lock.
type document struct {
	name   string
	blocks []block
	// enc is the reply fragment of the newest record, kept by LatestEncoded; every change
	// goes through collection.own, which drops it. Beside blocks: Latest reads both.
	enc     atomic.Pointer[[]byte]
	count   int    // records
	payload int64  // payload bytes
	epoch   uint64 // collection.exports when blocks was last copied; see collection.own
	idx     int    // position in collection.list
}

// maxTS is the newest timestamp; only valid when count > 0.
func (d *document) maxTS() int64 { return d.blocks[len(d.blocks)-1].maxTS }

// firstBlockFrom returns the index of the first block with maxTS >= ts (len(blocks) if none).
func (d *document) firstBlockFrom(ts int64) int {
	lo, hi := 0, len(d.blocks)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if d.blocks[m].maxTS < ts {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// lastBlockUpTo returns the index of the last block with minTS <= ts (-1 if none).
func (d *document) lastBlockUpTo(ts int64) int {
	lo, hi := 0, len(d.blocks)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if d.blocks[m].minTS <= ts {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// appendNewest adds a record newer than every record of d (or d's first). This is the hot
// path: it writes into the spare capacity of the last block, growing it through size
// classes, and starts a new block when the last one is full. No per-record allocation.
func (d *document) appendNewest(ts int64, payload []byte) {
	d.count++
	d.payload += int64(len(payload))
	if n := len(d.blocks); n > 0 {
		b := &d.blocks[n-1]
		delta := uint64(ts) - uint64(b.maxTS)
		sz := recSize(delta, len(payload))
		if int(b.count) < blockMaxRecords && len(b.data)+sz <= blockTargetBytes {
			if cap(b.data)-len(b.data) < sz {
				nb := make([]byte, len(b.data), growCap(len(b.data)+sz))
				copy(nb, b.data)
				b.data, b.epoch = nb, d.epoch
			}
			b.lastOff = int32(len(b.data))
			b.addMark(int(b.count), ts, len(b.data))
			b.data = appendRec(b.data, delta, payload)
			b.maxTS = ts
			b.count++
			return
		}
		// Seal the full block. A block sealed by record count (tiny payloads) may sit in a
		// much larger allocation; copy it to its exact size then.
		if cap(b.data)-len(b.data) > len(b.data)/8 {
			b.data, b.epoch = append(make([]byte, 0, len(b.data)), b.data...), d.epoch
		}
	}
	sz := recSize(0, len(payload))
	buf := appendRec(make([]byte, 0, growCap(sz)), 0, payload)
	d.blocks = append(d.blocks, block{data: buf, minTS: ts, maxTS: ts, count: 1, epoch: d.epoch})
}

// spliceMaxRecords is the most records merge splices into one block (spliceBlock).
const spliceMaxRecords = blockMaxRecords / 8

// merge inserts or replaces recs (ascending, unique ts, any position) into d, rebuilding
// only the blocks they touch. It returns how many records were added (not replaced) and the
// change in payload bytes. sc is reusable working space.
func (d *document) merge(recs []entry, sc *insertScratch) (added int, bytes int64) {
	for _, r := range recs {
		bytes += int64(len(r.data))
	}
	added = len(recs)
	if len(d.blocks) == 0 {
		d.blocks = appendBlocks(d.blocks, recs)
		for i := range d.blocks {
			d.blocks[i].epoch = d.epoch
		}
	} else {
		// Only blocks first..end-1 change; splice their replacements in place. Export
		// copies the index, so rewriting it under the write lock is safe.
		last := len(d.blocks) - 1
		first := min(d.firstBlockFrom(recs[0].ts), last)
		end := min(d.firstBlockFrom(recs[len(recs)-1].ts), last) + 1
		var midBuf [4]block // most merges touch one block: no allocation for the list
		mid := midBuf[:0]
		j := 0
		for bi := first; bi < end; bi++ {
			b := &d.blocks[bi]
			k := j
			for k < len(recs) && (bi == last || recs[k].ts <= b.maxTS) {
				k++
			}
			if k == j {
				mid = append(mid, *b)
				continue
			}
			if b.epoch == d.epoch {
				// A block no Export holds takes small edits in its own bytes: no new block.
				if n, nb, ok := editInPlace(b, recs[j:k]); ok {
					added -= n
					bytes -= nb
					mid = append(mid, *b)
					j = k
					continue
				}
			}
			built := len(mid)
			var n int
			var nb int64
			var blk block
			var fits bool
			// A few records into a block (out-of-order inserts, replaces) are spliced in;
			// many are merged and the result split into blocks as needed.
			if k-j <= spliceMaxRecords {
				blk, sc.raw, n, nb, fits = spliceBlock(b, recs[j:k], 1, 0, sc.raw)
			}
			if fits {
				mid = append(mid, blk)
			} else {
				sc.decoded, n, nb = mergeEntries(sc.decoded[:0], b, recs[j:k])
				mid = appendBlocks(mid, sc.decoded)
			}
			for i := range mid[built:] {
				mid[built+i].epoch = d.epoch // new bytes: this writer's until the next Export
			}
			added -= n
			bytes -= nb
			j = k
		}
		clear(sc.decoded) // drop references to old payloads so they can be collected
		sc.decoded = sc.decoded[:0]
		d.blocks = slices.Replace(d.blocks, first, end, mid...)
	}
	d.count += added
	d.payload += bytes
	return added, bytes
}

// mergeEntries writes the records of b merged with recs (recs win on equal ts) onto dst,
// and reports how many records of b were replaced and their payload bytes.
func mergeEntries(dst []entry, b *block, recs []entry) (out []entry, replaced int, replacedBytes int64) {
	prev := b.minTS
	off := 0
	ts, p, next, ok := readRec(b.data, off, prev)
	for ok || len(recs) > 0 {
		switch {
		case !ok || (len(recs) > 0 && recs[0].ts < ts):
			dst = append(dst, recs[0])
			recs = recs[1:]
			continue
		case len(recs) > 0 && recs[0].ts == ts:
			dst = append(dst, recs[0])
			recs = recs[1:]
			replaced++
			replacedBytes += int64(len(p))
		default:
			dst = append(dst, entry{ts, p})
		}
		prev, off = ts, next
		ts, p, next, ok = readRec(b.data, off, prev)
	}
	return dst, replaced, replacedBytes
}

// deleteRange removes records with from <= ts <= to. It returns how many records and payload
// bytes were removed. Cost: O(log n) to find the range plus O(block + removed records).
func (d *document) deleteRange(from, to int64, sc *insertScratch) (removed int, bytes int64) {
	if from > to || len(d.blocks) == 0 {
		return 0, 0
	}
	i := d.firstBlockFrom(from)
	if i == len(d.blocks) || d.blocks[i].minTS > to {
		return 0, 0
	}
	if b := &d.blocks[i]; from == to && b.count > 1 && b.epoch == d.epoch {
		// One record (drec), in a block no Export has captured: take it out in place.
		n, found := deleteInPlace(b, from)
		if !found {
			return 0, 0
		}
		d.count--
		d.payload -= int64(n)
		return 1, int64(n)
	}
	// A range strictly inside one block's span may still miss every record; check before
	// building anything. In every other case block i's minTS or maxTS is in range.
	if b := &d.blocks[i]; b.minTS < from && b.maxTS > to && !blockHasIn(b, from, to) {
		return 0, 0
	}
	first := i
	var mid []block
	for ; i < len(d.blocks); i++ {
		b := &d.blocks[i]
		if b.minTS > to {
			break
		}
		if b.minTS >= from && b.maxTS <= to {
			// Whole block goes; walk only the headers to account its payload.
			removed += int(b.count)
			prev := b.minTS
			for off := 0; ; {
				ts, p, next, ok := readRec(b.data, off, prev)
				if !ok {
					break
				}
				bytes += int64(len(p))
				prev, off = ts, next
			}
			continue
		}
		nb, raw, n, nbytes, ok := spliceBlock(b, nil, from, to, sc.raw)
		sc.raw = raw
		removed += n
		bytes += nbytes
		switch {
		case n == 0:
			mid = append(mid, *b) // nothing of this block was in range
		case ok:
			nb.epoch = d.epoch
			mid = append(mid, nb)
		} // else every record went (a removal only shrinks a block, so it always fits)
	}
	d.blocks = slices.Replace(d.blocks, first, i, mid...)
	d.count -= removed
	d.payload -= bytes
	return removed, bytes
}

// blockHasIn reports whether b holds a record with from <= ts <= to.
func blockHasIn(b *block, from, to int64) bool {
	prev := b.minTS
	for off := 0; ; {
		ts, _, next, ok := readRec(b.data, off, prev)
		if !ok || ts > to {
			return false
		}
		if ts >= from {
			return true
		}
		prev, off = ts, next
	}
}

// latest returns the newest record with ts <= at.
func (d *document) latest(at int64) (ts int64, payload []byte, ok bool) {
	n := len(d.blocks)
	if n == 0 {
		return 0, nil, false
	}
	if last := &d.blocks[n-1]; at >= last.maxTS {
		return last.maxTS, payloadAt(last.data, last.lastOff), true
	}
	i := d.lastBlockUpTo(at)
	if i < 0 {
		return 0, nil, false
	}
	b := &d.blocks[i]
	if at >= b.maxTS {
		return b.maxTS, payloadAt(b.data, b.lastOff), true
	}
	off, _, prev := b.seek(at)
	for {
		t, p, next, more := readRec(b.data, off, prev)
		if !more || t > at {
			return ts, payload, ok
		}
		ts, payload, ok = t, p, true
		prev, off = t, next
	}
}

// recRef locates one record inside a block for reverse iteration.
type recRef struct {
	ts         int64
	start, end int32
}

// scan calls fn for records with q.From <= ts <= q.To in q's order, applying Keep before
// Limit. It stops early when fn returns false.
func (d *document) scan(q RangeQuery, fn func(ts int64, payload []byte)) {
	if q.From > q.To || len(d.blocks) == 0 {
		return
	}
	emitted := 0
	emit := func(ts int64, p []byte) bool {
		if q.Keep != nil && !q.Keep(p) {
			return true
		}
		fn(ts, p)
		emitted++
		return q.Limit <= 0 || emitted < q.Limit
	}
	if !q.Reverse {
		for i := d.firstBlockFrom(q.From); i < len(d.blocks) && d.blocks[i].minTS <= q.To; i++ {
			b := &d.blocks[i]
			off, _, prev := b.seek(q.From)
			for {
				ts, p, next, ok := readRec(b.data, off, prev)
				if !ok {
					break
				}
				if ts > q.To {
					return
				}
				if ts >= q.From && !emit(ts, p) {
					return
				}
				prev, off = ts, next
			}
		}
		return
	}
	var stack [blockMaxRecords]recRef
	for i := d.lastBlockUpTo(q.To); i >= 0 && d.blocks[i].maxTS >= q.From; i-- {
		b := &d.blocks[i]
		refs := stack[:0]
		if int(b.count) > len(stack) {
			refs = make([]recRef, 0, b.count) // only for blocks built before a limit change
		}
		off, _, prev := b.seek(q.From)
		for {
			ts, p, next, ok := readRec(b.data, off, prev)
			if !ok || ts > q.To {
				break
			}
			if ts >= q.From {
				start := int32(next - len(p))
				refs = append(refs, recRef{ts, start, int32(next)})
			}
			prev, off = ts, next
		}
		for k := len(refs) - 1; k >= 0; k-- {
			r := refs[k]
			if !emit(r.ts, b.data[r.start:r.end:r.end]) {
				return
			}
		}
	}
}
