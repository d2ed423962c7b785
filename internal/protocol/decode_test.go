package protocol_test

import (
	"fmt"
	"testing"

	"github.com/volandoo/fluxiondb/internal/protocol"
)

// Timestamps are int64 exactly (PROTOCOL.md §2): a number that is not exactly an integer is
// rejected, and one that is must not be rounded through float64. Integers written with a
// fraction or exponent ("1e3", "5.0") may be rejected or read exactly (either: ok=true and
// loose=true), never changed.
func TestTimestampNumbersExact(t *testing.T) {
	cases := []struct {
		num   string
		want  int64
		ok    bool
		loose bool
	}{
		{"1", 1, true, false},
		{"9007199254740993", 9007199254740993, true, false},
		{"9223372036854775807", 9223372036854775807, true, false},
		{"-9223372036854775808", -9223372036854775808, true, false},
		{"1e3", 1000, true, true},
		{"5.0", 5, true, true},
		{"1.5", 0, false, false},
		{"1e-1", 0, false, false},
		{"9223372036854775808", 0, false, false},
		{"9.3e18", 0, false, false},
		{"1.0000000000000001", 0, false, false},              // float64 rounds it to 1
		{"9007199254740993.0", 9007199254740993, true, true}, // float64 rounds it to 2^53
		{"9007199254740993e0", 9007199254740993, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.num, func(t *testing.T) {
			var d protocol.Insert
			e := d.Decode([]byte(fmt.Sprintf(`[{"col":"c","doc":"d","data":"x","ts":%s}]`, tc.num)))
			switch {
			case !tc.ok && e == nil:
				t.Errorf("ins ts %s accepted as %d, want an error (not exactly an int64)", tc.num, d.Records[0].TS)
			case tc.ok && e != nil:
				if !tc.loose {
					t.Errorf("ins ts %s rejected: %s", tc.num, e.Text)
				}
			case tc.ok && e == nil && d.Records[0].TS != tc.want:
				t.Errorf("ins ts %s = %d, want %d", tc.num, d.Records[0].TS, tc.want)
			}
			if tc.want < 0 {
				return // qry ts must be > 0
			}
			q, e := protocol.DecodeLatest([]byte(fmt.Sprintf(`{"col":"c","ts":%s}`, tc.num)))
			switch {
			case !tc.ok && e == nil:
				t.Errorf("qry ts %s accepted as %d, want an error", tc.num, q.TS)
			case tc.ok && e != nil:
				if !tc.loose {
					t.Errorf("qry ts %s rejected: %s", tc.num, e.Text)
				}
			case tc.ok && e == nil && q.TS != tc.want:
				t.Errorf("qry ts %s = %d, want %d", tc.num, q.TS, tc.want)
			}
		})
	}
}

// Both generations decode to the same thing, and v2 wins when both are present.
func TestDecodeGenerations(t *testing.T) {
	for _, p := range []string{
		`{"col":"c","doc":"d","to":5}`, `{"collection":"c","key":"d","to":5}`,
		`{"collection":"x","col":"c","key":"y","doc":"d","to":5}`, `{"col":"c","collection":"x","doc":"d","key":"y","to":5}`,
	} {
		q, e := protocol.DecodeRange([]byte(p))
		if e != nil || q.Collection != "c" || q.Doc != "d" || q.To != 5 {
			t.Errorf("DecodeRange(%s) = %+v, %v", p, q, e)
		}
	}
	var d protocol.Insert
	if e := d.Decode([]byte(`[{"collection":"x","col":"c","key":"y","doc":"d","ts":1,"data":"z"},{"key":"y","collection":"x","ts":2,"data":"w"}]`)); e != nil {
		t.Fatal(e)
	}
	if r := d.Records[0]; r.Collection != "c" || r.Doc != "d" {
		t.Errorf("v2 must win: %+v", r)
	}
	if r := d.Records[1]; r.Collection != "x" || r.Doc != "y" {
		t.Errorf("v1 names: %+v", r)
	}
	kv, e := protocol.DecodeKV([]byte(`{"collection":"c","key":"k","value":"v"}`), true, true)
	if e != nil || kv != (protocol.KV{Collection: "c", Key: "k", Value: "v"}) {
		t.Errorf("DecodeKV = %+v, %v", kv, e)
	}
}

func TestReadyFrame(t *testing.T) {
	if got := string(protocol.Ready); got != `{"message":"Authentication successful","type":"ready"}` {
		t.Errorf("Ready = %s", got)
	}
}

func TestRegexValues(t *testing.T) {
	for _, tc := range []struct {
		v, name string
		regex   bool
		match   bool
	}{
		{"/^a/", "abc", true, true},
		{"/^A/i", "abc", true, true},
		{"/b/", "abc", true, true}, // unanchored
		{"/a\\/b/", "a/b", true, true},
		{"/a/ims", "A", true, true},
		{"/a/x", "/a/x", false, true}, // unknown flag: literal
		{"/[/", "/[/", false, true},   // invalid pattern: literal
		{"/", "/", false, true},
		{"//", "anything", true, true},
		{"abc", "abc", false, true},
		{"abc", "abcd", false, false},
	} {
		p := protocol.ParsePattern(tc.v)
		if p.IsRegex() != tc.regex || p.MatchName(tc.name) != tc.match {
			t.Errorf("ParsePattern(%q): regex=%v match(%q)=%v, want %v %v", tc.v, p.IsRegex(), tc.name, p.MatchName(tc.name), tc.regex, tc.match)
		}
	}
}

// Malformed JSON is rejected, even where a lenient reading would be unambiguous: numbers with
// leading zeros are not JSON (RFC 8259 §6).
func TestMalformedNumbersRejected(t *testing.T) {
	for _, num := range []string{"00", "0123", "-01", "01.5"} {
		var d protocol.Insert
		if e := d.Decode([]byte(`[{"col":"c","doc":"d","data":"x","ts":` + num + `}]`)); e == nil {
			t.Errorf("ins ts %s accepted as %d, want a malformed-JSON error", num, d.Records[0].TS)
		}
		if q, e := protocol.DecodeLatest([]byte(`{"col":"c","ts":` + num + `}`)); e == nil {
			t.Errorf("qry ts %s accepted as %d, want an error", num, q.TS)
		}
		var r protocol.Request
		if e := protocol.ParseEnvelope([]byte(`{"id":"1","type":"cols","data":"{}","x":`+num+`}`), &r); e == nil {
			t.Errorf("envelope with member value %s accepted, want malformed JSON", num)
		}
	}
}
