package db

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/volandoo/fluxiondb/internal/auth"
	"github.com/volandoo/fluxiondb/internal/engine"
)

// An op is one state change as it is written to the log: the payload of one WAL frame
// (docs/persistence.md, "Log payload"). The first byte says which change; strings and
// blobs are uvarint length ‖ bytes; timestamps are zigzag varints. Every op is a blind set
// or delete — its effect never depends on the state it is applied to — which is what lets
// a fuzzy snapshot plus the log from the snapshot's start rebuild the exact state.
const (
	opInsert        byte = 'J' // uvarint groups; group = col ‖ doc ‖ uvarint n ‖ n × (varint ts−prev ‖ data); prev runs across groups
	opInsertV1      byte = 'I' // as opInsert, but prev restarts at 0 in every group (logs written before 'J'; read only)
	opDeleteDoc     byte = 'D' // col ‖ doc   (col "" = every collection)
	opDeleteCol     byte = 'C' // col
	opDeleteRecords byte = 'R' // uvarint n ‖ n × (col ‖ doc ‖ varint ts)
	opDeleteRange   byte = 'G' // col ‖ doc ‖ varint from ‖ varint to
	opSetValue      byte = 'S' // col ‖ key ‖ value
	opDeleteValue   byte = 'V' // col ‖ key
	opPutKey        byte = 'K' // hash[32] ‖ hint ‖ uvarint scope   (also the snapshot's key blob)
	opRemoveKey     byte = 'X' // hash[32]
	opCompressed    byte = 'Z' // S2 block of one of the ops above (compress.go)
)

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendInsert encodes recs, grouping runs of one (collection, doc) so a 1000-record batch
// for one document carries its names once. Order is kept: within a batch the later record
// for the same ts must still win on replay.
//
// It runs for every logged insert, so it writes by index into room reserved up front (one
// bounds check per field instead of an append's capacity check per byte run), writes
// one-byte varints inline and compares names with sameName: 444 → 312 instructions per
// record of BenchmarkAppendInsert (cachegrind).
func appendInsert(b []byte, recs []engine.Record) []byte {
	groups, size := 0, 1+binary.MaxVarintLen64
	for i := range recs {
		r := &recs[i]
		if i == 0 || !sameGroup(r, &recs[i-1]) {
			groups++
			size += len(r.Collection) + len(r.Doc) + 3*binary.MaxVarintLen64
		}
		size += len(r.Data) + 2*binary.MaxVarintLen64
	}
	b = slices.Grow(b, size)
	n := len(b)
	out := b[:n+size]
	out[n] = opInsert
	n = putUvarint(out, n+1, uint64(groups))
	// The ts delta runs across groups: a batch spread over many documents (one group per
	// record) holds records of about the same time, so each delta is a byte or two instead
	// of a whole timestamp.
	prev := int64(0)
	for i := 0; i < len(recs); {
		g := &recs[i]
		j := i + 1
		for j < len(recs) && sameGroup(&recs[j], g) {
			j++
		}
		n = putUvarint(out, n, uint64(len(g.Collection)))
		n += copy(out[n:], g.Collection)
		n = putUvarint(out, n, uint64(len(g.Doc)))
		n += copy(out[n:], g.Doc)
		n = putUvarint(out, n, uint64(j-i))
		for k := i; k < j; k++ {
			r := &recs[k]
			// Wrapping subtraction, zigzag-encoded (binary.PutVarint's form): the wrapped
			// delta decodes back exactly.
			d := int64(uint64(r.TS) - uint64(prev))
			n = putUvarint(out, n, uint64(d<<1)^uint64(d>>63))
			n = putUvarint(out, n, uint64(len(r.Data)))
			n += copy(out[n:], r.Data)
			prev = r.TS
		}
		i = j
	}
	return out[:n]
}

// sameGroup reports whether a and b belong to the same (collection, doc) group. Names in a
// batch usually differ in their last character (doc-1, doc-2, …), so most unequal pairs are
// told apart without a call to compare the bytes.
func sameGroup(a, b *engine.Record) bool {
	return sameName(a.Doc, b.Doc) && sameName(a.Collection, b.Collection)
}

func sameName(a, b string) bool {
	return len(a) == len(b) && (len(a) == 0 || a[len(a)-1] == b[len(b)-1] && a == b)
}

