package engine

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// entriesFrom derives ascending, unique records from fuzz input: each record takes a ts
// delta (varint, at least 1) and a payload length from the input, payload bytes following.
func entriesFrom(base int64, in []byte) []entry {
	var es []entry
	ts := base
	total := 0
	for len(in) > 0 && len(es) < 2000 && total < 64<<10 {
		d, n := binary.Uvarint(in)
		if n <= 0 {
			break
		}
		in = in[n:]
		if len(es) > 0 {
			d = max(d, 1)
			if d > uint64(math.MaxInt64)-uint64(ts) {
				break // would pass MaxInt64
			}
			ts = int64(uint64(ts) + d)
		}
		l := 0
		if len(in) > 0 {
			l = int(in[0]) % 64
			if in[0] == 0xff {
				l = 9000 // one oversized record now and then
			}
			in = in[1:]
		}
		total += l
		p := bytes.Repeat([]byte{byte(l)}, l)
		copy(p, in)
		es = append(es, entry{ts, p})
	}
	return es
}

func checkRoundTrip(t *testing.T, es []entry) {
	t.Helper()
	blocks := appendBlocks(nil, es)
	var got []entry
	for i := range blocks {
		b := &blocks[i]
		if b.count > blockMaxRecords || (b.count > 1 && len(b.data) > blockTargetBytes) {
			t.Fatalf("block %d: %d records, %d bytes", i, b.count, len(b.data))
		}
		n, err := decodeBlock(b.minTS, b.data, func(ts int64, p []byte) { got = append(got, entry{ts, bytes.Clone(p)}) })
		if err != nil || n != int(b.count) {
			t.Fatalf("block %d: decoded %d of %d: %v", i, n, b.count, err)
		}
		if got[len(got)-1].ts != b.maxTS {
			t.Fatalf("block %d: maxTS %d, last %d", i, b.maxTS, got[len(got)-1].ts)
		}
		if p := payloadAt(b.data, b.lastOff); !bytes.Equal(p, got[len(got)-1].data) {
			t.Fatalf("block %d: lastOff payload differs", i)
		}
	}
	if len(got) != len(es) {
		t.Fatalf("decoded %d records, want %d", len(got), len(es))
	}
	for i := range es {
		if got[i].ts != es[i].ts || !bytes.Equal(got[i].data, es[i].data) {
			t.Fatalf("record %d: got %d/%q, want %d/%q", i, got[i].ts, got[i].data, es[i].ts, es[i].data)
		}
	}
	// Appending one by one (the hot path) must give the same records.
	d := &document{}
	for _, e := range es {
		d.appendNewest(e.ts, e.data)
	}
	var again []entry
	for i := range d.blocks {
		again = appendEntries(again, &d.blocks[i])
	}
	if len(again) != len(es) {
		t.Fatalf("appendNewest: %d records, want %d", len(again), len(es))
	}
	for i := range es {
		if again[i].ts != es[i].ts || !bytes.Equal(again[i].data, es[i].data) {
			t.Fatalf("appendNewest record %d differs", i)
		}
	}
}

// FuzzBlock checks that the block decoder never panics on arbitrary bytes, that what it
// accepts re-encodes to the same records, and that encoding any record list round-trips.
func FuzzBlock(f *testing.F) {
	f.Add(int64(0), []byte{})
	f.Add(int64(1700000000), []byte{0, 3, 'a', 'b', 'c', 1, 0})
	f.Add(int64(math.MinInt64), []byte{0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 'x'})
	f.Add(int64(math.MaxInt64), []byte{0, 5, 1, 2, 3, 4, 5})
	f.Add(int64(-5), bytes.Repeat([]byte{1, 40}, 300))
	f.Add(int64(7), []byte{0, 0xff, 1, 0xff, 2, 0})
	f.Fuzz(func(t *testing.T, base int64, in []byte) {
		var es []entry
		_, err := decodeBlock(base, in, func(ts int64, p []byte) {
			if len(es) > 0 && ts <= es[len(es)-1].ts {
				t.Fatalf("decoder accepted non-ascending ts %d after %d", ts, es[len(es)-1].ts)
			}
			es = append(es, entry{ts, p})
		})
		if err == nil && len(es) > 0 {
			checkRoundTrip(t, es)
		}
		if es := entriesFrom(base, in); len(es) > 0 {
			checkRoundTrip(t, es)
		}
	})
}

