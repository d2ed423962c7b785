package fluxiondb

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Message types of the wire protocol (PROTOCOL.md §3).
const (
	typeInsert       = "ins"
	typeLatest       = "qry"
	typeCollections  = "cols"
	typeHistory      = "qdoc"
	typeDeleteDoc    = "ddoc"
	typeDeleteCol    = "dcol"
	typeDeleteRecord = "drec"
	typeDeleteMany   = "dmrec"
	typeDeleteRange  = "drrng"
	typeSetValue     = "sval"
	typeGetValue     = "gval"
	typeFindValues   = "gvalues"
	typeRemoveValue  = "rval"
	typeAllValues    = "gvals"
	typeAllKeys      = "gkeys"
	typeKeys         = "keys"
	typeConnections  = "conn"
	typeSubscribe    = "sub"
	typeUnsubscribe  = "unsub"

	// Types of frames the server pushes without an id (docs/PROTOCOL.md §7).
	pushEvent    = "event"
	pushOverflow = "overflow"
)

// appendRequest appends one request frame to dst:
//
//	{"id":"<id>","type":"<typ>","data":<data>}
//
// The protocol double-encodes data: the request's JSON document travels as the text of a
// JSON string, and data is that string literal, quotes included (quoteData, or built in
// one pass by appendInsertData).
func appendRequest(dst []byte, id, typ string, data []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, id)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, typ)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

// requestLen is len(appendRequest(nil, id, typ, data)): ids and types are plain ASCII that
// needs no escaping.
func requestLen(id, typ string, data []byte) int {
	return len(`{"id":""`) + len(id) + len(`,"type":""`) + len(typ) + len(`,"data":`) + len(data) + len(`}`)
}

// quoteData turns a request's JSON document (as encoding/json writes it) into the string
// literal appendRequest sends as data.
func quoteData(doc []byte) []byte {
	return appendQuotedJSON(make([]byte, 0, len(doc)+len(doc)/8+2), doc)
}

// appendInsertData appends the data of an `ins` request carrying recs: the JSON array of
// the records, field for field what json.Marshal writes (it escapes a few characters
// differently; both send invalid UTF-8 as U+FFFD), as the text of a JSON string. It builds
// that string in one pass, escaping each field twice where needed, instead of encoding the
// array and then quoting it: Insert and the batch writer encode every record through it
// (BenchmarkAppendInsertData).
func appendInsertData(dst []byte, recs []InsertRecord) []byte {
	size := 4
	for i := range recs {
		// Fields, names and a 20-digit ts; escapes beyond that grow dst as they come.
		size += len(recs[i].Doc) + len(recs[i].Data) + len(recs[i].Col) + 64
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, '"', '[')
	for i := range recs {
		r := &recs[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{\"ts\":`...)
		dst = strconv.AppendInt(dst, r.TS, 10)
		dst = append(dst, `,\"doc\":`...)
		dst = appendStringLiteral(dst, r.Doc, true)
		dst = append(dst, `,\"data\":`...)
		dst = appendStringLiteral(dst, r.Data, true)
		dst = append(dst, `,\"col\":`...)
		dst = appendStringLiteral(dst, r.Col, true)
		dst = append(dst, '}')
	}
	return append(dst, ']', '"')
}

// appendQuotedJSON appends doc, a JSON document as encoding/json writes it
// (valid UTF-8), as a JSON string literal. It is appendJSONString without
// the UTF-8 checks and without copying doc to a string: the payload of a
// large batch is the hot part of every frame.
func appendQuotedJSON(dst, doc []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i, c := range doc {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, doc[start:i]...)
		dst = appendEscaped(dst, c, false)
		start = i + 1
	}
	dst = append(dst, doc[start:]...)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends the JSON escape of an ASCII byte that cannot stand raw in a string:
// a quote, a backslash or a control character. nested escapes that escape once more, for a
// string literal that is itself the text of a string (appendStringLiteral).
func appendEscaped(dst []byte, c byte, nested bool) []byte {
	if nested {
		dst = append(dst, '\\', '\\') // the escape's own backslash, escaped
		if c == '"' || c == '\\' {
			return append(dst, '\\', c) // a quote or backslash is escaped at both levels
		}
	} else {
		dst = append(dst, '\\')
		if c == '"' || c == '\\' {
			return append(dst, c)
		}
	}
	switch c {
	case '\n':
		return append(dst, 'n')
	case '\r':
		return append(dst, 'r')
	case '\t':
		return append(dst, 't')
	}
	return append(dst, 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// appendJSONString appends s as a JSON string literal. Invalid UTF-8 is
// replaced by U+FFFD, as encoding/json does, so the frame is always valid.
func appendJSONString(dst []byte, s string) []byte {
	return appendStringLiteral(dst, s, false)
}

// appendStringLiteral appends s as a JSON string literal, quotes included, or, when nested,
// that literal as it reads inside another JSON string: its quotes and escapes escaped once
// more. Invalid UTF-8 is replaced by U+FFFD, as encoding/json does.
func appendStringLiteral(dst []byte, s string, nested bool) []byte {
	if nested {
		dst = append(dst, '\\')
	}
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscaped(dst, c, nested)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			if nested {
				dst = append(dst, '\\')
			}
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	if nested {
		dst = append(dst, '\\')
	}
	return append(dst, '"')
}

// replyHeader holds the fields every frame from the server may carry. The
// read loop decodes only this to route the frame; the waiting caller decodes
// the rest into its own typed struct, so numbers land in int64 fields
// directly and are never rounded through float64.
type replyHeader struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Error   string `json:"error"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Sub     string `json:"sub"` // subscription id of event and overflow frames
}

// parseHeader decodes the routing fields of one frame.
func parseHeader(frame []byte) (replyHeader, error) {
	var h replyHeader
	if err := json.Unmarshal(frame, &h); err != nil {
		return h, fmt.Errorf("%w: undecodable frame: %w", ErrProtocol, err)
	}
	return h, nil
}

// decodeReply decodes a successful reply into out (nil: ignore the body).
func decodeReply(frame []byte, typ string, out any) error {
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(frame, out); err != nil {
		return fmt.Errorf("%w: decode %s reply: %w", ErrProtocol, typ, err)
	}
	return nil
}
