package engine

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// payload50 is a typical ~50-byte JSON payload.
var payload50 = []byte(`{"temperature":22.5,"humidity":41,"status":"ok"}..`)[:50]

// BenchmarkInsertInOrder inserts batches of 1000 in-order records for one document, cycling
// over 100 documents (the steady state of a sensor feed). One op = one batch.
func BenchmarkInsertInOrder(b *testing.B) {
	s := New()
	const docs, batchLen = 100, 1000
	names := make([]string, docs)
	for i := range names {
		names[i] = "doc-" + strconv.Itoa(i)
	}
	batch := make([]Record, batchLen)
	ts := make([]int64, docs)
	b.ReportAllocs()
	b.SetBytes(batchLen * int64(len(payload50)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		d := i % docs
		for j := range batch {
			ts[d]++
			batch[j] = Record{"sensors", names[d], 1_700_000_000 + ts[d], payload50}
		}
		s.Insert(batch)
	}
	b.ReportMetric(float64(b.N*batchLen)/b.Elapsed().Seconds(), "records/s")
}

// evenDoc returns a store holding one document ("c"/"d") of n records at ts 0, 2, 4, ….
func evenDoc(n int) *Store {
	s := New()
	pre := make([]Record, n)
	for i := range pre {
		pre[i] = Record{"c", "d", int64(i * 2), payload50}
	}
	s.Insert(pre)
	return s
}

// BenchmarkInsertOutOfOrder inserts batches of 100 records at random timestamps inside a
// 100,000-record document (half new, half replacing). One op = one batch.
func BenchmarkInsertOutOfOrder(b *testing.B) {
	const n, batchLen = 100_000, 100
	s := evenDoc(n)
	rng := rand.New(rand.NewPCG(1, 2))
	batch := make([]Record, batchLen)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for j := range batch {
			batch[j] = Record{"c", "d", int64(rng.IntN(2 * n)), payload50}
		}
		s.Insert(batch)
	}
	b.ReportMetric(float64(b.N*batchLen)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkInsertSingleOutOfOrder inserts one record per call into a random place of a
// 100,000-record document: the cost of one copy-on-write block rebuild.
func BenchmarkInsertSingleOutOfOrder(b *testing.B) {
	insertOnePerCall(b, func(rng *rand.Rand, n int) int64 { return int64(rng.IntN(2 * n)) })
}

// insertOnePerCall inserts, per op, one record at the timestamp ts picks into a document of
// 100,000 records at ts 0, 2, 4, … (evenDoc).
func insertOnePerCall(b *testing.B, ts func(rng *rand.Rand, n int) int64) {
	const n = 100_000
	s := evenDoc(n)
	rng := rand.New(rand.NewPCG(1, 2))
	one := make([]Record, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		one[0] = Record{"c", "d", ts(rng, n), payload50}
		s.Insert(one)
	}
}

// BenchmarkLateByOne appends a record and then inserts one just older than it, per op: a
// late record that lands in its document's open block.
func BenchmarkLateByOne(b *testing.B) {
	s := New()
	ts := int64(0)
	rec := make([]Record, 1)
	b.ReportAllocs()
	for b.Loop() {
		ts += 2
		rec[0] = Record{"c", "d", ts, payload50}
		s.Insert(rec)
		rec[0] = Record{"c", "d", ts - 1, payload50}
		s.Insert(rec)
	}
}

// BenchmarkReplaceSingle replaces one stored record per call, at a random place of a
// 100,000-record document: a client re-sending data it sent before (a retried batch).
func BenchmarkReplaceSingle(b *testing.B) {
	insertOnePerCall(b, func(rng *rand.Rand, n int) int64 { return int64(2 * rng.IntN(n)) })
}

// BenchmarkResizeSingle replaces one stored record per call, at a random place of a
// 100,000-record document, with a payload one byte shorter or longer than the stored one
// (49 and 50 bytes by turns): a value re-sent with another length.
func BenchmarkResizeSingle(b *testing.B) {
	const n = 100_000
	s := evenDoc(n)
	rng := rand.New(rand.NewPCG(1, 2))
	short := payload50[:49]
	one := make([]Record, 1)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		p := payload50
		if i%2 == 0 {
			p = short
		}
		i++
		one[0] = Record{"c", "d", int64(2 * rng.IntN(n)), p}
		s.Insert(one)
	}
}

func latestStore(docs, perDoc int) *Store {
	s := New()
	batch := make([]Record, perDoc)
	for d := range docs {
		name := "doc-" + strconv.Itoa(d)
		for j := range batch {
			batch[j] = Record{"c", name, int64(1000 + j), payload50}
		}
		s.Insert(batch)
	}
	return s
}

// BenchmarkDeleteRecord deletes one record (drec) from a random place of a 200,000-record
// document per call: the cost of taking one record out of its block.
func BenchmarkDeleteRecord(b *testing.B) {
	const n = 200_000
	s := New()
	fill := func() {
		pre := make([]Record, n)
		for i := range pre {
			pre[i] = Record{"c", "d", int64(i * 2), payload50}
		}
		s.Insert(pre)
	}
	fill()
	perm := rand.New(rand.NewPCG(3, 4)).Perm(n)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if i == n {
			b.StopTimer()
			fill()
			i = 0
			b.StartTimer()
		}
		if got := s.DeleteRange("c", "d", int64(perm[i]*2), int64(perm[i]*2)); got != 1 {
			b.Fatalf("deleted %d records, want 1", got)
		}
		i++
	}
}

// BenchmarkLatest10kDocs runs Latest over 10,000 documents of 100 records. "newest" asks at
// or after every document's newest record (O(1) per doc), "inside" makes each document
// binary-search and scan a block.
func BenchmarkLatest10kDocs(b *testing.B) {
	s := latestStore(10_000, 100)
	for _, bc := range []struct {
		name string
		ts   int64
	}{{"newest", math.MaxInt64}, {"inside", 1050}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				s.Latest("c", LatestQuery{TS: bc.ts}, func(doc string, ts int64, data []byte) { n++ })
				if n != 10_000 {
					b.Fatalf("%d docs", n)
				}
			}
			b.ReportMetric(float64(b.N*10_000)/b.Elapsed().Seconds(), "docs/s")
		})
	}
}

// BenchmarkRange100 reads 100 records from the middle of a 1000-record document.
func BenchmarkRange100(b *testing.B) {
	s := latestStore(1, 1000)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		s.Range("c", "doc-0", RangeQuery{From: 1450, To: 1549}, func(ts int64, data []byte) { n++ })
		if n != 100 {
			b.Fatalf("%d records", n)
		}
	}
}

// BenchmarkRangeReverseLimit reads the newest 100 records of a 1000-record document.
func BenchmarkRangeReverseLimit(b *testing.B) {
	s := latestStore(1, 1000)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		s.Range("c", "doc-0", RangeQuery{From: 0, To: math.MaxInt64, Reverse: true, Limit: 100}, func(ts int64, data []byte) { n++ })
		if n != 100 {
			b.Fatalf("%d records", n)
		}
	}
}