func TestDecodeBlockRejects(t *testing.T) {
	tests := []struct {
		name string
		base int64
		data []byte
	}{
		{"truncated delta", 0, []byte{0x80}},
		{"first delta not zero", 0, []byte{1, 0}},
		{"zero delta later", 0, []byte{0, 0, 0, 0}},
		{"length past end", 0, []byte{0, 5, 'a'}},
		{"missing length", 0, []byte{0}},
		{"ts overflow", math.MaxInt64, []byte{0, 0, 1, 0}},
		{"varint overflow", 0, []byte{0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeBlock(tt.base, tt.data, func(int64, []byte) {}); err == nil {
				t.Fatal("accepted malformed block")
			}
		})
	}
}

func TestGrowStepsAreBounded(t *testing.T) {
	prev := 0
	for _, s := range growSteps {
		if s <= prev || (prev >= 2048 && float64(s)/float64(prev) > 1.5) {
			t.Fatalf("grow step %d after %d", s, prev)
		}
		prev = s
	}
	if prev != blockTargetBytes {
		t.Fatalf("last grow step %d, want %d", prev, blockTargetBytes)
	}
	if got := growCap(blockTargetBytes + 1); got != blockTargetBytes+1 {
		t.Fatalf("growCap over target = %d", got)
	}
}

