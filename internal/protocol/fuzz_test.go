package protocol_test

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/volandoo/fluxiondb/internal/protocol"
)

// The fuzz targets cross-check the hand-written decoders against encoding/json: whatever the
// decoders accept must be valid JSON and must mean what encoding/json says it means. Seeds
// are the examples of PROTOCOL.md. In a normal `go test` they run over the seeds only.

var envelopeSeeds = []string{
	`{"id":"1","type":"ins","data":"[{\"ts\":1,\"doc\":\"a\",\"data\":\"x\",\"col\":\"c\"}]"}`,
	`{"id":"2","type":"qry","data":"{\"col\":\"x\",\"ts\":9223372036854775807}"}`,
	`{"id":"3","type":"cols","data":"{}"}`,
	`{"id":"4","type":"conn","data":"{}"}`,
	`{"id":"5","type":"keys","data":"{\"action\":\"add\",\"key\":\"k\",\"scope\":\"readonly\"}"}`,
	`{"id":"6","type":"auth","data":"{\"apiKey\":\"k\"}"}`,
	`{"id":"7","type":"nope","data":"{}"}`,
	`{"id":"\u00e9\ud83d\ude00","type":"gval","data":"{\"collection\":\"c\",\"key\":\"k\"}","extra":[1,{"a":null}]}`,
	`{"id":"8","type":"ins","data":[{"ts":1}]}`,
	`{"id":"9","type":"ins","data":5}`,
	`{"id":"","type":"cols","data":"{}"}`,
	`{"type":"cols"}`,
	`{"id":"10","type":"ins","data":`,
	`[1,2,3]`,
	``,
	`{"id":"11","id":"12","type":"cols","data":"{}"}`,
}

func FuzzParseEnvelope(f *testing.F) {
	for _, s := range envelopeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var r protocol.Request
		e := protocol.ParseEnvelope(frame, &r)
		if e != nil {
			if e.Text == "" || e.Code == "" {
				t.Fatalf("error without text or code: %#v", e)
			}
			return
		}
		if !json.Valid(frame) {
			t.Fatalf("accepted invalid JSON %q", frame)
		}
		if len(r.ID) == 0 || r.Type == protocol.TypeUnknown {
			t.Fatalf("accepted without id or type: %q", frame)
		}
		if !utf8.Valid(frame) {
			return // encoding/json substitutes U+FFFD; the byte-level comparison below does not apply
		}
		// Same meaning as encoding/json (members are matched exactly: decode into a map).
		var m map[string]json.RawMessage
		if err := json.Unmarshal(frame, &m); err != nil {
			t.Fatalf("accepted %q but encoding/json says %v", frame, err)
		}
		var id, typ string
		if err := json.Unmarshal(m["id"], &id); err != nil || id != string(r.ID) {
			t.Fatalf("id = %q, encoding/json says %q (%v)", r.ID, id, err)
		}
		if err := json.Unmarshal(m["type"], &typ); err != nil || typ != r.Type.String() || typ != string(r.TypeName) {
			t.Fatalf("type = %v (%q), encoding/json says %q (%v)", r.Type, r.TypeName, typ, err)
		}
		raw, ok := m["data"]
		if !ok {
			return // parameterless messages tolerate a missing data
		}
		var data string
		if err := json.Unmarshal(raw, &data); err == nil {
			if data == "" && (r.Type == protocol.TypeCols || r.Type == protocol.TypeConn || r.Type == protocol.TypeAuth) {
				data = "{}" // parameterless messages read an empty data as {}
			}
			if data != string(r.Data) {
				t.Fatalf("data = %q, encoding/json says %q", r.Data, data)
			}
		} else if !bytes.Equal(bytes.TrimSpace(raw), bytes.TrimSpace(r.Data)) {
			t.Fatalf("bare data = %q, want %q", r.Data, raw)
		}
	})
}

