package engine

import (
	"fmt"
	"math"
	"sort"
	"testing"
)

// fragments runs LatestEncoded with a simple encoder and returns the fragments sorted.
func fragments(s *Store, q LatestQuery) []string {
	var out []string
	s.LatestEncoded("c", q, func(dst []byte, doc string, ts int64, data []byte) []byte {
		return fmt.Appendf(dst, "%s@%d=%s", doc, ts, data)
	}, func(f []byte) { out = append(out, string(f)) })
	sort.Strings(out)
	return out
}

func TestLatestEncodedFollowsEveryChange(t *testing.T) {
	s := New()
	all := LatestQuery{TS: math.MaxInt64}
	s.Insert([]Record{{"c", "a", 1, []byte("x")}, {"c", "b", 1, []byte("y")}})
	check := func(step string, q LatestQuery, want ...string) {
		t.Helper()
		for round := 0; round < 2; round++ { // the second round is served from the kept fragments
			if got := fragments(s, q); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s (round %d): got %v, want %v", step, round, got, want)
			}
		}
	}
	check("first", all, "a@1=x", "b@1=y")
	s.Insert([]Record{{"c", "a", 2, []byte("x2")}})
	check("newer record", all, "a@2=x2", "b@1=y")
	s.Insert([]Record{{"c", "a", 2, []byte("x2b")}})
	check("same ts replaces", all, "a@2=x2b", "b@1=y")
	s.Insert([]Record{{"c", "b", 0, []byte("older")}})
	check("older record leaves the newest", all, "a@2=x2b", "b@1=y")
	s.DeleteRecord("c", "a", 2)
	check("newest deleted", all, "a@1=x", "b@1=y")
	s.DeleteRange("c", "b", 1, 1)
	check("range delete", all, "a@1=x", "b@0=older")
	check("query inside history is not cached", LatestQuery{TS: 0}, "b@0=older")
	check("and the newest still is", all, "a@1=x", "b@0=older")
	s.DeleteDoc("c", "a")
	check("document deleted", all, "b@0=older")
	s.Insert([]Record{{"c", "a", 5, []byte("back")}})
	check("document back", all, "a@5=back", "b@0=older")
	check("from bound", LatestQuery{TS: math.MaxInt64, From: 1}, "a@5=back")
	check("predicate", LatestQuery{TS: math.MaxInt64, Keep: func(b []byte) bool { return string(b) == "older" }}, "b@0=older")
}
