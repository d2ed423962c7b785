package engine

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Record is one insert input. Data is copied into the store.
type Record struct {
	Collection, Doc string
	TS              int64
	Data            []byte
}

// RecordKey names one record for deletion.
type RecordKey struct {
	Collection, Doc string
	TS              int64
}

// Stats are cheap counters, maintained incrementally.
type Stats struct{ Collections, Documents, Records, PayloadBytes, KVEntries int64 }

// Store holds every collection. Safe for concurrent use.
//
// Lock order: Store.mu before collection.mu. Store.mu only guards the collection map and is
// held briefly; every document and KV operation runs under its collection's lock alone, so
// readers of one collection never wait on writers of another.
type Store struct {
	mu   sync.RWMutex
	cols map[string]*collection

	nCols, nDocs, nRecs, nBytes, nKV atomic.Int64
}

// collection is a set of documents and KV entries under one lock.
type collection struct {
	name string

	mu   sync.RWMutex
	docs map[string]*document
	list []*document // the same documents, dense, for walks over all of them (Latest); see addDoc
	kv   map[string]string
	// dead is set (under Store.mu and mu) when the collection was removed from the map; a
	// writer that looked it up before must look it up again.
	dead bool
	// live says the collection is listed (created and not removed), so Collections needs
	// no collection lock.
	live atomic.Bool
	// exports counts Export freezes. A document whose epoch differs may share its block
	// index with a frozen view, so a writer copies the index before changing it (own).
	// Incremented under the read lock, read under the write lock.
	exports atomic.Uint64
}

// own makes d's block index private to the writer (which holds c.mu) before it is changed:
// an Export since the last change may still be reading the old one. Cost O(blocks of d),
// once per document per Export.
// addDoc and removeDoc keep docs and list in step; a document knows its place in list, so
// removal swaps the last one into it (order in list means nothing).
func (c *collection) addDoc(d *document) {
	d.idx = len(c.list)
	c.list = append(c.list, d)
	c.docs[d.name] = d
}

func (c *collection) removeDoc(d *document) {
	last := c.list[len(c.list)-1]
	c.list[d.idx] = last
	last.idx = d.idx
	c.list[len(c.list)-1] = nil
	c.list = c.list[:len(c.list)-1]
	delete(c.docs, d.name)
}

func (c *collection) own(d *document) {
	d.enc.Store(nil) // about to change: LatestEncoded's kept fragment goes stale
	if e := c.exports.Load(); d.epoch != e {
		d.blocks = slices.Clone(d.blocks)
		d.epoch = e
	}
}

// New returns an empty Store.
func New() *Store {
	return &Store{cols: make(map[string]*collection)}
}

// lookup returns the collection or nil, without locking the collection.
func (s *Store) lookup(name string) *collection {
	s.mu.RLock()
	c := s.cols[name]
	s.mu.RUnlock()
	return c
}

// lockExisting returns the collection write-locked, or nil when it does not exist.
func (s *Store) lockExisting(name string) *collection {
	for {
		c := s.lookup(name)
		if c == nil {
			return nil
		}
		c.mu.Lock()
		if !c.dead {
			return c
		}
		c.mu.Unlock()
	}
}

// lockOrCreate returns the collection write-locked, creating it when missing.
func (s *Store) lockOrCreate(name string) *collection {
	for {
		c := s.lookup(name)
		if c == nil {
			s.mu.Lock()
			if c = s.cols[name]; c == nil {
				c = &collection{
					name: strings.Clone(name),
					docs: make(map[string]*document),
					kv:   make(map[string]string),
				}
				s.cols[c.name] = c
			}
			s.mu.Unlock()
		}
		c.mu.Lock()
		if !c.dead {
			return c
		}
		c.mu.Unlock()
	}
}

// unlock releases a collection after a mutation, publishing that it is listed (a collection
// is listed from the mutation that creates it until ddoc or dcol removes it).
func (s *Store) unlock(c *collection) {
	if !c.live.Load() {
		c.live.Store(true)
		s.nCols.Add(1)
	}
	c.mu.Unlock()
}

