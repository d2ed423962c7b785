package protocol

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Reply encoders append to a caller-owned (usually pooled) buffer, so a reply is built in one
// place and written to the socket without an intermediate tree.

const hexDigits = "0123456789abcdef"

// AppendString appends s as a quoted JSON string. Invalid UTF-8 becomes U+FFFD so the output
// is always valid JSON.
func AppendString(dst []byte, s string) []byte {
	// Read-only view of the string's bytes: appendQuoted never writes to its input.
	return appendQuoted(dst, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// AppendBytes is AppendString for a byte slice (record payloads).
func AppendBytes(dst []byte, s []byte) []byte { return appendQuoted(dst, s) }

// appendQuoted is the hot path of every reply. ASCII text (JSON payloads: quotes and
// backslashes to escape, nothing else) is written by index into room reserved up front,
// a word of 8 bytes per step: a word with quotes is escaped in place, each quote costing a
// backslash and a store of the rest of the word, instead of a new step per quote (JSON
// payloads have one every few bytes: BenchmarkRecordWriter 1.25M → 1.09M instructions,
// min of 8 timings 138 → 126 µs). Control characters and non-ASCII bytes hand over to
// appendQuotedSlow from where they appear.
func appendQuoted(dst []byte, s []byte) []byte {
	base := len(dst)
	// Every byte at most doubles on this path; 16 more for the whole-word stores that run
	// past the last byte written.
	dst = slices.Grow(dst, 2*len(s)+18)
	out := dst[base : base+2*len(s)+18]
	out[0] = '"'
	n, i := 1, 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		q := x ^ (lsb * '"')
		e := x ^ (lsb * '\\')
		m := ((q-lsb)&^q | (e-lsb)&^e | (x-lsb*0x20)&^x | x) & msb
		binary.LittleEndian.PutUint64(out[n:], x)
		if m == 0 {
			n += 8
			continue
		}
		// Escape the flagged bytes of this word in place: before each quote or backslash
		// goes a backslash, and the rest of the word is stored again one further on. A flag
		// can be false (the byte above a true one, through the borrow), so quoteClass
		// decides.
		shift := 0 // backslashes written in this word so far
		for ; m != 0; m &= m - 1 {
			k := bits.TrailingZeros64(m) >> 3
			switch quoteClass[byte(x>>(8*k))] {
			case 0: // a false flag: the byte is already in place
			case 1:
				p := n + k + shift
				out[p] = '\\'
				binary.LittleEndian.PutUint64(out[p+1:], x>>(8*k))
				shift++
			default: // a control character or non-ASCII: the slow path from here
				return appendQuotedSlow(dst[:base+n+k+shift], s[i+k:])
			}
		}
		n += 8 + shift
	}
	for ; i < len(s); i++ {
		c := s[i]
		switch quoteClass[c] {
		case 0:
			out[n] = c
			n++
		case 1:
			out[n], out[n+1] = '\\', c
			n += 2
		default:
			return appendQuotedSlow(dst[:base+n], s[i:])
		}
	}
	out[n] = '"'
	return dst[:base+n+1]
}

// quoteClass sorts bytes for the quoting loops: 0 written as is, 1 written after a backslash
// (quote, backslash), 2 left to appendQuotedSlow (control characters; non-ASCII, checked
// there for UTF-8 validity).
var quoteClass = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c == '"' || c == '\\':
			t[c] = 1
		case c < 0x20 || c >= 0x80:
			t[c] = 2
		}
	}
	return t
}()

