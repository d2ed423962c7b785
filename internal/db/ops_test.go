package db

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/volandoo/fluxiondb/internal/auth"
	"github.com/volandoo/fluxiondb/internal/engine"
)

// recorder is a target that writes down every op it receives, copying what aliases the
// payload.
type recorder struct{ ops []string }

func (r *recorder) add(format string, a ...any) { r.ops = append(r.ops, fmt.Sprintf(format, a...)) }
func (r *recorder) insert(recs []engine.Record) {
	for _, x := range recs {
		r.add("ins %q %q %d %q", x.Collection, x.Doc, x.TS, x.Data)
	}
}
func (r *recorder) deleteDoc(col, doc string)   { r.add("ddoc %q %q", col, doc) }
func (r *recorder) deleteCollection(col string) { r.add("dcol %q", col) }
func (r *recorder) deleteRecords(keys []engine.RecordKey) {
	for _, k := range keys {
		r.add("drec %q %q %d", k.Collection, k.Doc, k.TS)
	}
}
func (r *recorder) deleteRange(col, doc string, from, to int64) {
	r.add("drrng %q %q %d %d", col, doc, from, to)
}
func (r *recorder) setValue(col, key, value string) { r.add("sval %q %q %q", col, key, value) }
func (r *recorder) deleteValue(col, key string)     { r.add("rval %q %q", col, key) }
func (r *recorder) putKey(h auth.Hash, hint string, s auth.Scope) {
	r.add("kput %x %q %d", h, hint, s)
}
func (r *recorder) removeKey(h auth.Hash) { r.add("kdel %x", h) }

// sampleOps returns encoded payloads of every op kind with what decoding each must give.
func sampleOps() (payloads [][]byte, want []string) {
	h := auth.HashKey("some secret")
	recs := []engine.Record{
		{Collection: "c", Doc: "d", TS: 5, Data: []byte(`{"a":1}`)},
		{Collection: "c", Doc: "d", TS: 3, Data: nil}, // out of order, empty data
		{Collection: "c", Doc: "d", TS: 5, Data: []byte("again")},
		{Collection: "c", Doc: "e", TS: math.MaxInt64, Data: []byte("max")},
		{Collection: "c2", Doc: "e", TS: math.MinInt64, Data: []byte("min")},
		{Collection: "c", Doc: "d", TS: -1, Data: []byte("neg")},
	}
	add := func(p []byte, w ...string) {
		payloads = append(payloads, p)
		want = append(want, w...)
	}
	var w []string
	for _, x := range recs {
		w = append(w, fmt.Sprintf("ins %q %q %d %q", x.Collection, x.Doc, x.TS, x.Data))
	}
	add(appendInsert(nil, recs), w...)
	add(appendInsertV1(recs), w...) // logs written by earlier versions still replay
	add(appendInsert(nil, nil))
	add(appendString(appendString([]byte{opDeleteDoc}, ""), "doc"), `ddoc "" "doc"`)
	add(appendString([]byte{opDeleteCol}, "col"), `dcol "col"`)
	add(appendDeleteRecords(nil, []engine.RecordKey{{Collection: "a", Doc: "b", TS: 1}, {Collection: "x", Doc: "y", TS: math.MaxInt64}}),
		`drec "a" "b" 1`, fmt.Sprintf(`drec "x" "y" %d`, int64(math.MaxInt64)))
	add(appendDeleteRange(nil, "c", "d", 10, 20), `drrng "c" "d" 10 20`)
	add(appendString(appendString(appendString([]byte{opSetValue}, "c"), "k"), "v\x00é"), `sval "c" "k" "v\x00é"`)
	add(appendString(appendString([]byte{opDeleteValue}, "c"), "k"), `rval "c" "k"`)
	add(appendPutKey(nil, h, "some…", auth.ScopeReadWrite), fmt.Sprintf("kput %x %q %d", h, "some…", auth.ScopeReadWrite))
	add(append([]byte{opRemoveKey}, h[:]...), fmt.Sprintf("kdel %x", h))
	// An insert large enough to be logged compressed.
	big := sensorBatch(60)
	w = w[:0]
	for _, x := range big {
		w = append(w, fmt.Sprintf("ins %q %q %d %q", x.Collection, x.Doc, x.TS, x.Data))
	}
	op := encodeOp(func(b []byte) []byte { return appendInsert(b, big) })
	if op.payload[0] != opCompressed {
		panic("sampleOps: the large insert was not compressed")
	}
	add(bytes.Clone(op.payload), w...)
	op.release()
	return payloads, want
}

