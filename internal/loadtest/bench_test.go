package loadtest

import "testing"

func BenchmarkIngestFrame(b *testing.B) {
	g := newIngestGen(docRefs("fb", 10000, 1), MakePayload(50), 1_700_000_000_000, 1000, -1)
	buf := make([]byte, 0, 256<<10)
	id := []byte("3.12345")
	b.ReportAllocs()
	var n int
	for b.Loop() {
		buf, _, _ = g.next(buf[:0], id)
		n = len(buf)
	}
	b.SetBytes(int64(n))
	b.ReportMetric(float64(n)/1000, "bytes/record")
}

func BenchmarkMask(b *testing.B) {
	buf := make([]byte, 148_000)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		maskBytes(buf, 0x12345678)
	}
}