// appendQuotedSlow continues a quoted string (the opening quote is already in dst) through
// control characters and UTF-8 validation.
func appendQuotedSlow(dst []byte, s []byte) []byte {
	start := 0
	for i := 0; i < len(s); {
		// Skip plain ASCII 8 bytes at a time and jump to the first byte that needs a look
		// (SWAR, as plainRun in scan.go, plus the high bit for non-ASCII, checked below).
		for i+8 <= len(s) {
			x := binary.LittleEndian.Uint64(s[i:])
			q := x ^ (lsb * '"')
			e := x ^ (lsb * '\\')
			if m := (x | (q-lsb)&^q | (e-lsb)&^e | (x-lsb*0x20)&^x) & msb; m != 0 {
				i += bits.TrailingZeros64(m) >> 3 // the lowest flagged byte is a true match
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if quoteClass[c] == 0 {
			i++
			continue
		}
		if c >= 0x80 {
			if size := runeLen(s, i); size > 0 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// runeLen returns the length of the valid UTF-8 sequence at s[i] (whose first byte is >= 0x80),
// or 0 when it is not valid. Written out so that []byte input needs no conversion.
func runeLen(s []byte, i int) int {
	r, size := utf8.DecodeRune(s[i:])
	if r == utf8.RuneError && size == 1 {
		return 0
	}
	return size
}

// AppendReplyStart appends `{"id":"<id>"` — every reply begins so.
func AppendReplyStart(dst []byte, id []byte) []byte {
	dst = append(dst, `{"id":`...)
	return AppendBytes(dst, id)
}

// AppendOK appends the empty success reply `{"id":"<id>"}`.
func AppendOK(dst []byte, id []byte) []byte {
	return append(AppendReplyStart(dst, id), '}')
}

// AppendError appends an error reply. A request whose id could not be read is answered with
// an empty id, so the client still sees why it was rejected.
func AppendError(dst []byte, id []byte, e *Error) []byte {
	dst = AppendReplyStart(dst, id)
	dst = append(dst, `,"error":`...)
	dst = AppendString(dst, e.Text)
	dst = append(dst, `,"code":`...)
	dst = AppendString(dst, string(e.Code))
	return append(dst, '}')
}

// AppendRecord appends `{"ts":<ts>,"data":"<data>"}`.
func AppendRecord(dst []byte, ts int64, data []byte) []byte {
	dst = append(dst, `{"ts":`...)
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, `,"data":`...)
	dst = AppendBytes(dst, data)
	return append(dst, '}')
}

// Ready is the first frame on every accepted connection (PROTOCOL.md §1), byte-exact.
var Ready = []byte(`{"message":"Authentication successful","type":"ready"}`)

// RecordWriter appends `{"ts":<ts>,"data":"<data>"}` records, like AppendRecord, for a run
// of records whose timestamps are usually close to one another (a document's records in
// order, or in reverse): it keeps the digits of the last timestamp and moves them by the
// difference instead of formatting each number afresh, which was a quarter of the cost of
// encoding a record (BenchmarkAppendRecord profile) and 12% of the server's under qdoc. The zero value is ready to use; use one per reply.
type RecordWriter struct {
	ts tsDigits
}

// Append appends one record to dst.
func (w *RecordWriter) Append(dst []byte, ts int64, data []byte) []byte {
	dst = append(dst, `{"ts":`...)
	dst = w.ts.append(dst, ts)
	dst = append(dst, `,"data":`...)
	dst = appendQuoted(dst, data)
	return append(dst, '}')
}

// tsDigits holds the decimal digits of the last positive timestamp formatted, right-aligned
// in buf (buf[start:]).
type tsDigits struct {
	last  int64
	start int // 0 = nothing kept yet
	buf   [20]byte
}

// maxStep bounds the difference adjusted digit by digit; larger jumps are formatted afresh.
const maxStep = 1 << 20

func (t *tsDigits) append(dst []byte, ts int64) []byte {
	if t.start > 0 && ts > 0 {
		if d := ts - t.last; d >= 0 && d < maxStep && t.add(uint64(d)) ||
			d < 0 && d > -maxStep && t.sub(uint64(-d)) {
			t.last = ts
			return append(dst, t.buf[t.start:]...)
		}
	}
	if ts <= 0 {
		t.start = 0
		return strconv.AppendInt(dst, ts, 10)
	}
	var tmp [20]byte
	digits := strconv.AppendInt(tmp[:0], ts, 10)
	t.start = len(t.buf) - len(digits)
	copy(t.buf[t.start:], digits)
	t.last = ts
	return append(dst, digits...)
}

// add adds d to the kept digits; false when the number would need another digit (the
// digits are then stale and the caller formats afresh).
func (t *tsDigits) add(d uint64) bool {
	for i := len(t.buf) - 1; d != 0; i-- {
		if i < t.start {
			return false
		}
		v := uint64(t.buf[i]-'0') + d%10
		d /= 10
		if v >= 10 {
			v -= 10
			d++
		}
		t.buf[i] = byte('0' + v)
	}
	return true
}

// sub subtracts d (smaller than the kept number) from the kept digits; false when the
// number loses its leading digit (the caller formats afresh).
func (t *tsDigits) sub(d uint64) bool {
	for i := len(t.buf) - 1; d != 0; i-- {
		if i < t.start {
			return false
		}
		v := int(t.buf[i]-'0') - int(d%10)
		d /= 10
		if v < 0 {
			v += 10
			d++
		}
		t.buf[i] = byte('0' + v)
	}
	return t.buf[t.start] != '0'
}
