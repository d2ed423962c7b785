package fluxiondb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestBatchWriterSizeAndTime: full batches go out by size, a partial batch
// by time, and Flush/Close send the rest; every record arrives once.
func TestBatchWriterSizeAndTime(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv)
	ctx := testCtx(t)

	bw := c.NewBatchWriter(WithBatchSize(100), WithFlushInterval(50*time.Millisecond), WithBufferSize(1000))
	const writers, per = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if err := bw.Write(ctx, InsertRecord{Col: "bw", Doc: fmt.Sprintf("w%d", w), TS: int64(i + 1), Data: "x"}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := bw.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	for w := range writers {
		expectCount(t, c, "bw", fmt.Sprintf("w%d", w), per)
	}

	// A lone record is sent by the timer, without Flush.
	if err := bw.Write(ctx, InsertRecord{Col: "bw", Doc: "lone", TS: 1, Data: "x"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "timer flush", func() bool {
		h, err := c.History(ctx, HistoryQuery{Col: "bw", Doc: "lone", To: math.MaxInt64})
		return err == nil && len(h) == 1
	})

	if err := bw.Write(ctx, InsertRecord{Col: "bw", Doc: "last", TS: 1, Data: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := bw.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	expectCount(t, c, "bw", "last", 1)
	if err := bw.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := bw.Write(ctx, InsertRecord{Col: "bw", Doc: "late", TS: 1, Data: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v; want ErrClosed", err)
	}
}

// TestBatchWriterErrors: a rejected batch reaches the handler with its
// records and is returned by Flush; later batches still go through.
func TestBatchWriterErrors(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv)
	ctx := testCtx(t)
	var mu sync.Mutex
	var failed []InsertRecord
	bw := c.NewBatchWriter(WithBatchSize(2), WithErrorHandler(func(err error, recs []InsertRecord) {
		mu.Lock()
		defer mu.Unlock()
		if !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("handler err = %v", err)
		}
		failed = append(failed, recs...)
	}))
	defer bw.Close(ctx)
	// The second batch has a record without a document: the server rejects
	// that whole batch.
	recs := []InsertRecord{
		{Col: "e", Doc: "a", TS: 1, Data: "1"}, {Col: "e", Doc: "a", TS: 2, Data: "2"},
		{Col: "e", Doc: "a", TS: 3, Data: "3"}, {Col: "e", Doc: "", TS: 4, Data: "4"},
		{Col: "e", Doc: "a", TS: 5, Data: "5"}, {Col: "e", Doc: "a", TS: 6, Data: "6"},
	}
	if err := bw.Write(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	err := bw.Flush(ctx)
	if !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("Flush = %v; want the batch's ErrInvalidRequest", err)
	}
	mu.Lock()
	if len(failed) != 2 || failed[0].TS != 3 || failed[1].TS != 4 {
		t.Fatalf("handler got %v; want the records ts 3 and 4", failed)
	}
	mu.Unlock()
	expectHistory(t, c, "e", "a", 1, 2, 5, 6)
	if err := bw.Flush(ctx); err != nil {
		t.Fatalf("second Flush = %v; errors are returned once", err)
	}
}

// TestBatchWriterBackPressure: with the server frozen, Write blocks once
// the queue and the in-flight window are full, and resumes when the server
// answers again.
func TestBatchWriterBackPressure(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv)
	ctx := testCtx(t)
	bw := c.NewBatchWriter(WithBatchSize(10), WithBufferSize(20), WithMaxInFlight(1), WithFlushInterval(time.Millisecond))
	defer bw.Close(ctx)

	srv.freeze(t)
	var written atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := range 200 {
			if err := bw.Write(ctx, InsertRecord{Col: "bp", Doc: "d", TS: int64(i + 1), Data: "x"}); err != nil {
				done <- err
				return
			}
			written.Add(1)
		}
		done <- nil
	}()
	// Capacity while frozen: 1 batch in flight + 1 batch being assembled +
	// 20 queued = at most 40 records; the writer must stall there.
	time.Sleep(300 * time.Millisecond)
	if n := written.Load(); n >= 200 || n > 45 {
		t.Fatalf("%d records accepted while the server is frozen; want Write to block", n)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := bw.Write(short, InsertRecord{Col: "bp", Doc: "other", TS: 1, Data: "x"}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Write on a full queue with a short deadline: %v; want ErrTimeout", err)
	}
	srv.signal(syscall.SIGCONT)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	expectCount(t, c, "bp", "d", 200)
}

// TestBatchWriterClientClosed: closing the Client under a BatchWriter
// fails what is queued with ErrClosed instead of hanging.
func TestBatchWriterClientClosed(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv)
	ctx := testCtx(t)
	bw := c.NewBatchWriter(WithFlushInterval(time.Hour))
	if err := bw.Write(ctx, InsertRecord{Col: "x", Doc: "d", TS: 1, Data: "x"}); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if err := bw.Close(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("BatchWriter.Close after Client.Close = %v; want ErrClosed for the unsent batch", err)
	}
	if err := bw.Write(ctx, InsertRecord{Col: "x", Doc: "d", TS: 2, Data: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write = %v; want ErrClosed", err)
	}
	bw2 := c.NewBatchWriter()
	if err := bw2.Write(ctx, InsertRecord{Col: "x", Doc: "d", TS: 2, Data: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write on a writer of a closed client = %v; want ErrClosed", err)
	}
}

// TestBatchWriterSplitsByBytes: a batch that would hold more than
// WithBatchBytes of data goes out early, so records whose count fits a batch
// but whose size would make a frame over the server's --max-message-size
// still arrive (an oversized frame closes the connection).
func TestBatchWriterSplitsByBytes(t *testing.T) {
	srv := startServer(t, "--max-message-size=64KiB")
	c := newTestClient(t, srv)
	ctx := testCtx(t)
	bw := c.NewBatchWriter(WithBatchBytes(16<<10), WithFlushInterval(time.Hour))
	data := strings.Repeat("x", 1000)
	const n = 500 // 500 KB: one default-sized batch would be a 500 KB frame
	for i := range n {
		if err := bw.Write(ctx, InsertRecord{Col: "big", Doc: "d", TS: int64(i + 1), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	expectCount(t, c, "big", "d", n)
}

// TestBatchWriterWritesRacingClientClose: records whose Write returned nil
// while the Client was closing are stored or reported to the error handler,
// never silently dropped (a Write could queue a record after the writer's last
// look at its queue).
func TestBatchWriterWritesRacingClientClose(t *testing.T) {
	srv := startServer(t)
	check := newTestClient(t, srv)
	ctx := testCtx(t)
	for run := range 3 {
		col := fmt.Sprintf("race%d", run)
		c := newTestClient(t, srv)
		var mu sync.Mutex
		accepted, reported := map[int64]bool{}, map[int64]bool{}
		bw := c.NewBatchWriter(WithErrorHandler(func(_ error, recs []InsertRecord) {
			mu.Lock()
			for _, r := range recs {
				reported[r.TS] = true
			}
			mu.Unlock()
		}))
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					ts := next.Add(1)
					if err := bw.Write(ctx, InsertRecord{Col: col, Doc: "d", TS: ts, Data: "v"}); err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Errorf("Write: %v; want nil or ErrClosed", err)
						}
						return
					}
					mu.Lock()
					accepted[ts] = true
					mu.Unlock()
				}
			}()
		}
		time.Sleep(50 * time.Millisecond)
		_ = c.Close()
		wg.Wait()
		_ = bw.Close(ctx)
		h, err := check.History(ctx, HistoryQuery{Col: col, Doc: "d", To: math.MaxInt64})
		if err != nil {
			t.Fatal(err)
		}
		stored := map[int64]bool{}
		for _, r := range h {
			stored[r.TS] = true
		}
		lost := 0
		for ts := range accepted {
			if !stored[ts] && !reported[ts] {
				lost++
			}
		}
		if lost > 0 {
			t.Fatalf("run %d: %d of %d accepted records neither stored nor reported", run, lost, len(accepted))
		}
	}
}