// dropIfEmpty removes c if it is (still) empty: what ddoc does to a collection it leaves
// with no documents and no KV entries. Record and KV deletes never remove a collection: an
// emptied one stays listed (docs/PROTOCOL.md §3).
func (s *Store) dropIfEmpty(c *collection) {
	s.mu.Lock()
	c.mu.Lock()
	if !c.dead && len(c.docs) == 0 && len(c.kv) == 0 && s.cols[c.name] == c {
		c.dead = true
		delete(s.cols, c.name)
		if c.live.Load() {
			c.live.Store(false)
			s.nCols.Add(-1)
		}
	}
	c.mu.Unlock()
	s.mu.Unlock()
}

// CreateCollection creates an empty collection when it does not exist (a snapshot's record
// of one that record deletes emptied).
func (s *Store) CreateCollection(name string) {
	s.unlock(s.lockOrCreate(name))
}

// rlock returns the collection read-locked, or nil when missing.
func (s *Store) rlock(name string) *collection {
	c := s.lookup(name)
	if c == nil {
		return nil
	}
	c.mu.RLock()
	return c
}

// pending is an insert that does not extend its document and is merged at the end of a run.
type pending struct {
	doc *document
	ts  int64
	seq int // index in the Insert batch; the later one wins on equal ts
}

// insertScratch is per-Insert working space, pooled so steady-state inserts allocate nothing.
type insertScratch struct {
	pend    []pending
	recs    []entry
	decoded []entry
	raw     []byte // a block being spliced (document.merge)
}

var insertPool = sync.Pool{New: func() any { return new(insertScratch) }}

// Insert adds records; the same (collection, doc, ts) replaces, and within one call the later
// element wins. Collections/documents are created on demand.
//
// Records newer than their document's newest are appended to the document's open block
// (amortised O(1), no allocation per record). Others are collected and merged, per document,
// once per run of records of the same collection, so an out-of-order batch rebuilds each
// touched block once. A run of one collection is applied under one lock acquisition, so
// readers see it whole.
func (s *Store) Insert(recs []Record) {
	if len(recs) == 0 {
		return
	}
	sc := insertPool.Get().(*insertScratch)
	for i := 0; i < len(recs); {
		c := s.lockOrCreate(recs[i].Collection)
		var (
			d          *document
			docs, adds int
			bytes      int64
			sawPending bool
		)
		j := i
		for ; j < len(recs) && recs[j].Collection == c.name; j++ {
			r := &recs[j]
			if d == nil || d.name != r.Doc {
				d = c.docs[r.Doc]
				if d == nil {
					d = &document{name: strings.Clone(r.Doc), epoch: c.exports.Load()}
					c.addDoc(d)
					docs++
				}
				c.own(d)
			}
			if d.count == 0 || r.TS > d.maxTS() {
				d.appendNewest(r.TS, r.Data)
				adds++
				bytes += int64(len(r.Data))
				continue
			}
			sc.pend = append(sc.pend, pending{d, r.TS, j})
			sawPending = true
		}
		if sawPending {
			a, b := s.flushPending(sc, recs)
			adds += a
			bytes += b
		}
		s.nDocs.Add(int64(docs))
		s.nRecs.Add(int64(adds))
		s.nBytes.Add(bytes)
		s.unlock(c)
		i = j
	}
	insertPool.Put(sc)
}

