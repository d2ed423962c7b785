package fluxiondb

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
)

// Benchmarks against the real server on loopback. They measure the client
// and server together; run with -benchtime to taste, e.g.
//
//	go test -run '^$' -bench . -benchtime 2s

// BenchmarkInsertSequential: one record per request, one at a time (round
// trip bound).
func BenchmarkInsertSequential(b *testing.B) {
	srv := startServer(b)
	c := newTestClient(b, srv)
	ctx := context.Background()
	b.ReportAllocs()
	var ts int64
	for b.Loop() {
		ts++
		if err := c.Insert(ctx, InsertRecord{Col: "bench", Doc: "d", TS: ts, Data: `{"v":1}`}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInsertPipelined: one record per request from many goroutines on
// one client; requests are pipelined on the one connection.
func BenchmarkInsertPipelined(b *testing.B) {
	srv := startServer(b)
	c := newTestClient(b, srv)
	ctx := context.Background()
	var ts atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Insert(ctx, InsertRecord{Col: "bench", Doc: "d", TS: ts.Add(1), Data: `{"v":1}`}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkBatchWriter: records through a BatchWriter (ns/op is per record).
func BenchmarkBatchWriter(b *testing.B) {
	srv := startServer(b)
	c := newTestClient(b, srv)
	ctx := context.Background()
	bw := c.NewBatchWriter(WithBatchSize(5000))
	docs := make([]string, 100)
	for i := range docs {
		docs[i] = "dev-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	var i int64
	for b.Loop() {
		i++
		if err := bw.Write(ctx, InsertRecord{Col: "bench", Doc: docs[i%100], TS: i, Data: `{"v":1}`}); err != nil {
			b.Fatal(err)
		}
	}
	if err := bw.Close(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLatest: a qry over 100 documents.
func BenchmarkLatest(b *testing.B) {
	srv := startServer(b)
	c := newTestClient(b, srv)
	ctx := context.Background()
	recs := make([]InsertRecord, 0, 1000)
	for i := range 1000 {
		recs = append(recs, InsertRecord{Col: "bench", Doc: "dev-" + strconv.Itoa(i%100), TS: int64(i + 1), Data: `{"v":1}`})
	}
	if err := c.Insert(ctx, recs...); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m, err := c.Latest(ctx, LatestQuery{Col: "bench", TS: 1 << 62})
		if err != nil || len(m) != 100 {
			b.Fatal(len(m), err)
		}
	}
}

// BenchmarkSubscribeDelivery: events delivered to one subscriber through
// the client (ns/op is per event), while a second client inserts batches
// of 1000 records.
func BenchmarkSubscribeDelivery(b *testing.B) {
	srv := startServer(b)
	w := newTestClient(b, srv)
	c := newTestClient(b, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := c.Subscribe(ctx, SubscribeQuery{Col: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	n := b.N
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		batch := make([]InsertRecord, 0, 1000)
		for ts := 1; ts <= n; ts++ {
			batch = append(batch, InsertRecord{Col: "bench", Doc: "dev-" + strconv.Itoa(ts%100), TS: int64(ts), Data: `{"v":1}`})
			if len(batch) == cap(batch) || ts == n {
				if err := w.Insert(ctx, batch...); err != nil {
					return
				}
				batch = batch[:0]
			}
		}
	}()
	for range n {
		if _, ok := <-sub.Events(); !ok {
			b.Fatalf("subscription ended: %v", sub.Err())
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
