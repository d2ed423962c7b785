package loadtest

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseReply(t *testing.T) {
	for _, tc := range []struct {
		in      string
		id      string
		isErr   bool
		wantErr bool
	}{
		{`{"id":"0.1"}`, "0.1", false, false},
		{`{"id":"3.99","records":[{"ts":1,"data":"{\"error\":1}"}]}`, "3.99", false, false},
		{`{"id":"1.2","error":"data.ts must be a positive integer","code":"bad_request"}`, "1.2", true, false},
		{`{"error":"permission denied","id":"1.3"}`, "1.3", true, false},
		{` {"records":{},"id":"1.4"}`, "1.4", false, false},
		{`{"id":"a\"b"}`, `a"b`, false, false},
		{`{"id":"1.5","code":"x","error":"late key in a short reply"}`, "1.5", true, false},
		{`{"id":"1.6","records":[` + strings.Repeat(`{"ts":1,"data":"x"},`, 100) + `{"ts":2,"data":"y"}]}`, "1.6", false, false},
		{`{"error":"bad"}`, "", true, true},
		{`not json`, "", false, true},
	} {
		r, err := parseReply([]byte(tc.in))
		if (err != nil) != tc.wantErr || string(r.id) != tc.id || r.isErr != tc.isErr {
			t.Errorf("parseReply(%s) = id %q isErr %v err %v; want %q %v wantErr %v", tc.in, r.id, r.isErr, err, tc.id, tc.isErr, tc.wantErr)
		}
	}
}

func TestReplyError(t *testing.T) {
	if got := replyError([]byte(`{"id":"1","error":"permission denied","code":"permission_denied"}`)); got != "permission denied (permission_denied)" {
		t.Errorf("got %q", got)
	}
	if got := replyError([]byte(`{"id":"1","error":{"x":1}}`)); got != `{"x":1}` {
		t.Errorf("got %q", got)
	}
	if got := replyError([]byte(`garbage`)); !strings.HasPrefix(got, "unparsable reply") {
		t.Errorf("got %q", got)
	}
}

func TestCountRecords(t *testing.T) {
	qdoc := `{"id":"1.1","records":[{"ts":1,"data":"{\"ts\":5}"},{"ts":2,"data":"x\"ts\":"}]}`
	if n := countRecords([]byte(qdoc)); n != 2 {
		t.Errorf("qdoc count %d, want 2", n)
	}
	qry := `{"id":"1.1","records":{"a":{"ts":1,"data":""},"b":{"ts":2,"data":""},"c":{"ts":3,"data":""}}}`
	if n := countRecords([]byte(qry)); n != 3 {
		t.Errorf("qry count %d, want 3", n)
	}
}

func TestIDRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		slot int
		seq  uint64
	}{{0, 1}, {7, 123456789}, {999, 1<<63 + 5}} {
		s, q, ok := parseID(appendID(nil, tc.slot, tc.seq))
		if !ok || s != tc.slot || q != tc.seq {
			t.Errorf("round trip %v → %d %d %v", tc, s, q, ok)
		}
	}
	for _, bad := range []string{"", ".", "1.", ".1", "x.1", "1.x", "1.2.3", "1234567890.1", "1.123456789012345678901"} {
		if _, _, ok := parseID([]byte(bad)); ok {
			t.Errorf("parseID(%q) accepted", bad)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{`{"id":"0.1"}`, `{"id":"1.2","error":"x"}`, `{"error":"bad"}`, `{"id":"`, `[]`, `{"id":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseReply(b)
		if err == nil {
			parseID(r.id)
		}
		if r.isErr {
			replyError(b)
		}
		countRecords(b)
	})
}

func FuzzCountRecords(f *testing.F) {
	f.Add([]byte(`{"id":"1","records":[{"ts":1,"data":"s\"ts\":"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := countRecords(b), bytes.Count(b, []byte(`"ts":`)); got != want {
			t.Fatalf("countRecords(%q) = %d, bytes.Count = %d", b, got, want)
		}
	})
}

func BenchmarkCountRecords(b *testing.B) {
	_, qdoc := CannedRecords(0, 100, MakePayload(50))
	b.SetBytes(int64(len(qdoc)))
	b.ReportAllocs()
	for b.Loop() {
		if countRecords(qdoc) != 100 {
			b.Fatal("count")
		}
	}
}
