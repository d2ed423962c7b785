package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is a small, allocation-free JSON reader over one buffer. It reads exactly the shapes
// the protocol uses (objects, arrays, strings, integers, booleans, null) and can skip any valid
// JSON value. Errors are sticky: after the first one every call is a no-op, and callers check
// s.err once (the Prometheus Decbuf habit).
type scanner struct {
	b      []byte
	i      int
	err    error
	copied bool // the last str call decoded escapes into its dst (rather than returning a view)
}

var errEOF = errors.New("unexpected end of JSON")

func (s *scanner) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf(format, args...)
	}
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte without consuming it, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.err != nil || s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) {
	if s.err != nil {
		return
	}
	s.ws()
	if s.i >= len(s.b) {
		s.err = errEOF
		return
	}
	if s.b[s.i] != c {
		s.fail("expected %q at offset %d, found %q", c, s.i, s.b[s.i])
		return
	}
	s.i++
}

// end checks that only whitespace is left.
func (s *scanner) end() {
	s.ws()
	if s.err == nil && s.i != len(s.b) {
		s.fail("unexpected data after JSON value at offset %d", s.i)
	}
}

// objectStart consumes '{'.
func (s *scanner) objectStart() { s.expect('{') }

// nextKey advances to the next member of the current object and returns its key, or
// ok=false at the closing '}'. first must be true for the first call on an object.
// The key is a view into the buffer when it has no escapes (the common case); otherwise
// it is decoded into scratch.
func (s *scanner) nextKey(first bool, scratch []byte) (key []byte, ok bool) {
	if s.err != nil {
		return nil, false
	}
	c := s.peek()
	if c == '}' {
		s.i++
		return nil, false
	}
	if !first {
		if c != ',' {
			if s.i >= len(s.b) {
				s.err = errEOF
			} else {
				s.fail("expected ',' or '}' at offset %d", s.i)
			}
			return nil, false
		}
		s.i++
	}
	key = s.str(scratch[:0])
	s.expect(':')
	return key, s.err == nil
}

// arrayStart consumes '['.
func (s *scanner) arrayStart() { s.expect('[') }

// nextElem reports whether another array element follows, consuming the ',' between
// elements and the closing ']'.
func (s *scanner) nextElem(first bool) bool {
	if s.err != nil {
		return false
	}
	c := s.peek()
	if c == ']' {
		s.i++
		return false
	}
	if !first {
		if c != ',' {
			if s.i >= len(s.b) {
				s.err = errEOF
			} else {
				s.fail("expected ',' or ']' at offset %d", s.i)
			}
			return false
		}
		s.i++
	}
	if s.peek() == 0 && s.err == nil {
		s.err = errEOF
	}
	return s.err == nil
}

// str reads a JSON string. Without escapes it returns a view into the buffer; with escapes it
// appends the decoded bytes to dst and returns that.
func (s *scanner) str(dst []byte) []byte {
	s.copied = false
	if s.err != nil {
		return nil
	}
	s.ws()
	if s.i >= len(s.b) {
		s.err = errEOF
		return nil
	}
	if s.b[s.i] != '"' {
		s.fail("expected a string at offset %d", s.i)
		return nil
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		s.i += plainRun(s.b[s.i:])
		if s.i >= len(s.b) {
			break
		}
		c := s.b[s.i]
		if c == '"' {
			v := s.b[start:s.i]
			s.i++
			return v
		}
		if c == '\\' {
			s.copied = true
			return s.strSlow(append(dst, s.b[start:s.i]...))
		}
		if c < 0x20 {
			s.fail("control character in string at offset %d", s.i)
			return nil
		}
		s.i++
	}
	s.err = errEOF
	return nil
}