var insertSeeds = []string{
	`[{"ts":1,"doc":"a","data":"x","col":"c"}]`,
	`[{"ts":1,"key":"a","data":"{\"v\":1}","collection":"c"},{"ts":-9223372036854775808,"doc":"b","data":"","col":"c"}]`,
	`[{"ts":9223372036854775807,"doc":"\u00e9","data":"\ud83d\ude00\n\\\"","col":"c","extra":{"x":[1,2]}}]`,
	`[]`,
	`[{"ts":1.5,"doc":"a","data":"x","col":"c"}]`,
	`[{"ts":"1","doc":"a","data":"x","col":"c"}]`,
	`[{"ts":9223372036854775808,"doc":"a","data":"x","col":"c"}]`,
	`[{"ts":1,"doc":"","data":"x","col":"c"}]`,
	`[{"ts":1,"doc":"a","data":"x","col":""},{"ts":2}]`,
	`[{"ts":1,"key":"v1","doc":"v2","collection":"v1","col":"v2","data":"x"}]`,
	`[{"ts":-0,"doc":"a","data":"x","col":"c"}]`,
	`[{"ts":1e3,"doc":"a","data":"x","col":"c"}]`,
	`{"ts":1}`,
	`[{"ts":1,"doc":"a","data":"x","col":"c"},]`,
}

// exactInt is the reference reading of a JSON number as a timestamp: an integer, exactly,
// that fits int64. "1e3" is the integer 1000; "1.0000000000000001" is not an integer, however
// close float64 rounds it.
func exactInt(n string) (int64, bool) {
	if m := expRE.FindStringSubmatch(n); m != nil && len(m[1]) > 3 {
		// big.Rat would expand 1e999999999 exactly; such a number is never an int64
		// except for zero mantissas, which the decoder may read either way.
		return 0, false
	}
	r, ok := new(big.Rat).SetString(n)
	if !ok || !r.IsInt() || !r.Num().IsInt64() {
		return 0, false
	}
	return r.Num().Int64(), true
}

// expectInsert is the reference meaning of an `ins` payload, built on encoding/json:
// ok=false when PROTOCOL.md says the batch must be rejected.
func expectInsert(data []byte) (recs []protocol.InsertRecord, ok bool) {
	if !json.Valid(data) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var arr []map[string]any
	if err := dec.Decode(&arr); err != nil {
		return nil, false
	}
	for _, el := range arr {
		if el == nil {
			return nil, false
		}
		str := func(v2, v1 string) (string, bool) {
			v, present := el[v2]
			if !present {
				v, present = el[v1]
			}
			s, isStr := v.(string)
			return s, present && isStr && s != ""
		}
		col, ok1 := str("col", "collection")
		doc, ok2 := str("doc", "key")
		n, ok3 := el["ts"].(json.Number)
		d, ok4 := el["data"].(string)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, false
		}
		ts, ok := exactInt(string(n))
		if !ok {
			return nil, false
		}
		recs = append(recs, protocol.InsertRecord{Collection: col, Doc: doc, TS: ts, Data: []byte(d)})
	}
	return recs, true
}

func FuzzDecodeInsert(f *testing.F) {
	for _, s := range insertSeeds {
		f.Add([]byte(s))
	}
	var d protocol.Insert // reused, as on a connection
	f.Fuzz(func(t *testing.T, data []byte) {
		e := d.Decode(data)
		if e == nil && !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if !utf8.Valid(data) {
			return
		}
		want, ok := expectInsert(data)
		if e != nil {
			if ok && !hasOddMembers(data) && !hasNonLiteralInt(data) {
				t.Fatalf("rejected %q (%s), encoding/json reads it as %d valid records", data, e.Text, len(want))
			}
			return
		}
		if !ok {
			if hasNonLiteralInt(data) && hugeExponent(data) {
				return // 0e99999 is 0: the reference declines to decide
			}
			t.Fatalf("accepted %q, which must be rejected", data)
		}
		if len(d.Records) != len(want) {
			t.Fatalf("%d records, want %d", len(d.Records), len(want))
		}
		for i, r := range d.Records {
			w := want[i]
			if r.Collection != w.Collection || r.Doc != w.Doc || r.TS != w.TS || !bytes.Equal(r.Data, w.Data) {
				t.Fatalf("record %d = %+v, want %+v (input %q)", i, r, w, data)
			}
		}
	})
}

// hasNonLiteralInt reports a number written with a fraction or exponent, which the decoder
// may reject even when it is an exact integer (see TestTimestampNumbersExact).
func hasNonLiteralInt(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var arr []map[string]any
	if dec.Decode(&arr) != nil {
		return false
	}
	for _, el := range arr {
		if n, ok := el["ts"].(json.Number); ok && !intRE.MatchString(string(n)) {
			return true
		}
	}
	return false
}

func hugeExponent(data []byte) bool {
	return regexp.MustCompile(`[eE][+-]?0*[0-9]{4,}`).Match(data)
}

var (
	intRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)
	expRE = regexp.MustCompile(`[eE][+-]?0*([0-9]+)$`)
)

