package db

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"

	"github.com/volandoo/fluxiondb/internal/wal"
)

// Ops of compressMin bytes or more go to the log compressed (op 'Z', an S2 block of the op)
// when that saves at least an eighth of their size; others are logged as they are.
//
// Why: every byte logged is written to the page cache and then to the disk, and on the
// machines we measured the device's share of that cost grows with the bytes, whatever the
// fsync policy (BENCHMARKS.md, "Compressed log"). Time-series payloads repeat their field
// names and shapes record after record, so a 1000-record insert usually shrinks several
// times. S2 (github.com/klauspost/compress/s2) compresses at GB/s per core and gives up
// quickly on data that does not compress; the op is then logged raw, so incompressible
// payloads pay only the attempt.
const compressMin = 512

// maxOp is the largest op the log takes (a frame's payload limit). An op over it is not
// compressed: it must be refused by the log as too large, not logged compressed under the
// limit and then refused by replay. A variable so tests can lower it.
var maxOp = wal.MaxPayload

// encodedOp is an op encoded before the change lock is taken: ops are blind sets and
// deletes whose bytes depend only on the request, so encoding and compressing them can run
// on the request's goroutine, in parallel with other changes, and the lock only copies the
// result into the log.
type encodedOp struct {
	raw, packed *[]byte // pooled buffers
	payload     []byte  // what to log: *raw or *packed
}

var opBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// maxPooledBuf: buffers that grew past this (a huge request) are left to the GC rather than
// kept for the next small one.
const maxPooledBuf = 4 << 20

func getOpBuf() *[]byte { return opBufs.Get().(*[]byte) }

func putOpBuf(b *[]byte) {
	if b != nil && cap(*b) <= maxPooledBuf {
		*b = (*b)[:0]
		opBufs.Put(b)
	}
}

// encodeOp runs encode and compresses its op when that pays.
func encodeOp(encode func([]byte) []byte) *encodedOp {
	e := &encodedOp{raw: getOpBuf()}
	*e.raw = encode((*e.raw)[:0])
	e.payload = *e.raw
	if len(e.payload) < compressMin || len(e.payload) > maxOp || s2.MaxEncodedLen(len(e.payload)) < 0 {
		return e
	}
	e.packed = getOpBuf()
	n := 1 + s2.MaxEncodedLen(len(e.payload))
	if cap(*e.packed) < n {
		*e.packed = make([]byte, 0, n)
	}
	buf := (*e.packed)[:n]
	buf[0] = opCompressed
	z := s2.Encode(buf[1:], e.payload)
	if 1+len(z) <= len(e.payload)-len(e.payload)/8 {
		e.payload = buf[:1+len(z)]
	}
	return e
}

func (e *encodedOp) release() {
	putOpBuf(e.raw)
	putOpBuf(e.packed)
	*e = encodedOp{}
}

// decompress returns the op inside a compressed op's payload (p without its 'Z'), decoded
// into buf when it is large enough.
func decompress(buf, p []byte) ([]byte, error) {
	n, err := s2.DecodedLen(p)
	switch {
	case err != nil:
		return nil, fmt.Errorf("decode op %q: %w", opCompressed, err)
	case n == 0 || n > maxOp:
		return nil, fmt.Errorf("decode op %q: decompressed length %d out of range (1..%d)", opCompressed, n, maxOp)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	raw, err := s2.Decode(buf[:n], p)
	if err != nil {
		return nil, fmt.Errorf("decode op %q: %w", opCompressed, err)
	}
	if raw[0] == opCompressed {
		return nil, fmt.Errorf("decode op %q: holds another compressed op", opCompressed)
	}
	return raw, nil
}

// appendTo appends the op's payload to the log's buffer (the log calls it under its lock).
func (e *encodedOp) appendTo(dst []byte) []byte { return append(dst, e.payload...) }
