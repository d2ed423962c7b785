package wal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func appendSync(t testing.TB, l *Log, payload string) uint64 {
	t.Helper()
	seq, err := l.Append([]byte(payload))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := l.Sync(context.Background(), seq); err != nil {
		t.Fatalf("Sync(%d): %v", seq, err)
	}
	return seq
}

func TestRoundTripAcrossReopen(t *testing.T) {
	for _, pol := range []Policy{SyncAlways, SyncInterval, SyncNever} {
		t.Run(pol.String(), func(t *testing.T) {
			dir := t.TempDir()
			l := openT(t, dir, Options{Policy: pol, Interval: 10 * time.Millisecond})
			var want []string
			for i := range 100 {
				p := fmt.Sprintf("record-%d", i)
				if seq := appendSync(t, l, p); seq != uint64(i+1) {
					t.Fatalf("seq %d, want %d", seq, i+1)
				}
				want = append(want, p)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openT(t, dir, Options{Policy: pol})
			defer l.Close()
			seqs, got := replayAll(t, l, 1)
			if !slices.Equal(got, want) || seqs[0] != 1 || seqs[99] != 100 {
				t.Fatalf("replay got %d frames (%v…)", len(got), seqs[:min(3, len(seqs))])
			}
			_, got = replayAll(t, l, 91)
			if !slices.Equal(got, want[90:]) {
				t.Fatalf("replay from 91: %v", got)
			}
			// Numbering continues after a reopen, in a new segment.
			if seq := appendSync(t, l, "after"); seq != 101 {
				t.Fatalf("seq after reopen %d, want 101", seq)
			}
			if st := l.Stats(); st.Segments != 2 {
				t.Fatalf("segments %d, want 2", st.Segments)
			}
		})
	}
}

func TestSegmentRolling(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{SegmentSize: 1000})
	payload := make([]byte, 300) // frame = 308 bytes: 3 per segment
	var last uint64
	for range 10 {
		seq, err := l.Append(payload)
		if err != nil {
			t.Fatal(err)
		}
		last = seq
	}
	big := make([]byte, 5000) // larger than a segment: gets one of its own
	seq, _ := l.Append(big)
	if err := l.Sync(context.Background(), seq); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := listSegments(osFS{}, dir)
	want := []uint64{1, 4, 7, 10, 11}
	if !slices.Equal(segs, want) {
		t.Fatalf("segments %v, want %v", segs, want)
	}
	for _, s := range segs {
		fi, err := os.Stat(segmentPath(dir, s))
		if err != nil {
			t.Fatal(err)
		}
		if s != 11 && fi.Size() > 1000 {
			t.Errorf("segment %d is %d bytes, over the size", s, fi.Size())
		}
	}
	l = openT(t, dir, Options{})
	defer l.Close()
	seqs, _ := replayAll(t, l, 1)
	if len(seqs) != int(last)+1 {
		t.Fatalf("replayed %d frames", len(seqs))
	}
}

func TestGroupCommitManyGoroutines(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{Policy: SyncAlways})
	const writers, each = 16, 50
	got := appendSyncConcurrently(t, l, writers, each, func(w, i int) string { return fmt.Sprintf("w%d-%d", w, i) },
		func(seq uint64) {
			// Once Sync returns, the frame must be fsynced.
			if st := l.Stats(); st.DurableSeq < seq {
				t.Errorf("Sync(%d) returned with durable %d", seq, st.DurableSeq)
			}
		})
	st := l.Stats()
	if st.Fsyncs >= writers*each {
		t.Errorf("%d fsyncs for %d frames: no group commit", st.Fsyncs, writers*each)
	}
	t.Logf("%d frames, %d fsyncs", writers*each, st.Fsyncs)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkReplay(t, dir, got)
}

// appendSyncConcurrently runs writers goroutines that each append each frames (payload(w, i))
// under one lock, as the DB does (Append order = apply order), and Sync every one; check runs
// after each Sync. It returns every frame's payload by sequence number.
func appendSyncConcurrently(t *testing.T, l *Log, writers, each int, payload func(w, i int) string, check func(seq uint64)) map[uint64]string {
	t.Helper()
	var mu sync.Mutex
	got := make(map[uint64]string)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p := payload(w, i)
				mu.Lock()
				seq, err := l.Append([]byte(p))
				got[seq] = p
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				if err := l.Sync(context.Background(), seq); err != nil {
					t.Error(err)
					return
				}
				check(seq)
			}
		}()
	}
	wg.Wait()
	return got
}

