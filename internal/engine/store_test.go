package engine

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func recs(col, doc string, pairs ...any) []Record {
	var out []Record
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, Record{col, doc, int64(pairs[i].(int)), []byte(pairs[i+1].(string))})
	}
	return out
}

func all() RangeQuery { return RangeQuery{From: math.MinInt64, To: math.MaxInt64} }

func TestInsertOrderingAndReplace(t *testing.T) {
	tests := []struct {
		name    string
		batches [][]Record
		want    []rec
	}{
		{"in order", [][]Record{recs("c", "d", 1, "a", 2, "b", 3, "c")}, []rec{{1, "a"}, {2, "b"}, {3, "c"}}},
		{"out of order one batch", [][]Record{recs("c", "d", 3, "c", 1, "a", 2, "b")}, []rec{{1, "a"}, {2, "b"}, {3, "c"}}},
		{"out of order across batches", [][]Record{recs("c", "d", 10, "x", 30, "z"), recs("c", "d", 20, "y", 5, "w")},
			[]rec{{5, "w"}, {10, "x"}, {20, "y"}, {30, "z"}}},
		{"replace newest", [][]Record{recs("c", "d", 1, "a", 2, "b"), recs("c", "d", 2, "B")}, []rec{{1, "a"}, {2, "B"}}},
		{"replace oldest", [][]Record{recs("c", "d", 1, "a", 2, "b"), recs("c", "d", 1, "A")}, []rec{{1, "A"}, {2, "b"}}},
		{"batch later wins (append then replace)", [][]Record{recs("c", "d", 1, "a", 1, "b", 1, "c")}, []rec{{1, "c"}}},
		{"batch later wins (out of order)", [][]Record{recs("c", "d", 5, "e"), recs("c", "d", 2, "x", 3, "y", 2, "z", 9, "n", 2, "last")},
			[]rec{{2, "last"}, {3, "y"}, {5, "e"}, {9, "n"}}},
		{"replace then append same ts in batch", [][]Record{recs("c", "d", 7, "old"), recs("c", "d", 7, "p", 8, "q", 8, "r")},
			[]rec{{7, "p"}, {8, "r"}}},
		{"empty payload", [][]Record{recs("c", "d", 1, "", 2, "")}, []rec{{1, ""}, {2, ""}}},
		{"negative and zero ts", [][]Record{recs("c", "d", 0, "z", -5, "n", 5, "p")}, []rec{{-5, "n"}, {0, "z"}, {5, "p"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			for _, b := range tt.batches {
				s.Insert(b)
			}
			if got := rangeOf(s, "c", "d", all()); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("records = %v, want %v", got, tt.want)
			}
			st := s.Stats()
			if st.Records != int64(len(tt.want)) || st.Documents != 1 || st.Collections != 1 {
				t.Fatalf("stats = %+v", st)
			}
		})
	}
}

func TestInt64Extremes(t *testing.T) {
	s := New()
	ts := []int64{math.MaxInt64, math.MinInt64, math.MinInt64 + 1, -1, 0, 1, math.MaxInt64 - 1, 1 << 53, 1<<53 + 1}
	for _, v := range ts {
		s.Insert([]Record{{"c", "d", v, []byte(strconv.FormatInt(v, 10))}})
	}
	want := slices.Clone(ts)
	slices.Sort(want)
	var got []int64
	s.Range("c", "d", all(), func(ts int64, data []byte) {
		if string(data) != strconv.FormatInt(ts, 10) {
			t.Errorf("ts %d has payload %q", ts, data)
		}
		got = append(got, ts)
	})
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// In-order appends with giant deltas (the varint delta spans the whole uint64 range).
	s2 := New()
	s2.Insert([]Record{{"c", "d", math.MinInt64, []byte("lo")}, {"c", "d", math.MaxInt64, []byte("hi")}})
	if got := rangeOf(s2, "c", "d", all()); !reflect.DeepEqual(got, []rec{{math.MinInt64, "lo"}, {math.MaxInt64, "hi"}}) {
		t.Fatalf("extremes: %v", got)
	}
	if got := latestOf(s2, "c", LatestQuery{TS: math.MaxInt64}); got["d"] != (rec{math.MaxInt64, "hi"}) {
		t.Fatalf("latest at max: %v", got)
	}
	if got := latestOf(s2, "c", LatestQuery{TS: math.MaxInt64 - 1}); got["d"] != (rec{math.MinInt64, "lo"}) {
		t.Fatalf("latest below max: %v", got)
	}
	s2.DeleteRecord("c", "d", math.MaxInt64)
	s2.DeleteRange("c", "d", math.MinInt64, math.MinInt64)
	if st := s2.Stats(); st != (Stats{Collections: 1}) { // record deletes keep the collection
		t.Fatalf("after deleting extremes: %+v", st)
	}
}

