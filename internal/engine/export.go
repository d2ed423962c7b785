package engine

import (
	"fmt"
	"slices"
	"strings"
)

// Exporter receives a point-in-time view of the store from Export.
type Exporter interface {
	Collection(name string) error
	Document(doc string, n int) error   // n = record count that follows
	Record(ts int64, data []byte) error // ascending ts; data valid only during the call
	Value(key, value string) error
}

// frozenDoc is a document's block index captured under the collection lock.
type frozenDoc struct {
	name   string
	count  int
	blocks []block
}

// Export walks a point-in-time view of each collection in turn (consistent per collection),
// collections and documents in name order. It holds a collection's read lock only while it
// captures each document's block index (O(documents), no records are touched) and copies the
// KV map, then calls v without locks. Writers that run meanwhile are not reflected in the collection already
// frozen; replaying their (blind set/delete) WAL records over the export gives the exact
// final state. The first error from v stops the walk and is returned wrapped.
func (s *Store) Export(v Exporter) error {
	s.mu.RLock()
	cols := make([]*collection, 0, len(s.cols))
	for _, c := range s.cols {
		cols = append(cols, c)
	}
	s.mu.RUnlock()
	slices.SortFunc(cols, func(a, b *collection) int { return strings.Compare(a.name, b.name) })

	for _, c := range cols {
		docs, kv, ok := c.freeze()
		if !ok {
			continue
		}
		if err := exportCollection(v, c.name, docs, kv); err != nil {
			return err
		}
	}
	return nil
}

// freeze captures the collection's view; ok is false when it was removed. It copies
// one slice header per document, not the block indexes: bumping exports makes the next
// writer of each document copy its index first (collection.own), so the captured indexes
// never change. Captured blocks never change below their length (block.epoch stops the
// in-place replace), so the view needs no lock.
func (c *collection) freeze() (docs []frozenDoc, kv [][2]string, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.dead {
		return nil, nil, false
	}
	c.exports.Add(1)
	docs = make([]frozenDoc, 0, len(c.docs))
	for _, d := range c.docs {
		docs = append(docs, frozenDoc{name: d.name, count: d.count, blocks: d.blocks})
	}
	kv = make([][2]string, 0, len(c.kv))
	for k, val := range c.kv {
		kv = append(kv, [2]string{k, val})
	}
	return docs, kv, true
}

func exportCollection(v Exporter, name string, docs []frozenDoc, kv [][2]string) error {
	slices.SortFunc(docs, func(a, b frozenDoc) int { return strings.Compare(a.name, b.name) })
	slices.SortFunc(kv, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	if err := v.Collection(name); err != nil {
		return fmt.Errorf("export collection %q: %w", name, err)
	}
	for _, d := range docs {
		if err := v.Document(d.name, d.count); err != nil {
			return fmt.Errorf("export collection %q document %q: %w", name, d.name, err)
		}
		for i := range d.blocks {
			b := &d.blocks[i]
			prev := b.minTS
			for off := 0; ; {
				ts, p, next, ok := readRec(b.data, off, prev)
				if !ok {
					break
				}
				if err := v.Record(ts, p); err != nil {
					return fmt.Errorf("export collection %q document %q record %d: %w", name, d.name, ts, err)
				}
				prev, off = ts, next
			}
		}
	}
	for _, e := range kv {
		if err := v.Value(e[0], e[1]); err != nil {
			return fmt.Errorf("export collection %q value %q: %w", name, e[0], err)
		}
	}
	return nil
}
