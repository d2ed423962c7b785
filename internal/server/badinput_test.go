package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/volandoo/fluxiondb/internal/server"
)

// Every kind of bad input of PROTOCOL.md §2: an error reply carrying the id (when it could
// be read), the connection stays usable, and nothing changes.

const noID = "\x00none" // the id could not be read: the reply's id is absent or ""

type badCase struct {
	name   string
	frame  string // the whole text frame
	id     string // expected reply id, or noID
	text   string // expected error text when non-empty (exact)
	code   string // expected code when non-empty
	binary bool
}

func frame(id, typ, payload string) string { return string(envelope(id, typ, payload)) }

var badCases = []badCase{
	// Envelope.
	{name: "not JSON", frame: `not json at all`, id: noID},
	{name: "empty frame", frame: ``, id: noID},
	{name: "JSON array", frame: `[{"id":"a1","type":"cols","data":"{}"}]`, id: noID},
	{name: "truncated JSON after id", frame: `{"id":"t1","type":"ins","data":`, id: "t1"},
	{name: "trailing garbage", frame: `{"id":"t2","type":"cols","data":"{}"} {}`, id: "t2"},
	{name: "missing id", frame: `{"type":"cols","data":"{}"}`, id: noID},
	{name: "empty id", frame: `{"id":"","type":"cols","data":"{}"}`, id: noID},
	{name: "id not a string", frame: `{"id":7,"type":"cols","data":"{}"}`, id: noID},
	{name: "missing type", frame: `{"id":"t3","data":"{}"}`, id: "t3"},
	{name: "type not a string", frame: `{"id":"t4","type":1,"data":"{}"}`, id: "t4"},
	{name: "unknown type", frame: frame("t5", "nope", `{}`), id: "t5", code: "unknown_type"},
	{name: "type is case-sensitive", frame: frame("t6", "INS", `[{"col":"c","doc":"d","ts":9,"data":"x"}]`), id: "t6", code: "unknown_type"},
	{name: "missing data", frame: `{"id":"t7","type":"ins"}`, id: "t7"},
	{name: "empty data", frame: frame("t8", "qry", ``), id: "t8"},
	{name: "data is a number", frame: `{"id":"t9","type":"qry","data":5}`, id: "t9"},
	{name: "data is a boolean", frame: `{"id":"t10","type":"qry","data":true}`, id: "t10"},
	{name: "data is null", frame: `{"id":"t11","type":"ins","data":null}`, id: "t11"},
	{name: "data invalid JSON", frame: frame("t12", "ins", `[{"col":"c","doc":"d","ts":9,"data":"x"}`), id: "t12"},
	{name: "data invalid JSON object", frame: frame("t13", "sval", `{"col":"c","key":"k","value":"v"`), id: "t13"},
	{name: "data trailing garbage", frame: frame("t14", "sval", `{"col":"c","key":"k","value":"v"} x`), id: "t14"},
	{name: "data wrong shape for ins", frame: frame("t15", "ins", `{"col":"c","doc":"d","ts":9,"data":"x"}`), id: "t15"},
	{name: "data wrong shape for qry", frame: frame("t16", "qry", `["c",9]`), id: "t16"},
	{name: "legacy auth message", frame: frame("t17", "auth", `{"apiKey":"master-secret"}`), id: "t17",
		text: "auth messages are not supported; use the api-key query parameter"},
	{name: "binary frame", frame: frame("t18", "ins", `[{"col":"c","doc":"d","ts":9,"data":"x"}]`), id: "t18", binary: true,
		text: "binary frames are not supported; send each request as a JSON text frame"},
	{name: "binary frame, not a request", frame: "\x00\x01not json", id: noID, binary: true},
	{name: "binary frame, bad data", frame: `{"id":"t19","type":"ins","data":7}`, id: "t19", binary: true},
	// Invalid UTF-8 (raw bytes: json.Marshal would replace them). Stored, it would be shown as
	// U+FFFD, a name no request could reach again.
	{name: "invalid UTF-8 in a doc name", frame: "{\"id\":\"u1\",\"type\":\"ins\",\"data\":\"[{\\\"col\\\":\\\"c\\\",\\\"doc\\\":\\\"d\xff\\\",\\\"ts\\\":9,\\\"data\\\":\\\"x\\\"}]\"}", id: "u1",
		text: "the frame is not valid UTF-8: a text frame must be UTF-8 (RFC 6455), names and data included"},
	{name: "invalid UTF-8 in a payload", frame: "{\"id\":\"u2\",\"type\":\"ins\",\"data\":\"[{\\\"col\\\":\\\"c\\\",\\\"doc\\\":\\\"d\\\",\\\"ts\\\":9,\\\"data\\\":\\\"p\xff\xfeq\\\"}]\"}", id: "u2"},
	{name: "invalid UTF-8 in a KV key", frame: "{\"id\":\"u3\",\"type\":\"sval\",\"data\":\"{\\\"col\\\":\\\"c\\\",\\\"key\\\":\\\"k\xc3\\\",\\\"value\\\":\\\"v\\\"}\"}", id: "u3"},

	// Wrong field types.
	{name: "ins col number", frame: frame("f1", "ins", `[{"col":5,"doc":"d","ts":9,"data":"x"}]`), id: "f1"},
	{name: "ins doc object", frame: frame("f2", "ins", `[{"col":"c","doc":{"a":1},"ts":9,"data":"x"}]`), id: "f2"},
	{name: "ins data number", frame: frame("f3", "ins", `[{"col":"c","doc":"d","ts":9,"data":5}]`), id: "f3"},
	{name: "ins data missing", frame: frame("f4", "ins", `[{"col":"c","doc":"d","ts":9}]`), id: "f4"},
	{name: "ins element not an object", frame: frame("f5", "ins", `[{"col":"c","doc":"d","ts":9,"data":"x"},"x"]`), id: "f5"},
	{name: "qry col number", frame: frame("f6", "qry", `{"col":1,"ts":9}`), id: "f6"},
	{name: "qry where number", frame: frame("f7", "qry", `{"col":"c","ts":9,"where":1}`), id: "f7"},
	{name: "qdoc doc array", frame: frame("f8", "qdoc", `{"col":"c","doc":["d"],"to":9}`), id: "f8"},
	{name: "sval value number", frame: frame("f9", "sval", `{"col":"c","key":"k","value":5}`), id: "f9"},
	{name: "sval key bool", frame: frame("f10", "sval", `{"col":"c","key":true,"value":"v"}`), id: "f10"},
	{name: "dmrec ts string", frame: frame("f11", "dmrec", `[{"col":"c","doc":"d","ts":"1"}]`), id: "f11"},
	{name: "drrng fromTs fraction", frame: frame("f12", "drrng", `{"col":"c","doc":"d","fromTs":1.5,"toTs":3}`), id: "f12"},

	// ts.
	{name: "ins ts fraction", frame: frame("s1", "ins", `[{"col":"c","doc":"d","ts":1.5,"data":"x"}]`), id: "s1"},
	{name: "ins ts string", frame: frame("s2", "ins", `[{"col":"c","doc":"d","ts":"9","data":"x"}]`), id: "s2"},
	{name: "ins ts above int64", frame: frame("s3", "ins", `[{"col":"c","doc":"d","ts":9223372036854775808,"data":"x"}]`), id: "s3"},
	{name: "ins ts below int64", frame: frame("s4", "ins", `[{"col":"c","doc":"d","ts":-9223372036854775809,"data":"x"}]`), id: "s4"},
	{name: "ins ts missing", frame: frame("s5", "ins", `[{"col":"c","doc":"d","data":"x"}]`), id: "s5"},
	{name: "ins ts null", frame: frame("s6", "ins", `[{"col":"c","doc":"d","ts":null,"data":"x"}]`), id: "s6"},
	{name: "ins ts bool", frame: frame("s7", "ins", `[{"col":"c","doc":"d","ts":true,"data":"x"}]`), id: "s7"},
	{name: "ins ts huge", frame: frame("s8", "ins", `[{"col":"c","doc":"d","ts":123456789012345678901234567890,"data":"x"}]`), id: "s8"},
	{name: "qry ts out of range", frame: frame("s9", "qry", `{"col":"c","ts":9223372036854775808}`), id: "s9"},
	{name: "qdoc to fraction", frame: frame("s10", "qdoc", `{"col":"c","doc":"d","to":2.5}`), id: "s10"},
	{name: "drec ts string", frame: frame("s11", "drec", `{"col":"c","doc":"d","ts":"1"}`), id: "s11"},

	// One bad element rejects the whole batch.
	{name: "batch empty collection", frame: frame("b1", "ins", `[{"col":"c","doc":"d","ts":9,"data":"x"},{"col":"","doc":"d","ts":10,"data":"y"}]`), id: "b1"},
	{name: "batch empty document", frame: frame("b2", "ins", `[{"col":"c","doc":"d","ts":9,"data":"x"},{"col":"c","doc":"","ts":10,"data":"y"}]`), id: "b2"},
	{name: "batch missing collection", frame: frame("b3", "ins", `[{"col":"c","doc":"d","ts":9,"data":"x"},{"doc":"d","ts":10,"data":"y"}]`), id: "b3"},
	{name: "batch missing document", frame: frame("b4", "ins", `[{"col":"c","doc":"d","ts":9,"data":"x"},{"col":"c","ts":10,"data":"y"}]`), id: "b4"},
	{name: "batch bad ts last", frame: frame("b5", "ins", `[{"col":"c","doc":"d","ts":9,"data":"x"},{"col":"n","doc":"n","ts":1,"data":"y"},{"col":"c","doc":"d","ts":"10","data":"y"}]`), id: "b5"},
	{name: "batch v1 empty key", frame: frame("b6", "ins", `[{"collection":"c","key":"d","ts":9,"data":"x"},{"collection":"c","key":"","ts":10,"data":"y"}]`), id: "b6"},
	{name: "batch syntax error late", frame: frame("b7", "ins", `[{"col":"c","doc":"d","ts":9,"data":"x"},{"col":"c","doc":"d","ts":10,"data":"y"},]`), id: "b7"},
}

