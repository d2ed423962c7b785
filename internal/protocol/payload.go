package protocol

import "strings"

// The decoded payloads of each message type. Field names follow v2 (col/doc); the decoders
// accept both generations (PROTOCOL.md §3): collection = "collection"/"col", document =
// "key"/"doc" in document-bearing messages, and v2 wins when both are present.

// InsertRecord is one element of an `ins` batch. Doc and Data are views of the request
// buffers, valid until the next Decode: whoever keeps them must copy them (the engine copies
// names of new documents and payload bytes; the log encodes them; pubsub copies them).
// Collection is interned and may be kept.
type InsertRecord struct {
	Collection, Doc string
	TS              int64
	Data            []byte
}

// Latest is a `qry`.
type Latest struct {
	Collection    string
	TS, From      int64
	Doc           Pattern // empty = all documents
	Where, Filter Pattern
}

// Range is a `qdoc`.
type Range struct {
	Collection, Doc string
	From, To        int64
	Limit           int
	Reverse         bool
	Where, Filter   Pattern
}

// DocRef names a document; Collection "" means every collection (ddoc only).
type DocRef struct{ Collection, Doc string }

// RecordRef names one record (drec, dmrec elements).
type RecordRef struct {
	Collection, Doc string
	TS              int64
}

// RangeRef is a `drrng`.
type RangeRef struct {
	Collection, Doc string
	FromTS, ToTS    int64
}

// KV is a key-value message (sval gval rval gvals gkeys gvalues); unused fields are empty.
type KV struct{ Collection, Key, Value string }

// Keys is a `keys` management message.
type Keys struct{ Action, Key, Scope string }

// value holds one decoded field of a flat payload object.
type value struct {
	set   bool
	isStr bool
	str   string
	num   int64
	kind  numKind
	bool  bool
	isBol bool
}

// fields are every parameter any message may carry; decodeObject fills the ones present.
type fields struct {
	col, collection, doc, key, value, ts, from, to, limit, reverse, where, filter,
	fromTs, toTs, action, scope, snapshot, cursor, interval, sub value
}

func (f *fields) slot(name []byte) *value {
	switch string(name) {
	case "col":
		return &f.col
	case "collection":
		return &f.collection
	case "doc":
		return &f.doc
	case "key":
		return &f.key
	case "value":
		return &f.value
	case "ts":
		return &f.ts
	case "from":
		return &f.from
	case "to":
		return &f.to
	case "limit":
		return &f.limit
	case "reverse":
		return &f.reverse
	case "where":
		return &f.where
	case "filter":
		return &f.filter
	case "fromTs":
		return &f.fromTs
	case "toTs":
		return &f.toTs
	case "action":
		return &f.action
	case "scope":
		return &f.scope
	case "snapshot":
		return &f.snapshot
	case "cursor":
		return &f.cursor
	case "interval":
		return &f.interval
	case "sub":
		return &f.sub
	}
	return nil
}

// decodeObject reads one flat JSON object into f. Unknown members are skipped; nested values
// of known members are recorded as "not a string / not a number" for the validators to name.
func decodeObject(s *scanner, f *fields, scratch []byte) {
	if s.peek() != '{' {
		if s.err == nil {
			s.fail("expected a JSON object")
		}
		return
	}
	s.objectStart()
	for first := true; ; first = false {
		key, ok := s.nextKey(first, scratch)
		if !ok {
			return
		}
		v := f.slot(key)
		if v == nil {
			s.skip()
			continue
		}
		*v = value{set: true}
		switch c := s.peek(); {
		case c == '"':
			v.isStr = true
			v.str = string(s.str(nil))
		case c == 't' || c == 'f':
			v.isBol = true
			v.bool, _ = s.bool()
		case c == 'n':
			s.null()
			v.set = false // null is "absent"
		case c == '-' || (c >= '0' && c <= '9'):
			start := s.i
			v.num, v.kind = s.int()
			if v.kind == numNotNum && s.err == nil {
				s.fail("invalid number at offset %d", start)
			}
		default:
			v.kind = numNotNum
			s.skip()
		}
	}
}

func decodeFields(data []byte) (*fields, *Error) {
	var f fields
	s := scanner{b: data}
	decodeObject(&s, &f, nil)
	s.end()
	if s.err != nil {
		return nil, Errorf("data is not a valid JSON object: %v", s.err)
	}
	return &f, nil
}

// pick returns v2 when present, else v1 (PROTOCOL.md §3: v2 wins).
func pick(v2, v1 *value) *value {
	if v2.set {
		return v2
	}
	return v1
}

// name validates a required or optional string parameter.
func name(v *value, label string, required bool) (string, *Error) {
	if !v.set {
		if required {
			return "", Errorf("%s is required", label)
		}
		return "", nil
	}
	if !v.isStr {
		return "", Errorf("%s must be a string", label)
	}
	if required && v.str == "" {
		return "", Errorf("%s must not be empty", label)
	}
	return v.str, nil
}

