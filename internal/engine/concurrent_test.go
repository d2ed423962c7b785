package engine

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// op is one mutation, applied identically to any Store.
type op func(s *Store)

// writerOps generates a deterministic op sequence touching only writer w's collections,
// documents and keys, so that per key the order of application is w's program order.
func writerOps(w, n int, seed uint64) []op {
	rng := rand.New(rand.NewPCG(seed, uint64(w)))
	cols := []string{fmt.Sprintf("w%d-a", w), fmt.Sprintf("w%d-b", w)}
	docs := []string{fmt.Sprintf("w%d-d0", w), fmt.Sprintf("w%d-d1", w), fmt.Sprintf("w%d-d2", w)}
	clock := int64(1000)
	ops := make([]op, 0, n)
	for range n {
		c, d := cols[rng.IntN(len(cols))], docs[rng.IntN(len(docs))]
		switch r := rng.IntN(100); {
		case r < 60:
			batch := make([]Record, 1+rng.IntN(50))
			for i := range batch {
				ts := clock
				if rng.IntN(4) == 0 {
					ts -= int64(rng.IntN(500)) // out of order / replace
				} else {
					clock++
				}
				batch[i] = Record{c, d, ts, []byte(fmt.Sprintf("%s/%s/%d/%d", c, d, ts, rng.IntN(1000)))}
			}
			ops = append(ops, func(s *Store) { s.Insert(batch) })
		case r < 70:
			ts := clock - int64(rng.IntN(300))
			ops = append(ops, func(s *Store) { s.DeleteRecord(c, d, ts) })
		case r < 75:
			keys := []RecordKey{{c, d, clock - 1}, {cols[0], docs[0], clock - 7}, {cols[1], docs[2], clock - 3}}
			ops = append(ops, func(s *Store) { s.DeleteRecords(keys, nil) })
		case r < 80:
			from := clock - int64(rng.IntN(400))
			to := from + int64(rng.IntN(100))
			ops = append(ops, func(s *Store) { s.DeleteRange(c, d, from, to) })
		case r < 82:
			ops = append(ops, func(s *Store) { s.DeleteDoc(c, d) })
		case r < 83:
			// Doc names are writer-unique, so "every collection" still means w's only.
			ops = append(ops, func(s *Store) { s.DeleteDoc("", d) })
		case r < 84:
			ops = append(ops, func(s *Store) { s.DeleteCollection(c) })
		case r < 95:
			k, v := "k"+strconv.Itoa(rng.IntN(5)), strconv.Itoa(rng.IntN(1e6))
			ops = append(ops, func(s *Store) { s.SetValue(c, k, v) })
		default:
			k := "k" + strconv.Itoa(rng.IntN(5))
			ops = append(ops, func(s *Store) { s.DeleteValue(c, k) })
		}
	}
	return ops
}

// load builds a Store from an exported dump.
func load(st *dumpState) *Store {
	s := New()
	for col, c := range st.cols {
		for doc, rs := range c.docs {
			batch := make([]Record, len(rs))
			for i, r := range rs {
				batch[i] = Record{col, doc, r.TS, []byte(r.Data)}
			}
			s.Insert(batch)
		}
		for k, v := range c.kv {
			s.SetValue(col, k, v)
		}
	}
	return s
}

// TestExportWhileWriting checks the fuzzy-snapshot property: an Export taken while writers
// run, with the writes that overlapped it replayed in order, equals the final state.
func TestExportWhileWriting(t *testing.T) {
	const writers = 4
	n := 3000
	if testing.Short() {
		n = 800
	}
	for round := range 3 {
		s := New()
		ops := make([][]op, writers)
		started := make([]atomic.Int64, writers)
		for w := range writers {
			ops[w] = writerOps(w, n, uint64(round+1))
		}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i, o := range ops[w] {
					started[w].Store(int64(i + 1))
					o(s)
				}
			}()
		}
		// Let the writers build some state, then export mid-flight.
		for started[0].Load() < int64(n/3) {
			time.Sleep(time.Millisecond)
		}
		// Ops with index >= from[w] may be missing from the export (at most one op per writer
		// can be in flight when we read the counter, hence the -1).
		from := make([]int64, writers)
		for w := range writers {
			from[w] = max(started[w].Load()-1, 0)
		}
		snap, errs := exportWith(s, &dumpExporter{slow: true})
		if len(errs) > 0 {
			t.Fatalf("export: %v", errs)
		}
		var inFlight []int64
		for w := range writers {
			inFlight = append(inFlight, started[w].Load()-from[w])
		}
		wg.Wait()

		replayed := load(snap)
		for w := range writers {
			for _, o := range ops[w][from[w]:] {
				o(replayed)
			}
		}
		want, _ := exportState(s)
		got, _ := exportState(replayed)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: export+replay differs from final state\n got %.1500s\nwant %.1500s", round, got, want)
		}
		if got, want := replayed.Stats(), s.Stats(); got != want {
			t.Fatalf("round %d: stats %+v, want %+v", round, got, want)
		}
		checkInvariants(t, s)
		t.Logf("round %d: ops overlapping the export per writer: %v", round, inFlight)
	}
}