// hasOddMembers reports inputs where a member the decoder reads appears with a non-string
// value beside a valid spelling (e.g. "key":5 with "doc":"d"), or twice: the reference model
// and the decoder may then legitimately disagree about rejecting.
func hasOddMembers(data []byte) bool {
	var arr []json.RawMessage
	if json.Unmarshal(data, &arr) != nil {
		return false
	}
	for _, el := range arr {
		dec := json.NewDecoder(bytes.NewReader(el))
		seen := map[string]bool{}
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			continue
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return false
			}
			k := tok.(string)
			var v json.RawMessage
			if dec.Decode(&v) != nil {
				return false
			}
			if seen[k] {
				return true
			}
			seen[k] = true
			switch k {
			case "col", "collection", "doc", "key", "data":
				if len(v) == 0 || v[0] != '"' {
					return true
				}
			}
		}
	}
	return false
}

// payloadSeeds pair a decoder (by message type) with a payload.
var payloadSeeds = []struct {
	typ  byte
	data string
}{
	{'q', `{"col":"x","ts":100,"doc":"/^a/i","from":5,"where":"on","filter":"/off/"}`},
	{'q', `{"collection":"x","ts":9223372036854775807,"key":"a"}`},
	{'q', `{"col":"x","ts":0}`},
	{'r', `{"col":"c","doc":"d","from":-5,"to":10,"limit":2,"reverse":true,"where":"x"}`},
	{'r', `{"collection":"c","key":"d","to":10,"reverse":1}`},
	{'r', `{"col":"c","doc":"d","from":11,"to":10}`},
	{'d', `{"doc":"d"}`},
	{'d', `{"key":"d","collection":"c"}`},
	{'c', `{"col":"c"}`},
	{'c', `{"collection":""}`},
	{'e', `{"col":"c","doc":"d","ts":1}`},
	{'m', `[{"col":"c","doc":"d","ts":1},{"collection":"c2","key":"e","ts":9223372036854775807}]`},
	{'m', `[{"col":"c","doc":"d","ts":0}]`},
	{'g', `{"doc":"d","col":"c","fromTs":1,"toTs":2}`},
	{'g', `{"doc":"d","col":"c","fromTs":3,"toTs":2}`},
	{'s', `{"col":"c","key":"k","value":"v"}`},
	{'v', `{"collection":"c","key":"/^user\\./"}`},
	{'k', `{"action":"ADD","key":"k","scope":"Read-Only"}`},
	{'k', `{"action":"list"}`},
	{'p', `/a(b/i`},
}

func FuzzDecodePayloads(f *testing.F) {
	for _, s := range payloadSeeds {
		f.Add(s.typ, []byte(s.data))
	}
	f.Fuzz(func(t *testing.T, typ byte, data []byte) {
		var e *protocol.Error
		accepted := func() {
			if !json.Valid(data) {
				t.Fatalf("%c accepted invalid JSON %q", typ, data)
			}
		}
		switch typ % 11 {
		case 0:
			q, err := protocol.DecodeLatest(data)
			if e = err; e == nil {
				accepted()
				if q.Collection == "" || q.TS <= 0 {
					t.Fatalf("qry accepted %+v from %q", q, data)
				}
			}
		case 1:
			q, err := protocol.DecodeRange(data)
			if e = err; e == nil {
				accepted()
				if q.Collection == "" || q.Doc == "" || q.To <= 0 || q.From > q.To || q.Limit < 0 {
					t.Fatalf("qdoc accepted %+v from %q", q, data)
				}
			}
		case 2:
			r, err := protocol.DecodeDeleteDoc(data)
			if e = err; e == nil {
				accepted()
				if r.Doc == "" {
					t.Fatalf("ddoc accepted %+v from %q", r, data)
				}
			}
		case 3:
			c, err := protocol.DecodeCollection(data)
			if e = err; e == nil {
				accepted()
				if c == "" {
					t.Fatalf("accepted an empty collection from %q", data)
				}
			}
		case 4:
			r, err := protocol.DecodeDeleteRecord(data)
			if e = err; e == nil {
				accepted()
				if r.Collection == "" || r.Doc == "" || r.TS <= 0 {
					t.Fatalf("drec accepted %+v from %q", r, data)
				}
			}
		case 5:
			rs, err := protocol.DecodeDeleteRecords(data)
			if e = err; e == nil {
				accepted()
				for _, r := range rs {
					if r.Collection == "" || r.Doc == "" || r.TS <= 0 {
						t.Fatalf("dmrec accepted %+v from %q", r, data)
					}
				}
				var arr []json.RawMessage
				if json.Unmarshal(data, &arr) != nil || len(arr) != len(rs) {
					t.Fatalf("dmrec: %d refs from %q", len(rs), data)
				}
			}
		case 6:
			r, err := protocol.DecodeDeleteRange(data)
			if e = err; e == nil {
				accepted()
				if r.Collection == "" || r.Doc == "" || r.FromTS <= 0 || r.FromTS > r.ToTS {
					t.Fatalf("drrng accepted %+v from %q", r, data)
				}
			}
		case 7, 8:
			needValue := typ%11 == 7
			kv, err := protocol.DecodeKV(data, true, needValue)
			if e = err; e == nil {
				accepted()
				if kv.Collection == "" || kv.Key == "" || (needValue && kv.Value == "") {
					t.Fatalf("kv accepted %+v from %q", kv, data)
				}
				if utf8.Valid(data) {
					checkKV(t, data, kv)
				}
			}
		case 9:
			k, err := protocol.DecodeKeys(data)
			if e = err; e == nil {
				accepted()
				_ = k
			}
		case 10:
			p := protocol.ParsePattern(string(data))
			_ = p.Contains(data)
			_ = p.MatchName(string(data))
			return
		}
		if e != nil && (e.Text == "" || e.Code == "") {
			t.Fatalf("error without text or code: %#v", e)
		}
	})
}