func (s *scanner) strSlow(dst []byte) []byte {
	// Write by index into dst's spare capacity, growing it when fewer than 8 bytes are
	// left (no step writes more); b and i stay in registers. Plain bytes move 8 at a time
	// when a whole word is plain.
	b, i := s.b, s.i
	base := len(dst)
	out := dst[base:cap(dst)]
	n := 0
	for i < len(b) {
		if len(out)-n < 8 {
			dst = slices.Grow(dst[:base+n], max(64, 2*n))
			out = dst[base:cap(dst)]
		}
		if i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			q := x ^ (lsb * '"')
			e := x ^ (lsb * '\\')
			m := ((q-lsb)&^q | (e-lsb)&^e | (x-lsb*0x20)&^x) & msb
			// Store the whole word; only the bytes before the first special one count.
			// (The lowest flagged byte is always a true match.)
			binary.LittleEndian.PutUint64(out[n:], x)
			k := 8
			if m != 0 {
				k = bits.TrailingZeros64(m) >> 3
			}
			n += k
			i += k
			if k == 8 {
				continue
			}
		}
		c := b[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			out[n] = c
			n++
			i++
			continue
		}
		if c == '"' {
			s.i = i + 1
			return dst[:base+n]
		}
		if c < 0x20 {
			s.i = i
			s.fail("control character in string at offset %d", i)
			return nil
		}
		if i+1 >= len(b) {
			s.err = errEOF
			return nil
		}
		esc := b[i+1]
		i += 2
		switch esc {
		case '"', '\\':
			out[n] = esc
		case 'u':
			s.i = i
			r := s.hex4()
			if s.err != nil {
				return nil
			}
			i = s.i
			if utf16.IsSurrogate(r) {
				// A high surrogate followed by \uDC00-\uDFFF forms one code point;
				// anything else is replaced, as encoding/json does.
				if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
					s.i = i + 2
					r2 := s.hex4()
					if s.err != nil {
						return nil
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						n += utf8.EncodeRune(out[n:], d)
						i = s.i
						continue
					}
				}
				r = utf8.RuneError
			}
			n += utf8.EncodeRune(out[n:], r)
			continue
		default:
			if out[n] = simpleEscape(esc); out[n] == 0 {
				s.i = i - 1
				s.fail("invalid escape \\%c at offset %d", esc, i-1)
				return nil
			}
		}
		n++
	}
	s.i = i
	s.err = errEOF
	return nil
}

func (s *scanner) hex4() rune {
	if s.i+4 > len(s.b) {
		s.err = errEOF
		return 0
	}
	r, ok := hexRune(s.b[s.i:])
	if !ok {
		s.fail("invalid \\u escape at offset %d", s.i)
		return 0
	}
	s.i += 4
	return r
}

// hexRune reads the four hex digits of a \u escape from the start of b.
func hexRune(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// simpleEscape returns the byte a one-letter JSON escape stands for (the letter after the
// backslash: / b f n r t), or 0.
func simpleEscape(c byte) byte {
	switch c {
	case '/':
		return '/'
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return 0
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// plainRun returns how many leading bytes of b need no attention inside a JSON string: not
// '"', not '\\', not a control character. It tests 8 bytes per step (SWAR): for each byte
// class, (v - lsb) &^ v has the high bit set in a byte that was zero.
func plainRun(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ (lsb * '"')
		e := x ^ (lsb * '\\')
		if m := ((q-lsb)&^q | (e-lsb)&^e | (x-lsb*0x20)&^x) & msb; m != 0 {
			return i + bits.TrailingZeros64(m)>>3 // the lowest flagged byte is a true match
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return i
}

// numKind tells what an integer read found, so callers can word their errors.
type numKind int

const (
	numOK       numKind = iota
	numNotNum           // not a number at all (string, object, ...)
	numFraction         // a number, but not an integer
	numRange            // an integer outside int64
)

// int reads a JSON integer exactly over the full int64 range. A number with a fraction or an
// exponent is accepted only when its value is integral and fits (1.7e9, 5.0); this keeps
// JavaScript clients that print large integers in exponent form working.
func (s *scanner) int() (int64, numKind) {
	if s.err != nil {
		return 0, numNotNum
	}
	s.ws()
	start := s.i
	if s.i >= len(s.b) {
		s.err = errEOF
		return 0, numNotNum
	}
	neg := false
	if s.b[s.i] == '-' {
		neg = true
		s.i++
	}
	if s.i >= len(s.b) || s.b[s.i] < '0' || s.b[s.i] > '9' {
		s.i = start
		return 0, numNotNum
	}
	if s.b[s.i] == '0' && s.i+1 < len(s.b) && s.b[s.i+1] >= '0' && s.b[s.i+1] <= '9' {
		s.fail("invalid number at offset %d: leading zero", start)
		return 0, numNotNum
	}
	var u uint64
	overflow := false
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if u > (math.MaxUint64-d)/10 {
			overflow = true
		} else {
			u = u*10 + d
		}
		s.i++
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return s.floatInt(start)
	}
	if overflow {
		return 0, numRange
	}
	return signed(u, neg)
}

func signed(u uint64, neg bool) (int64, numKind) {
	if neg {
		if u > 1<<63 {
			return 0, numRange
		}
		return -int64(u), numOK
	}
	if u > math.MaxInt64 {
		return 0, numRange
	}
	return int64(u), numOK
}

// floatInt finishes a number with a fraction or exponent that began at start. It decides
// exactly, without floating point, whether the value is an integer that fits int64
// (9007199254740993.0 is 9007199254740993; 1.0000000000000001 is not an integer).
func (s *scanner) floatInt(start int) (int64, numKind) {
	intStart := start
	neg := s.b[start] == '-'
	if neg {
		intStart++
	}
	intEnd := s.i
	fracStart, fracEnd := s.i, s.i
	if s.b[s.i] == '.' {
		s.i++
		fracStart = s.i
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
		}
		fracEnd = s.i
		if fracEnd == fracStart {
			s.fail("invalid number at offset %d", start)
			return 0, numNotNum
		}
	}
	exp := 0
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		eneg := false
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			eneg = s.b[s.i] == '-'
			s.i++
		}
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			if exp < 10000 {
				exp = exp*10 + int(s.b[s.i]-'0')
			}
			s.i++
			n++
		}
		if n == 0 {
			s.fail("invalid number at offset %d", start)
			return 0, numNotNum
		}
		if eneg {
			exp = -exp
		}
	}
	// The value is digits × 10^(exp - len(frac)), digits = integer part then fraction.
	digits := make([]byte, 0, 32)
	digits = append(digits, s.b[intStart:intEnd]...)
	digits = append(digits, s.b[fracStart:fracEnd]...)
	shift := exp - (fracEnd - fracStart)
	for len(digits) > 1 && digits[0] == '0' {
		digits = digits[1:]
	}
	if shift < 0 {
		cut := len(digits) + shift // digits before the decimal point
		if cut < 0 {
			cut = 0
		}
		for _, d := range digits[cut:] {
			if d != '0' {
				return 0, numFraction
			}
		}
		digits = digits[:cut]
	} else {
		if len(digits) == 1 && digits[0] == '0' {
			return 0, numOK
		}
		if len(digits)+shift > 20 {
			return 0, numRange
		}
		for ; shift > 0; shift-- {
			digits = append(digits, '0')
		}
	}
	if len(digits) > 20 {
		return 0, numRange
	}
	var u uint64
	for _, d := range digits {
		v := uint64(d - '0')
		if u > (math.MaxUint64-v)/10 {
			return 0, numRange
		}
		u = u*10 + v
	}
	return signed(u, neg)
}