// checkReplay opens dir's (closed) log and requires exactly the frames of got, in order.
func checkReplay(t *testing.T, dir string, got map[uint64]string) {
	t.Helper()
	l := openT(t, dir, Options{})
	defer l.Close()
	seqs, payloads := replayAll(t, l, 1)
	if len(seqs) != len(got) {
		t.Fatalf("replayed %d, want %d", len(seqs), len(got))
	}
	for i, s := range seqs {
		if got[s] != payloads[i] {
			t.Fatalf("seq %d: %.20q, want %.20q", s, payloads[i], got[s])
		}
	}
}

func TestCutAndRemoveBefore(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{})
	for i := range 5 {
		appendSync(t, l, fmt.Sprint(i))
	}
	cut := l.Cut()
	if cut != 6 {
		t.Fatalf("Cut = %d, want 6", cut)
	}
	if again := l.Cut(); again != 6 {
		t.Fatalf("second Cut = %d, want 6", again)
	}
	// RemoveBefore keeps the newest segment even when it is entirely covered.
	if err := l.RemoveBefore(cut); err != nil {
		t.Fatal(err)
	}
	if segs, _ := listSegments(osFS{}, dir); !slices.Equal(segs, []uint64{1}) {
		t.Fatalf("segments %v", segs)
	}
	for i := 5; i < 8; i++ {
		appendSync(t, l, fmt.Sprint(i))
	}
	if st := l.Stats(); st.BytesSinceCut != 3*(FrameHeaderSize+1) {
		t.Fatalf("BytesSinceCut %d", st.BytesSinceCut)
	}
	if err := l.RemoveBefore(cut); err != nil {
		t.Fatal(err)
	}
	if segs, _ := listSegments(osFS{}, dir); !slices.Equal(segs, []uint64{6}) {
		t.Fatalf("segments %v, want [6]", segs)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, Options{MinSeq: cut})
	defer l.Close()
	_, payloads := replayAll(t, l, cut)
	if !slices.Equal(payloads, []string{"5", "6", "7"}) {
		t.Fatalf("replay %v", payloads)
	}
	// Replaying from before the log start is a gap, not silent loss.
	if err := l.Replay(1, func(uint64, []byte) error { return nil }); !IsCorruption(err) {
		t.Fatalf("Replay(1) = %v, want CorruptionError", err)
	}
}

func TestMinSeqAheadOfLog(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{Policy: SyncNever})
	appendSync(t, l, "a")
	appendSync(t, l, "b")
	l.Close()
	// A snapshot at 10 means frames < 10 are covered even though the log ends at 2.
	l = openT(t, dir, Options{MinSeq: 10})
	if seqs, _ := replayAll(t, l, 10); len(seqs) != 0 {
		t.Fatalf("replayed %v", seqs)
	}
	if seq := appendSync(t, l, "c"); seq != 10 {
		t.Fatalf("seq %d, want 10", seq)
	}
	l.Close()
	l = openT(t, dir, Options{MinSeq: 10})
	defer l.Close()
	seqs, payloads := replayAll(t, l, 10)
	if !slices.Equal(seqs, []uint64{10}) || payloads[0] != "c" {
		t.Fatalf("replay %v %v", seqs, payloads)
	}
}

