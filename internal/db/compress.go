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
	raw, packed []byte // pooled buffers: the op, and room for it compressed
	payload     []byte // what to log: raw, or the start of packed
	appendTo    func(dst []byte) []byte
}

// maxPooledBuf: buffers that grew past this (a huge request) are left to the GC rather than
// kept for the next small one.
const maxPooledBuf = 4 << 20

var encodedOps = sync.Pool{New: func() any {
	e := &encodedOp{raw: make([]byte, 0, 64<<10)}
	// Made once per pooled op, so a change costs no closure for the log to call.
	e.appendTo = func(dst []byte) []byte { return append(dst, e.payload...) }
	return e
}}

// compressSample: an op longer than this is first compressed on its first compressSample
// bytes, and logged raw if those do not shrink by an eighth. S2 spends about 5× the
// encoding's time on data it cannot compress (BenchmarkEncodeOp/random); a batch's first
// records say whether the rest will compress.
const compressSample = 8 << 10

// encodeOp runs encode and compresses its op when that pays. The caller releases it.
func encodeOp(encode func([]byte) []byte) *encodedOp {
	e := encodedOps.Get().(*encodedOp)
	e.raw = encode(e.raw[:0])
	e.payload = e.raw
	n := len(e.raw)
	if n < compressMin || n > maxOp || s2.MaxEncodedLen(n) < 0 {
		return e
	}
	if n > compressSample && !shrinks(e.raw[:compressSample]) {
		return e
	}
	if cap(e.packed) < 1+s2.MaxEncodedLen(n) {
		e.packed = make([]byte, 1+s2.MaxEncodedLen(n))
	}
	buf := e.packed[:cap(e.packed)]
	buf[0] = opCompressed
	z := s2.Encode(buf[1:], e.raw)
	if 1+len(z) <= n-n/8 {
		e.payload = buf[:1+len(z)]
	}
	return e
}

// shrinks reports whether S2 saves at least an eighth of b.
func shrinks(b []byte) bool {
	est := s2.EstimateBlockSize(b) // -1: no saving at all
	return est >= 0 && est <= len(b)-len(b)/8
}

// release returns the op's buffers for the next change.
func (e *encodedOp) release() {
	e.payload = nil
	if cap(e.raw) > maxPooledBuf {
		e.raw = make([]byte, 0, 64<<10)
	}
	if cap(e.packed) > maxPooledBuf {
		e.packed = nil
	}
	encodedOps.Put(e)
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
