package engine

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vmRSS reads the resident set size of this process from /proc/self/status.
func vmRSS(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("parse VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatal("VmRSS not found")
	return 0
}

type memSample struct{ rss, heapInuse, heapAlloc int64 }

func sampleMem(t *testing.T) memSample {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{vmRSS(t), int64(ms.HeapInuse), int64(ms.HeapAlloc)}
}

// TestMemory measures resident memory per record for 10 million 50-byte records over 10,000
// documents (1000 each, 1-second steps), inserted in batches of 1000. It takes a while and
// ~1 GB, so it only runs with FLUXIONDB_MEMTEST=1:
//
//	FLUXIONDB_MEMTEST=1 go test -run 'TestMemory/interleaved' -v ./internal/engine
//
// "interleaved" is a live feed (each batch holds one second of 1000 documents, so every
// document's open block grows at once: the worst case for spare capacity); "per-doc" is a
// bulk load (each batch is one document's 1000 records). Run one per process so the RSS
// baseline is clean. Budget: payload + 16 bytes/record (hard ceiling 24).
func TestMemory(t *testing.T) {
	if os.Getenv("FLUXIONDB_MEMTEST") != "1" {
		t.Skip("set FLUXIONDB_MEMTEST=1 to run the 10M-record memory measurement")
	}
	const docs, perDoc, batchLen, payloadLen = 10_000, 1000, 1000, 50
	const base = int64(1_700_000_000)
	for _, mode := range []string{"interleaved", "per-doc"} {
		t.Run(mode, func(t *testing.T) {
			names := make([]string, docs)
			for i := range names {
				names[i] = "device-" + strconv.Itoa(i)
			}
			payload := []byte(strings.Repeat("x", payloadLen))
			batch := make([]Record, batchLen)
			before := sampleMem(t)
			s := New()
			start := time.Now()
			switch mode {
			case "interleaved":
				for sec := range perDoc {
					for g := 0; g < docs; g += batchLen {
						for i := range batchLen {
							batch[i] = Record{"metrics", names[g+i], base + int64(sec), payload}
						}
						s.Insert(batch)
					}
				}
			case "per-doc":
				for d := range docs {
					for i := range batchLen {
						batch[i] = Record{"metrics", names[d], base + int64(i), payload}
					}
					s.Insert(batch)
				}
			}
			elapsed := time.Since(start)
			clear(batch)
			after := sampleMem(t)
			st := s.Stats()
			if st.Records != docs*perDoc || st.PayloadBytes != docs*perDoc*payloadLen || st.Documents != docs {
				t.Fatalf("stats %+v", st)
			}
			n := float64(st.Records)
			rssPer := float64(after.rss-before.rss) / n
			heapPer := float64(after.heapInuse-before.heapInuse) / n
			t.Logf("%s: %d records in %v (%.0f records/s)", mode, st.Records, elapsed.Round(time.Millisecond), n/elapsed.Seconds())
			t.Logf("VmRSS %d -> %d bytes: %.2f bytes/record = payload %d + %.2f", before.rss, after.rss, rssPer, payloadLen, rssPer-payloadLen)
			t.Logf("HeapInuse %d -> %d bytes: %.2f bytes/record = payload %d + %.2f (HeapAlloc +%.2f/record)",
				before.heapInuse, after.heapInuse, heapPer, payloadLen, heapPer-payloadLen, float64(after.heapAlloc-before.heapAlloc)/n-payloadLen)

			// The lock-held part of Export: freezing the 10M-record collection's view.
			c := s.lookup("metrics")
			var times []time.Duration
			for range 5 {
				t0 := time.Now()
				frozen, _, ok := c.freeze()
				times = append(times, time.Since(t0))
				if !ok || len(frozen) != docs {
					t.Fatal("freeze failed")
				}
			}
			t.Logf("Export freeze (collection read lock held), 10,000 docs / 10M records, 5 runs: %v", times)
			if over := rssPer - payloadLen; over > 24 {
				t.Errorf("resident overhead %.2f bytes/record exceeds the 24-byte ceiling", over)
			}
			runtime.KeepAlive(s)
		})
	}
}
