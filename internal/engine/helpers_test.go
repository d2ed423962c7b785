package engine

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// rec is a record as tests see it.
type rec struct {
	TS   int64
	Data string
}

func (r rec) String() string { return fmt.Sprintf("%d:%q", r.TS, r.Data) }

// rangeOf collects a Range call.
func rangeOf(s *Store, col, doc string, q RangeQuery) []rec {
	var out []rec
	s.Range(col, doc, q, func(ts int64, data []byte) {
		out = append(out, rec{ts, string(data)})
	})
	return out
}

// latestOf collects a Latest call as doc -> record.
func latestOf(s *Store, col string, q LatestQuery) map[string]rec {
	out := map[string]rec{}
	s.Latest(col, q, func(doc string, ts int64, data []byte) {
		if _, dup := out[doc]; dup {
			panic("Latest visited " + doc + " twice")
		}
		out[doc] = rec{ts, string(data)}
	})
	return out
}

func sorted(ss []string) []string {
	ss = slices.Clone(ss)
	sort.Strings(ss)
	if ss == nil {
		ss = []string{}
	}
	return ss
}

// dumpState is a canonical rendering of a whole store, for equality checks.
type dumpState struct {
	cols map[string]*dumpCol
}

type dumpCol struct {
	docs map[string][]rec
	kv   map[string]string
}

func (d *dumpState) String() string {
	var b strings.Builder
	for _, c := range slices.Sorted(maps.Keys(d.cols)) {
		fmt.Fprintf(&b, "col %q\n", c)
		dc := d.cols[c]
		for _, doc := range slices.Sorted(maps.Keys(dc.docs)) {
			fmt.Fprintf(&b, "  doc %q %v\n", doc, dc.docs[doc])
		}
		for _, k := range slices.Sorted(maps.Keys(dc.kv)) {
			fmt.Fprintf(&b, "  kv %q=%q\n", k, dc.kv[k])
		}
	}
	return b.String()
}

// dumpExporter builds a dumpState from Export and checks the Exporter contract as it goes.
type dumpExporter struct {
	st      dumpState
	cur     *dumpCol
	doc     string
	want    int
	errs    []string
	lastCol string
	// slow makes the export yield per document, so concurrent writers interleave with it.
	slow bool
}

func (e *dumpExporter) Collection(name string) error {
	if e.cur != nil && e.want != 0 {
		e.errs = append(e.errs, fmt.Sprintf("doc %q: %d records missing", e.doc, e.want))
	}
	if e.st.cols == nil {
		e.st.cols = map[string]*dumpCol{}
	}
	if _, dup := e.st.cols[name]; dup {
		e.errs = append(e.errs, "collection twice: "+name)
	}
	if name <= e.lastCol && e.lastCol != "" {
		e.errs = append(e.errs, "collections out of order: "+name)
	}
	e.lastCol = name
	e.cur = &dumpCol{docs: map[string][]rec{}, kv: map[string]string{}}
	e.st.cols[name] = e.cur
	e.doc, e.want = "", 0
	return nil
}

func (e *dumpExporter) Document(doc string, n int) error {
	if e.want != 0 {
		e.errs = append(e.errs, fmt.Sprintf("doc %q: %d records missing", e.doc, e.want))
	}
	if n <= 0 {
		e.errs = append(e.errs, fmt.Sprintf("doc %q with %d records", doc, n))
	}
	e.doc, e.want = doc, n
	e.cur.docs[doc] = []rec{}
	if e.slow {
		time.Sleep(200 * time.Microsecond)
	}
	return nil
}

func (e *dumpExporter) Record(ts int64, data []byte) error {
	recs := e.cur.docs[e.doc]
	if len(recs) > 0 && recs[len(recs)-1].TS >= ts {
		e.errs = append(e.errs, fmt.Sprintf("doc %q: ts %d after %d", e.doc, ts, recs[len(recs)-1].TS))
	}
	e.cur.docs[e.doc] = append(recs, rec{ts, string(bytes.Clone(data))})
	e.want--
	return nil
}

func (e *dumpExporter) Value(key, value string) error {
	e.cur.kv[key] = value
	return nil
}

// exportState dumps s through Export.
func exportState(s *Store) (*dumpState, []string) { return exportWith(s, &dumpExporter{}) }

func exportWith(s *Store, e *dumpExporter) (*dumpState, []string) {
	if err := s.Export(e); err != nil {
		e.errs = append(e.errs, err.Error())
	}
	if e.want != 0 {
		e.errs = append(e.errs, fmt.Sprintf("doc %q: %d records missing", e.doc, e.want))
	}
	if e.st.cols == nil {
		e.st.cols = map[string]*dumpCol{}
	}
	return &e.st, e.errs
}

