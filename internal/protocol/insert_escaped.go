package protocol

import (
	"math"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// An `ins` request carries its records as a JSON array encoded as a string (PROTOCOL.md §2),
// so every record arrives escaped twice: the structure once (`{\"ts\":1,…}`) and the payload
// twice (`\"data\":\"{\\\"t\\\":1}\"`). Decoding that in two passes — un-escape the whole
// string, then parse the result — touches every byte twice and was about half of the
// decode's instructions (BenchmarkDecodeInsert).
//
// Insert.decodeString is the one-pass fast path: it parses the records straight from the
// string's escaped form, for the shape every client sends (JSON.stringify, encoding/json): keys
// without escapes, integer timestamps, names without escapes, payload strings whose
// escapes are \" \\ \/ \b \f \n \r \t or \u outside the surrogates (escaped once more).
// Anything else — a surrogate pair, an unknown or repeated key, a missing field, a syntax error — makes it give up, and the
// caller decodes the request the general way, which also words any error. So the fast path
// never decides a request's outcome on its own: it either yields exactly the records the
// general path would, or nothing (FuzzInsertEscaped checks this). It needs no separate
// check that the data string is well formed: it consumes only escapes it knows and stops at
// the first unescaped quote, which in a valid string is the closing one.

// escScanner reads a JSON document from the escaped content of a JSON string in b, from i
// (just past the string's opening quote). It only consumes what it understands, all of it
// valid string content, so the first unescaped quote it meets is the string's end.
type escScanner struct {
	b []byte
	i int
}

// ws skips the document's whitespace: spaces as they are, and newlines, tabs and carriage
// returns, which the string holds as \n \t \r.
func (e *escScanner) ws() {
	for e.i < len(e.b) {
		switch e.b[e.i] {
		case ' ':
			e.i++
		case '\\':
			if e.i+1 < len(e.b) && (e.b[e.i+1] == 'n' || e.b[e.i+1] == 't' || e.b[e.i+1] == 'r') {
				e.i += 2
				continue
			}
			return
		default:
			return
		}
	}
}

// punct skips whitespace and reports whether the next byte is c, consuming it.
func (e *escScanner) punct(c byte) bool {
	e.ws()
	if e.i < len(e.b) && e.b[e.i] == c {
		e.i++
		return true
	}
	return false
}

// quote consumes an escaped quote \" (the document's quote character).
func (e *escScanner) quote() bool {
	if e.i+1 < len(e.b) && e.b[e.i] == '\\' && e.b[e.i+1] == '"' {
		e.i += 2
		return true
	}
	return false
}

// name reads a document string without escapes of its own (keys and names): \" plain \".
// The result is a view of b.
func (e *escScanner) name() ([]byte, bool) {
	e.ws()
	if !e.quote() {
		return nil, false
	}
	start := e.i
	for e.i < len(e.b) {
		switch c := e.b[e.i]; {
		case c == '\\':
			v := e.b[start:e.i]
			return v, e.quote() // anything but the closing \" is an escape: give up
		case c == '"' || c < 0x20:
			return nil, false // the end of the data string, or not a string at all
		}
		e.i++
	}
	return nil, false
}

// int reads an integer timestamp; fractions, exponents and out-of-range values give up.
func (e *escScanner) int() (int64, bool) {
	e.ws()
	neg := e.i < len(e.b) && e.b[e.i] == '-'
	if neg {
		e.i++
	}
	start := e.i
	var u uint64
	for e.i < len(e.b) && e.b[e.i] >= '0' && e.b[e.i] <= '9' {
		d := uint64(e.b[e.i] - '0')
		if u > (math.MaxUint64-d)/10 {
			return 0, false
		}
		u = u*10 + d
		e.i++
	}
	n := e.i - start
	if n == 0 || n > 1 && e.b[start] == '0' {
		return 0, false
	}
	if e.i < len(e.b) && (e.b[e.i] == '.' || e.b[e.i] == 'e' || e.b[e.i] == 'E') {
		return 0, false
	}
	v, k := signed(u, neg)
	return v, k == numOK
}

// payload reads a document string (a record's data) and returns its decoded bytes: a view of
// b when it holds no escape, else decoded into dst's spare capacity (copied reports which).
func (e *escScanner) payload(dst []byte) (v []byte, copied, ok bool) {
	e.ws()
	if !e.quote() {
		return nil, false, false
	}
	b := e.b
	start := e.i
	i := start + plainRun(b[start:])
	if i+1 < len(b) && b[i] == '\\' && b[i+1] == '"' { // the closing \": no escape inside
		e.i = i + 2
		return b[start:i], false, true
	}
	out := append(dst, b[start:i]...)
	for i+1 < len(b) && b[i] == '\\' {
		// An escape of the string that holds the document.
		switch b[i+1] {
		case '"': // the document's closing quote
			e.i = i + 2
			return out, true, true
		case '/': // \/ is a plain slash
			out = append(out, '/')
			i += 2
		case '\\':
			// A backslash of the document: the start of one of its escapes, whose
			// character follows, escaped once more when it is a quote or a backslash.
			if i+3 >= len(b) {
				return nil, false, false
			}
			c := b[i+2]
			if c == 'u' {
				// \\uXXXX: a code point (encoding/json writes < > & so). Surrogates, and
				// hex digits the outer string escapes too, are left to the general path.
				r, ok := hexRune(b[i+3:])
				if !ok || utf16.IsSurrogate(r) {
					return nil, false, false
				}
				out = utf8.AppendRune(out, r)
				i += 7
			} else {
				i += 3
				if c == '\\' {
					c = b[i] // \\\" \\\\ or \\\/
					if c != '"' && c != '\\' && c != '/' {
						return nil, false, false
					}
					i++
				} else if c = simpleEscape(c); c == 0 {
					return nil, false, false // the data string's end, or not an escape
				}
				out = append(out, c)
			}
		default:
			// \n \t … here would be a raw control character in the document's string,
			// which JSON does not allow; \u is left to the general path.
			return nil, false, false
		}
		n := plainRun(b[i:])
		out = append(out, b[i:i+n]...)
		i += n
	}
	// An unescaped quote (the data string ended inside the document's string), a control
	// character, or the end of the frame.
	return nil, false, false
}

// decodeString decodes the records of an ins request from its data string, b[i] being the
// string's opening quote, and returns the offset just past its closing quote. It returns -1,
// leaving d.Records in an unspecified state, when the general path must decode the string.
func (d *Insert) decodeString(b []byte, i int) int {
	d.Records = d.Records[:0]
	d.arena = d.arena[:0]
	e := escScanner{b: b, i: i + 1}
	if !e.punct('[') {
		return -1
	}
	for {
		if !e.punct('{') || !d.elementEscaped(&e) {
			return -1
		}
		if e.punct(',') {
			continue
		}
		if !e.punct(']') {
			return -1
		}
		e.ws()
		if e.i < len(e.b) && e.b[e.i] == '"' {
			return e.i + 1
		}
		return -1
	}
}

// elementEscaped reads one record, after its opening brace, through its closing brace.
func (d *Insert) elementEscaped(e *escScanner) bool {
	const tsBit, dataBit, colBit, docBit, all = 1, 2, 4, 8, 15
	var (
		r        InsertRecord
		col, doc []byte
		seen     uint8 // the keys read, by bit
	)
	for {
		k, ok := e.name()
		if !ok || !e.punct(':') {
			return false
		}
		var bit uint8
		switch string(k) {
		case "ts":
			bit = tsBit
			if r.TS, ok = e.int(); !ok {
				return false
			}
		case "data":
			bit = dataBit
			n := len(d.arena)
			v, copied, ok := e.payload(d.arena[n:])
			if !ok {
				return false
			}
			if copied {
				if len(v) <= cap(d.arena)-n {
					d.arena = d.arena[:n+len(v)] // decoded in place
				} else {
					// append moved v to an array of its own; earlier records keep the
					// old arena alive, and later ones get a larger one.
					d.arena = make([]byte, 0, max(2*cap(d.arena), 4096))
				}
			}
			r.Data = v
		case "col", "collection":
			// Both spellings in one record are a repeat: the general path decides which wins.
			bit = colBit
			if col, ok = e.name(); !ok || len(col) == 0 {
				return false
			}
		case "doc", "key":
			bit = docBit
			if doc, ok = e.name(); !ok || len(doc) == 0 {
				return false
			}
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		if e.punct(',') {
			continue
		}
		if !e.punct('}') || seen != all {
			return false
		}
		break
	}
	r.Collection = d.in.Intern(col)
	d.in.last = r.Collection
	// As in element: the document name is a view of the request bytes.
	r.Doc = unsafe.String(&doc[0], len(doc))
	d.Records = append(d.Records, r)
	return true
}

// DecodeRequest decodes the records of an `ins` request: nothing left to do when
// ParseEnvelope has already read them into d in one pass (Request.FastInsert), else as
// Decode does from the request's data. Errors are Decode's.
func (d *Insert) DecodeRequest(r *Request) *Error {
	if r.fastDone != nil {
		if r.fastDone == d {
			return nil
		}
		r.decodeData()
	}
	return d.Decode(r.Data)
}