// integer validates an integer parameter; positive demands > 0.
func integer(v *value, label string, required, positive bool) (int64, *Error) {
	if !v.set {
		if required {
			return 0, Errorf("%s is required", label)
		}
		return 0, nil
	}
	if v.isStr || v.isBol || v.kind != numOK {
		switch {
		case v.kind == numRange:
			return 0, Errorf("%s is out of range: it must fit a signed 64-bit integer", label)
		case positive:
			return 0, Errorf("%s must be a positive integer", label)
		}
		return 0, Errorf("%s must be an integer", label)
	}
	if positive && v.num <= 0 {
		return 0, Errorf("%s must be a positive integer", label)
	}
	return v.num, nil
}

func pattern(v *value, label string) (Pattern, *Error) {
	s, err := name(v, label, false)
	if err != nil || s == "" {
		return Pattern{}, err
	}
	return ParsePattern(s), nil
}

const (
	colLabel = "col (or collection)"
	docLabel = "doc (or key)"
)

// DecodeLatest decodes and validates a `qry` payload.
func DecodeLatest(data []byte) (q Latest, e *Error) {
	f, e := decodeFields(data)
	if e != nil {
		return q, e
	}
	if q.Collection, e = name(pick(&f.col, &f.collection), colLabel, true); e != nil {
		return q, e
	}
	if q.TS, e = integer(&f.ts, "ts", true, true); e != nil {
		return q, e
	}
	if q.From, e = integer(&f.from, "from", false, false); e != nil {
		return q, e
	}
	if q.Doc, e = pattern(pick(&f.doc, &f.key), docLabel); e != nil {
		return q, e
	}
	if q.Where, e = pattern(&f.where, "where"); e != nil {
		return q, e
	}
	q.Filter, e = pattern(&f.filter, "filter")
	return q, e
}

// DecodeRange decodes and validates a `qdoc` payload.
func DecodeRange(data []byte) (q Range, e *Error) {
	f, e := decodeFields(data)
	if e != nil {
		return q, e
	}
	if q.Collection, e = name(pick(&f.col, &f.collection), colLabel, true); e != nil {
		return q, e
	}
	if q.Doc, e = name(pick(&f.doc, &f.key), docLabel, true); e != nil {
		return q, e
	}
	if q.To, e = integer(&f.to, "to", true, true); e != nil {
		return q, e
	}
	if q.From, e = integer(&f.from, "from", false, false); e != nil {
		return q, e
	}
	if q.From > q.To {
		return q, Errorf("from (%d) must not be greater than to (%d)", q.From, q.To)
	}
	limit, e := integer(&f.limit, "limit", false, false)
	if e != nil {
		return q, e
	}
	if limit > 0 {
		q.Limit = int(min(limit, int64(^uint(0)>>1)))
	}
	if f.reverse.set {
		switch {
		case f.reverse.isBol:
			q.Reverse = f.reverse.bool
		case !f.reverse.isStr && f.reverse.kind == numOK && (f.reverse.num == 0 || f.reverse.num == 1):
			q.Reverse = f.reverse.num == 1
		default:
			return q, Errorf("reverse must be a boolean (or 0/1)")
		}
	}
	if q.Where, e = pattern(&f.where, "where"); e != nil {
		return q, e
	}
	q.Filter, e = pattern(&f.filter, "filter")
	return q, e
}

// DecodeDeleteDoc decodes a `ddoc` payload; an empty collection means every collection.
func DecodeDeleteDoc(data []byte) (r DocRef, e *Error) {
	f, e := decodeFields(data)
	if e != nil {
		return r, e
	}
	if r.Doc, e = name(pick(&f.doc, &f.key), docLabel, true); e != nil {
		return r, e
	}
	r.Collection, e = name(pick(&f.col, &f.collection), colLabel, false)
	return r, e
}

// DecodeCollection decodes a payload that names only a collection (dcol, gvals, gkeys).
func DecodeCollection(data []byte) (string, *Error) {
	f, e := decodeFields(data)
	if e != nil {
		return "", e
	}
	return name(pick(&f.col, &f.collection), colLabel, true)
}

// recordRef reads {doc, col, ts}; positive demands ts > 0 (dmrec's rule in the contract).
func recordRef(f *fields, positive bool) (r RecordRef, e *Error) {
	if r.Collection, e = name(pick(&f.col, &f.collection), colLabel, true); e != nil {
		return r, e
	}
	if r.Doc, e = name(pick(&f.doc, &f.key), docLabel, true); e != nil {
		return r, e
	}
	r.TS, e = integer(&f.ts, "ts", true, positive)
	return r, e
}

// DecodeDeleteRecord decodes a `drec` payload. Its ts may be any int64: `ins` stores zero
// and negative timestamps, and drec is the one way to delete such a record by itself.
func DecodeDeleteRecord(data []byte) (RecordRef, *Error) {
	f, e := decodeFields(data)
	if e != nil {
		return RecordRef{}, e
	}
	return recordRef(f, false)
}