func expectCount(t *testing.T, c *Client, col, doc string, n int) {
	t.Helper()
	h, err := c.History(testCtx(t), HistoryQuery{Col: col, Doc: doc, To: math.MaxInt64})
	if err != nil || len(h) != n {
		t.Fatalf("%s/%s has %d records (%v); want %d", col, doc, len(h), err, n)
	}
}

// TestBatchWriterQueueIsBoundedInBytes: while the server is away, a BatchWriter holds about
// eight batches' worth of bytes (WithBatchBytes) before Write blocks, whatever the records'
// size; it held 8000 records, 500 MiB of 64 KiB ones.
func TestBatchWriterQueueIsBoundedInBytes(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv, WithReconnectPolicy(ReconnectPolicy{MinDelay: 50 * time.Millisecond, MaxDelay: 50 * time.Millisecond}))
	srv.kill()
	w := c.NewBatchWriter(WithBatchBytes(1 << 20)) // queue bound: 8 MiB
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = w.Close(ctx)
	}()
	data := strings.Repeat("x", 64<<10)
	accepted := 0
	for i := range 5000 {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := w.Write(ctx, InsertRecord{Col: "c", Doc: "d", TS: int64(i + 1), Data: data})
		cancel()
		if err != nil {
			break
		}
		accepted++
	}
	// Queue (8 MiB) + batches in flight (4 × 1 MiB) + the batch being gathered (1 MiB), and
	// a few records of slack: 13 MiB is 208 records of 64 KiB.
	if held := accepted * len(data); accepted >= 5000 || held > 14<<20 {
		t.Fatalf("Write took %d records (%d MiB) before blocking, want about 13 MiB at most", accepted, held>>20)
	}
}

