package loadtest

import (
	"math/rand/v2"
	"strconv"
)

const hexDigits = "0123456789abcdef"

// appendEscaped appends s escaped as the body of a JSON string (no quotes).
// Non-ASCII bytes pass through: generated names and payloads are UTF-8.
func appendEscaped(dst []byte, s []byte) []byte {
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendJSONString appends s as a quoted JSON string.
func appendJSONString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}

// AppendFrame appends a complete request frame whose data field is the JSON
// document data, encoded as a string as PROTOCOL.md §2 requires. It is the
// general (slower) form; generators use precomputed pieces instead.
func AppendFrame(dst []byte, id, typ string, data []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, []byte(id))
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, []byte(typ))
	dst = append(dst, `,"data":`...)
	dst = appendJSONString(dst, data)
	return append(dst, '}')
}

// MakePayload returns a payload of exactly n bytes. From 32 bytes on it is JSON
// text with quotes, like real sensor data, so the double encoding is exercised.
func MakePayload(n int) []byte {
	if n <= 0 {
		return nil
	}
	const head, tail = `{"temp":21.5,"hum":40.2,"pad":"`, `"}`
	if n < len(head)+len(tail)+1 {
		p := make([]byte, n)
		for i := range p {
			p[i] = 'x'
		}
		return p
	}
	p := make([]byte, 0, n)
	p = append(p, head...)
	for len(p) < n-len(tail) {
		p = append(p, 'x')
	}
	return append(p, tail...)
}

// docRef names one generated document.
type docRef struct {
	col, doc string
}

// DocName and ColName give the names the generators use, so preload, load and
// checks agree.
func DocName(prefix string, d int) string { return prefix + "d" + strconv.Itoa(d) }

// ColName returns the name of collection c.
func ColName(prefix string, c int) string { return prefix + "c" + strconv.Itoa(c) }

func docRefs(prefix string, docs, cols int) []docRef {
	refs := make([]docRef, docs)
	for d := range refs {
		refs[d] = docRef{col: ColName(prefix, d%cols), doc: DocName(prefix, d)}
	}
	return refs
}

// generator builds the request frames of one connection. Generators are not
// shared between goroutines.
type generator interface {
	// next appends the frame of the next request with the given id to dst.
	// records is what the request carries (ins) or is expected to return
	// (reads, -1 when unknown); ok is false when the generator is done.
	next(dst, id []byte) (frame []byte, records int, ok bool)
	kind() Kind
}

// frameHead appends `{"id":"<id>","type":"` — ids are generated and need no escaping.
func frameHead(dst, id []byte) []byte {
	dst = append(dst, `{"id":"`...)
	dst = append(dst, id...)
	return append(dst, `","type":"`...)
}

// ingestGen writes batches of records round-robin over its own documents.
// Record k goes to docs[k % len(docs)] with ts = tsBase + k / len(docs), so
// every document sees increasing timestamps (the cheap in-order append) even
// with many requests in flight, because one connection owns each document.
type ingestGen struct {
	prefixes  [][]byte // per document: escaped `{"col":"…","doc":"…","data":"<payload>","ts":`
	tsBase    int64
	batch     int
	doc       int    // next document index
	round     int64  // ts offset of the current pass over the documents
	tsDigits  []byte // tsBase+round followed by '}', shared by the whole pass
	remaining int64  // records left; < 0 = unlimited
}

func newIngestGen(docs []docRef, payload []byte, tsBase int64, batch int, records int64) *ingestGen {
	g := &ingestGen{tsBase: tsBase, batch: batch, remaining: records}
	// The inner record is JSON; escaping it once more makes it part of the
	// outer data string. The payload is therefore escaped twice.
	innerPayload := appendJSONString(nil, payload)
	var inner []byte
	for _, d := range docs {
		inner = inner[:0]
		inner = append(inner, `{"col":`...)
		inner = appendJSONString(inner, []byte(d.col))
		inner = append(inner, `,"doc":`...)
		inner = appendJSONString(inner, []byte(d.doc))
		inner = append(inner, `,"data":`...)
		inner = append(inner, innerPayload...)
		inner = append(inner, `,"ts":`...)
		g.prefixes = append(g.prefixes, appendEscaped(nil, inner))
	}
	g.setDigits()
	return g
}

func (g *ingestGen) setDigits() {
	g.tsDigits = strconv.AppendInt(g.tsDigits[:0], g.tsBase+g.round, 10)
	g.tsDigits = append(g.tsDigits, '}', ',')
}

func (g *ingestGen) kind() Kind { return KindIns }