// FuzzSpliceBlock checks spliceBlock against the plain rebuild: for any block, and any
// records merged into it or any range of timestamps removed from it, the spliced block is
// byte for byte the block encodeBlock makes of the resulting records (data, bounds, count,
// last offset, marks), with the same counts of replaced or removed records, or spliceBlock
// says it does not fit when the resulting records do not fit one block.
func FuzzSpliceBlock(f *testing.F) {
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 150), int64(1), []byte{0, 50}, false, int64(0), uint16(0))
	f.Add(int64(100), bytes.Repeat([]byte{1, 50}, 200), int64(100), bytes.Repeat([]byte{3, 50}, 20), false, int64(0), uint16(0))
	f.Add(int64(-5), []byte{0, 3, 1, 3}, int64(-9), []byte{0, 1, 1, 1, 9, 1}, false, int64(0), uint16(0))
	f.Add(int64(math.MaxInt64-1000), bytes.Repeat([]byte{4, 10}, 100), int64(math.MaxInt64-500), []byte{0, 7, 200, 7}, false, int64(0), uint16(0))
	f.Add(int64(0), bytes.Repeat([]byte{1, 60}, 130), int64(0), bytes.Repeat([]byte{2, 60}, 40), false, int64(0), uint16(0))
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 150), int64(0), []byte{}, true, int64(10), uint16(0))
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 150), int64(0), []byte{}, true, int64(0), uint16(7))
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 150), int64(0), []byte{}, true, int64(100), uint16(40))
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 150), int64(0), []byte{}, true, int64(-1), uint16(1000))
	// Changes after a mark (the walk starts there) and short of the end (the rest is copied):
	// a replace, an insert, a delete and a replace that grows the record.
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 150), int64(200), []byte{0, 50}, false, int64(0), uint16(0))
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 150), int64(201), []byte{0, 50}, false, int64(0), uint16(0))
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 150), int64(0), []byte{}, true, int64(200), uint16(0))
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 200), int64(130), []byte{0, 200, 2, 1}, false, int64(0), uint16(0))
	// One record inserted in place: late by one, in the middle, before the first, past a mark.
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 100), int64(197), []byte{0, 50}, false, int64(0), uint16(100))
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 100), int64(101), []byte{0, 20}, false, int64(0), uint16(60))
	f.Add(int64(10), bytes.Repeat([]byte{2, 5}, 100), int64(3), []byte{0, 5}, false, int64(0), uint16(30))
	f.Add(int64(0), bytes.Repeat([]byte{2, 5}, 150), int64(131), []byte{0, 5}, false, int64(0), uint16(30))
	f.Add(int64(0), bytes.Repeat([]byte{2, 5}, 150), int64(131), []byte{0, 5}, false, int64(0), uint16(2))
	// One record deleted in place: the first, the newest, one at a mark, one past a mark,
	// one that is not there, one of two, the one whose mark goes with it.
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 150), int64(0), []byte{}, true, int64(0), uint16(0))
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 150), int64(0), []byte{}, true, int64(298), uint16(0))
	f.Add(int64(0), bytes.Repeat([]byte{2, 5}, 150), int64(0), []byte{}, true, int64(128), uint16(0))
	f.Add(int64(0), bytes.Repeat([]byte{2, 5}, 150), int64(0), []byte{}, true, int64(130), uint16(0))
	f.Add(int64(0), bytes.Repeat([]byte{2, 5}, 150), int64(0), []byte{}, true, int64(131), uint16(0))
	f.Add(int64(7), []byte{0, 1, 200, 1, 1}, int64(0), []byte{}, true, int64(7), uint16(0))
	f.Add(int64(0), bytes.Repeat([]byte{2, 5}, 129), int64(0), []byte{}, true, int64(256), uint16(0))
	// One replace of another length, in place: longer (with room), shorter, the newest,
	// the first, one before a mark.
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 100), int64(100), []byte{0, 60}, false, int64(0), uint16(100))
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 150), int64(100), []byte{0, 3}, false, int64(0), uint16(0))
	f.Add(int64(0), bytes.Repeat([]byte{2, 5}, 150), int64(298), []byte{0, 200}, false, int64(0), uint16(300))
	f.Add(int64(0), bytes.Repeat([]byte{2, 5}, 150), int64(0), []byte{0, 1}, false, int64(0), uint16(0))
	f.Add(int64(0), bytes.Repeat([]byte{2, 5}, 150), int64(126), []byte{0, 130}, false, int64(0), uint16(500))
	// Same-length replaces, in place: one, several, one past a mark.
	f.Add(int64(0), bytes.Repeat([]byte{2, 50}, 150), int64(200), []byte{0, 50, 4, 50, 60, 50}, false, int64(0), uint16(0))
	f.Add(int64(0), bytes.Repeat([]byte{2, 7}, 200), int64(2), []byte{0, 7}, false, int64(0), uint16(0))
	f.Fuzz(func(t *testing.T, base int64, blockIn []byte, recBase int64, recIn []byte, remove bool, from int64, span uint16) {
		old := entriesFrom(base, blockIn)
		if len(old) == 0 {
			return
		}
		b := appendBlocks(nil, old)[0]
		var (
			recs      []entry
			want      []entry
			wantN     int
			wantBytes int64
			lo, hi    = int64(1), int64(0) // nothing removed
		)
		if remove {
			lo, hi = from, from+int64(span)
			if hi < lo {
				return // overflow
			}
			for _, e := range appendEntries(nil, &b) {
				if lo <= e.ts && e.ts <= hi {
					wantN++
					wantBytes += int64(len(e.data))
				} else {
					want = append(want, e)
				}
			}
		} else {
			if recs = entriesFrom(recBase, recIn); len(recs) == 0 {
				return
			}
			want, wantN, wantBytes = mergeEntries(nil, &b, recs)
		}
		if remove && lo == hi {
			checkDeleteInPlace(t, b, lo, want, wantN, wantBytes)
		}
		if !remove {
			checkReplaceInPlace(t, b, recs, want)
			if len(recs) == 1 {
				checkResizeInPlace(t, b, recs[0], want, int(span%512))
				checkInsertInPlace(t, b, recs[0], want, int(span%512))
			}
		}
		got, _, n, nbytes, ok := spliceBlock(&b, recs, lo, hi, nil)
		fits := len(want) > 0 && len(want) <= blockMaxRecords
		if fits && len(want) > 1 {
			size := 0
			for i, e := range want {
				delta := uint64(0)
				if i > 0 {
					delta = uint64(e.ts) - uint64(want[i-1].ts)
				}
				size += recSize(delta, len(e.data))
			}
			fits = size <= blockTargetBytes
		}
		if ok != fits {
			t.Fatalf("spliceBlock ok=%v, but the %d resulting records fit one block: %v", ok, len(want), fits)
		}
		if len(want) == 0 && (n != wantN || nbytes != wantBytes) {
			t.Fatalf("emptied block: removed %d records (%d bytes), want %d (%d)", n, nbytes, wantN, wantBytes)
		}
		if !ok {
			return
		}
		ref := encodeBlock(want)
		if !bytes.Equal(got.data, ref.data) || got.minTS != ref.minTS || got.maxTS != ref.maxTS ||
			got.count != ref.count || got.lastOff != ref.lastOff || got.marks != ref.marks {
			t.Fatalf("spliced block differs from the rebuilt one:\n got %+v\nwant %+v", got, ref)
		}
		if n != wantN || nbytes != wantBytes {
			t.Fatalf("replaced or removed %d records (%d bytes), want %d (%d)", n, nbytes, wantN, wantBytes)
		}
	})
}