func TestPayloadBytesExact(t *testing.T) {
	// gen returns payload k: every byte value including 0x00, 0xff and invalid UTF-8, empty
	// payloads, and one payload bigger than a block.
	gen := func(k int) []byte {
		switch k {
		case 300:
			return bytes.Repeat([]byte{0, 0xff, '"', '\\', 0x80}, 40000)
		case 301:
			return []byte{}
		}
		p := make([]byte, k*7%97)
		for j := range p {
			p[j] = byte(k*31 + j*17)
		}
		return p
	}
	const n = 302
	for _, order := range []string{"ascending", "descending", "replace"} {
		t.Run(order, func(t *testing.T) {
			s := New()
			var batch []Record
			for k := range n {
				if order == "descending" {
					k = n - 1 - k
				}
				batch = append(batch, Record{"c", "d", int64(k), gen(k)})
			}
			if order == "replace" {
				pre := make([]Record, n)
				for k := range n {
					pre[k] = Record{"c", "d", int64(k), []byte("old")}
				}
				s.Insert(pre)
			}
			s.Insert(batch)
			// The caller may reuse its buffers: the store must have copied.
			for i := range batch {
				for j := range batch[i].Data {
					batch[i].Data[j] = 'X'
				}
			}
			var total int64
			seen := 0
			s.Range("c", "d", all(), func(ts int64, data []byte) {
				if !bytes.Equal(data, gen(int(ts))) {
					t.Errorf("ts %d: payload differs (len %d, want %d)", ts, len(data), len(gen(int(ts))))
				}
				total += int64(len(data))
				seen++
			})
			if st := s.Stats(); seen != n || st.PayloadBytes != total || st.Records != n {
				t.Fatalf("saw %d, stats %+v, want %d bytes %d records", seen, st, total, n)
			}
			if got := latestOf(s, "c", LatestQuery{TS: 300}); got["d"].Data != string(gen(300)) {
				t.Fatalf("latest huge payload differs")
			}
		})
	}
}

