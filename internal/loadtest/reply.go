package loadtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// Kind is the message type a connection sends.
type Kind string

// The request kinds the generators produce.
const (
	KindIns  Kind = "ins"
	KindQry  Kind = "qry"
	KindQdoc Kind = "qdoc"
)

var (
	replyIDPrefix = []byte(`{"id":"`)
	errorKey      = []byte(`"error":`)
	errorNext     = []byte(`,"error":`)
)

// shortReply is the length up to which a reply is searched for an "error" key anywhere.
const shortReply = 1024

// replyInfo is what the reader needs from a reply frame.
type replyInfo struct {
	id    []byte // aliases the frame
	isErr bool
}

// parseReply finds the id of a reply and whether it is an error, without
// building a JSON tree in the common case where the id comes first. Inside a
// JSON string every quote is escaped, so an unescaped `"error":` can only be an
// object key; generated document names never are "error". Error replies are
// short, so only a short reply, or one whose next key is "error", is searched:
// scanning every 8 KB qdoc reply for the key was an eighth of the tool's CPU. (A
// long reply with an "error" key further on would show up as a record-count
// mismatch.)
func parseReply(b []byte) (replyInfo, error) {
	if bytes.HasPrefix(b, replyIDPrefix) {
		rest := b[len(replyIDPrefix):]
		end := bytes.IndexByte(rest, '"')
		if end > 0 && bytes.IndexByte(rest[:end], '\\') < 0 {
			after := rest[end+1:]
			isErr := bytes.HasPrefix(after, errorNext) ||
				len(after) <= shortReply && bytes.Contains(after, errorKey)
			return replyInfo{id: rest[:end], isErr: isErr}, nil
		}
	}
	var r struct {
		ID    *string         `json:"id"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return replyInfo{}, err
	}
	if r.ID == nil {
		return replyInfo{isErr: r.Error != nil}, errors.New("reply without id")
	}
	return replyInfo{id: []byte(*r.ID), isErr: r.Error != nil}, nil
}

// replyError extracts the error text and code of an error reply (slow path,
// errors only).
func replyError(b []byte) string {
	var r struct {
		Error any    `json:"error"`
		Code  string `json:"code"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "unparsable reply: " + truncate(string(b), 200)
	}
	s, ok := r.Error.(string)
	if !ok {
		bs, _ := json.Marshal(r.Error)
		s = string(bs)
	}
	if r.Code != "" {
		s += " (" + r.Code + ")"
	}
	return s
}

// countRecords counts the records in a qry or qdoc reply: every record is an
// object with a "ts" key, and that byte sequence cannot occur inside a string.
// It anchors on 's', which the generated payloads and names do not contain:
// bytes.Count(b, `"ts":`) stops at every quote of a JSON text and cost 15 µs
// per 100-record reply, a third of the tool's time in the qdoc ceiling.
func countRecords(b []byte) int {
	n := 0
	for {
		i := bytes.IndexByte(b, 's')
		if i < 0 {
			return n
		}
		if i >= 2 && i+2 < len(b) && b[i-2] == '"' && b[i-1] == 't' && b[i+1] == '"' && b[i+2] == ':' {
			n++
		}
		b = b[i+1:]
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// appendID appends the request id "<slot>.<seq>".
func appendID(dst []byte, slot int, seq uint64) []byte {
	dst = strconv.AppendInt(dst, int64(slot), 10)
	dst = append(dst, '.')
	return strconv.AppendUint(dst, seq, 10)
}

// parseID is the inverse of appendID. It parses by hand because
// strconv.ParseUint(string(b)) would allocate per reply.
func parseID(id []byte) (slot int, seq uint64, ok bool) {
	dot := bytes.IndexByte(id, '.')
	if dot <= 0 || dot > 9 {
		return 0, 0, false
	}
	s, ok := parseDigits(id[:dot])
	if !ok {
		return 0, 0, false
	}
	q, ok := parseDigits(id[dot+1:])
	if !ok {
		return 0, 0, false
	}
	return int(s), q, true
}

func parseDigits(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}