// checkReplaceInPlace runs replaceInPlace on a copy of b: when every record of recs replaces
// one of b's with a payload of the same length (and there are few enough) it must succeed
// and leave the block encodeBlock makes of want; otherwise it must leave the bytes alone.
func checkReplaceInPlace(t *testing.T, b block, recs, want []entry) {
	t.Helper()
	old := map[int64]int{}
	for _, e := range appendEntries(nil, &b) {
		old[e.ts] = len(e.data)
	}
	eligible := len(recs) <= spliceMaxRecords
	for _, r := range recs {
		if n, ok := old[r.ts]; !ok || n != len(r.data) {
			eligible = false
		}
	}
	cp := b
	cp.data = bytes.Clone(b.data)
	done := replaceInPlace(&cp, recs)
	if done != eligible {
		t.Fatalf("replaceInPlace = %v for records that replace same-length ones: %v", done, eligible)
	}
	if !done {
		if !bytes.Equal(cp.data, b.data) {
			t.Fatalf("replaceInPlace refused but changed the block")
		}
		return
	}
	ref := encodeBlock(want)
	if !bytes.Equal(cp.data, ref.data) || cp.minTS != ref.minTS || cp.maxTS != ref.maxTS ||
		cp.count != ref.count || cp.lastOff != ref.lastOff || cp.marks != ref.marks {
		t.Fatalf("block replaced in place differs from the rebuilt one:\n got %+v\nwant %+v", cp, ref)
	}
}

// checkDeleteInPlace runs deleteInPlace on a copy of b: when b holds ts and keeps a record
// after it goes, it must succeed and leave the block encodeBlock makes of want; otherwise it
// must leave the bytes alone.
func checkDeleteInPlace(t *testing.T, b block, ts int64, want []entry, wantN int, wantBytes int64) {
	t.Helper()
	cp := b
	cp.data = bytes.Clone(b.data)
	n, found := deleteInPlace(&cp, ts)
	if eligible := wantN == 1 && b.count > 1; found != eligible {
		t.Fatalf("deleteInPlace(%d) found=%v, want %v (%d of %d records held)", ts, found, eligible, wantN, b.count)
	}
	if !found {
		if !bytes.Equal(cp.data, b.data) || cp.count != b.count || cp.marks != b.marks {
			t.Fatalf("deleteInPlace found nothing but changed the block")
		}
		return
	}
	if int64(n) != wantBytes {
		t.Fatalf("deleteInPlace removed %d payload bytes, want %d", n, wantBytes)
	}
	ref := encodeBlock(want)
	if !bytes.Equal(cp.data, ref.data) || cp.minTS != ref.minTS || cp.maxTS != ref.maxTS ||
		cp.count != ref.count || cp.lastOff != ref.lastOff || cp.marks != ref.marks {
		t.Fatalf("block with a record deleted in place differs from the rebuilt one:\n got %+v\nwant %+v", cp, ref)
	}
}