// bool reads true/false; numbers 0 and 1 are accepted too (PROTOCOL.md §3, qdoc reverse).
func (s *scanner) bool() (v bool, ok bool) {
	switch s.peek() {
	case 't':
		return true, s.lit("true")
	case 'f':
		return false, s.lit("false")
	case 'n':
		return false, s.lit("null")
	}
	n, k := s.int()
	if k != numOK || (n != 0 && n != 1) {
		return false, false
	}
	return n == 1, true
}

func (s *scanner) lit(word string) bool {
	if s.err != nil {
		return false
	}
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		s.fail("invalid literal at offset %d", s.i)
		return false
	}
	s.i += len(word)
	return true
}

// null consumes a null literal if one is next.
func (s *scanner) null() bool {
	if s.peek() == 'n' {
		return s.lit("null")
	}
	return false
}

// skip consumes any JSON value, checking it is well formed. depth bounds nesting so hostile
// input cannot exhaust the stack.
func (s *scanner) skip() { s.skipDepth(0) }

const maxDepth = 64

func (s *scanner) skipDepth(depth int) {
	if s.err != nil {
		return
	}
	if depth > maxDepth {
		s.fail("JSON nested deeper than %d levels", maxDepth)
		return
	}
	switch c := s.peek(); {
	case c == 0:
		if s.err == nil {
			s.err = errEOF
		}
	case c == '"':
		s.str(nil)
	case c == '{':
		s.i++
		for first := true; ; first = false {
			if _, ok := s.nextKey(first, nil); !ok {
				return
			}
			s.skipDepth(depth + 1)
		}
	case c == '[':
		s.i++
		for first := true; s.nextElem(first); first = false {
			s.skipDepth(depth + 1)
		}
	case c == 't':
		s.lit("true")
	case c == 'f':
		s.lit("false")
	case c == 'n':
		s.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		start := s.i
		if _, k := s.int(); k == numNotNum && s.err == nil {
			s.fail("invalid number at offset %d", start)
		}
	default:
		s.fail("unexpected %q at offset %d", c, s.i)
	}
}

// raw returns the bytes of the next value (whatever it is) without decoding it.
func (s *scanner) raw() []byte {
	s.ws()
	start := s.i
	s.skip()
	if s.err != nil {
		return nil
	}
	return s.b[start:s.i]
}