func TestIntervalPolicyFsyncsInBackground(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{Policy: SyncInterval, Interval: 20 * time.Millisecond})
	defer l.Close()
	seq := appendSync(t, l, "x")
	deadline := time.Now().Add(5 * time.Second)
	for l.Stats().DurableSeq < seq {
		if time.Now().After(deadline) {
			t.Fatal("interval fsync never happened")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFlushForcesFsync(t *testing.T) {
	l := openT(t, t.TempDir(), Options{Policy: SyncNever})
	defer l.Close()
	seq := appendSync(t, l, "x")
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.DurableSeq < seq || st.Fsyncs == 0 {
		t.Fatalf("after Flush: %+v", st)
	}
}

func TestClosedAndMisuse(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{})
	if _, err := Open(dir, Options{Logger: quiet}); err == nil {
		t.Fatal("second Open of the same folder succeeded")
	}
	if err := l.Sync(context.Background(), 5); err == nil {
		t.Fatal("Sync of a sequence never appended succeeded")
	}
	if _, err := l.Append(make([]byte, MaxPayload+1)); err == nil {
		t.Fatal("oversized payload accepted")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Append([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l2 := openT(t, dir, Options{Policy: SyncAlways, fs: &faultFS{syncDelay: 50 * time.Millisecond}})
	defer l2.Close()
	seq, _ := l2.Append([]byte("x"))
	if err := l2.Sync(ctx, seq); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sync with cancelled ctx: %v", err)
	}
}

func TestOpenUnusableDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := Open(filepath.Join(f, "wal"), Options{Logger: quiet}); err == nil {
		t.Fatal("Open under a regular file succeeded")
	}
}

func TestParsePolicy(t *testing.T) {
	for _, p := range []Policy{SyncAlways, SyncInterval, SyncNever} {
		if got, err := ParsePolicy(p.String()); err != nil || got != p {
			t.Fatalf("ParsePolicy(%q) = %v, %v", p, got, err)
		}
	}
	if _, err := ParsePolicy("sometimes"); err == nil {
		t.Fatal("bad policy accepted")
	}
}

func TestRefusedAppendLeavesNoTrace(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{})
	appendSync(t, l, "a")
	// An encoder that overruns the limit after writing into the log's buffer.
	if _, err := l.AppendEncoded(func(dst []byte) []byte { return append(dst, make([]byte, MaxPayload+1)...) }); err == nil {
		t.Fatal("oversized payload accepted")
	}
	seq, err := l.AppendEncoded(func(dst []byte) []byte { return append(dst, "b"...) })
	if err != nil {
		t.Fatal(err)
	}
	if seq != 2 {
		t.Fatalf("next sequence number %d after a refused append, want 2", seq)
	}
	if err := l.Sync(context.Background(), seq); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, Options{})
	defer l.Close()
	if seqs, payloads := replayAll(t, l, 1); !slices.Equal(seqs, []uint64{1, 2}) || !slices.Equal(payloads, []string{"a", "b"}) {
		t.Fatalf("replayed %v %q, want [1 2] [a b]", seqs, payloads)
	}
}

// Under interval (with an interval far away) and never, writing more than
// backgroundSyncBytes starts fsyncs on its own, which bounds the frames kept for a rewrite.
func TestBackgroundFsyncBoundsUnsyncedFrames(t *testing.T) {
	for _, p := range []Policy{SyncInterval, SyncNever} {
		t.Run(p.String(), func(t *testing.T) {
			l := openT(t, t.TempDir(), Options{Policy: p, Interval: time.Hour})
			defer l.Close()
			payload := string(make([]byte, 64<<10))
			var seq uint64
			for range 3 * backgroundSyncBytes / len(payload) {
				seq = appendSync(t, l, payload)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				st := l.Stats()
				if st.Fsyncs > 0 && st.DurableSeq > 0 {
					if st.DurableSeq > seq {
						t.Fatalf("durable %d beyond the last frame %d", st.DurableSeq, seq)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("no background fsync after %d MiB written: %+v", 3*backgroundSyncBytes>>20, st)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// Under interval and never, a Sync caller writes the pending frames itself when no round is
// running (callerRound). Many callers, the flusher's ticks, background fsyncs past
// backgroundSyncBytes and Flush all run rounds here at once, sharing the round state under
// tok (the race detector watches it); every frame a Sync returned for is then in the log, in
// order.
func TestCallerRoundsBesideTheFlusher(t *testing.T) {
	for _, p := range []Policy{SyncInterval, SyncNever} {
		t.Run(p.String(), func(t *testing.T) {
			dir := t.TempDir()
			l := openT(t, dir, Options{Policy: p, Interval: 2 * time.Millisecond})
			const writers, each = 8, 200
			stop := make(chan struct{})
			flushed := make(chan error, 1)
			go func() { // Flush asks for an fsync whatever the policy
				for {
					select {
					case <-stop:
						flushed <- nil
						return
					case <-time.After(3 * time.Millisecond):
					}
					if err := l.Flush(context.Background()); err != nil {
						flushed <- err
						return
					}
				}
			}()
			got := appendSyncConcurrently(t, l, writers, each,
				func(w, i int) string { return fmt.Sprintf("w%d-%d-", w, i) + strings.Repeat("x", 8<<10) },
				func(seq uint64) {
					if st := l.Stats(); st.WrittenSeq < seq {
						t.Errorf("Sync(%d) returned with written %d", seq, st.WrittenSeq)
					}
				})
			close(stop)
			if err := <-flushed; err != nil {
				t.Fatal(err)
			}
			if st := l.Stats(); st.Fsyncs < 2 {
				t.Errorf("%d fsyncs for %d MiB: no background or Flush fsync ran", st.Fsyncs, writers*each*8>>10)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			checkReplay(t, dir, got)
		})
	}
}
