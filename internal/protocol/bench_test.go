package protocol_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/volandoo/fluxiondb/internal/protocol"
)

// insertFrame builds a realistic `ins` request: n records over 10 documents, each payload a
// ~50-byte JSON text (so it carries escaped quotes twice over inside the envelope).
func insertFrame(n int) (frame, payload []byte) {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		data := fmt.Sprintf(`{"lat":%.5f,"lon":%.5f,"spd":%d,"ok":true}`, 48.1+float64(i%97)/1000, 11.5+float64(i%89)/1000, i%130)
		fmt.Fprintf(&sb, `{"ts":%d,"doc":"device-%d","data":%s,"col":"fleet"}`, 1700000000000+int64(i), i%10, quoteJSON(data))
	}
	sb.WriteByte(']')
	payload = []byte(sb.String())
	return []byte(fmt.Sprintf(`{"id":"bench-1","type":"ins","data":%s}`, quoteJSON(sb.String()))), payload
}

func quoteJSON(s string) string { return string(protocol.AppendString(nil, s)) }

// BenchmarkDecodeInsert measures the request decode path of a 1000-record batch: envelope
// (un-escaping the double-encoded data) plus the `ins` payload, with state reused as on a
// connection. Bytes are the frame size.
func BenchmarkDecodeInsert(b *testing.B) { benchDecodeInsert(b, false) }

// BenchmarkDecodeInsertOnePass is BenchmarkDecodeInsert as the server decodes: the
// records read by ParseEnvelope straight from the escaped data string, in one pass
// (Request.FastInsert).
func BenchmarkDecodeInsertOnePass(b *testing.B) { benchDecodeInsert(b, true) }

func benchDecodeInsert(b *testing.B, onePass bool) {
	frame, _ := insertFrame(1000)
	var ins protocol.Insert
	var req protocol.Request
	if onePass {
		req.FastInsert = &ins
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if e := protocol.ParseEnvelope(frame, &req); e != nil {
			b.Fatal(e)
		}
		if e := ins.DecodeRequest(&req); e != nil {
			b.Fatal(e)
		}
		if len(ins.Records) != 1000 || onePass && req.Data != nil {
			b.Fatalf("%d records, or the general path was taken", len(ins.Records))
		}
	}
}

// BenchmarkDecodeInsertPayload is the `ins` payload alone (the envelope already decoded).
func BenchmarkDecodeInsertPayload(b *testing.B) {
	_, payload := insertFrame(1000)
	var ins protocol.Insert
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if e := ins.Decode(payload); e != nil {
			b.Fatal(e)
		}
	}
}

// BenchmarkAppendRecord encodes 1000 `{"ts","data"}` records with ~50-byte JSON payloads into
// one reused buffer, as a qdoc reply does.
func BenchmarkAppendRecord(b *testing.B) {
	data := []byte(`{"lat":48.13512,"lon":11.58198,"spd":42,"ok":true}`)
	buf := make([]byte, 0, 128<<10)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		buf = buf[:0]
		for i := 0; i < 1000; i++ {
			buf = protocol.AppendRecord(buf, 1700000000000+int64(i), data)
			buf = append(buf, ',')
		}
		n = len(buf)
	}
	b.SetBytes(int64(n))
}

// BenchmarkRecordWriter is BenchmarkAppendRecord through a RecordWriter, as qdoc replies are
// built: consecutive timestamps move the kept digits instead of formatting each number.
func BenchmarkRecordWriter(b *testing.B) {
	data := []byte(`{"lat":48.13512,"lon":11.58198,"spd":42,"ok":true}`)
	buf := make([]byte, 0, 128<<10)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		buf = buf[:0]
		var w protocol.RecordWriter
		for i := 0; i < 1000; i++ {
			buf = w.Append(buf, 1700000000000+int64(i), data)
			buf = append(buf, ',')
		}
		n = len(buf)
	}
	b.SetBytes(int64(n))
}
