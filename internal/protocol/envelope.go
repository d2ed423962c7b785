package protocol

// Type is a message code (PROTOCOL.md §3).
type Type uint8

const (
	TypeUnknown Type = iota
	TypeIns
	TypeQry
	TypeCols
	TypeQdoc
	TypeDdoc
	TypeDcol
	TypeDrec
	TypeDmrec
	TypeDrrng
	TypeSval
	TypeGval
	TypeGvalues
	TypeRval
	TypeGvals
	TypeGkeys
	TypeKeys
	TypeConn
	TypeSub
	TypeUnsub
	TypeAuth // legacy; always rejected with ErrAuthMessage
	numTypes
)

var typeNames = [numTypes]string{
	TypeUnknown: "unknown", TypeIns: "ins", TypeQry: "qry", TypeCols: "cols", TypeQdoc: "qdoc",
	TypeDdoc: "ddoc", TypeDcol: "dcol", TypeDrec: "drec", TypeDmrec: "dmrec", TypeDrrng: "drrng",
	TypeSval: "sval", TypeGval: "gval", TypeGvalues: "gvalues", TypeRval: "rval", TypeGvals: "gvals",
	TypeGkeys: "gkeys", TypeKeys: "keys", TypeConn: "conn", TypeSub: "sub", TypeUnsub: "unsub",
	TypeAuth: "auth",
}

// String returns the wire name of t.
func (t Type) String() string {
	if t < numTypes {
		return typeNames[t]
	}
	return "unknown"
}

// Types lists every known message type, for metrics and docs.
func Types() []Type {
	ts := make([]Type, 0, numTypes-1)
	for t := TypeIns; t < numTypes; t++ {
		ts = append(ts, t)
	}
	return ts
}

func lookupType(b []byte) Type {
	// A switch on string(b) compiles to comparisons without allocating.
	switch string(b) {
	case "ins":
		return TypeIns
	case "qry":
		return TypeQry
	case "cols":
		return TypeCols
	case "qdoc":
		return TypeQdoc
	case "ddoc":
		return TypeDdoc
	case "dcol":
		return TypeDcol
	case "drec":
		return TypeDrec
	case "dmrec":
		return TypeDmrec
	case "drrng":
		return TypeDrrng
	case "sval":
		return TypeSval
	case "gval":
		return TypeGval
	case "gvalues":
		return TypeGvalues
	case "rval":
		return TypeRval
	case "gvals":
		return TypeGvals
	case "gkeys":
		return TypeGkeys
	case "keys":
		return TypeKeys
	case "conn":
		return TypeConn
	case "sub":
		return TypeSub
	case "unsub":
		return TypeUnsub
	case "auth":
		return TypeAuth
	}
	return TypeUnknown
}

// Request is one decoded envelope. It is reused across frames of a connection: the byte
// slices stay valid until the next ParseEnvelope on the same Request.
type Request struct {
	ID       []byte // the request id, decoded; nil when it could not be read
	Type     Type
	TypeName []byte // the type as sent, for error texts
	Data     []byte // the payload JSON, decoded from its string encoding

	// FastInsert, when set before ParseEnvelope, receives the records of an `ins` request read
	// straight from its escaped data string, in one pass; Data then stays nil and
	// FastInsert.DecodeRequest has nothing left to do. The server points it at the
	// connection's Insert. Requests of other types, and data the fast path declines, are
	// decoded as usual.
	FastInsert *Insert

	fastDone                *Insert // FastInsert, when it holds this request's records
	dataStr                 []byte  // the data string, quotes included, while fastDone is set
	idBuf, typeBuf, dataBuf []byte
}