func TestOpsRoundTrip(t *testing.T) {
	payloads, want := sampleOps()
	var dec opDecoder
	r := &recorder{}
	for _, p := range payloads {
		if err := dec.decode(p, r); err != nil {
			t.Fatalf("decode %q: %v", p, err)
		}
	}
	if !reflect.DeepEqual(want, r.ops) {
		t.Errorf("decoded ops differ:\nwant %q\n got %q", want, r.ops)
	}
}

// appendInsertV1 encodes recs as the 'I' op of earlier versions did (the ts delta restarts
// in every group), so the tests can check that such logs still replay.
func appendInsertV1(recs []engine.Record) []byte {
	b := []byte{opInsertV1}
	var groups [][]engine.Record
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].Collection == recs[i].Collection && recs[j].Doc == recs[i].Doc {
			j++
		}
		groups = append(groups, recs[i:j])
		i = j
	}
	b = binary.AppendUvarint(b, uint64(len(groups)))
	for _, g := range groups {
		b = appendString(appendString(b, g[0].Collection), g[0].Doc)
		b = binary.AppendUvarint(b, uint64(len(g)))
		prev := int64(0)
		for _, r := range g {
			b = binary.AppendVarint(b, int64(uint64(r.TS)-uint64(prev)))
			b = appendBytes(b, r.Data)
			prev = r.TS
		}
	}
	return b
}

// A batch spread over many documents (one group per record) carries small ts deltas, not
// a whole timestamp per record.
func TestOpsInsertSpreadBatchIsCompact(t *testing.T) {
	recs := make([]engine.Record, 1000)
	for i := range recs {
		recs[i] = engine.Record{Collection: "c", Doc: fmt.Sprintf("d%04d", i), TS: 1_700_000_000_000 + int64(i/10), Data: []byte("0123456789")}
	}
	p := appendInsert(nil, recs)
	// per record: col 2 + doc 6 + count 1 + delta 1 + length 1 + data 10 = 21 bytes
	if len(p) > 1000*21+16 {
		t.Errorf("1000 records over 1000 documents encode to %d bytes, want at most %d", len(p), 1000*21+16)
	}
	if v1 := appendInsertV1(recs); len(p) >= len(v1) {
		t.Errorf("'J' op %d bytes, not smaller than the 'I' op's %d", len(p), len(v1))
	}
}

func TestOpsInsertGroupsNames(t *testing.T) {
	recs := make([]engine.Record, 1000)
	for i := range recs {
		recs[i] = engine.Record{Collection: "sensors", Doc: "device-0001", TS: int64(1_700_000_000_000 + i), Data: []byte("0123456789")}
	}
	p := appendInsert(nil, recs)
	// names once, then ~1 byte delta + 1 byte length + 10 bytes data per record
	if len(p) > 1000*12+64 {
		t.Errorf("1000 records of 10 bytes for one document encode to %d bytes; names should be written once", len(p))
	}
}

// TestOpsInsertGroupBoundaries checks the grouping against names that sameName must tell
// apart past their length and last character, empty names, and lengths that need
// multi-byte varints: every batch decodes back to its records, in order, with one group per
// run of equal names.
func TestOpsInsertGroupBoundaries(t *testing.T) {
	long := strings.Repeat("n", 200)
	big := bytes.Repeat([]byte("x"), 300)
	recs := []engine.Record{
		{Collection: "c", Doc: "ab", TS: 1, Data: []byte("1")},
		{Collection: "c", Doc: "bb", TS: 2, Data: []byte("2")}, // same length and last byte
		{Collection: "c", Doc: "bb", TS: 3, Data: big},
		{Collection: "d", Doc: "bb", TS: 4, Data: nil}, // same doc, other collection
		{Collection: "", Doc: "", TS: 5, Data: []byte("5")},
		{Collection: "", Doc: "", TS: -6, Data: []byte("6")},
		{Collection: "c", Doc: long, TS: 1 << 40, Data: big},
		{Collection: "c", Doc: long[:199] + "m", TS: 7, Data: []byte("7")},
		{Collection: "c", Doc: long, TS: 8, Data: []byte("8")},
	}
	p := appendInsert(nil, recs)
	groups, k := binary.Uvarint(p[1:])
	if k <= 0 || groups != 7 {
		t.Fatalf("group count %d (read %d bytes), want 7", groups, k)
	}
	r := &recorder{}
	var dec opDecoder
	if err := dec.decode(p, r); err != nil {
		t.Fatal(err)
	}
	want := &recorder{}
	want.insert(recs)
	if !reflect.DeepEqual(r.ops, want.ops) {
		t.Errorf("decoded\n%q\nwant\n%q", r.ops, want.ops)
	}
	// The encoder writes after what the buffer already holds.
	q := appendInsert([]byte("prefix"), recs)
	if !bytes.Equal(q[len("prefix"):], p) || string(q[:len("prefix")]) != "prefix" {
		t.Error("appending to a non-empty buffer changed the encoding or the prefix")
	}
}