// DecodeDeleteRecords decodes a `dmrec` payload: an array of record references. Any bad
// element rejects the whole request, naming the element.
func DecodeDeleteRecords(data []byte) ([]RecordRef, *Error) {
	s := scanner{b: data}
	if s.peek() != '[' {
		return nil, Errorf("data must be a JSON array of {doc, col, ts}")
	}
	s.arrayStart()
	var out []RecordRef
	for i := 0; s.nextElem(i == 0); i++ {
		var f fields
		if s.peek() != '{' {
			return nil, Errorf("data[%d] must be an object with doc, col and ts", i)
		}
		decodeObject(&s, &f, nil)
		if s.err != nil {
			break
		}
		r, e := recordRef(&f, true)
		if e != nil {
			return nil, Errorf("data[%d].%s", i, e.Text)
		}
		out = append(out, r)
	}
	s.end()
	if s.err != nil {
		return nil, Errorf("data is not a valid JSON array: %v", s.err)
	}
	return out, nil
}

// DecodeDeleteRange decodes a `drrng` payload (fromTs/toTs, camelCase).
func DecodeDeleteRange(data []byte) (r RangeRef, e *Error) {
	f, e := decodeFields(data)
	if e != nil {
		return r, e
	}
	if r.Collection, e = name(pick(&f.col, &f.collection), colLabel, true); e != nil {
		return r, e
	}
	if r.Doc, e = name(pick(&f.doc, &f.key), docLabel, true); e != nil {
		return r, e
	}
	if r.FromTS, e = integer(&f.fromTs, "fromTs", true, true); e != nil {
		return r, e
	}
	if r.ToTS, e = integer(&f.toTs, "toTs", true, true); e != nil {
		return r, e
	}
	if r.FromTS > r.ToTS {
		return r, Errorf("fromTs (%d) must not be greater than toTs (%d)", r.FromTS, r.ToTS)
	}
	return r, nil
}

// DecodeKV decodes a key-value payload. needKey/needValue say which fields the message requires.
func DecodeKV(data []byte, needKey, needValue bool) (kv KV, e *Error) {
	f, e := decodeFields(data)
	if e != nil {
		return kv, e
	}
	if kv.Collection, e = name(pick(&f.col, &f.collection), colLabel, true); e != nil {
		return kv, e
	}
	if needKey {
		if kv.Key, e = name(&f.key, "key", true); e != nil {
			return kv, e
		}
	}
	if needValue {
		kv.Value, e = name(&f.value, "value", true)
	}
	return kv, e
}

// DecodeKeys decodes a `keys` payload. The action is returned lower-cased; scope and key are
// validated by the caller, which knows the order the error texts must follow.
func DecodeKeys(data []byte) (k Keys, e *Error) {
	f, e := decodeFields(data)
	if e != nil {
		return k, e
	}
	if k.Action, e = name(&f.action, "action", false); e != nil {
		return k, e
	}
	k.Action = strings.ToLower(strings.TrimSpace(k.Action))
	// A key or scope that is not a string is malformed; an empty or missing one is for the
	// caller to report (its texts follow the original's order).
	if k.Key, e = name(&f.key, "key", false); e != nil {
		return k, e
	}
	k.Scope, e = name(&f.scope, "scope", false)
	return k, e
}

// Sub is a `sub` (subscribe) request, our extension (docs/PROTOCOL.md).
type Sub struct {
	Collection    string
	Doc           Pattern // empty = every document
	Where, Filter Pattern
	Snapshot      bool   // start with the latest record of each selected document
	Cursor        string // resume after this cursor instead of starting now
	IntervalMS    int64  // coalesce: at most one event per document per interval; 0 = off
}

// DecodeSub decodes and validates a `sub` payload.
func DecodeSub(data []byte) (q Sub, e *Error) {
	f, e := decodeFields(data)
	if e != nil {
		return q, e
	}
	if q.Collection, e = name(pick(&f.col, &f.collection), colLabel, true); e != nil {
		return q, e
	}
	if q.Doc, e = pattern(pick(&f.doc, &f.key), docLabel); e != nil {
		return q, e
	}
	if q.Where, e = pattern(&f.where, "where"); e != nil {
		return q, e
	}
	if q.Filter, e = pattern(&f.filter, "filter"); e != nil {
		return q, e
	}
	if f.snapshot.set {
		if !f.snapshot.isBol {
			return q, Errorf("snapshot must be a boolean")
		}
		q.Snapshot = f.snapshot.bool
	}
	if q.Cursor, e = name(&f.cursor, "cursor", false); e != nil {
		return q, e
	}
	if q.Cursor != "" && q.Snapshot {
		return q, Errorf("snapshot and cursor exclude each other: a resumed subscription continues where it left off")
	}
	if q.IntervalMS, e = integer(&f.interval, "interval", false, false); e != nil {
		return q, e
	}
	if q.IntervalMS < 0 || q.IntervalMS > 3600_000 {
		return q, Errorf("interval must be between 0 and 3600000 milliseconds")
	}
	return q, nil
}

// DecodeUnsub decodes an `unsub` payload: {"sub": "<subscription id>"}.
func DecodeUnsub(data []byte) (string, *Error) {
	f, e := decodeFields(data)
	if e != nil {
		return "", e
	}
	return name(&f.sub, "sub", true)
}