// putUvarint writes v as a uvarint at out[n:] (room must be there) and returns the new end.
// The common one-byte case is written inline.
func putUvarint(out []byte, n int, v uint64) int {
	if v < 0x80 {
		out[n] = byte(v)
		return n + 1
	}
	return n + binary.PutUvarint(out[n:], v)
}

func appendDeleteRecords(b []byte, keys []engine.RecordKey) []byte {
	b = append(b, opDeleteRecords)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k.Collection)
		b = appendString(b, k.Doc)
		b = binary.AppendVarint(b, k.TS)
	}
	return b
}

func appendDeleteRange(b []byte, col, doc string, from, to int64) []byte {
	b = appendString(appendString(append(b, opDeleteRange), col), doc)
	return binary.AppendVarint(binary.AppendVarint(b, from), to)
}

func appendPutKey(b []byte, h auth.Hash, hint string, s auth.Scope) []byte {
	b = append(b, opPutKey)
	b = append(b, h[:]...)
	b = appendString(b, hint)
	return binary.AppendUvarint(b, uint64(s))
}

// errShort and friends describe undecodable payloads; decodeOp wraps them with the op.
var errShort = errors.New("payload ends early")

// opReader decodes one payload with a sticky error: the first failure sticks and every
// later read returns zero values, so callers check err once.
type opReader struct {
	b   []byte
	err error
	// last names seen, so a replay of many batches for the same collection and document
	// does not allocate a string per group.
	names *nameCache
}

