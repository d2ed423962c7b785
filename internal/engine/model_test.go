package engine

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// checkInvariants verifies the internal structure of every document.
func checkInvariants(t *testing.T, s *Store) {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for name, c := range s.cols {
		c.mu.RLock()
		if c.dead {
			t.Errorf("dead collection %q in map", name)
		}
		if len(c.list) != len(c.docs) {
			t.Errorf("%s: %d documents in list, %d in map", name, len(c.list), len(c.docs))
		}
		for i, d := range c.list {
			if d.idx != i || c.docs[d.name] != d {
				t.Errorf("%s: list[%d] = %q (idx %d) is not the map's document", name, i, d.name, d.idx)
			}
		}
		for dn, d := range c.docs {
			if d.count == 0 || len(d.blocks) == 0 {
				t.Errorf("%s/%s: empty document kept", name, dn)
			}
			n, bytes := 0, int64(0)
			for i := range d.blocks {
				b := &d.blocks[i]
				if i > 0 && d.blocks[i-1].maxTS >= b.minTS {
					t.Errorf("%s/%s: block %d overlaps previous", name, dn, i)
				}
				if b.count == 0 || (b.count > blockMaxRecords) || (b.count > 1 && len(b.data) > blockTargetBytes) {
					t.Errorf("%s/%s: block %d has %d records in %d bytes", name, dn, i, b.count, len(b.data))
				}
				var last int64
				k, err := decodeBlock(b.minTS, b.data, func(ts int64, p []byte) {
					last = ts
					bytes += int64(len(p))
				})
				if err != nil || k != int(b.count) || last != b.maxTS {
					t.Errorf("%s/%s: block %d decodes to %d records (want %d) last %d (want %d): %v", name, dn, i, k, b.count, last, b.maxTS, err)
				}
				if ts, _, _, ok := readRec(b.data, int(b.lastOff), 0); !ok || (b.count == 1 && ts != 0) {
					t.Errorf("%s/%s: block %d lastOff %d bad", name, dn, i, b.lastOff)
				}
				// Marks: exactly records markEvery, 2·markEvery, … with their offsets and ts.
				var want []mark
				idx, prev := 0, b.minTS
				for off := 0; ; idx++ {
					ts, _, next, ok := readRec(b.data, off, prev)
					if !ok {
						break
					}
					if idx > 0 && idx%markEvery == 0 {
						want = append(want, mark{ts: ts, off: uint16(off)})
					}
					prev, off = ts, next
				}
				if got := b.marks[:b.nMarks()]; !slices.Equal(got, want[:min(len(want), len(b.marks))]) {
					t.Errorf("%s/%s: block %d marks %v, want %v", name, dn, i, b.marks, want)
				}
				n += int(b.count)
			}
			if n != d.count || bytes != d.payload {
				t.Errorf("%s/%s: counters %d/%d, blocks hold %d/%d", name, dn, d.count, d.payload, n, bytes)
			}
		}
		c.mu.RUnlock()
	}
}

// TestModel runs random operations against the Store and a map-based reference and
// compares every query, the stats and the full exported state.
func TestModel(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8}
	steps := 3000
	if testing.Short() || raceEnabled {
		seeds, steps = seeds[:2], 1500
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			runModel(t, seed, steps)
		})
	}
}

