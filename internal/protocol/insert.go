package protocol

import "unsafe"

// Interner turns repeated collection and document names into one shared string, so decoding
// an insert batch allocates nothing per record once the names have been seen. Each connection
// owns one (not safe for concurrent use); it is bounded and simply starts over when full.
type Interner struct {
	m    map[string]string
	last string // most batches name one collection over and over
}

const internMax = 1 << 16

// Intern returns a string equal to b, reusing an earlier one when possible.
func (in *Interner) Intern(b []byte) string {
	if string(b) == in.last {
		return in.last
	}
	if s, ok := in.m[string(b)]; ok { // map lookup with string(b) does not allocate
		return s
	}
	if in.m == nil || len(in.m) >= internMax {
		in.m = make(map[string]string, 256)
	}
	s := string(b)
	in.m[s] = s
	return s
}

// Insert holds the decode state of `ins` batches for one connection, reused across requests.
type Insert struct {
	Records []InsertRecord
	in      Interner
	arena   []byte // payloads that had escapes are decoded here
	key     []byte
	name    []byte
}

// Decode parses an `ins` payload: a JSON array of {ts, key|doc, data, collection|col}.
// Every element is validated before anything is returned, so a batch with one bad element is
// rejected whole, with an error naming the element. Data slices point into data or into the
// decoder's arena and stay valid until the next Decode.
func (d *Insert) Decode(data []byte) *Error {
	d.Records = d.Records[:0]
	d.arena = d.arena[:0]
	s := scanner{b: data}
	if s.peek() != '[' {
		return Errorf("data must be a JSON array of records {ts, doc, data, col}")
	}
	s.arrayStart()
	for i := 0; s.nextElem(i == 0); i++ {
		if s.peek() != '{' {
			return Errorf("data[%d] must be an object {ts, doc, data, col}", i)
		}
		if e := d.element(&s, i); e != nil {
			return e
		}
	}
	s.end()
	if s.err != nil {
		return Errorf("data is not a valid JSON array: %v", s.err)
	}
	return nil
}

func (d *Insert) element(s *scanner, i int) *Error {
	var (
		r                               InsertRecord
		col, collection, doc, key       []byte
		hasCol, hasColl, hasDoc, hasKey bool
		hasTS, hasData                  bool
		tsKind                          numKind
		notString                       [4]bool // col, collection, doc, key held something else
	)
	s.objectStart()
	for first := true; ; first = false {
		k, ok := s.nextKey(first, d.key[:0])
		if !ok {
			break
		}
		if s.copied {
			d.key = k[:0]
		}
		if s.null() {
			continue // null is "absent", as in every other message: {"col":null,"collection":"c"} is collection c
		}
		switch string(k) {
		case "ts":
			hasTS = true
			start := s.i
			switch c := s.peek(); {
			case c == '-' || (c >= '0' && c <= '9'):
				r.TS, tsKind = s.int()
				if tsKind == numNotNum && s.err == nil {
					s.fail("invalid number at offset %d", start)
				}
			default:
				tsKind = numNotNum
				s.skip()
			}
		case "data":
			if s.peek() != '"' {
				s.skip()
				if s.err == nil {
					return Errorf("data[%d].data must be a string", i)
				}
				continue
			}
			hasData = true
			n := len(d.arena)
			v := s.str(d.arena[n:])
			if s.copied {
				if len(v) <= cap(d.arena)-n {
					d.arena = d.arena[:n+len(v)] // decoded in place
				} else {
					// append moved v to an array of its own; earlier records keep the old
					// arena alive, and later ones get a larger one.
					d.arena = make([]byte, 0, max(2*cap(d.arena), 4096))
				}
			}
			r.Data = v
		case "col", "collection", "doc", "key":
			if s.peek() != '"' {
				// An error only if this spelling is the one used: when both are present
				// the v2 one (col, doc) wins and the other is ignored, whatever it holds.
				switch string(k) {
				case "col":
					hasCol, notString[0] = true, true
				case "collection":
					hasColl, notString[1] = true, true
				case "doc":
					hasDoc, notString[2] = true, true
				case "key":
					hasKey, notString[3] = true, true
				}
				s.skip()
				continue
			}
			// Decode names into a scratch buffer, then intern; they are short.
			which := k[0:len(k):len(k)]
			v := s.str(d.name[:0])
			if s.copied {
				d.name = v[:0]
				v = append([]byte(nil), v...) // rare: a name with escapes
			}
			switch string(which) {
			case "col":
				col, hasCol = v, true
			case "collection":
				collection, hasColl = v, true
			case "doc":
				doc, hasDoc = v, true
			case "key":
				key, hasKey = v, true
			}
		default:
			s.skip()
		}
	}
	if s.err != nil {
		return nil // the caller reports the syntax error
	}
	c, cField := collection, 1
	if hasCol {
		c, cField = col, 0
	}
	dn, dField := key, 3
	if hasDoc {
		dn, dField = doc, 2
	}
	for _, f := range [2]int{cField, dField} {
		if notString[f] {
			return Errorf("data[%d].%s must be a string", i, [4]string{"col", "collection", "doc", "key"}[f])
		}
	}
	switch {
	case !hasCol && !hasColl:
		return Errorf("data[%d].col (or collection) is required", i)
	case len(c) == 0:
		return Errorf("data[%d].col (or collection) must not be empty", i)
	case !hasDoc && !hasKey:
		return Errorf("data[%d].doc (or key) is required", i)
	case len(dn) == 0:
		return Errorf("data[%d].doc (or key) must not be empty", i)
	case !hasTS:
		return Errorf("data[%d].ts is required", i)
	case tsKind == numRange:
		return Errorf("data[%d].ts is out of range: it must fit a signed 64-bit integer", i)
	case tsKind != numOK:
		return Errorf("data[%d].ts must be an integer", i)
	case !hasData:
		return Errorf("data[%d].data is required (a string)", i)
	}
	r.Collection = d.in.Intern(c)
	d.in.last = r.Collection
	// The document name is a view of the request bytes, not a copy: with thousands of
	// documents per batch, interning would cost a map lookup per record for nothing — the
	// engine looks the name up and copies it only for a new document. See InsertRecord.
	r.Doc = unsafe.String(&dn[0], len(dn))
	d.Records = append(d.Records, r)
	return nil
}
