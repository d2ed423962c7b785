package loadtest

import (
	"encoding/json"
	"fmt"
	"testing"
)

type envelope struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data string `json:"data"`
}

type insRecord struct {
	TS   json.Number `json:"ts"`
	Doc  string      `json:"doc"`
	Col  string      `json:"col"`
	Data string      `json:"data"`
}

func decodeEnvelope(t *testing.T, frame []byte) envelope {
	t.Helper()
	var e envelope
	if err := json.Unmarshal(frame, &e); err != nil {
		t.Fatalf("frame is not JSON: %v\n%s", err, frame)
	}
	return e
}

func TestAppendEscapedMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "nl\nret\rtab\t", "ctl\x00\x01\x1f", "unicode é 日本 🙂", `{"a":"b\"c"}`} {
		got := appendJSONString(nil, []byte(s))
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != s {
			t.Errorf("%q: encoded %s decodes to %q (%v)", s, got, back, err)
		}
	}
}

func TestAppendFrameDoubleEncodes(t *testing.T) {
	data := []byte(`{"col":"c","doc":"d\"x","ts":9223372036854775807}`)
	e := decodeEnvelope(t, AppendFrame(nil, "7", "qry", data))
	if e.ID != "7" || e.Type != "qry" || e.Data != string(data) {
		t.Fatalf("decoded %+v", e)
	}
}

func TestMakePayload(t *testing.T) {
	for _, n := range []int{0, 1, 10, 33, 34, 50, 1000} {
		p := MakePayload(n)
		if len(p) != n {
			t.Errorf("MakePayload(%d) has %d bytes", n, len(p))
		}
		if n >= 34 && !json.Valid(p) {
			t.Errorf("MakePayload(%d) = %s is not JSON", n, p)
		}
	}
}

func TestIngestFramesDecodeBack(t *testing.T) {
	payload := MakePayload(50)
	refs := docRefs("t", 3, 2)
	g := newIngestGen(refs, payload, 1000, 4, 10)
	var all []insRecord
	for i := 0; ; i++ {
		frame, n, ok := g.next(make([]byte, wsHeaderRoom), fmt.Appendf(nil, "0.%d", i+1))
		if !ok {
			break
		}
		e := decodeEnvelope(t, frame[wsHeaderRoom:])
		if e.Type != "ins" || e.ID != fmt.Sprintf("0.%d", i+1) {
			t.Fatalf("envelope %+v", e)
		}
		var recs []insRecord
		if err := json.Unmarshal([]byte(e.Data), &recs); err != nil {
			t.Fatalf("data is not a JSON array: %v\n%s", err, e.Data)
		}
		if len(recs) != n {
			t.Fatalf("frame carries %d records, generator said %d", len(recs), n)
		}
		all = append(all, recs...)
	}
	if len(all) != 10 {
		t.Fatalf("sent %d records, want 10", len(all))
	}
	for k, r := range all {
		want := refs[k%3]
		if r.Doc != want.doc || r.Col != want.col || r.Data != string(payload) || r.TS.String() != fmt.Sprint(1000+k/3) {
			t.Errorf("record %d = %+v, want doc %s col %s ts %d", k, r, want.doc, want.col, 1000+k/3)
		}
	}
}

func TestQryAndQdocFrames(t *testing.T) {
	g := newQryGen("p", 2, 5, 3)
	var expects []int
	for i := 0; ; i++ {
		frame, exp, ok := g.next(nil, []byte("1.1"))
		if !ok {
			break
		}
		e := decodeEnvelope(t, frame)
		var d struct {
			Col string      `json:"col"`
			TS  json.Number `json:"ts"`
		}
		if err := json.Unmarshal([]byte(e.Data), &d); err != nil || e.Type != "qry" {
			t.Fatalf("qry frame %s: %v", frame, err)
		}
		if d.Col != ColName("p", i%2) || d.TS.String() != "9223372036854775807" {
			t.Errorf("qry data %+v", d)
		}
		expects = append(expects, exp)
	}
	if fmt.Sprint(expects) != "[3 2 3]" {
		t.Errorf("qry expectations %v, want [3 2 3] (5 docs over 2 collections)", expects)
	}

	q := newQdocGen(docRefs("p", 4, 1), 500, 50, 10, 3, true, 1, 200)
	for {
		frame, exp, ok := q.next(nil, []byte("2.9"))
		if !ok {
			break
		}
		e := decodeEnvelope(t, frame)
		var d struct {
			Col, Doc        string
			From, To, Limit int64
			Reverse         bool
		}
		if err := json.Unmarshal([]byte(e.Data), &d); err != nil || e.Type != "qdoc" {
			t.Fatalf("qdoc frame %s: %v", frame, err)
		}
		if d.To-d.From != 9 || d.From < 500 || d.To > 549 || d.Limit != 3 || !d.Reverse || exp != 3 || d.Col != "pc0" {
			t.Fatalf("qdoc data %+v expect %d", d, exp)
		}
	}
}

func BenchmarkQdocFrame(b *testing.B) {
	g := newQdocGen(docRefs("fb", 1000, 1), 1_700_000_000_000, 1000, 100, 0, false, 1, -1)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf, _, _ = g.next(buf[:0], []byte("3.12345"))
	}
}