func TestBadInput(t *testing.T) {
	s := startServer(t, server.Config{})
	c := s.dial(t, masterKey)
	c.ok("ins", `[{"col":"c","doc":"d","ts":1,"data":"one"},{"col":"c","doc":"d","ts":2,"data":"two"}]`)
	c.ok("sval", `{"col":"c","key":"k","value":"v"}`)
	before := dump(t, c)

	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			c := c.on(t)
			typ := websocket.MessageText
			if tc.binary {
				typ = websocket.MessageBinary
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.ws.Write(ctx, typ, []byte(tc.frame)); err != nil {
				t.Fatalf("write: %v", err)
			}
			raw, err := c.tryRead(5 * time.Second)
			if err != nil {
				t.Fatalf("no reply to %q: %v", tc.frame, err)
			}
			r := decodeReply(t, raw)
			text := r.errText()
			if !r.isErr() || strings.TrimSpace(text) == "" {
				t.Fatalf("reply to %q is %s, want an error reply with a text", tc.frame, raw)
			}
			id, hasID := r.fields["id"]
			switch {
			case tc.id == noID:
				if hasID && id != "" {
					t.Errorf("reply id = %v, want none or \"\": %s", id, raw)
				}
			case id != tc.id:
				t.Errorf("reply id = %v, want %q: %s", id, tc.id, raw)
			}
			if tc.text != "" && text != tc.text {
				t.Errorf("error = %q, want %q", text, tc.text)
			}
			if tc.code != "" && r.fields["code"] != tc.code {
				t.Errorf("code = %v, want %q: %s", r.fields["code"], tc.code, raw)
			}
			// Still usable, and nothing changed.
			if after := dump(t, c); after != before {
				t.Errorf("bad request %q changed state:\n%s\n->\n%s", tc.frame, before, after)
			}
		})
	}
	// A good write still works at the end.
	c.expect("ins", `[{"col":"c","doc":"d","ts":3,"data":"three"}]`, `{}`)
	c.expect("qdoc", `{"col":"c","doc":"d","from":3,"to":3}`, `{"records":[{"ts":3,"data":"three"}]}`)
}