func (r *opReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *opReader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.fail(errShort)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *opReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errors.New("bad uvarint"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *opReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errors.New("bad varint"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns a length-prefixed slice aliasing the payload.
func (r *opReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(errShort)
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *opReader) string() string {
	b := r.bytes()
	if r.names != nil {
		return r.names.get(b)
	}
	return string(b)
}

// count reads an element count and bounds it by what the rest of the payload can hold
// (each element takes at least minBytes bytes), so a damaged count cannot make us allocate much.
func (r *opReader) count(minBytes int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/minBytes) {
		r.fail(fmt.Errorf("count %d does not fit in %d bytes", n, len(r.b)))
		return 0
	}
	return int(n)
}

func (r *opReader) hash() (h auth.Hash) {
	if r.err != nil || len(r.b) < len(h) {
		r.fail(errShort)
		return h
	}
	copy(h[:], r.b)
	r.b = r.b[len(h):]
	return h
}

// nameCache remembers the last few collection and document names decoded, so replay
// reuses their strings instead of allocating one per group. A name found again moves to
// the front, and new names take the other slots in turn: a collection that every group of
// a log names stays cached while its many documents pass through the rest.
type nameCache struct {
	s [4]string
	i int // next slot for a new name, in 1..len(s)-1
}

func (c *nameCache) get(b []byte) string {
	for k, s := range c.s {
		if len(s) == len(b) && s == unsafe.String(unsafe.SliceData(b), len(b)) {
			c.s[0], c.s[k] = s, c.s[0]
			return s
		}
	}
	s := string(b)
	c.i = c.i%(len(c.s)-1) + 1
	c.s[c.i] = s
	return s
}

// errNewerOp is an op this build does not know: a change written by a newer build, not
// damage. Start-up says to run that build, and repair does not cut the log there.
var errNewerOp = errors.New("written by a newer version of FluxionDB: start the data folder with that version")

// target receives decoded ops. *DB's apply methods implement it for replay; tests
// implement it to compare against what was encoded.
type target interface {
	insert(recs []engine.Record)
	deleteDoc(col, doc string)
	deleteCollection(col string)
	deleteRecords(keys []engine.RecordKey)
	deleteRange(col, doc string, from, to int64)
	setValue(col, key, value string)
	deleteValue(col, key string)
	putKey(h auth.Hash, hint string, s auth.Scope)
	removeKey(h auth.Hash)
}

// opDecoder decodes payloads into a target, reusing its record slice between calls.
type opDecoder struct {
	raw   []byte // a compressed op's bytes, decompressed
	names nameCache
	recs  []engine.Record
	keys  []engine.RecordKey
}

// decode applies one payload to t. Record data passed to t aliases p (engine.Store.Insert
// copies it). A payload that does not decode completely changes nothing.
func (d *opDecoder) decode(p []byte, t target) error {
	if len(p) > 0 && p[0] == opCompressed {
		raw, err := decompress(d.raw, p[1:])
		if err != nil {
			return err
		}
		d.raw, p = raw, raw
	}
	r := &opReader{b: p, names: &d.names}
	op := r.byte()
	if r.err != nil {
		return fmt.Errorf("decode op: %w", r.err)
	}
	switch op {
	case opInsert, opInsertV1:
		recs := d.recs[:0]
		groups := r.count(3)
		prev := int64(0)
		for g := 0; g < groups && r.err == nil; g++ {
			col, doc := r.string(), r.string()
			n := r.count(2)
			if op == opInsertV1 {
				prev = 0
			}
			for i := 0; i < n && r.err == nil; i++ {
				ts := int64(uint64(prev) + uint64(r.varint()))
				data := r.bytes()
				recs = append(recs, engine.Record{Collection: col, Doc: doc, TS: ts, Data: data})
				prev = ts
			}
		}
		d.recs = recs[:0]
		if err := r.done(op); err != nil {
			return err
		}
		t.insert(recs)
		clear(recs) // drop references to the payload
	case opDeleteDoc:
		col, doc := r.string(), r.string()
		if err := r.done(op); err != nil {
			return err
		}
		t.deleteDoc(col, doc)
	case opDeleteCol:
		col := r.string()
		if err := r.done(op); err != nil {
			return err
		}
		t.deleteCollection(col)
	case opDeleteRecords:
		keys := d.keys[:0]
		n := r.count(3)
		for i := 0; i < n && r.err == nil; i++ {
			keys = append(keys, engine.RecordKey{Collection: r.string(), Doc: r.string(), TS: r.varint()})
		}
		d.keys = keys[:0]
		if err := r.done(op); err != nil {
			return err
		}
		t.deleteRecords(keys)
	case opDeleteRange:
		col, doc := r.string(), r.string()
		from, to := r.varint(), r.varint()
		if err := r.done(op); err != nil {
			return err
		}
		t.deleteRange(col, doc, from, to)
	case opSetValue:
		col, key, value := r.string(), r.string(), r.string()
		if err := r.done(op); err != nil {
			return err
		}
		t.setValue(col, key, value)
	case opDeleteValue:
		col, key := r.string(), r.string()
		if err := r.done(op); err != nil {
			return err
		}
		t.deleteValue(col, key)
	case opPutKey:
		h, hint, s := r.keyFields()
		if err := r.done(op); err != nil {
			return err
		}
		t.putKey(h, hint, s)
	case opRemoveKey:
		h := r.hash()
		if err := r.done(op); err != nil {
			return err
		}
		t.removeKey(h)
	default:
		return fmt.Errorf("decode op: unknown op 0x%02x: %w", op, errNewerOp)
	}
	return nil
}

func (r *opReader) keyFields() (auth.Hash, string, auth.Scope) {
	h := r.hash()
	hint := string(r.bytes()) // never cached: hints are not names
	s := r.uvarint()
	if r.err == nil && (s == uint64(auth.ScopeNone) || s > uint64(auth.ScopeReadWriteDelete) || s > math.MaxUint32) {
		r.fail(fmt.Errorf("invalid scope %d", s))
	}
	return h, hint, auth.Scope(s)
}

// done reports a decoding error or trailing bytes for op.
func (r *opReader) done(op byte) error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d unexpected trailing bytes", len(r.b))
	}
	if r.err != nil {
		return fmt.Errorf("decode op %q: %w", op, r.err)
	}
	return nil
}

// decodeKeyBlob decodes a snapshot's key blob (the same bytes as a put-key op).
func decodeKeyBlob(p []byte) (auth.Stored, error) {
	r := &opReader{b: p}
	if op := r.byte(); r.err == nil && op != opPutKey {
		return auth.Stored{}, fmt.Errorf("decode key blob: kind 0x%02x, want %q", op, opPutKey)
	}
	h, hint, s := r.keyFields()
	if err := r.done(opPutKey); err != nil {
		return auth.Stored{}, err
	}
	return auth.Stored{Hash: h, Hint: hint, Scope: s}, nil
}