// TestBatchWriterHugeBatchSize: a batch size far beyond what is ever sent allocates nothing
// up front (it took 480 MiB for 1,000,000) and does not panic (math.MaxInt did, in makechan).
func TestBatchWriterHugeBatchSize(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, size := range []int{1_000_000, math.MaxInt} {
		w := c.NewBatchWriter(WithBatchSize(size))
		if err := w.Write(testCtx(t), InsertRecord{Col: "huge", Doc: "d", TS: 1, Data: "x"}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<20 {
		t.Fatalf("two BatchWriters allocated %d MiB", grew>>20)
	}
}

// TestBatchWriterCountsFrameBytes: WithBatchBytes counts what records take in the frame,
// escapes included. 1000 records of 4,190 quotes are 4.19 MB as given but 16.8 MB in a
// frame: with the default 4 MiB a batch of them all passed the server's default 16 MiB limit
// and the connection was closed.
func TestBatchWriterCountsFrameBytes(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv, fastReconnect)
	ctx := testCtx(t)
	bw := c.NewBatchWriter()
	data := strings.Repeat(`"`, 4190)
	for i := range 1000 {
		if err := bw.Write(ctx, InsertRecord{TS: int64(i + 1), Doc: "d", Col: "c", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Close(ctx); err != nil {
		t.Fatalf("batches of quote-heavy records: %v", err)
	}
	recs, err := c.History(ctx, HistoryQuery{Col: "c", Doc: "d", To: 2000})
	if err != nil || len(recs) != 1000 {
		t.Fatalf("stored %d records (%v), want 1000", len(recs), err)
	}
}

// recordBytes is at least what appendInsertData writes for the record, for every kind of
// character it escapes, and nestedLen is exactly the encoder's length.
func TestRecordBytesCoversTheFrame(t *testing.T) {
	for _, s := range []string{"", "plain", `"q"`, `back\slash`, "line\nfeed\r\t", "ctl\x01\x1f", "é中𝄞", "bad\xff\xfeutf8", "\x00\"\\\x7f"} {
		if got, want := nestedLen(s), len(appendStringLiteral(nil, s, true))-4; got != want {
			t.Errorf("nestedLen(%q) = %d, the encoder writes %d", s, got, want)
		}
		r := InsertRecord{TS: math.MinInt64, Doc: s, Data: s + s, Col: s}
		if frame := len(appendInsertData(nil, []InsertRecord{r})) - len(`"[]"`); recordBytes(&r) < frame {
			t.Errorf("recordBytes(%q) = %d, under its %d bytes in a frame", s, recordBytes(&r), frame)
		}
	}
}