// checkKV compares a decoded KV payload with encoding/json (v2 "col" wins over "collection").
func checkKV(t *testing.T, data []byte, kv protocol.KV) {
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		t.Fatalf("accepted %q, encoding/json cannot read it", data)
	}
	col, ok := m["col"].(string)
	if _, present := m["col"]; !present || m["col"] == nil {
		col, ok = m["collection"].(string)
	}
	if !ok || col != kv.Collection {
		t.Fatalf("collection %q, encoding/json says %q in %q", kv.Collection, col, data)
	}
	if k, _ := m["key"].(string); k != kv.Key {
		t.Fatalf("key %q, encoding/json says %q in %q", kv.Key, k, data)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `"quotes" and \backslash\`, "new\nline\r\t", "\x00\x01\x1f\x7f",
		"héllo 😀👍🏽", "\u2028\u2029", "bad \xff\xfe utf8 \xed\xa0\x80", "\ufffd", "</script>&",
		// whole words of escapes, and the bytes a word's flag mask marks falsely (the one
		// above a quote, a backslash or a control character)
		`""""""""""""""""`, `\\\\\\\\\`, `"#"#"#"#\]\]\]\]`, "\x01 \x01 \x01 \x01 x", `{"temp":21.5,"hum":40.2,"pad":"xxxxxxxxxxxxxxx"}`,
		"ab\"cd\"ef\xc3\xa9gh\"ij\x01kl"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := protocol.AppendString([]byte("prefix:"), s)
		if !bytes.HasPrefix(out, []byte("prefix:")) {
			t.Fatalf("prefix lost: %q", out)
		}
		out = out[len("prefix:"):]
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("AppendString(%q) = %q is not valid JSON text", s, out)
		}
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("AppendString(%q) = %q: %v", s, out, err)
		}
		// Valid UTF-8 round-trips exactly; each invalid byte becomes U+FFFD.
		if want := string([]rune(s)); got != want {
			t.Fatalf("AppendString(%q) decodes to %q, want %q", s, got, want)
		}
		// The []byte form is identical.
		if b := protocol.AppendBytes(nil, []byte(s)); !bytes.Equal(b, out) {
			t.Fatalf("AppendBytes = %q, AppendString %q", b, out)
		}
	})
}

func FuzzAppendRecord(f *testing.F) {
	f.Add(int64(0), []byte(`{"a":"b"}`))
	f.Add(int64(math.MinInt64), []byte("x\ny"))
	f.Add(int64(math.MaxInt64), []byte(""))
	f.Fuzz(func(t *testing.T, ts int64, data []byte) {
		out := protocol.AppendRecord(nil, ts, data)
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		var r struct {
			TS   json.Number
			Data string
		}
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("AppendRecord = %q: %v", out, err)
		}
		if string(r.TS) != strconv.FormatInt(ts, 10) {
			t.Fatalf("ts %s, want %d", r.TS, ts)
		}
		if r.Data != string([]rune(string(data))) {
			t.Fatalf("data %q, want %q", r.Data, data)
		}
	})
}

// FuzzInsertEscaped checks the one-pass decode of `ins` requests (Request.FastInsert and
// Insert.DecodeRequest) against the two-pass one (ParseEnvelope decoding the data string,
// then Insert.Decode): for any document, escaped into the data string in one of several
// valid ways, both give the same envelope error, the same insert error, or the same records.
func FuzzInsertEscaped(f *testing.F) {
	for _, s := range insertSeeds {
		for style := range byte(16) {
			f.Add([]byte(s), style)
		}
	}
	f.Add([]byte(`[{"ts":1,"doc":"a\/b","data":"a\\\/b\u0041\ud83d\ude00\t","col":"c"}]`), byte(0))
	f.Add([]byte(`[{"ts":1,"doc":"d","data":"q\" b\\ s\/ n\n t\t r\r b\b f\f é","col":"c"},{"ts":2,"doc":"d","data":"{\"a\":\"\\\"\"}","col":"c"}]`), byte(0))
	f.Add([]byte(`[{"ts":1,"doc":"d","data":"\u003cb\u003E \u0026 \u00e9\u0000\uFFFF","col":"c"}]`), byte(0))
	f.Add([]byte(`[{"ts":1,"doc":"d","data":"\u00e9\ud800","col":"c"}]`), byte(0))
	for _, s := range envelopeSeeds {
		f.Add([]byte(s), byte(8))
	}
	f.Add([]byte(`{"id":"1","type":"ins","data":"[{\"ts\":1,\"doc\":\"d","x":"\",\"col\":\"c\",\"data\":\"x\"}]"}`), byte(8))
	f.Add([]byte("[\n {\"ts\": 1, \"doc\": \"a\", \"data\": \"x\", \"col\": \"c\"}\r\n]\t"), byte(1))
	var dl, dp protocol.Insert // reused, as on a connection
	var plain protocol.Request
	lazy := protocol.Request{FastInsert: &dl}
	f.Fuzz(func(t *testing.T, doc []byte, style byte) {
		// Style bit 3: doc is the whole frame, whatever it holds. Bit 2: the type comes
		// after the data.
		frame := []byte(`{"id":"1","type":"ins","data":`)
		if style&4 != 0 {
			frame = []byte(`{"id":"1","data":`)
		}
		frame = append(frame, escapeDoc(doc, style)...)
		if style&4 != 0 {
			frame = append(frame, `,"type":"ins"`...)
		}
		frame = append(frame, '}')
		if style&8 != 0 {
			frame = doc
		}
		ep := protocol.ParseEnvelope(frame, &plain)
		el := protocol.ParseEnvelope(frame, &lazy)
		if (ep == nil) != (el == nil) || ep != nil && *ep != *el {
			t.Fatalf("envelope of %q: error %v, lazily %v", frame, ep, el)
		}
		if ep != nil {
			return
		}
		ip := dp.Decode(plain.Data)
		il := dl.DecodeRequest(&lazy)
		if (ip == nil) != (il == nil) || ip != nil && *ip != *il {
			t.Fatalf("records of %q: error %v, in one pass %v", frame, ip, il)
		}
		if ip != nil {
			return
		}
		if len(dp.Records) != len(dl.Records) {
			t.Fatalf("records of %q: %d, in one pass %d", frame, len(dp.Records), len(dl.Records))
		}
		for i, p := range dp.Records {
			l := dl.Records[i]
			if p.Collection != l.Collection || p.Doc != l.Doc || p.TS != l.TS || !bytes.Equal(p.Data, l.Data) {
				t.Fatalf("record %d of %q: %+v, in one pass %+v", i, frame, p, l)
			}
		}
	})
}

// escapeDoc writes doc as a JSON string the way different encoders do: 0 minimal (quotes,
// backslashes and control characters escaped), 1 with / escaped too, 2 with every byte
// outside [A-Za-z0-9] below 0x80 as \u00XX, 3 with control characters as \u00XX only.
// Invalid UTF-8 is written as it comes (the decoders take such bytes as they are).
func escapeDoc(doc []byte, style byte) []byte {
	out := []byte{'"'}
	for _, c := range doc {
		alnum := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		switch {
		case style%4 == 2 && c < 0x80 && !alnum,
			style%4 == 3 && c < 0x20:
			out = append(out, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c == '/' && style%4 == 1:
			out = append(out, '\\', '/')
		case c == '\n':
			out = append(out, '\\', 'n')
		case c == '\t':
			out = append(out, '\\', 't')
		case c == '\r':
			out = append(out, '\\', 'r')
		case c < 0x20:
			out = append(out, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}