func runModel(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, seed*7919))
	s := New()
	ref := newRef()
	colNames := []string{"a", "b", "c"}
	docNames := []string{"d0", "d1", "d2", "d3", "x"}
	// Timestamps cluster per step so documents grow in order most of the time, with
	// out-of-order and duplicate writes mixed in, and occasionally the int64 extremes.
	clock := int64(0)
	pickTS := func() int64 {
		switch r := rng.IntN(100); {
		case r < 60:
			clock += int64(1 + rng.IntN(3))
			return clock
		case r < 90:
			return clock - int64(rng.IntN(400))
		case r < 95:
			return int64(rng.IntN(50))
		case r < 97:
			return math.MaxInt64 - int64(rng.IntN(3))
		default:
			return math.MinInt64 + int64(rng.IntN(3))
		}
	}
	payload := func() []byte {
		n := rng.IntN(80)
		if rng.IntN(200) == 0 {
			n = 9000 + rng.IntN(3000) // bigger than a block
		}
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.IntN(256))
		}
		if n > 0 && rng.IntN(3) == 0 {
			p[0] = '#' // for Keep predicates
		}
		return p
	}
	keepHash := func(b []byte) bool { return len(b) > 0 && b[0] == '#' }
	col := func() string { return colNames[rng.IntN(len(colNames))] }
	doc := func() string { return docNames[rng.IntN(len(docNames))] }
	var log []string
	fail := func(format string, args ...any) {
		t.Helper()
		tail := log[max(0, len(log)-15):]
		t.Fatalf("seed %d step %d: %s\nlast ops:\n  %s", seed, len(log), fmt.Sprintf(format, args...), strings.Join(tail, "\n  "))
	}
	for step := 0; step < steps; step++ {
		switch op := rng.IntN(100); {
		case op < 45:
			n := 1 + rng.IntN(40)
			if rng.IntN(10) == 0 {
				n = 300 + rng.IntN(700)
			}
			batch := make([]Record, n)
			c, d := col(), doc()
			for i := range batch {
				if rng.IntN(4) == 0 {
					c, d = col(), doc()
				}
				batch[i] = Record{c, d, pickTS(), payload()}
			}
			log = append(log, fmt.Sprintf("insert %d records", n))
			s.Insert(batch)
			ref.Insert(batch)
		case op < 52:
			c, d, ts := col(), doc(), pickTS()
			log = append(log, fmt.Sprintf("drec %s/%s %d", c, d, ts))
			if got, want := s.DeleteRecord(c, d, ts), ref.DeleteRange(c, d, ts, ts) > 0; got != want {
				t.Fatalf("drec %s/%s %d reported %v, want %v", c, d, ts, got, want)
			}
		case op < 57:
			var keys []RecordKey
			for range 1 + rng.IntN(20) {
				keys = append(keys, RecordKey{col(), doc(), pickTS()})
			}
			log = append(log, fmt.Sprintf("dmrec %d keys", len(keys)))
			removed := make([]bool, len(keys))
			n := s.DeleteRecords(keys, removed)
			wantN := 0
			for i, k := range keys {
				m := ref.DeleteRange(k.Collection, k.Doc, k.TS, k.TS)
				wantN += m
				if removed[i] != (m > 0) {
					t.Fatalf("dmrec key %d %+v reported removed=%v, want %v", i, k, removed[i], m > 0)
				}
			}
			if n != wantN {
				t.Fatalf("dmrec removed %d records, want %d", n, wantN)
			}
		case op < 63:
			c, d := col(), doc()
			from := pickTS()
			to := from + int64(rng.IntN(200))
			if to < from {
				to = math.MaxInt64
			}
			log = append(log, fmt.Sprintf("drrng %s/%s %d..%d", c, d, from, to))
			if got, want := s.DeleteRange(c, d, from, to), ref.DeleteRange(c, d, from, to); got != want {
				t.Fatalf("drrng %s/%s %d..%d removed %d, want %d", c, d, from, to, got, want)
			}
		case op < 65:
			c, d := col(), doc()
			if rng.IntN(3) == 0 {
				c = ""
			}
			log = append(log, fmt.Sprintf("ddoc %q/%s", c, d))
			if got, want := s.DeleteDoc(c, d), ref.DeleteDoc(c, d); got != want {
				t.Fatalf("ddoc %q/%s reported %v, want %v", c, d, got, want)
			}
		case op < 66:
			c := col()
			log = append(log, "dcol "+c)
			if got, want := s.DeleteCollection(c), ref.DeleteCollection(c); got != want {
				t.Fatalf("dcol %s held %d documents, want %d", c, got, want)
			}
		case op < 71:
			c, k, v := col(), "k"+strconv.Itoa(rng.IntN(4)), strconv.Itoa(rng.IntN(100))
			log = append(log, fmt.Sprintf("sval %s %s=%s", c, k, v))
			s.SetValue(c, k, v)
			ref.SetValue(c, k, v)
		case op < 74:
			c, k := col(), "k"+strconv.Itoa(rng.IntN(4))
			log = append(log, fmt.Sprintf("rval %s %s", c, k))
			s.DeleteValue(c, k)
			ref.DeleteValue(c, k)
		case op < 87:
			c, d := col(), doc()
			q := RangeQuery{From: pickTS(), To: pickTS(), Reverse: rng.IntN(2) == 0}
			if rng.IntN(3) == 0 {
				q.From, q.To = math.MinInt64, math.MaxInt64
			}
			if q.From > q.To && rng.IntN(4) != 0 {
				q.From, q.To = q.To, q.From
			}
			if rng.IntN(2) == 0 {
				q.Limit = rng.IntN(30) - 3
			}
			if rng.IntN(3) == 0 {
				q.Keep = keepHash
			}
			log = append(log, fmt.Sprintf("qdoc %s/%s %+v", c, d, q))
			got, want := rangeOf(s, c, d, q), ref.Range(c, d, q)
			if !reflect.DeepEqual(got, want) {
				fail("range %+v: got %d records, want %d\n got %.300v\nwant %.300v", q, len(got), len(want), got, want)
			}
		default:
			c := col()
			q := LatestQuery{TS: pickTS()}
			if rng.IntN(4) == 0 {
				q.TS = math.MaxInt64
			}
			if rng.IntN(3) == 0 {
				q.From = pickTS()
			}
			switch rng.IntN(4) {
			case 0:
				q.Doc = doc()
			case 1:
				q.DocMatch = func(name string) bool { return strings.HasPrefix(name, "d") }
			}
			if rng.IntN(3) == 0 {
				q.Keep = keepHash
			}
			log = append(log, fmt.Sprintf("qry %s %+v", c, q))
			if got, want := latestOf(s, c, q), ref.Latest(c, q); !reflect.DeepEqual(got, want) {
				fail("latest: got %.300v\nwant %.300v", got, want)
			}
		}
		if step%10 != 0 {
			continue // the reference's Stats walks every record
		}
		if got, want := s.Stats(), ref.Stats(); got != want {
			fail("stats %+v, want %+v", got, want)
		}
		if got, want := sorted(s.Collections()), sorted(keysOf(ref.cols)); !slices.Equal(got, want) {
			fail("collections %v, want %v", got, want)
		}
		if step%100 == 0 {
			checkInvariants(t, s)
			got, errs := exportState(s)
			if len(errs) > 0 {
				fail("export: %v", errs)
			}
			if w := ref.dump(); !reflect.DeepEqual(got, w) {
				fail("export differs:\n%.2000s\nwant:\n%.2000s", got, w)
			}
		}
	}
	checkInvariants(t, s)
	got, _ := exportState(s)
	if w := ref.dump(); !reflect.DeepEqual(got, w) {
		fail("final export differs:\n%.2000s\nwant:\n%.2000s", got, w)
	}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestBlockSplitMerge drives one document through many out-of-order inserts and deletes
// so blocks split, shrink and vanish, checking structure and content throughout.
func TestBlockSplitMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 42))
	s := New()
	ref := newRef()
	for round := range 60 {
		var batch []Record
		for range 200 {
			ts := int64(rng.IntN(5000))
			batch = append(batch, Record{"c", "d", ts, bytes.Repeat([]byte{byte(round)}, rng.IntN(100))})
		}
		s.Insert(batch)
		ref.Insert(batch)
		from := int64(rng.IntN(5000))
		to := from + int64(rng.IntN(100))
		s.DeleteRange("c", "d", from, to)
		ref.DeleteRange("c", "d", from, to)
		checkInvariants(t, s)
		if got, want := s.Stats(), ref.Stats(); got != want {
			t.Fatalf("round %d: stats %+v, want %+v", round, got, want)
		}
	}
	if got, want := rangeOf(s, "c", "d", all()), ref.Range("c", "d", all()); !reflect.DeepEqual(got, want) {
		t.Fatalf("content differs: %d vs %d records", len(got), len(want))
	}
}