// TestConcurrentReadersWriters runs every kind of reader against writers (run with -race)
// and checks what readers see is well-formed and that the counters end up exact.
func TestConcurrentReadersWriters(t *testing.T) {
	const writers = 3
	n := 1500
	if testing.Short() {
		n = 400
	}
	s := New()
	ref := New() // same ops applied serially per writer; writers touch disjoint keys
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readErr atomic.Value
	report := func(format string, args ...any) { readErr.CompareAndSwap(nil, fmt.Sprintf(format, args...)) }
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, o := range writerOps(w, n, 99) {
				o(s)
			}
		}()
	}
	var readers sync.WaitGroup
	for r := range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 5))
			for {
				select {
				case <-stop:
					return
				default:
				}
				w := rng.IntN(writers)
				col := fmt.Sprintf("w%d-%s", w, []string{"a", "b"}[rng.IntN(2)])
				doc := fmt.Sprintf("w%d-d%d", w, rng.IntN(3))
				switch rng.IntN(6) {
				case 0:
					prev := int64(-1 << 62)
					s.Range(col, doc, all(), func(ts int64, data []byte) {
						if ts <= prev {
							report("range not ascending: %d after %d", ts, prev)
						}
						prev = ts
					})
				case 1:
					prev := int64(1 << 62)
					s.Range(col, doc, RangeQuery{From: 0, To: 1 << 62, Reverse: true, Limit: 20}, func(ts int64, data []byte) {
						if ts >= prev {
							report("reverse range not descending")
						}
						prev = ts
					})
				case 2:
					s.Latest(col, LatestQuery{TS: 1 << 62}, func(doc string, ts int64, data []byte) {
						if want := fmt.Sprintf("%s/%s/%d/", col, doc, ts); len(data) < len(want) || string(data[:len(want)]) != want {
							report("latest payload %q does not match %s ts %d", data, doc, ts)
						}
					})
				case 3:
					_ = s.Collections()
					_ = s.Stats()
					_ = s.Keys(col)
					s.Values(col, nil, func(k, v string) {})
				case 4:
					if _, errs := exportState(s); len(errs) > 0 {
						report("export while writing: %v", errs)
					}
				case 5:
					_, _ = s.Value(col, "k1")
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if e := readErr.Load(); e != nil {
		t.Fatal(e)
	}
	for w := range writers {
		for _, o := range writerOps(w, n, 99) {
			o(ref)
		}
	}
	got, _ := exportState(s)
	want, _ := exportState(ref)
	if !reflect.DeepEqual(got, want) {
		t.Fatal("concurrent result differs from serial replay")
	}
	if g, w := s.Stats(), ref.Stats(); g != w {
		t.Fatalf("stats %+v, want %+v", g, w)
	}
	checkInvariants(t, s)
}

// TestCollectionRemovalRace hammers create/remove of one collection from several goroutines
// so a writer holding a collection that is being dropped must retry (the dead flag).
func TestCollectionRemovalRace(t *testing.T) {
	s := New()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			doc := "d" + strconv.Itoa(g)
			for i := range 2000 {
				s.Insert([]Record{{"c", doc, int64(i), []byte("x")}})
				switch i % 3 {
				case 0:
					s.DeleteRecord("c", doc, int64(i))
				case 1:
					s.DeleteDoc("c", doc)
				case 2:
					s.SetValue("c", doc, "v")
					s.DeleteValue("c", doc)
					s.DeleteDoc("", doc)
				}
			}
		}()
	}
	wg.Wait()
	if st := s.Stats(); st != (Stats{}) {
		t.Fatalf("stats after everything deleted: %+v", st)
	}
	if cols := s.Collections(); len(cols) != 0 {
		t.Fatalf("collections: %v", cols)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.cols) != 0 {
		t.Fatalf("%d empty collections left in the map", len(s.cols))
	}
}