// Error texts say what was wrong: they name the offending field or element.
func TestBadInputTextsNameTheProblem(t *testing.T) {
	s := startServer(t, server.Config{})
	c := s.dial(t, masterKey)
	for _, tc := range []struct{ typ, payload, mention string }{
		{"ins", `[{"col":"c","doc":"d","ts":9,"data":"x"},{"col":"","doc":"d","ts":10,"data":"y"}]`, "[1]"},
		{"ins", `[{"col":"c","doc":"d","ts":1.5,"data":"x"}]`, "ts"},
		{"qry", `{"col":"c","ts":0}`, "ts"},
		{"qry", `{"ts":5}`, "col"},
		{"qdoc", `{"col":"c","doc":"d","to":5,"from":6}`, "from"},
		{"drrng", `{"col":"c","doc":"d","fromTs":5}`, "toTs"},
		{"dmrec", `[{"col":"c","doc":"d","ts":1},{"col":"c","doc":"d","ts":0}]`, "[1]"},
		{"sval", `{"col":"c","key":"k"}`, "value"},
	} {
		r := c.fail(tc.typ, tc.payload)
		if !strings.Contains(r.errText(), tc.mention) {
			t.Errorf("%s %s: error %q does not mention %q", tc.typ, tc.payload, r.errText(), tc.mention)
		}
	}
}

// Extra envelope fields are ignored (PROTOCOL.md §2); parameterless messages take "{}".
func TestEnvelopeExtraFields(t *testing.T) {
	s := startServer(t, server.Config{})
	c := s.dial(t, masterKey)
	c.sendFrame([]byte(`{"extra":{"nested":[1,2,"x"]},"id":"e1","type":"cols","data":"{}","more":null}`))
	r := c.readReply("e1")
	if r.isErr() {
		t.Fatalf("extra fields: %s", r.raw)
	}
}