// flushPending merges the collected out-of-order records into their documents.
func (s *Store) flushPending(sc *insertScratch, recs []Record) (adds int, bytes int64) {
	p := sc.pend
	// Group by document, then ts, then batch order. Documents are told apart by their place
	// in the collection's list (unique, and fixed while the lock is held), which compares
	// faster than their names; the order of documents means nothing.
	slices.SortFunc(p, func(a, b pending) int {
		if c := cmp.Compare(a.doc.idx, b.doc.idx); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ts, b.ts); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	for i := 0; i < len(p); {
		d := p[i].doc
		sc.recs = sc.recs[:0]
		for ; i < len(p) && p[i].doc == d; i++ {
			if i+1 < len(p) && p[i+1].doc == d && p[i+1].ts == p[i].ts {
				continue // a later element of the batch has the same ts
			}
			sc.recs = append(sc.recs, entry{p[i].ts, recs[p[i].seq].Data})
		}
		a, b := d.merge(sc.recs, sc)
		adds += a
		bytes += b
	}
	clear(sc.pend)
	sc.pend = sc.pend[:0]
	clear(sc.recs)
	sc.recs = sc.recs[:0]
	return adds, bytes
}

// LatestQuery selects the latest record per document at or before TS.
type LatestQuery struct {
	TS       int64                  // inclusive upper bound
	From     int64                  // drop the doc if its latest record's ts < From (0 = no bound)
	Doc      string                 // exact document name; "" = all documents (unless DocMatch set)
	DocMatch func(doc string) bool  // when non-nil, documents whose name matches; Doc ignored
	Keep     func(data []byte) bool // predicate on the chosen record; nil = keep all; no fallback
}

// Latest calls fn for every selected document (order unspecified) with its newest record at
// or before q.TS. fn runs under the collection's read lock: it must not call back into the
// Store, and data is only valid during the call. Missing collection: no calls.
// Cost O(N log n) for N documents of n records (O(1) per document when q.TS is at or after
// its newest record).
func (s *Store) Latest(collection string, q LatestQuery, fn func(doc string, ts int64, data []byte)) {
	s.latest(collection, q, false, func(d *document, ts int64, data []byte, _ bool, _ *[]byte) { fn(d.name, ts, data) })
}

// LatestEncoded is Latest for a caller that turns each chosen record into bytes the same way
// every time — a reply fragment. encode appends the fragment for (doc, ts, data) to dst; fn
// receives the fragment. When the chosen record is its document's newest, the fragment is
// kept with the document until the document next changes, so repeating the query (a
// dashboard asking for the latest of every device) copies bytes instead of encoding them.
// The kept fragments cost about one encoded record per document that was queried.
// encode and fn run under the collection's read lock, as in Latest.
func (s *Store) LatestEncoded(collection string, q LatestQuery, encode func(dst []byte, doc string, ts int64, data []byte) []byte, fn func(fragment []byte)) {
	var tmp []byte
	s.latest(collection, q, true, func(d *document, ts int64, data []byte, newest bool, kept *[]byte) {
		if kept != nil {
			fn(*kept)
			return
		}
		if !newest {
			tmp = encode(tmp[:0], d.name, ts, data)
			fn(tmp)
			return
		}
		b := encode(nil, d.name, ts, data)
		d.enc.Store(&b) // readers may race to store the same bytes; either copy is right
		fn(b)
	})
}

// latest selects the records of Latest; newest says the record is its document's newest.
// With useKept, a document's kept fragment (see LatestEncoded) is passed as kept, and its
// payload is not read unless q.Keep needs it (data is then nil).
func (s *Store) latest(collection string, q LatestQuery, useKept bool, fn func(d *document, ts int64, data []byte, newest bool, kept *[]byte)) {
	c := s.rlock(collection)
	if c == nil {
		return
	}
	defer c.mu.RUnlock()
	visit := func(d *document) {
		ts, data, ok := d.latest(q.TS)
		if !ok || (q.From != 0 && ts < q.From) || (q.Keep != nil && !q.Keep(data)) {
			return
		}
		var kept *[]byte
		newest := ts == d.maxTS()
		if useKept && newest {
			kept = d.enc.Load()
		}
		fn(d, ts, data, newest, kept)
	}
	if q.Doc != "" && q.DocMatch == nil {
		if d := c.docs[q.Doc]; d != nil {
			visit(d)
		}
		return
	}
	// Many documents: their blocks lie all over memory, so the walk is bound by cache
	// misses, not by work. It goes in stages with small loop bodies — collect the documents,
	// then read each newest block's header, then each chosen payload — so the CPU overlaps
	// the misses of many documents instead of waiting for each chain in turn.
	sc := latestPool.Get().(*latestScratch)
	defer latestPool.Put(sc)
	docs := c.list
	if q.DocMatch != nil {
		sc.docs = sc.docs[:0]
		for _, d := range c.list {
			if q.DocMatch(d.name) {
				sc.docs = append(sc.docs, d)
			}
		}
		docs = sc.docs
	}
	sc.heads = slices.Grow(sc.heads[:0], len(docs))[:len(docs)]
	for i, d := range docs {
		h := &sc.heads[i]
		h.newest, h.kept = nil, nil
		if n := len(d.blocks); n > 0 {
			if b := &d.blocks[n-1]; q.TS >= b.maxTS {
				h.newest, h.ts, h.off = b.data, b.maxTS, b.lastOff
				if useKept {
					h.kept = d.enc.Load()
				}
			}
		}
	}
	for i := range sc.heads {
		if h := &sc.heads[i]; h.newest != nil && (h.kept == nil || q.Keep != nil) {
			h.payload = payloadAt(h.newest, h.off)
		}
	}
	for i, d := range docs {
		h := &sc.heads[i]
		if h.newest == nil {
			visit(d) // the query time falls inside the document's history: search it
			continue
		}
		if (q.From != 0 && h.ts < q.From) || (q.Keep != nil && !q.Keep(h.payload)) {
			continue
		}
		fn(d, h.ts, h.payload, true, h.kept)
	}
	clear(sc.docs)
	clear(sc.heads)
}

// latestScratch is the per-call working memory of Latest, pooled.
type latestScratch struct {
	docs  []*document
	heads []latestHead
}

type latestHead struct {
	newest  []byte // data of the newest block when the query is at or after its newest record
	ts      int64
	off     int32
	payload []byte
	kept    *[]byte // the document's kept reply fragment (LatestEncoded)
}

var latestPool = sync.Pool{New: func() any { return new(latestScratch) }}

// RangeQuery selects records of one document with From <= ts <= To.
type RangeQuery struct {
	From, To int64
	Reverse  bool                   // descending
	Limit    int                    // <= 0 = unlimited; applied after ordering and Keep
	Keep     func(data []byte) bool // nil = keep all
}

// Range calls fn for each selected record in order, under the read lock (same rules as
// Latest). Cost O(log n + k), plus at most one block scanned to find the start.
func (s *Store) Range(collection, doc string, q RangeQuery, fn func(ts int64, data []byte)) {
	c := s.rlock(collection)
	if c == nil {
		return
	}
	defer c.mu.RUnlock()
	if d := c.docs[doc]; d != nil {
		d.scan(q, fn)
	}
}

// Collections returns the names of the collections: every one that holds documents or KV
// entries, and those that record or KV deletes emptied (only ddoc and dcol remove one).
func (s *Store) Collections() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.cols))
	for name, c := range s.cols {
		if c.live.Load() {
			names = append(names, name)
		}
	}
	return names
}