// next appends a batch. Record k of this generator goes to document k mod D
// with ts tsBase + k div D; the pass counter avoids a division per record and
// the digits of a pass are formatted once.
func (g *ingestGen) next(dst, id []byte) ([]byte, int, bool) {
	n := g.batch
	if g.remaining >= 0 {
		if g.remaining == 0 {
			return dst, 0, false
		}
		n = int(min(int64(n), g.remaining))
		g.remaining -= int64(n)
	}
	dst = frameHead(dst, id)
	dst = append(dst, `ins","data":"[`...)
	for range n {
		dst = append(dst, g.prefixes[g.doc]...)
		dst = append(dst, g.tsDigits...)
		if g.doc++; g.doc == len(g.prefixes) {
			g.doc = 0
			g.round++
			g.setDigits()
		}
	}
	dst = dst[:len(dst)-1] // the last record's ','
	dst = append(dst, `]"}`...)
	return dst, n, true
}

// qryGen asks for the latest record of every document, one collection per
// request in turn.
type qryGen struct {
	tails     [][]byte // per collection: `qry","data":"{\"col\":…,\"ts\":MAX}"}`
	expect    []int
	i         int
	remaining int64
}

func newQryGen(prefix string, cols, docs int, requests int64) *qryGen {
	g := &qryGen{remaining: requests}
	for c := 0; c < cols; c++ {
		inner := append([]byte(`{"col":`), appendJSONString(nil, []byte(ColName(prefix, c)))...)
		inner = append(inner, `,"ts":9223372036854775807}`...)
		tail := append([]byte(`qry","data":"`), appendEscaped(nil, inner)...)
		g.tails = append(g.tails, append(tail, `"}`...))
		// documents d with d % cols == c
		g.expect = append(g.expect, (docs-c+cols-1)/cols)
	}
	return g
}

func (g *qryGen) kind() Kind { return KindQry }

func (g *qryGen) next(dst, id []byte) ([]byte, int, bool) {
	if g.remaining == 0 {
		return dst, 0, false
	}
	if g.remaining > 0 {
		g.remaining--
	}
	c := g.i % len(g.tails)
	g.i++
	dst = frameHead(dst, id)
	return append(dst, g.tails[c]...), g.expect[c], true
}

// qdocGen asks for ranges of k consecutive records of random preloaded
// documents (whose timestamps are tsBase … tsBase+depth-1).
type qdocGen struct {
	prefixes  [][]byte // per document: `qdoc","data":"{\"col\":…,\"doc\":…,\"from\":`
	suffix    []byte   // limit / reverse, then `}"}`
	tsBase    int64
	depth     int64
	k         int64
	expect    int
	rng       *rand.Rand
	remaining int64
}

func newQdocGen(docs []docRef, tsBase, depth, k, limit int64, reverse bool, seed uint64, requests int64) *qdocGen {
	g := &qdocGen{tsBase: tsBase, depth: depth, k: min(k, depth), rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), remaining: requests}
	for _, d := range docs {
		inner := append([]byte(`{"col":`), appendJSONString(nil, []byte(d.col))...)
		inner = append(inner, `,"doc":`...)
		inner = appendJSONString(inner, []byte(d.doc))
		inner = append(inner, `,"from":`...)
		p := append([]byte(`qdoc","data":"`), appendEscaped(nil, inner)...)
		g.prefixes = append(g.prefixes, p)
	}
	var s []byte
	if limit > 0 {
		s = append(s, `,\"limit\":`...)
		s = strconv.AppendInt(s, limit, 10)
	}
	if reverse {
		s = append(s, `,\"reverse\":true`...)
	}
	g.suffix = append(s, `}"}`...)
	g.expect = int(g.k)
	if limit > 0 && limit < g.k {
		g.expect = int(limit)
	}
	return g
}

func (g *qdocGen) kind() Kind { return KindQdoc }

func (g *qdocGen) next(dst, id []byte) ([]byte, int, bool) {
	if g.remaining == 0 {
		return dst, 0, false
	}
	if g.remaining > 0 {
		g.remaining--
	}
	d := g.rng.IntN(len(g.prefixes))
	from := g.tsBase + g.rng.Int64N(g.depth-g.k+1)
	dst = frameHead(dst, id)
	dst = append(dst, g.prefixes[d]...)
	dst = strconv.AppendInt(dst, from, 10)
	dst = append(dst, `,\"to\":`...)
	dst = strconv.AppendInt(dst, from+g.k-1, 10)
	dst = append(dst, g.suffix...)
	return dst, g.expect, true
}
