package fluxiondb

import (
	"encoding/json"
	"fmt"
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
//	{"id":"<id>","type":"<typ>","data":"<payload as a JSON string>"}
//
// The protocol double-encodes data: payload is a JSON document and travels
// as the text of a JSON string. Building the frame by hand avoids a second
// json.Marshal of an already-encoded payload.
func appendRequest(dst []byte, id, typ string, payload []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, id)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, typ)
	dst = append(dst, `,"data":`...)
	dst = appendQuotedJSON(dst, payload)
	return append(dst, '}')
}

// appendInsertRecords appends recs as the JSON array an `ins` request carries, field for
// field what json.Marshal writes (it escapes a few characters differently; both send invalid
// UTF-8 as U+FFFD). Insert and the batch writer encode every record through it: without
// reflection it takes a fraction of json.Marshal's time (BenchmarkAppendInsertRecords).
func appendInsertRecords(dst []byte, recs []InsertRecord) []byte {
	dst = append(dst, '[')
	for i := range recs {
		r := &recs[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"ts":`...)
		dst = strconv.AppendInt(dst, r.TS, 10)
		dst = append(dst, `,"doc":`...)
		dst = appendJSONString(dst, r.Doc)
		dst = append(dst, `,"data":`...)
		dst = appendJSONString(dst, r.Data)
		dst = append(dst, `,"col":`...)
		dst = appendJSONString(dst, r.Col)
		dst = append(dst, '}')
	}
	return append(dst, ']')
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
		dst = appendEscaped(dst, c)
		start = i + 1
	}
	dst = append(dst, doc[start:]...)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends the JSON escape of an ASCII byte that cannot stand raw in a string:
// a quote, a backslash or a control character.
func appendEscaped(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// appendJSONString appends s as a JSON string literal. Invalid UTF-8 is
// replaced by U+FFFD, as encoding/json does, so the frame is always valid.
func appendJSONString(dst []byte, s string) []byte {
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
			dst = appendEscaped(dst, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
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