// DeleteDoc removes a document. collection "" removes it from every collection. A collection
// that then holds no documents and no KV entries is removed (also one that record deletes
// had emptied before, as the contract words it: "when the collection then holds no
// documents"); one that still holds KV entries stays. It reports whether a document was
// removed.
func (s *Store) DeleteDoc(collection, doc string) bool {
	if collection != "" {
		removed, empty := false, false
		if c := s.lockExisting(collection); c != nil {
			removed = s.deleteDocLocked(c, doc)
			empty = len(c.docs) == 0 && len(c.kv) == 0
			s.unlock(c)
			if empty {
				s.dropIfEmpty(c)
			}
		}
		return removed
	}
	return len(s.DeleteDocEverywhere(doc)) > 0
}

// DeleteDocEverywhere removes doc from every collection and returns the collections it was
// removed from (for events that name them).
func (s *Store) DeleteDocEverywhere(doc string) []string {
	s.mu.RLock()
	names := make([]string, 0, len(s.cols))
	for name := range s.cols {
		names = append(names, name)
	}
	s.mu.RUnlock()
	var from []string
	for _, name := range names {
		if s.DeleteDoc(name, doc) {
			from = append(from, name)
		}
	}
	return from
}

func (s *Store) deleteDocLocked(c *collection, doc string) bool {
	d := c.docs[doc]
	if d == nil {
		return false
	}
	c.removeDoc(d)
	s.nDocs.Add(-1)
	s.nRecs.Add(-int64(d.count))
	s.nBytes.Add(-d.payload)
	return true
}

