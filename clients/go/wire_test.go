package fluxiondb

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendRequest(t *testing.T) {
	payload, _ := json.Marshal([]InsertRecord{{Col: "c", Doc: "d\"q", TS: math.MaxInt64, Data: "{\"a\":\"\\n\"}\x01<>&\u2028é"}})
	frame := appendRequest(nil, "id-1", "ins", quoteData(payload))
	var env WebSocketMessage
	if err := json.Unmarshal(frame, &env); err != nil {
		t.Fatalf("frame %s is not JSON: %v", frame, err)
	}
	if env.ID != "id-1" || env.Type != "ins" || env.Data != string(payload) {
		t.Fatalf("envelope = %+v", env)
	}
	var back []InsertRecord
	if err := json.Unmarshal([]byte(env.Data), &back); err != nil {
		t.Fatal(err)
	}
	if back[0].TS != math.MaxInt64 || back[0].Doc != "d\"q" || back[0].Data != "{\"a\":\"\\n\"}\x01<>&\u2028é" {
		t.Fatalf("payload round trip = %+v", back[0])
	}
}

// FuzzAppendJSONString: whatever the input, the output is a JSON string
// that decodes to the input (invalid UTF-8 replaced, as encoding/json does).
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `"quoted"`, `back\slash`, "\x00\x1f\x7f", "\n\r\t", "é\u2028\U0001F600", "\xff\xfe", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("appendJSONString(%q) = %s: not JSON: %v", s, out, err)
		}
		want := s
		if !utf8.ValidString(s) {
			// encoding/json replaces each bad byte by U+FFFD; so do we.
			b, _ := json.Marshal(s)
			_ = json.Unmarshal(b, &want)
		}
		if got != want {
			t.Fatalf("round trip of %q = %q, want %q", s, got, want)
		}
		// Nested, it is that literal quoted once more, byte for byte.
		nested := appendStringLiteral(nil, s, true)
		twice := appendQuotedJSON(nil, out)
		if string(nested) != string(twice[1:len(twice)-1]) {
			t.Fatalf("nested literal of %q = %s, want %s", s, nested, twice[1:len(twice)-1])
		}
	})
}

// FuzzAppendInsertData: the data Insert and the batch writer send is a JSON string whose text
// decodes to exactly what json.Marshal's encoding of the records decodes to (the bytes differ
// only in escaping).
func FuzzAppendInsertData(f *testing.F) {
	f.Add(int64(0), "d", `{"v":1}`, "c", int64(-1), "", "", "")
	f.Add(int64(math.MaxInt64), "d\"q", "\x01<>&\u2028é", "c\\", int64(math.MinInt64), "\xff", "a\xc3", "\n")
	f.Fuzz(func(t *testing.T, ts1 int64, doc1, data1, col1 string, ts2 int64, doc2, data2, col2 string) {
		for _, recs := range [][]InsertRecord{nil, {{TS: ts1, Doc: doc1, Data: data1, Col: col1}},
			{{TS: ts1, Doc: doc1, Data: data1, Col: col1}, {TS: ts2, Doc: doc2, Data: data2, Col: col2}}} {
			out := appendInsertData(nil, recs)
			var text string
			if err := json.Unmarshal(out, &text); err != nil {
				t.Fatalf("appendInsertData(%+v) = %s: not a JSON string: %v", recs, out, err)
			}
			var got []InsertRecord
			if err := json.Unmarshal([]byte(text), &got); err != nil {
				t.Fatalf("appendInsertData(%+v) carries %s: not JSON: %v", recs, text, err)
			}
			ref, _ := json.Marshal(recs)
			want := []InsertRecord{}
			if recs != nil {
				_ = json.Unmarshal(ref, &want)
			}
			if len(got) != len(want) {
				t.Fatalf("decoded %d records, want %d: %s", len(got), len(want), out)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("record %d = %+v, want %+v (from %s)", i, got[i], want[i], out)
				}
			}
		}
	})
}

func BenchmarkAppendInsertData(b *testing.B) {
	recs := make([]InsertRecord, 100)
	for i := range recs {
		recs[i] = InsertRecord{Col: "sensors", Doc: "device-1", TS: int64(i), Data: `{"temperature":22.5,"state":"ok"}`}
	}
	b.Run("append", func(b *testing.B) {
		buf := make([]byte, 0, 16<<10)
		b.ReportAllocs()
		for b.Loop() {
			buf = appendInsertData(buf[:0], recs)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			doc, _ := json.Marshal(recs)
			_ = quoteData(doc)
		}
	})
}

// FuzzAppendQuotedJSON: for valid UTF-8 input, the output is a JSON string
// that decodes to the input byte for byte.
func FuzzAppendQuotedJSON(f *testing.F) {
	for _, s := range []string{"", `{"a":"b\\"c"}`, "[1,2]", "\x00\n\t\x1f", "é\u2028"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !utf8.Valid(doc) {
			return
		}
		out := appendQuotedJSON(nil, doc)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("appendQuotedJSON(%q) = %s: not JSON: %v", doc, out, err)
		}
		if got != string(doc) {
			t.Fatalf("round trip of %q = %q", doc, got)
		}
	})
}