func TestRangeQueries(t *testing.T) {
	s := New()
	var batch []Record
	for ts := 1; ts <= 1000; ts++ {
		data := "odd"
		if ts%2 == 0 {
			data = "even"
		}
		batch = append(batch, Record{"c", "d", int64(ts * 10), []byte(data + strconv.Itoa(ts*10))})
	}
	s.Insert(batch)
	even := func(b []byte) bool { return bytes.HasPrefix(b, []byte("even")) }
	ts := func(rs []rec) []int64 {
		out := []int64{}
		for _, r := range rs {
			out = append(out, r.TS)
		}
		return out
	}
	tests := []struct {
		name string
		q    RangeQuery
		want []int64
	}{
		{"inclusive bounds", RangeQuery{From: 20, To: 50}, []int64{20, 30, 40, 50}},
		{"between records", RangeQuery{From: 21, To: 49}, []int64{30, 40}},
		{"reverse", RangeQuery{From: 20, To: 50, Reverse: true}, []int64{50, 40, 30, 20}},
		{"limit ascending = oldest N", RangeQuery{From: 0, To: math.MaxInt64, Limit: 3}, []int64{10, 20, 30}},
		{"reverse+limit = newest N", RangeQuery{From: 0, To: math.MaxInt64, Limit: 3, Reverse: true}, []int64{10000, 9990, 9980}},
		{"keep before limit", RangeQuery{From: 0, To: math.MaxInt64, Limit: 3, Keep: even}, []int64{20, 40, 60}},
		{"keep+reverse+limit", RangeQuery{From: 0, To: 9985, Limit: 2, Reverse: true, Keep: even}, []int64{9980, 9960}},
		{"negative limit = unlimited", RangeQuery{From: 9950, To: 99999, Limit: -1}, []int64{9950, 9960, 9970, 9980, 9990, 10000}},
		{"empty window", RangeQuery{From: 11, To: 19}, []int64{}},
		{"from > to", RangeQuery{From: 50, To: 20}, []int64{}},
		{"before all", RangeQuery{From: math.MinInt64, To: 9}, []int64{}},
		{"after all", RangeQuery{From: 10001, To: math.MaxInt64}, []int64{}},
		{"single", RangeQuery{From: 5000, To: 5000, Reverse: true}, []int64{5000}},
		{"across blocks reverse", RangeQuery{From: 2555, To: 2605, Reverse: true}, []int64{2600, 2590, 2580, 2570, 2560}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ts(rangeOf(s, "c", "d", tt.q)); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if got := rangeOf(s, "nope", "d", all()); got != nil {
		t.Fatalf("missing collection: %v", got)
	}
	if got := rangeOf(s, "c", "nope", all()); got != nil {
		t.Fatalf("missing doc: %v", got)
	}
	full := rangeOf(s, "c", "d", all())
	if len(full) != 1000 || full[999] != (rec{10000, "even10000"}) {
		t.Fatalf("full range: %d records, last %v", len(full), full[len(full)-1])
	}
}

func TestLatest(t *testing.T) {
	s := New()
	s.Insert(recs("c", "a", 10, "a10", 20, "a20 hot", 30, "a30"))
	s.Insert(recs("c", "b", 5, "b5 hot", 25, "b25"))
	s.Insert(recs("c", "z", 100, "z100"))
	s.Insert(recs("other", "a", 1, "other"))
	hot := func(b []byte) bool { return bytes.Contains(b, []byte("hot")) }
	tests := []struct {
		name string
		q    LatestQuery
		want map[string]rec
	}{
		{"all at max", LatestQuery{TS: math.MaxInt64}, map[string]rec{"a": {30, "a30"}, "b": {25, "b25"}, "z": {100, "z100"}}},
		{"inclusive ts", LatestQuery{TS: 20}, map[string]rec{"a": {20, "a20 hot"}, "b": {5, "b5 hot"}}},
		{"between", LatestQuery{TS: 24}, map[string]rec{"a": {20, "a20 hot"}, "b": {5, "b5 hot"}}},
		{"before everything", LatestQuery{TS: 4}, map[string]rec{}},
		{"from drops stale docs", LatestQuery{TS: 24, From: 10}, map[string]rec{"a": {20, "a20 hot"}}},
		{"from inclusive", LatestQuery{TS: 24, From: 5}, map[string]rec{"a": {20, "a20 hot"}, "b": {5, "b5 hot"}}},
		{"exact doc", LatestQuery{TS: 1000, Doc: "b"}, map[string]rec{"b": {25, "b25"}}},
		{"missing doc", LatestQuery{TS: 1000, Doc: "q"}, map[string]rec{}},
		{"doc match", LatestQuery{TS: 1000, Doc: "ignored", DocMatch: regexp.MustCompile("^[ab]$").MatchString},
			map[string]rec{"a": {30, "a30"}, "b": {25, "b25"}}},
		{"keep, no fallback", LatestQuery{TS: 1000, Keep: hot}, map[string]rec{}},
		{"keep at 20", LatestQuery{TS: 20, Keep: hot}, map[string]rec{"a": {20, "a20 hot"}, "b": {5, "b5 hot"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := latestOf(s, "c", tt.q); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if got := latestOf(s, "missing", LatestQuery{TS: math.MaxInt64}); len(got) != 0 {
		t.Fatalf("missing collection: %v", got)
	}
}

// everyThird returns a store whose document c/d holds 3000 records spanning many blocks,
// at ts 0, 3, 6, … 8997, each carrying its ts as text.
func everyThird() *Store {
	s := New()
	batch := make([]Record, 3000)
	for i := range batch {
		batch[i] = Record{"c", "d", int64(i * 3), []byte(strconv.Itoa(i * 3))}
	}
	s.Insert(batch)
	return s
}

func TestLatestInsideBlocks(t *testing.T) {
	// Many blocks: Latest at every ts must find the right record (binary search + scan).
	s := everyThird()
	for at := int64(-1); at < 9003; at++ {
		got := latestOf(s, "c", LatestQuery{TS: at})
		if at < 0 {
			if len(got) != 0 {
				t.Fatalf("at %d: %v", at, got)
			}
			continue
		}
		want := min(at/3*3, 8997)
		if got["d"] != (rec{want, strconv.FormatInt(want, 10)}) {
			t.Fatalf("at %d: got %v, want %d", at, got["d"], want)
		}
	}
}

func TestRangeStartsInsideBlocks(t *testing.T) {
	// Many full blocks (so every block has its marks): a range may start at any ts, on a
	// marked record, next to one, or between records, in either order.
	s := everyThird()
	for from := int64(-2); from < 9003; from++ {
		for _, reverse := range []bool{false, true} {
			var got []int64
			s.Range("c", "d", RangeQuery{From: from, To: from + 7, Reverse: reverse}, func(ts int64, data []byte) {
				if string(data) != strconv.FormatInt(ts, 10) {
					t.Fatalf("from %d: record %d carries %q", from, ts, data)
				}
				got = append(got, ts)
			})
			var want []int64
			for ts := (max(from, 0) + 2) / 3 * 3; ts <= from+7 && ts <= 8997; ts += 3 {
				want = append(want, ts)
			}
			if reverse {
				slices.Reverse(want)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("from %d reverse %v: got %v, want %v", from, reverse, got, want)
			}
		}
	}
}

func TestDeleteSemantics(t *testing.T) {
	type step func(s *Store)
	ins := func(col, doc string, ts ...int) step {
		return func(s *Store) {
			for _, v := range ts {
				s.Insert([]Record{{col, doc, int64(v), []byte(col + doc)}})
			}
		}
	}
	tests := []struct {
		name  string
		steps []step
		cols  []string
		stats Stats
	}{
		{"ddoc last doc removes collection", []step{ins("c", "d", 1), func(s *Store) { s.DeleteDoc("c", "d") }},
			nil, Stats{}},
		{"ddoc keeps collection with KV", []step{ins("c", "d", 1), func(s *Store) { s.SetValue("c", "k", "v"); s.DeleteDoc("c", "d") }},
			[]string{"c"}, Stats{Collections: 1, KVEntries: 1}},
		{"ddoc keeps collection with other docs", []step{ins("c", "d", 1, 2), ins("c", "e", 3), func(s *Store) { s.DeleteDoc("c", "d") }},
			[]string{"c"}, Stats{Collections: 1, Documents: 1, Records: 1, PayloadBytes: 2}},
		{"ddoc all collections", []step{ins("a", "d", 1), ins("b", "d", 1), ins("b", "e", 1), func(s *Store) { s.DeleteDoc("", "d") }},
			[]string{"b"}, Stats{Collections: 1, Documents: 1, Records: 1, PayloadBytes: 2}},
		{"ddoc missing", []step{ins("c", "d", 1), func(s *Store) { s.DeleteDoc("c", "x"); s.DeleteDoc("x", "d") }},
			[]string{"c"}, Stats{Collections: 1, Documents: 1, Records: 1, PayloadBytes: 2}},
		{"dcol removes docs and KV", []step{ins("c", "d", 1), ins("k", "d", 1), func(s *Store) { s.SetValue("c", "k", "v"); s.DeleteCollection("c"); s.DeleteCollection("missing") }},
			[]string{"k"}, Stats{Collections: 1, Documents: 1, Records: 1, PayloadBytes: 2}},
		{"drec last record removes doc, keeps collection", []step{ins("c", "d", 1), func(s *Store) { s.DeleteRecord("c", "d", 1) }},
			[]string{"c"}, Stats{Collections: 1}},
		{"ddoc of a missing document keeps a collection that holds documents", []step{ins("c", "d", 1, 2), ins("c", "e", 1), func(s *Store) {
			s.DeleteRecord("c", "d", 1)
			s.DeleteRange("c", "d", 0, 5)
			s.DeleteDoc("c", "x")
		}}, []string{"c"}, Stats{Collections: 1, Documents: 1, Records: 1, PayloadBytes: 2}},
		{"ddoc removes a collection drec emptied, even of a missing document", []step{ins("c", "d", 1), ins("k", "d", 1), func(s *Store) {
			s.DeleteRecord("c", "d", 1)
			s.DeleteDoc("c", "x")
		}}, []string{"k"}, Stats{Collections: 1, Documents: 1, Records: 1, PayloadBytes: 2}},
		{"ddoc of the last document removes the collection", []step{ins("c", "d", 1), ins("c", "e", 1), func(s *Store) {
			s.DeleteRecord("c", "d", 1)
			s.DeleteDoc("c", "e")
		}}, nil, Stats{}},
		{"drec missing ts no-op", []step{ins("c", "d", 1, 3), func(s *Store) { s.DeleteRecord("c", "d", 2); s.DeleteRecord("c", "x", 1); s.DeleteRecord("x", "d", 1) }},
			[]string{"c"}, Stats{Collections: 1, Documents: 1, Records: 2, PayloadBytes: 4}},
		{"drec keeps KV collection", []step{ins("c", "d", 1), func(s *Store) { s.SetValue("c", "k", "v"); s.DeleteRecord("c", "d", 1) }},
			[]string{"c"}, Stats{Collections: 1, KVEntries: 1}},
		{"dmrec spans collections", []step{ins("a", "d", 1, 2), ins("b", "e", 5), func(s *Store) {
			s.DeleteRecords([]RecordKey{{"a", "d", 1}, {"b", "e", 5}, {"a", "d", 9}, {"zz", "d", 1}, {"a", "d", 2}}, nil)
		}}, []string{"a", "b"}, Stats{Collections: 2}},
		{"dmrec partial", []step{ins("a", "d", 1, 2, 3), func(s *Store) { s.DeleteRecords([]RecordKey{{"a", "d", 2}, {"a", "d", 2}}, nil) }},
			[]string{"a"}, Stats{Collections: 1, Documents: 1, Records: 2, PayloadBytes: 4}},
		{"drrng inclusive", []step{ins("c", "d", 1, 2, 3, 4, 5), func(s *Store) { s.DeleteRange("c", "d", 2, 4) }},
			[]string{"c"}, Stats{Collections: 1, Documents: 1, Records: 2, PayloadBytes: 4}},
		{"drrng everything", []step{ins("c", "d", 1, 2, 3), func(s *Store) { s.DeleteRange("c", "d", math.MinInt64, math.MaxInt64) }},
			[]string{"c"}, Stats{Collections: 1}},
		{"drrng from > to no-op", []step{ins("c", "d", 1, 2, 3), func(s *Store) { s.DeleteRange("c", "d", 3, 1) }},
			[]string{"c"}, Stats{Collections: 1, Documents: 1, Records: 3, PayloadBytes: 6}},
		{"KV only collection listed", []step{func(s *Store) {
			s.SetValue("kv", "a", "1")
			s.SetValue("kv", "b", "2")
			s.DeleteValue("kv", "a")
		}}, []string{"kv"}, Stats{Collections: 1, KVEntries: 1}},
		{"last KV key removed keeps collection", []step{func(s *Store) { s.SetValue("kv", "a", "1"); s.DeleteValue("kv", "a"); s.DeleteValue("kv", "zz") }},
			[]string{"kv"}, Stats{Collections: 1}},
		{"rval on a missing collection creates nothing", []step{func(s *Store) { s.DeleteValue("zz", "a"); s.DeleteRange("yy", "d", 1, 2) }},
			nil, Stats{}},
		{"recreate after delete", []step{ins("c", "d", 1), func(s *Store) { s.DeleteCollection("c") }, ins("c", "d", 7)},
			[]string{"c"}, Stats{Collections: 1, Documents: 1, Records: 1, PayloadBytes: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			for _, st := range tt.steps {
				st(s)
			}
			if got := sorted(s.Collections()); !slices.Equal(got, sorted(tt.cols)) {
				t.Fatalf("collections = %v, want %v", got, tt.cols)
			}
			if got := s.Stats(); got != tt.stats {
				t.Fatalf("stats = %+v, want %+v", got, tt.stats)
			}
		})
	}
}

func TestDeleteRangeAcrossBlocks(t *testing.T) {
	s := New()
	ref := newRef()
	var batch []Record
	for i := range 2000 {
		batch = append(batch, Record{"c", "d", int64(i), []byte(strings.Repeat("p", i%60))})
	}
	s.Insert(batch)
	ref.Insert(batch)
	for _, r := range [][2]int64{{100, 1500}, {0, 0}, {1999, 1999}, {50, 60}, {1600, 1600}, {1601, 1650}, {-10, 20}, {1990, 5000}} {
		s.DeleteRange("c", "d", r[0], r[1])
		ref.DeleteRange("c", "d", r[0], r[1])
		if got, want := rangeOf(s, "c", "d", all()), ref.Range("c", "d", all()); !reflect.DeepEqual(got, want) {
			t.Fatalf("after delete %v: %d records, want %d", r, len(got), len(want))
		}
		if got, want := s.Stats(), ref.Stats(); got != want {
			t.Fatalf("after delete %v: stats %+v, want %+v", r, got, want)
		}
	}
}

func TestKV(t *testing.T) {
	s := New()
	if _, ok := s.Value("c", "k"); ok {
		t.Fatal("value in empty store")
	}
	s.SetValue("c", "k", "v1")
	s.SetValue("c", "k", "v2")
	s.SetValue("c", "j", "")
	s.SetValue("d", "k", "other")
	if v, ok := s.Value("c", "k"); !ok || v != "v2" {
		t.Fatalf("Value = %q, %v", v, ok)
	}
	if v, ok := s.Value("c", "j"); !ok || v != "" {
		t.Fatalf("empty Value = %q, %v", v, ok)
	}
	if got := sorted(s.Keys("c")); !slices.Equal(got, []string{"j", "k"}) {
		t.Fatalf("Keys = %v", got)
	}
	if got := s.Keys("missing"); len(got) != 0 {
		t.Fatalf("Keys(missing) = %v", got)
	}
	got := map[string]string{}
	s.Values("c", func(k string) bool { return k != "j" }, func(k, v string) { got[k] = v })
	if !reflect.DeepEqual(got, map[string]string{"k": "v2"}) {
		t.Fatalf("Values(keep) = %v", got)
	}
	got = map[string]string{}
	s.Values("c", nil, func(k, v string) { got[k] = v })
	if len(got) != 2 {
		t.Fatalf("Values(nil) = %v", got)
	}
	if st := s.Stats(); st.KVEntries != 3 || st.Collections != 2 {
		t.Fatalf("stats %+v", st)
	}
	s.DeleteValue("c", "k")
	s.DeleteValue("c", "k")
	if _, ok := s.Value("c", "k"); ok {
		t.Fatal("deleted value still there")
	}
	if st := s.Stats(); st.KVEntries != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestExport(t *testing.T) {
	s := New()
	s.Insert(recs("b", "d2", 3, "x", 1, "y"))
	s.Insert(recs("a", "d1", 1, "p"))
	s.SetValue("a", "k", "v")
	s.SetValue("kvonly", "k", "v")
	got, errs := exportState(s)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := &dumpState{cols: map[string]*dumpCol{
		"a":      {docs: map[string][]rec{"d1": {{1, "p"}}}, kv: map[string]string{"k": "v"}},
		"b":      {docs: map[string][]rec{"d2": {{1, "y"}, {3, "x"}}}, kv: map[string]string{}},
		"kvonly": {docs: map[string][]rec{}, kv: map[string]string{"k": "v"}},
	}}
	if got.String() != want.String() {
		t.Fatalf("export:\n%s\nwant:\n%s", got, want)
	}
	// An exporter error stops the walk and is returned wrapped.
	e := &failingExporter{failAt: 2}
	if err := s.Export(e); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Export error = %v", err)
	}
}

type failingExporter struct{ calls, failAt int }

func (f *failingExporter) step() error {
	f.calls++
	if f.calls == f.failAt {
		return errBoom
	}
	return nil
}

var errBoom = &boomError{}

type boomError struct{}

func (*boomError) Error() string { return "boom" }

func (f *failingExporter) Collection(string) error    { return f.step() }
func (f *failingExporter) Document(string, int) error { return f.step() }
func (f *failingExporter) Record(int64, []byte) error { return f.step() }
func (f *failingExporter) Value(string, string) error { return f.step() }

// hookExporter collects an export's records of one document and runs hook before the first.
type hookExporter struct {
	hook func()
	got  map[int64]string
}

func (e *hookExporter) Collection(string) error    { return nil }
func (e *hookExporter) Document(string, int) error { return nil }
func (e *hookExporter) Value(string, string) error { return nil }
func (e *hookExporter) Record(ts int64, data []byte) error {
	if e.hook != nil {
		e.hook()
		e.hook = nil
	}
	e.got[ts] = string(data)
	return nil
}

// TestReplaceInPlaceRespectsExport: a replace of the same length rewrites a block's bytes in
// place only while no Export holds them. Replaces made while an export is being walked
// (after its freeze) must not show in it; once no export holds a block, a replace reuses it.
func TestReplaceInPlaceRespectsExport(t *testing.T) {
	s := New()
	const n = 1000
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{"c", "d", int64(i + 1), []byte(fmt.Sprintf("old-%04d", i+1))}
	}
	s.Insert(recs)
	// One replace in every block, same length.
	replace := func(tag string) {
		var rs []Record
		for ts := int64(5); ts <= n; ts += 97 {
			rs = append(rs, Record{"c", "d", ts, []byte(fmt.Sprintf("%s-%04d", tag, ts))})
		}
		s.Insert(rs)
	}
	blockData := func() []*byte {
		c := s.lookup("c")
		c.mu.RLock()
		defer c.mu.RUnlock()
		var ps []*byte
		for _, b := range c.docs["d"].blocks {
			ps = append(ps, unsafe.SliceData(b.data))
		}
		return ps
	}

	e := &hookExporter{got: map[int64]string{}, hook: func() { replace("new") }}
	if err := s.Export(e); err != nil {
		t.Fatal(err)
	}
	for ts := int64(1); ts <= n; ts++ {
		if want := fmt.Sprintf("old-%04d", ts); e.got[ts] != want {
			t.Fatalf("export shows %q for ts %d, want %q: a replace made after its freeze reached it", e.got[ts], ts, want)
		}
	}

	// No export holds the blocks the replace built: the next replace rewrites them in place.
	before := blockData()
	replace("nxt")
	after := blockData()
	if !slices.Equal(before, after) {
		t.Fatalf("a same-length replace with no export pending built new blocks")
	}
	// After an export, the same replace must build new blocks again.
	if _, errs := exportState(s); len(errs) > 0 {
		t.Fatal(errs)
	}
	replace("agn")
	if moved := blockData(); slices.Equal(moved, after) {
		t.Fatalf("a replace after an export rewrote the exported blocks in place")
	}
	s.Range("c", "d", RangeQuery{From: 1, To: n}, func(ts int64, data []byte) {
		want := fmt.Sprintf("old-%04d", ts)
		if (ts-5)%97 == 0 {
			want = fmt.Sprintf("agn-%04d", ts)
		}
		if string(data) != want {
			t.Fatalf("ts %d: %q, want %q", ts, data, want)
		}
	})
	checkInvariants(t, s)
}

// TestLateInsertInPlaceRespectsExport: a late record is written into its block's spare
// capacity only while no Export holds the block; one inserted while an export is being
// walked must not show in it.
func TestLateInsertInPlaceRespectsExport(t *testing.T) {
	s := New()
	for ts := int64(2); ts <= 100; ts += 2 { // one open block with spare capacity
		s.Insert([]Record{{"c", "d", ts, []byte("even")}})
	}
	late := func(ts int64) { s.Insert([]Record{{"c", "d", ts, []byte("late")}}) }
	blockData := func() *byte {
		c := s.lookup("c")
		c.mu.RLock()
		defer c.mu.RUnlock()
		return unsafe.SliceData(c.docs["d"].blocks[0].data)
	}
	e := &hookExporter{got: map[int64]string{}, hook: func() { late(51) }}
	if err := s.Export(e); err != nil {
		t.Fatal(err)
	}
	if len(e.got) != 50 || e.got[51] != "" {
		t.Fatalf("export holds %d records (ts 51: %q): a record inserted after its freeze reached it", len(e.got), e.got[51])
	}
	before := blockData()
	late(53) // no export holds the block now
	if blockData() != before {
		t.Fatalf("a late record with room in its block built a new block")
	}
	var got []int64
	s.Range("c", "d", RangeQuery{From: 1, To: 100}, func(ts int64, _ []byte) { got = append(got, ts) })
	if len(got) != 52 || got[25] != 51 || got[27] != 53 {
		t.Fatalf("records %v", got)
	}
	checkInvariants(t, s)
}

// TestDeleteInPlaceRespectsExport: a single-record delete made while an Export walks the
// frozen blocks must not reach them (the block it would edit in place is captured); once no
// export holds the block, the next one is taken out of the block's own bytes.
func TestDeleteInPlaceRespectsExport(t *testing.T) {
	s := New()
	for ts := int64(1); ts <= 100; ts++ {
		s.Insert([]Record{{"c", "d", ts, []byte(fmt.Sprintf("v-%03d", ts))}})
	}
	blockData := func() *byte {
		c := s.lookup("c")
		c.mu.RLock()
		defer c.mu.RUnlock()
		return unsafe.SliceData(c.docs["d"].blocks[0].data)
	}
	e := &hookExporter{got: map[int64]string{}, hook: func() { s.DeleteRange("c", "d", 50, 50) }}
	if err := s.Export(e); err != nil {
		t.Fatal(err)
	}
	if len(e.got) != 100 || e.got[50] != "v-050" || e.got[51] != "v-051" {
		t.Fatalf("export holds %d records (ts 50: %q, 51: %q): a delete made after its freeze reached it", len(e.got), e.got[50], e.got[51])
	}
	before := blockData()
	if n := s.DeleteRange("c", "d", 70, 70); n != 1 {
		t.Fatalf("deleted %d records, want 1", n)
	}
	if blockData() != before {
		t.Fatalf("a single-record delete built a new block")
	}
	if n := s.DeleteRange("c", "d", 70, 70); n != 0 {
		t.Fatalf("deleted %d records the second time, want 0", n)
	}
	var got []int64
	s.Range("c", "d", RangeQuery{From: 1, To: 100}, func(ts int64, _ []byte) { got = append(got, ts) })
	if len(got) != 98 || got[48] != 49 || got[49] != 51 || got[67] != 69 || got[68] != 71 {
		t.Fatalf("records %v", got)
	}
	checkInvariants(t, s)
}

// TestResizeInPlaceRespectsExport: a record re-sent with a payload of another length while
// an Export walks the frozen blocks must not reach them; once no export holds the block, the
// next such replace rewrites the block's own bytes when its capacity has room.
func TestResizeInPlaceRespectsExport(t *testing.T) {
	s := New()
	for ts := int64(1); ts <= 60; ts++ { // one open block with spare capacity
		s.Insert([]Record{{"c", "d", ts, []byte("v")}})
	}
	blockData := func() *byte {
		c := s.lookup("c")
		c.mu.RLock()
		defer c.mu.RUnlock()
		return unsafe.SliceData(c.docs["d"].blocks[0].data)
	}
	e := &hookExporter{got: map[int64]string{}, hook: func() { s.Insert([]Record{{"c", "d", 30, []byte("longer")}}) }}
	if err := s.Export(e); err != nil {
		t.Fatal(err)
	}
	if len(e.got) != 60 || e.got[30] != "v" || e.got[31] != "v" {
		t.Fatalf("export holds %d records (ts 30: %q, 31: %q): a replace made after its freeze reached it", len(e.got), e.got[30], e.got[31])
	}
	// The replace built an exact-size block; appends grow the open block, with room to spare.
	for ts := int64(61); ts <= 80; ts++ {
		s.Insert([]Record{{"c", "d", ts, []byte("v")}})
	}
	before := blockData()
	s.Insert([]Record{{"c", "d", 40, []byte("much longer")}}) // no export holds the block now
	s.Insert([]Record{{"c", "d", 30, []byte("")}})
	if blockData() != before {
		t.Fatalf("a replace of another length with room in its block built a new block")
	}
	want := map[int64]string{30: "", 40: "much longer"}
	n := 0
	s.Range("c", "d", RangeQuery{From: 1, To: 100}, func(ts int64, p []byte) {
		n++
		w, ok := want[ts]
		if !ok {
			w = "v"
		}
		if string(p) != w {
			t.Errorf("ts %d: %q, want %q", ts, p, w)
		}
	})
	if n != 80 {
		t.Fatalf("%d records, want 80", n)
	}
	if st := s.Stats(); st.Records != 80 || st.PayloadBytes != 78+11 {
		t.Fatalf("stats %+v, want 80 records of 89 payload bytes", st)
	}
	checkInvariants(t, s)
}