// ParseEnvelope decodes `{"id":"…","type":"…","data":"…"}` from frame into r.
// The payload in "data" is a JSON document encoded as a string (PROTOCOL.md §2); as a
// convenience for people typing requests by hand, a payload sent as a bare JSON object or
// array is accepted too. On error r.ID is set whenever the id could be read, so the error
// reply can carry it.
func ParseEnvelope(frame []byte, r *Request) *Error {
	r.ID, r.Type, r.TypeName, r.Data = nil, TypeUnknown, nil, nil
	r.fastDone, r.dataStr = nil, nil
	s := scanner{b: frame}
	if s.peek() != '{' {
		return Errorf("request must be a JSON object with id, type and data")
	}
	s.objectStart()
	var haveData, haveType bool
	var dataErr *Error
	for first := true; ; first = false {
		key, ok := s.nextKey(first, nil)
		if !ok {
			break
		}
		switch string(key) {
		case "id":
			if s.peek() != '"' {
				s.skip()
				dataErr = orErr(dataErr, Errorf("id must be a string"))
				continue
			}
			v := s.str(r.idBuf[:0])
			r.idBuf = s.keep(r.idBuf, v)
			r.ID = v
		case "type":
			if s.peek() != '"' {
				s.skip()
				dataErr = orErr(dataErr, Errorf("type must be a string"))
				continue
			}
			v := s.str(r.typeBuf[:0])
			r.typeBuf = s.keep(r.typeBuf, v)
			r.TypeName = v
			r.Type = lookupType(v)
			haveType = true
		case "data":
			haveData = true
			r.fastDone, r.dataStr = nil, nil
			switch s.peek() {
			case '"':
				if d := r.FastInsert; d != nil && (!haveType || r.Type == TypeIns) {
					if end := d.decodeString(s.b, s.i); end > 0 {
						r.fastDone, r.dataStr, r.Data = d, s.b[s.i:end], nil
						s.i = end
						continue
					}
				}
				v := s.str(r.dataBuf[:0])
				r.dataBuf = s.keep(r.dataBuf, v)
				r.Data = v
			case '{', '[':
				r.Data = s.raw()
			default:
				s.skip()
				dataErr = orErr(dataErr, Errorf("data must be a string holding a JSON document"))
			}
		default:
			s.skip() // extra fields are ignored (PROTOCOL.md §2)
		}
	}
	s.end()
	if s.err != nil {
		return Errorf("malformed JSON request: %v", s.err)
	}
	if dataErr != nil {
		return dataErr
	}
	if r.ID == nil {
		return Errorf("id is required")
	}
	if len(r.ID) == 0 {
		return Errorf("id must not be empty")
	}
	if !haveType {
		return Errorf("type is required")
	}
	if r.Type == TypeUnknown {
		return &Error{Code: CodeUnknownType, Text: "unknown message type " + quote(r.TypeName)}
	}
	if r.fastDone != nil {
		if r.Type == TypeIns {
			return nil // the records are in FastInsert
		}
		r.decodeData() // the type came after the data, and is not ins
	}
	if !haveData || len(r.Data) == 0 {
		if r.Type == TypeCols || r.Type == TypeConn || r.Type == TypeAuth {
			r.Data = emptyObject // parameterless messages: tolerate a missing data field
			return nil
		}
		return Errorf("data is required: a JSON document encoded as a string")
	}
	return nil
}

var emptyObject = []byte("{}")

// decodeData decodes the data string the fast path read into Data, for when the records
// are wanted elsewhere after all. The fast path read it to its end, so it is well formed.
func (r *Request) decodeData() {
	s := scanner{b: r.dataStr}
	v := s.str(r.dataBuf[:0])
	r.dataBuf = s.keep(r.dataBuf, v)
	r.Data, r.fastDone, r.dataStr = v, nil, nil
}

// keep records the grown scratch buffer when v was decoded into it, so the next request
// reuses the larger allocation.
func (s *scanner) keep(buf, v []byte) []byte {
	if s.copied && cap(v) > cap(buf) {
		return v[:0]
	}
	return buf
}

func orErr(a, b *Error) *Error {
	if a != nil {
		return a
	}
	return b
}

func quote(b []byte) string {
	const max = 64
	if len(b) > max {
		return string(AppendBytes(nil, b[:max])) + "…"
	}
	return string(AppendBytes(nil, b))
}