func TestOpsRejectDamage(t *testing.T) {
	payloads, _ := sampleOps()
	var dec opDecoder
	for _, p := range payloads {
		// every strict prefix is an error, never a panic, and never reaches the target
		for n := 0; n < len(p); n++ {
			r := &recorder{}
			if err := dec.decode(p[:n], r); err == nil && len(r.ops) > 0 {
				t.Errorf("prefix %q of %q decoded to %v", p[:n], p, r.ops)
			} else if err == nil && n > 0 && p[0] != opInsert && p[0] != opInsertV1 {
				t.Errorf("prefix %q of %q decoded without error", p[:n], p)
			}
		}
		r := &recorder{}
		if err := dec.decode(append(bytes.Clone(p), 0), r); err == nil {
			t.Errorf("%q with a trailing byte decoded", p)
		}
	}
	for _, bad := range [][]byte{
		{'?'},
		{opInsert, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // huge group count
		append(append([]byte{opPutKey}, make([]byte, 32)...), 0, 9),            // scope 9
		append(append([]byte{opPutKey}, make([]byte, 32)...), 0, 0),            // scope none
	} {
		if err := dec.decode(bad, &recorder{}); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

// FuzzDecodeOp feeds arbitrary payloads (what a damaged or hostile log frame could hold
// behind a valid CRC) to the op decoder: it must never panic, and whatever it accepts must
// encode back to an op that decodes to the same changes.
func FuzzDecodeOp(f *testing.F) {
	payloads, _ := sampleOps()
	for _, p := range payloads {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var dec opDecoder
		r := &recorder{}
		if err := dec.decode(p, r); err != nil {
			return
		}
		if _, err := decodeKeyBlob(p); err == nil && p[0] != opPutKey {
			t.Fatalf("key blob accepted with kind %q", p[0])
		}
		// Re-encode through a capturing target and decode again.
		c := &capture{}
		if err := dec.decode(p, c); err != nil {
			t.Fatal(err)
		}
		r2 := &recorder{}
		if err := dec.decode(c.out, r2); err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", c.out, err)
		}
		if !reflect.DeepEqual(r.ops, r2.ops) {
			t.Fatalf("re-encoding changed the ops:\n%q\n%q", r.ops, r2.ops)
		}
	})
}

// capture re-encodes what it receives with the DB's encoders.
type capture struct{ out []byte }

func (c *capture) insert(recs []engine.Record) { c.out = appendInsert(c.out, recs) }
func (c *capture) deleteDoc(col, doc string) {
	c.out = appendString(appendString(append(c.out, opDeleteDoc), col), doc)
}
func (c *capture) deleteCollection(col string) { c.out = appendString(append(c.out, opDeleteCol), col) }
func (c *capture) deleteRecords(keys []engine.RecordKey) {
	c.out = appendDeleteRecords(c.out, keys)
}
func (c *capture) deleteRange(col, doc string, from, to int64) {
	c.out = appendDeleteRange(c.out, col, doc, from, to)
}
func (c *capture) setValue(col, key, value string) {
	c.out = appendString(appendString(appendString(append(c.out, opSetValue), col), key), value)
}
func (c *capture) deleteValue(col, key string) {
	c.out = appendString(appendString(append(c.out, opDeleteValue), col), key)
}
func (c *capture) putKey(h auth.Hash, hint string, s auth.Scope) {
	c.out = appendPutKey(c.out, h, hint, s)
}
func (c *capture) removeKey(h auth.Hash) { c.out = append(append(c.out, opRemoveKey), h[:]...) }

// TestNameCacheKeepsTheCollection: replaying a log whose groups name one collection and
// many documents reuses the collection's string throughout (no allocation per group).
func TestNameCacheKeepsTheCollection(t *testing.T) {
	var c nameCache
	col := c.get([]byte("sensors"))
	for i := range 100 {
		if doc := c.get([]byte(fmt.Sprintf("doc-%d", i))); doc != fmt.Sprintf("doc-%d", i) {
			t.Fatalf("got %q for doc-%d", doc, i)
		}
		if got := c.get([]byte("sensors")); unsafe.StringData(got) != unsafe.StringData(col) {
			t.Fatalf("after %d documents the collection name was allocated again", i+1)
		}
	}
}
