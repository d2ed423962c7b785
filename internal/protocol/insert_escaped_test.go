package protocol

import (
	"bytes"
	"testing"
)

// The one-pass fast path (decodeString) must take what clients send (otherwise it saves nothing) and give
// up on the rest; FuzzInsertEscaped checks that what it takes decodes as the general path
// does. Documents here are written as the data string's content (escapes in place).
func TestDecodeEscapedTakesCommonShapes(t *testing.T) {
	for _, tc := range []struct {
		name, esc string
		want      []InsertRecord
	}{
		{"JSON.stringify of a batch",
			`[{\"ts\":1700000000000,\"doc\":\"device-1\",\"data\":\"{\\\"lat\\\":48.1,\\\"ok\\\":true}\",\"col\":\"fleet\"},{\"ts\":-5,\"doc\":\"device-2\",\"data\":\"plain\",\"col\":\"fleet\"}]`,
			[]InsertRecord{
				{Collection: "fleet", Doc: "device-1", TS: 1700000000000, Data: []byte(`{"lat":48.1,"ok":true}`)},
				{Collection: "fleet", Doc: "device-2", TS: -5, Data: []byte("plain")},
			}},
		{"legacy field names, other order",
			`[{\"key\":\"k\",\"data\":\"\",\"collection\":\"c\",\"ts\":0}]`,
			[]InsertRecord{{Collection: "c", Doc: "k", TS: 0, Data: []byte{}}}},
		{"every escape a payload may hold",
			`[{\"ts\":1,\"doc\":\"d\",\"data\":\"q\\\" b\\\\ s\\/ \\/ n\\n t\\t r\\r b\\b f\\f é\",\"col\":\"c\"}]`,
			[]InsertRecord{{Collection: "c", Doc: "d", TS: 1, Data: []byte("q\" b\\ s/ / n\n t\t r\r b\b f\f é")}}},
		{"slashes escaped by the encoder",
			`[{\"ts\":1,\"doc\":\"d\",\"data\":\"a\/b \\\/ c\",\"col\":\"c\"}]`,
			[]InsertRecord{{Collection: "c", Doc: "d", TS: 1, Data: []byte("a/b / c")}}},
		{"\\u escapes, as encoding/json writes < > &",
			`[{\"ts\":1,\"doc\":\"d\",\"data\":\"\\u003cb\\u003e \\u0026 \\u00E9\\u0000\",\"col\":\"c\"}]`,
			[]InsertRecord{{Collection: "c", Doc: "d", TS: 1, Data: []byte("<b> & é\x00")}}},
		{"pretty-printed",
			`[\n  {\n    \"ts\": 1,\n    \"doc\": \"d\",\r\n\t\"data\": \"x\",\n    \"col\": \"c\"\n  }\n]\n`,
			[]InsertRecord{{Collection: "c", Doc: "d", TS: 1, Data: []byte("x")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d Insert
			b := []byte(`"` + tc.esc + `"` + "}")
			if end := d.decodeString(b, 0); end != len(b)-1 {
				t.Fatalf("gave up on %s", tc.esc)
			}
			if len(d.Records) != len(tc.want) {
				t.Fatalf("%d records, want %d", len(d.Records), len(tc.want))
			}
			for i, r := range d.Records {
				w := tc.want[i]
				if r.Collection != w.Collection || r.Doc != w.Doc || r.TS != w.TS || !bytes.Equal(r.Data, w.Data) {
					t.Errorf("record %d = %+v (data %q), want %+v (data %q)", i, r, r.Data, w, w.Data)
				}
			}
		})
	}
}

func TestDecodeEscapedGivesUp(t *testing.T) {
	rec := func(fields string) string { return `[{` + fields + `}]` }
	base := `\"ts\":1,\"doc\":\"d\",\"col\":\"c\",`
	for _, esc := range []string{
		rec(base + `\"data\":\"\\ud83d\\ude00\"`),    // a surrogate pair in the payload
		rec(base + `\"data\":\"\\u00g1\"`),           // not hex
		rec(base + `\"data\":\"\u0041\"`),            // \u in the string holding it
		rec(base + `\"data\":\"a\nb\"`),              // a raw newline in the payload
		rec(base + `\"data\":{}`),                    // not a string
		rec(base + `\"data\":\"x\",\"extra\":1`),     // an unknown key
		rec(base + `\"data\":\"x\",\"ts\":2`),        // a repeated key
		rec(base + `\"data\":\"x\",\"key\":\"e\"`),   // doc and key both
		rec(`\"ts\":1,\"doc\":\"d\",\"data\":\"x\"`), // no collection
		rec(`\"ts\":1.5,\"doc\":\"d\",\"col\":\"c\",\"data\":\"x\"`),
		rec(`\"ts\":1e3,\"doc\":\"d\",\"col\":\"c\",\"data\":\"x\"`),
		rec(`\"ts\":01,\"doc\":\"d\",\"col\":\"c\",\"data\":\"x\"`),
		rec(`\"ts\":9223372036854775808,\"doc\":\"d\",\"col\":\"c\",\"data\":\"x\"`),
		rec(`\"ts\":1,\"doc\":\"\",\"col\":\"c\",\"data\":\"x\"`),
		rec(`\"ts\":1,\"doc\":\"d\\\\\",\"col\":\"c\",\"data\":\"x\"`), // a name with an escape
		`[]`,
		`[{\"ts\":1,\"doc\":\"d`, // the data string ends in a name
		`[{\"ts\":1,\"doc\":\"d","x":"\",\"col\":\"c\",\"data\":\"x\"}]`, // … and the frame goes on
		rec(base + `\"data\":\"x`),                                       // … in a payload
		rec(base + `\"data\":\"x\\`),                                     // … in a payload's escape
		rec(base+`\"data\":\"x\"`) + ` x`,
		rec(base+`\"data\":\"x\"`) + `,`,
		`[{` + base + `\"data\":\"x\"},]`,
		`[{` + base + `\"data\":\"x\"`,
	} {
		var d Insert
		if end := d.decodeString([]byte(`"`+esc+`"}`), 0); end > 0 {
			t.Errorf("took %s", esc)
		}
	}
}

// TestParseEnvelopeFastInsert checks what FastInsert changes: only an ins request's records
// are read in one pass (whichever comes first of type and data); other types, and data the
// fast path declines, are decoded and reported as before.
func TestParseEnvelopeFastInsert(t *testing.T) {
	var d Insert
	r := Request{FastInsert: &d}
	for _, frame := range []string{
		`{"id":"1","type":"ins","data":"[{\"ts\":1,\"doc\":\"d\",\"col\":\"c\",\"data\":\"x\"}]"}`,
		`{"data":"[{\"ts\":1,\"doc\":\"d\",\"col\":\"c\",\"data\":\"x\"}]","type":"ins","id":"1"}`,
	} {
		if e := ParseEnvelope([]byte(frame), &r); e != nil {
			t.Fatal(e)
		}
		if r.Data != nil || r.fastDone != &d || len(d.Records) != 1 || d.Records[0].Doc != "d" {
			t.Errorf("%s: Data %q, fast %v, records %+v", frame, r.Data, r.fastDone != nil, d.Records)
		}
		if e := d.DecodeRequest(&r); e != nil || len(d.Records) != 1 {
			t.Errorf("DecodeRequest: %v, %d records", e, len(d.Records))
		}
	}
	// An array payload of another type, the type named after it: decoded as usual.
	if e := ParseEnvelope([]byte(`{"id":"2","data":"[{\"ts\":1,\"doc\":\"d\",\"col\":\"c\",\"data\":\"x\"}]","type":"dmrec"}`), &r); e != nil {
		t.Fatal(e)
	}
	if r.fastDone != nil || string(r.Data) != `[{"ts":1,"doc":"d","col":"c","data":"x"}]` {
		t.Errorf("dmrec: Data %q, fast %v", r.Data, r.fastDone != nil)
	}
	// Another Insert than FastInsert still gets the records.
	if e := ParseEnvelope([]byte(`{"id":"3","type":"ins","data":"[{\"ts\":7,\"doc\":\"d\",\"col\":\"c\",\"data\":\"x\"}]"}`), &r); e != nil {
		t.Fatal(e)
	}
	var other Insert
	if e := other.DecodeRequest(&r); e != nil || len(other.Records) != 1 || other.Records[0].TS != 7 {
		t.Errorf("other Insert: %v, %+v", e, other.Records)
	}
	if e := ParseEnvelope([]byte(`{"id":"4","type":"ins","data":""}`), &r); e == nil {
		t.Error("empty ins data accepted")
	}
	for _, frame := range []string{
		`{"id":"5","type":"ins","data":"\x"}`,
		`{"id":"6","type":"ins","data":"[{\"ts\":1}`,
		`{"id":"7","type":"ins","data":"[{\"ts\":1,\"doc\":\"d\",\"col\":\"c\",\"data\":\"x\"}]","data":5}`,
	} {
		e := ParseEnvelope([]byte(frame), &r)
		var plain Request
		want := ParseEnvelope([]byte(frame), &plain)
		if e == nil || want == nil || *e != *want {
			t.Errorf("%s: %v, without FastInsert %v", frame, e, want)
		}
	}
}
