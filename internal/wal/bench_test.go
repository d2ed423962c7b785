package wal

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkAppendSync measures Append+Sync of 64 KiB payloads (about one 1000-record insert
// batch) from 1 and 8 goroutines under each policy. Appends are serialised by a mutex, as
// the caller's apply lock does; Sync runs outside it so writers share fsyncs.
func BenchmarkAppendSync(b *testing.B) {
	payload := make([]byte, 64<<10)
	for i := range payload {
		payload[i] = byte(i)
	}
	for _, pol := range []Policy{SyncAlways, SyncInterval, SyncNever} {
		for _, writers := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/writers=%d", pol, writers), func(b *testing.B) {
				l := openT(b, b.TempDir(), Options{Policy: pol, Interval: time.Second})
				defer l.Close() // outside the timing: Close fsyncs whatever the policy left
				var mu sync.Mutex
				b.ReportAllocs()
				b.SetBytes(int64(len(payload)))
				b.ResetTimer()
				var wg sync.WaitGroup
				per := b.N / writers
				for w := range writers {
					n := per
					if w == 0 {
						n += b.N % writers
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range n {
							mu.Lock()
							seq, err := l.Append(payload)
							mu.Unlock()
							if err != nil {
								b.Error(err)
								return
							}
							if err := l.Sync(context.Background(), seq); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				st := l.Stats()
				b.ReportMetric(float64(st.Fsyncs)/float64(b.N), "fsyncs/op")
			})
		}
	}
}

// BenchmarkReplay reads back 16 MiB of 64 KiB frames (start-up cost of the log part).
func BenchmarkReplay(b *testing.B) {
	dir := b.TempDir()
	l := openT(b, dir, Options{Policy: SyncNever})
	payload := make([]byte, 64<<10)
	const frames = 256
	for range frames {
		if _, err := l.Append(payload); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	l = openT(b, dir, Options{})
	defer l.Close()
	b.SetBytes(frames * int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n := 0
		if err := l.Replay(1, func(uint64, []byte) error { n++; return nil }); err != nil || n != frames {
			b.Fatal(n, err)
		}
	}
}