// FuzzParseHeader feeds arbitrary frames to the read loop's decoder: it
// must never panic, and must either fail or return the frame's fields.
func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{
		`{"message":"Authentication successful","type":"ready"}`,
		`{"id":"1","records":{"d":{"ts":9223372036854775807,"data":"x"}}}`,
		`{"id":"2","error":"permission denied","code":"permission_denied"}`,
		`{"id":3}`, `[]`, `null`, `{"id":"\ud800"}`, `{`, ``, `{"id":"a","id":"b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, err := parseHeader(frame)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not match ErrProtocol", err)
			}
			return
		}
		var q QueryResponse
		_ = decodeReply(frame, "qry", &q)
		var qc QueryCollectionResponse
		_ = decodeReply(frame, "qdoc", &qc)
		if h.Error != "" {
			se := newServerError(h.ID, "qry", h.Code, h.Error)
			_ = se.Error()
		}
	})
}

func TestDecodeExactInt64(t *testing.T) {
	frame := []byte(`{"id":"1","records":[{"ts":9007199254740993,"data":"a"},{"ts":9223372036854775807,"data":"b"},{"ts":-9223372036854775808,"data":"c"}]}`)
	var r QueryCollectionResponse
	if err := decodeReply(frame, "qdoc", &r); err != nil {
		t.Fatal(err)
	}
	want := []int64{9007199254740993, math.MaxInt64, math.MinInt64}
	for i, w := range want {
		if r.Records[i].TS != w {
			t.Fatalf("record %d ts = %d, want %d", i, r.Records[i].TS, w)
		}
	}
	if err := decodeReply([]byte(`{"id":"1","records":[{"ts":1.5}]}`), "qdoc", &r); !errors.Is(err, ErrProtocol) {
		t.Fatalf("fractional ts: %v; want ErrProtocol", err)
	}
}

func TestServerErrorClasses(t *testing.T) {
	all := []error{ErrInvalidRequest, ErrUnknownType, ErrTooLarge, ErrPermissionDenied, ErrForbidden,
		ErrNotFound, ErrUnavailable, ErrRateLimited, ErrInternal, ErrUnauthenticated, ErrClosed, ErrConnectionLost, ErrTimeout}
	cases := []struct {
		code, msg string
		want      []error
	}{
		{CodeBadRequest, "data.ts must be a positive integer", []error{ErrInvalidRequest}},
		{CodeUnknownType, "unknown message type", []error{ErrUnknownType, ErrInvalidRequest}},
		{CodeTooLarge, "too many records", []error{ErrTooLarge, ErrInvalidRequest}},
		{CodePermissionDenied, "permission denied", []error{ErrPermissionDenied}},
		{CodeForbidden, "api key cannot be removed", []error{ErrForbidden, ErrPermissionDenied}},
		{CodeNotFound, "api key not found", []error{ErrNotFound}},
		{CodeUnavailable, "wal: disk full", []error{ErrUnavailable}},
		{CodeRateLimited, "slow down", []error{ErrRateLimited}},
		{CodeInternal, "boom", []error{ErrInternal}},
		// Old servers send no code: the fixed texts still classify.
		{"", "permission denied", []error{ErrPermissionDenied}},
		{"", "only the master key may manage API keys", []error{ErrForbidden, ErrPermissionDenied}},
		{"", "api key cannot be removed", []error{ErrForbidden, ErrPermissionDenied}},
		{"", "api key not found", []error{ErrNotFound}},
		{"", "invalid scope", []error{ErrInvalidRequest}},
		{"", "api key cannot be empty", []error{ErrInvalidRequest}},
		{"", "unknown action", []error{ErrInvalidRequest}},
		{"", "Unknown message type: zz", []error{ErrUnknownType, ErrInvalidRequest}},
		{"", "something new", nil},
	}
	for _, tc := range cases {
		err := error(newServerError("7", "keys", tc.code, tc.msg))
		for _, s := range all {
			want := false
			for _, w := range tc.want {
				want = want || w == s
			}
			if errors.Is(err, s) != want {
				t.Errorf("code %q msg %q: errors.Is(%v) = %v, want %v", tc.code, tc.msg, s, !want, want)
			}
		}
		var se *ServerError
		if !errors.As(err, &se) || se.RequestID != "7" || se.Message != tc.msg {
			t.Errorf("errors.As: %+v", se)
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Error() = %q lacks the server text", err.Error())
		}
	}
	if ae := (&AuthError{Reason: "Unknown API key", HTTPStatus: 401}); !errors.Is(ae, ErrUnauthenticated) || !strings.Contains(ae.Error(), "Unknown API key") {
		t.Errorf("AuthError = %v", ae)
	}
}

func BenchmarkAppendRequest(b *testing.B) {
	recs := make([]InsertRecord, 100)
	for i := range recs {
		recs[i] = InsertRecord{Col: "sensors", Doc: "device-1", TS: int64(i), Data: `{"temperature":22.5,"state":"ok"}`}
	}
	data := appendInsertData(nil, recs)
	buf := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		buf = appendRequest(buf[:0], "12345", "ins", data)
	}
}
