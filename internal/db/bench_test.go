package db

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/volandoo/fluxiondb/internal/engine"
	"github.com/volandoo/fluxiondb/internal/wal"
)

// benchRecords is the size of the recovery benchmarks: 1M by default,
// FLUXIONDB_BENCH_RECORDS=10000000 for the 10-million-record figure.
func benchRecords(tb testing.TB) int {
	if v := os.Getenv("FLUXIONDB_BENCH_RECORDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			tb.Fatalf("FLUXIONDB_BENCH_RECORDS=%q", v)
		}
		return n
	}
	return 1_000_000
}

// fill writes n records of 50-byte payloads in 1000-record batches (one document per
// batch, 1000 documents, timestamps ascending per document, like sensor ingest).
func fill(tb testing.TB, d *DB, n int) {
	tb.Helper()
	payload := []byte(`{"temp":21.5,"hum":40.25,"status":"ok","seq":12345}`)[:50]
	recs := make([]engine.Record, 1000)
	for i := 0; i < n; i += len(recs) {
		b := i / len(recs)
		doc := fmt.Sprintf("device-%04d", b%1000)
		for j := range recs {
			recs[j] = engine.Record{Collection: "sensors", Doc: doc, TS: int64(1_700_000_000_000 + (b/1000)*1000 + j), Data: payload}
		}
		if _, err := d.Insert(recs[:min(len(recs), n-i)]); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkRecovery measures start-up: Open of a data folder holding N records, from the
// log alone and from a snapshot. Reported: records/s and seconds per start.
func BenchmarkRecovery(b *testing.B) {
	n := benchRecords(b)
	for _, withSnapshot := range []bool{false, true} {
		name := "log"
		if withSnapshot {
			name = "snapshot"
		}
		b.Run(fmt.Sprintf("%s/records=%d", name, n), func(b *testing.B) {
			b.ReportAllocs()
			dir := b.TempDir()
			d := openT(b, dir)
			fill(b, d, n)
			if withSnapshot {
				if err := d.Snapshot(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			closeT(b, d)
			var total time.Duration
			starts := 0
			for b.Loop() {
				d := openT(b, dir)
				total += d.Recovery().Duration
				starts++
				if got := d.Engine.Stats().Records; got != int64(n) {
					b.Fatalf("recovered %d records, want %d", got, n)
				}
				closeT(b, d)
			}
			per := total / time.Duration(starts)
			b.ReportMetric(float64(n)/per.Seconds(), "records/s")
			b.ReportMetric(per.Seconds(), "s/start")
		})
	}
}

// TestSnapshotWriterPause measures how long writers are held while a snapshot of N
// records (FLUXIONDB_BENCH_RECORDS, gated by FLUXIONDB_BIG=1) is written: one writer
// inserts 1000-record batches into another collection and into the exported one.
func TestSnapshotWriterPause(t *testing.T) {
	if os.Getenv("FLUXIONDB_BIG") == "" {
		t.Skip("set FLUXIONDB_BIG=1 (and FLUXIONDB_BENCH_RECORDS) to measure")
	}
	n := benchRecords(t)
	d := openT(t, t.TempDir(), func(c *Config) { c.Fsync = wal.SyncNever })
	defer closeT(t, d)
	fill(t, d, n)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var lat []time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		recs := make([]engine.Record, 1000)
		for i := 0; !stop.Load(); i++ {
			for j := range recs {
				recs[j] = engine.Record{Collection: []string{"sensors", "other"}[i%2], Doc: fmt.Sprintf("device-%04d", i%1000), TS: int64(2_000_000_000_000 + i*1000 + j), Data: []byte("x")}
			}
			start := time.Now()
			if _, err := d.Insert(recs); err != nil {
				t.Error(err)
				return
			}
			lat = append(lat, time.Since(start))
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := d.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	stop.Store(true)
	wg.Wait()
	var worst time.Duration
	for _, l := range lat {
		worst = max(worst, l)
	}
	s, _ := d.LastSnapshot()
	t.Logf("snapshot of %d records: %v, %d bytes; %d inserts of 1000 records meanwhile, longest %v", s.Records, took, s.Bytes, len(lat), worst)
}

// BenchmarkInsert is the write path without the network: 1000-record batches (50-byte
// payloads) through Insert and Wait, in memory and with each fsync policy, from 8
// concurrent writers (what 2 connections × 4 in flight give the server).
var docNames = func() []string {
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("doc-%d", i)
	}
	return names
}()

// BenchmarkInsert is the DB side of the ingest scenario (1000-record batches spread over
// 10,000 documents, 50-byte payloads) in each durability mode. Besides time per batch it
// reports cpu-ns/record: the process's user + system CPU (the flusher's writes and the
// kernel's work for them included), which compares the modes' cost on a CPU-bound server
// better than wall time: go test -run '^$' -bench 'Insert/' -cpu 1 -count 6 ./internal/db
func BenchmarkInsert(b *testing.B) {
	for _, mode := range []string{"memory", "always", "interval", "never"} {
		b.Run(mode, func(b *testing.B) {
			var d *DB
			if mode == "memory" {
				var err error
				if d, err = Open(Config{MasterKey: "k"}); err != nil {
					b.Fatal(err)
				}
			} else {
				policy, _ := wal.ParsePolicy(mode)
				d = openT(b, b.TempDir(), func(c *Config) { c.Fsync = policy })
			}
			defer closeT(b, d)
			b.ReportAllocs()
			b.SetBytes(1000 * 50)
			var next atomic.Int64
			b.SetParallelism(4)
			cpu0 := processCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				recs := make([]engine.Record, 1000)
				payload := []byte(`{"v":12345.678,"unit":"C","ok":true,"pad":"xxxxxxx"}`[:50])
				// As the load tool: the k-th record goes to document k mod 10000, with ts
				// rising per document. Each goroutine has a collection of its own, so every
				// document's records arrive in order (no merges).
				col := fmt.Sprintf("c%d", next.Add(1))
				var k int64
				for pb.Next() {
					for j := range recs {
						recs[j] = engine.Record{Collection: col, Doc: docNames[k%10000], TS: 1 + k/10000, Data: payload}
						k++
					}
					c, err := d.Insert(recs)
					if err == nil {
						err = d.Wait(context.Background(), c)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N)/1000, "cpu-ns/record")
		})
	}
}

// processCPU is the process's user + system CPU time so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAppendInsert is the log encoding of one ingest batch (1000 records spread over
// 10,000 documents): the CPU the log adds per insert before any I/O.
func BenchmarkAppendInsert(b *testing.B) {
	recs := make([]engine.Record, 1000)
	payload := []byte(`{"v":12345.678,"unit":"C","ok":true,"pad":"xxxxxxx"}`[:50])
	for j := range recs {
		recs[j] = engine.Record{Collection: "fb", Doc: docNames[j*7%10000], TS: 1700000000000 + int64(j), Data: payload}
	}
	buf := make([]byte, 0, 256<<10)
	b.SetBytes(int64(len(appendInsert(nil, recs))))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendInsert(buf[:0], recs)
	}
}