// checkResizeInPlace runs resizeInPlace on a copy of b with extra bytes of spare capacity:
// when b holds r.ts with a payload of another length and the result fits the capacity and a
// block's limits, it must succeed and leave the block encodeBlock makes of want; otherwise it
// must leave the bytes alone.
func checkResizeInPlace(t *testing.T, b block, r entry, want []entry, extra int) {
	t.Helper()
	oldLen := -1
	for _, e := range appendEntries(nil, &b) {
		if e.ts == r.ts {
			oldLen = len(e.data)
		}
	}
	cp := b
	cp.data = append(make([]byte, 0, len(b.data)+extra), b.data...)
	ref := encodeBlock(want)
	eligible := oldLen >= 0 && oldLen != len(r.data) && len(ref.data) <= cap(cp.data) &&
		(len(want) == 1 || len(ref.data) <= blockTargetBytes)
	old, done := resizeInPlace(&cp, r)
	if done != eligible {
		t.Fatalf("resizeInPlace = %v, want %v (old length %d, new %d, %d bytes into %d)",
			done, eligible, oldLen, len(r.data), len(ref.data), cap(cp.data))
	}
	if !done {
		if !bytes.Equal(cp.data, b.data) || cp.count != b.count || cp.marks != b.marks || cp.lastOff != b.lastOff {
			t.Fatalf("resizeInPlace refused but changed the block")
		}
		return
	}
	if old != oldLen {
		t.Fatalf("resizeInPlace replaced a payload of %d bytes, want %d", old, oldLen)
	}
	if !bytes.Equal(cp.data, ref.data) || cp.minTS != ref.minTS || cp.maxTS != ref.maxTS ||
		cp.count != ref.count || cp.lastOff != ref.lastOff || cp.marks != ref.marks {
		t.Fatalf("block with a record resized in place differs from the rebuilt one:\n got %+v\nwant %+v", cp, ref)
	}
}

// checkInsertInPlace runs insertInPlace on a copy of b with extra bytes of spare capacity:
// when r is new to b, older than b's newest, and the result fits the capacity and a block's
// limits, it must succeed and leave the block encodeBlock makes of want; otherwise it must
// leave the bytes alone.
func checkInsertInPlace(t *testing.T, b block, r entry, want []entry, extra int) {
	t.Helper()
	held := false
	for _, e := range appendEntries(nil, &b) {
		held = held || e.ts == r.ts
	}
	cp := b
	cp.data = append(make([]byte, 0, len(b.data)+extra), b.data...)
	ref := encodeBlock(want)
	eligible := !held && r.ts < b.maxTS && len(want) <= blockMaxRecords &&
		len(ref.data) <= cap(cp.data) && len(ref.data) <= blockTargetBytes
	done := insertInPlace(&cp, r)
	if done != eligible {
		t.Fatalf("insertInPlace = %v, want %v (held %v, ts %d vs newest %d, %d records, %d bytes into %d)",
			done, eligible, held, r.ts, b.maxTS, len(want), len(ref.data), cap(cp.data))
	}
	if !done {
		if !bytes.Equal(cp.data, b.data) || cp.count != b.count || cp.marks != b.marks {
			t.Fatalf("insertInPlace refused but changed the block")
		}
		return
	}
	if !bytes.Equal(cp.data, ref.data) || cp.minTS != ref.minTS || cp.maxTS != ref.maxTS ||
		cp.count != ref.count || cp.lastOff != ref.lastOff || cp.marks != ref.marks {
		t.Fatalf("block with a record inserted in place differs from the rebuilt one:\n got %+v\nwant %+v", cp, ref)
	}
}