// DeleteCollection removes all documents and KV entries of a collection. Missing: no-op.
// It returns the number of documents the collection held.
func (s *Store) DeleteCollection(collection string) (docs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cols[collection]
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var recs, bytes int64
	for _, d := range c.docs {
		recs += int64(d.count)
		bytes += d.payload
	}
	s.nDocs.Add(-int64(len(c.docs)))
	s.nRecs.Add(-recs)
	s.nBytes.Add(-bytes)
	s.nKV.Add(-int64(len(c.kv)))
	if c.live.Load() {
		c.live.Store(false)
		s.nCols.Add(-1)
	}
	docs = len(c.docs)
	c.docs, c.list, c.kv = nil, nil, nil
	c.dead = true
	delete(s.cols, collection)
	return docs
}

// DeleteRecord removes the record with exactly ts. Missing: no-op. A doc left empty
// disappears. It reports whether the record existed.
func (s *Store) DeleteRecord(collection, doc string, ts int64) bool {
	return s.DeleteRange(collection, doc, ts, ts) > 0
}

// DeleteRange removes a document's records with from <= ts <= to and returns how many.
func (s *Store) DeleteRange(collection, doc string, from, to int64) int {
	if from > to {
		return 0
	}
	c := s.lockExisting(collection)
	if c == nil {
		return 0
	}
	sc := insertPool.Get().(*insertScratch)
	n := s.deleteRangeLocked(c, doc, from, to, sc)
	insertPool.Put(sc)
	s.unlock(c)
	return n
}

func (s *Store) deleteRangeLocked(c *collection, doc string, from, to int64, sc *insertScratch) int {
	d := c.docs[doc]
	if d == nil {
		return 0
	}
	c.own(d)
	n, bytes := d.deleteRange(from, to, sc)
	s.nRecs.Add(-int64(n))
	s.nBytes.Add(-bytes)
	if d.count == 0 {
		c.removeDoc(d)
		s.nDocs.Add(-1)
	}
	return n
}

// DeleteRecords removes many records (may span collections) and returns how many existed.
// When removed is not nil (len(keys) long), removed[i] reports whether keys[i]'s record
// existed. Consecutive keys of one collection are deleted under one lock acquisition.
func (s *Store) DeleteRecords(keys []RecordKey, removed []bool) int {
	sc := insertPool.Get().(*insertScratch)
	total := 0
	for i := 0; i < len(keys); {
		c := s.lockExisting(keys[i].Collection)
		j := i + 1
		if c != nil {
			for j = i; j < len(keys) && keys[j].Collection == c.name; j++ {
				n := s.deleteRangeLocked(c, keys[j].Doc, keys[j].TS, keys[j].TS, sc)
				total += n
				if removed != nil {
					removed[j] = n > 0
				}
			}
			s.unlock(c)
		}
		i = j
	}
	insertPool.Put(sc)
	return total
}

// Stats returns the current counters.
func (s *Store) Stats() Stats {
	return Stats{
		Collections:  s.nCols.Load(),
		Documents:    s.nDocs.Load(),
		Records:      s.nRecs.Load(),
		PayloadBytes: s.nBytes.Load(),
		KVEntries:    s.nKV.Load(),
	}
}