// refStore is the obviously-correct model the engine is checked against.
type refStore struct {
	cols map[string]*refCol
}

type refCol struct {
	docs map[string]map[int64]string
	kv   map[string]string
}

func newRef() *refStore { return &refStore{cols: map[string]*refCol{}} }

func (r *refStore) col(name string) *refCol {
	c := r.cols[name]
	if c == nil {
		c = &refCol{docs: map[string]map[int64]string{}, kv: map[string]string{}}
		r.cols[name] = c
	}
	return c
}

// gc removes a collection left empty, as ddoc does (record and KV deletes never remove one).
func (r *refStore) gc(name string) {
	if c := r.cols[name]; c != nil && len(c.docs) == 0 && len(c.kv) == 0 {
		delete(r.cols, name)
	}
}

func (r *refStore) Insert(recs []Record) {
	for _, x := range recs {
		c := r.col(x.Collection)
		d := c.docs[x.Doc]
		if d == nil {
			d = map[int64]string{}
			c.docs[x.Doc] = d
		}
		d[x.TS] = string(x.Data)
	}
}

func (r *refStore) DeleteRange(col, doc string, from, to int64) (n int) {
	c := r.cols[col]
	if c == nil {
		return 0
	}
	if d := c.docs[doc]; d != nil {
		for ts := range d {
			if ts >= from && ts <= to {
				delete(d, ts)
				n++
			}
		}
		if len(d) == 0 {
			delete(c.docs, doc)
		}
	}
	return n
}

func (r *refStore) DeleteDoc(col, doc string) (removed bool) {
	for name, c := range r.cols {
		if col == "" || name == col {
			if _, ok := c.docs[doc]; ok {
				removed = true
				delete(c.docs, doc)
			}
			r.gc(name)
		}
	}
	return removed
}

func (r *refStore) DeleteCollection(col string) (docs int) {
	if c := r.cols[col]; c != nil {
		docs = len(c.docs)
	}
	delete(r.cols, col)
	return docs
}

func (r *refStore) SetValue(col, k, v string) { r.col(col).kv[k] = v }

func (r *refStore) DeleteValue(col, k string) {
	if c := r.cols[col]; c != nil {
		delete(c.kv, k)
	}
}

func (r *refStore) docRecs(col, doc string) []rec {
	c := r.cols[col]
	if c == nil {
		return nil
	}
	var out []rec
	for ts, v := range c.docs[doc] {
		out = append(out, rec{ts, v})
	}
	slices.SortFunc(out, func(a, b rec) int {
		if a.TS < b.TS {
			return -1
		}
		if a.TS > b.TS {
			return 1
		}
		return 0
	})
	return out
}

func (r *refStore) Range(col, doc string, q RangeQuery) []rec {
	var sel []rec
	for _, x := range r.docRecs(col, doc) {
		if x.TS >= q.From && x.TS <= q.To {
			sel = append(sel, x)
		}
	}
	if q.Reverse {
		slices.Reverse(sel)
	}
	var out []rec
	for _, x := range sel {
		if q.Keep != nil && !q.Keep([]byte(x.Data)) {
			continue
		}
		out = append(out, x)
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	return out
}

func (r *refStore) Latest(col string, q LatestQuery) map[string]rec {
	out := map[string]rec{}
	c := r.cols[col]
	if c == nil {
		return out
	}
	for doc := range c.docs {
		switch {
		case q.DocMatch != nil:
			if !q.DocMatch(doc) {
				continue
			}
		case q.Doc != "" && q.Doc != doc:
			continue
		}
		var best *rec
		for _, x := range r.docRecs(col, doc) {
			if x.TS <= q.TS {
				best = &x
			}
		}
		if best == nil || (q.From != 0 && best.TS < q.From) || (q.Keep != nil && !q.Keep([]byte(best.Data))) {
			continue
		}
		out[doc] = *best
	}
	return out
}

func (r *refStore) Stats() Stats {
	var st Stats
	for _, c := range r.cols {
		st.Collections++
		st.KVEntries += int64(len(c.kv))
		for _, d := range c.docs {
			st.Documents++
			for _, v := range d {
				st.Records++
				st.PayloadBytes += int64(len(v))
			}
		}
	}
	return st
}

func (r *refStore) dump() *dumpState {
	st := &dumpState{cols: map[string]*dumpCol{}}
	for name, c := range r.cols {
		dc := &dumpCol{docs: map[string][]rec{}, kv: maps.Clone(c.kv)}
		for doc := range c.docs {
			dc.docs[doc] = r.docRecs(name, doc)
		}
		st.cols[name] = dc
	}
	return st
}
