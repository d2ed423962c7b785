package wal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// faultFS wraps the real file system and fails writes or fsyncs while told to.
type faultFS struct {
	osFS
	mu        sync.Mutex
	writeErr  error // returned by Write (after writing half the buffer) while set
	syncErr   error // returned by file Sync while set
	dirErr    error // returned by SyncDir while set
	syncDelay time.Duration
	writes    int
	misuse    int // writes on a descriptor whose write failed, anything on one whose fsync failed
}

func (f *faultFS) set(fn func(*faultFS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	fh, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: fh, fs: f}, nil
}

func (f *faultFS) SyncDir(name string) error {
	f.mu.Lock()
	err := f.dirErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.osFS.SyncDir(name)
}

type faultFile struct {
	*os.File
	fs          *faultFS
	poisoned    bool // an fsync failed: the file is not to be trusted any more
	writeFailed bool // a write failed: the log may fsync what it wrote before, not write on
}

func (f *faultFile) Write(b []byte) (int, error) {
	f.fs.mu.Lock()
	err := f.fs.writeErr
	f.fs.writes++
	if f.poisoned || f.writeFailed {
		f.fs.misuse++
	}
	f.fs.mu.Unlock()
	if err != nil {
		f.writeFailed = true
		n, _ := f.File.Write(b[:len(b)/2]) // a partial write, like a disk filling up mid-way
		return n, err
	}
	return f.File.Write(b)
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	err, d := f.fs.syncErr, f.fs.syncDelay
	if f.poisoned {
		f.fs.misuse++
	}
	f.fs.mu.Unlock()
	time.Sleep(d)
	if err != nil {
		f.poisoned = true
		return err
	}
	return f.File.Sync()
}

func TestDiskTrouble(t *testing.T) {
	cases := []struct {
		name   string
		policy Policy
		inject func(*faultFS, error)
	}{
		{"fsync EIO always", SyncAlways, func(f *faultFS, e error) { f.syncErr = e }},
		{"write ENOSPC always", SyncAlways, func(f *faultFS, e error) { f.writeErr = e }},
		{"dir sync error at roll", SyncAlways, func(f *faultFS, e error) { f.dirErr = e }},
		{"write ENOSPC interval", SyncInterval, func(f *faultFS, e error) { f.writeErr = e }},
		{"fsync EIO never", SyncNever, func(f *faultFS, e error) { f.syncErr = e }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := &faultFS{}
			l := openT(t, dir, Options{Policy: tc.policy, fs: ffs, RetryInterval: 5 * time.Millisecond,
				SegmentSize: 4 * (FrameHeaderSize + 10), Interval: time.Hour})
			ctx := context.Background()
			var want []string
			for i := range 8 { // two full segments, 1 and 5: the next frame rolls
				p := fmt.Sprintf("ok-%07d", i)
				appendSync(t, l, p)
				want = append(want, p)
			}
			errDisk := syscall.ENOSPC
			if strings.Contains(tc.name, "EIO") || strings.Contains(tc.name, "dir") {
				errDisk = syscall.EIO
			}
			ffs.set(func(f *faultFS) { tc.inject(f, errDisk) })

			// Several writers hit the trouble; every affected Sync must fail (for policies that
			// wait for fsync) and none may succeed by accident.
			var wg sync.WaitGroup
			var failed atomic.Int32
			var mu sync.Mutex
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p := fmt.Sprintf("bad-%06d", w)
					mu.Lock()
					seq, err := l.Append([]byte(p))
					if err == nil && tc.policy != SyncAlways {
						want = append(want, p) // acknowledged on write; the rewrite must keep it
					}
					mu.Unlock()
					if err != nil {
						failed.Add(1)
						return
					}
					if tc.policy == SyncNever {
						err = l.Flush(ctx) // under SyncNever only a roll or Flush fsyncs
					} else {
						err = l.Sync(ctx, seq)
					}
					if err != nil {
						failed.Add(1)
						if !errors.Is(err, errDisk) {
							t.Errorf("error %v does not wrap %v", err, errDisk)
						}
						return
					}
					if tc.policy == SyncAlways {
						t.Errorf("Sync(%d) succeeded during disk trouble", seq)
					}
				}()
			}
			wg.Wait()
			if failed.Load() == 0 {
				t.Fatal("no writer saw the disk error")
			}
			if st := l.Stats(); st.Err == nil || st.WriteErrors == 0 {
				t.Fatalf("stats during trouble: %+v", st)
			}
			if _, err := l.Append([]byte("refused")); !errors.Is(err, errDisk) {
				t.Fatalf("Append during trouble: %v", err)
			}

			// The disk recovers: appends resume without a restart.
			ffs.set(func(f *faultFS) { f.writeErr, f.syncErr, f.dirErr = nil, nil, nil })
			waitFor(t, "the log to recover", func() bool { return l.Stats().Err == nil })
			for i := range 3 {
				p := fmt.Sprintf("after-%04d", i)
				appendSync(t, l, p)
				want = append(want, p)
			}
			// Restart: everything acknowledged is there, numbering has no gaps, no corruption.
			l = closeCheckReopen(t, l, ffs, dir)
			defer l.Close()
			if l.TailReport() != nil {
				t.Fatalf("tail report after recovery: %+v", l.TailReport())
			}
			seqs, got := replayAll(t, l, 1)
			for i := range seqs {
				if seqs[i] != uint64(i+1) {
					t.Fatalf("seqs %v not contiguous", seqs)
				}
			}
			// Frames whose Sync failed under SyncAlways may still be present (rewritten from
			// memory); every acknowledged one must be, in order.
			j := 0
			for _, g := range got {
				if j < len(want) && g == want[j] {
					j++
				}
			}
			if j != len(want) {
				t.Fatalf("acknowledged frames missing: got %v, want (in order) %v", got, want)
			}
		})
	}
}

func TestTroubleAtClose(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{}
	l := openT(t, dir, Options{fs: ffs, RetryInterval: time.Hour})
	appendSync(t, l, "kept")
	ffs.set(func(f *faultFS) { f.syncErr = syscall.EIO })
	seq, _ := l.Append([]byte("lost"))
	if err := l.Sync(context.Background(), seq); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync: %v", err)
	}
	if err := l.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Close during trouble: %v", err)
	}
	if err := l.Sync(context.Background(), seq); err == nil {
		t.Fatal("Sync after failed Close succeeded")
	}
	l = openT(t, dir, Options{})
	defer l.Close()
	_, got := replayAll(t, l, 1)
	if len(got) == 0 || got[0] != "kept" {
		t.Fatalf("replay %v", got)
	}
}

// TestBackgroundFsyncFailure: under SyncInterval (on its tick) and SyncNever (at a roll) the
// fsync runs in the background after frames were acknowledged on write. When it fails the
// log refuses appends, so no writer wakes the flusher: its retry timer must, and the log must
// recover once the disk does, without a single new append, and rewrite those frames.
func TestBackgroundFsyncFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   Options
		before int // frames written before the fault
	}{
		// The interval is long enough that the fault is set and the next frame written
		// before the background fsync runs, even on a loaded machine (5 ms made this flaky).
		{"interval tick", Options{Policy: SyncInterval, Interval: 300 * time.Millisecond}, 1},
		// Four frames fill the segment: the next one rolls, fsyncing the full one.
		{"never roll", Options{Policy: SyncNever, SegmentSize: 4 * (FrameHeaderSize + 10)}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := &faultFS{}
			opts := tc.opts
			opts.fs, opts.RetryInterval = ffs, 5*time.Millisecond
			l := openT(t, dir, opts)
			var want []string
			for i := range tc.before {
				want = append(want, fmt.Sprintf("before-%03d", i))
				appendSync(t, l, want[i])
			}
			ffs.set(func(f *faultFS) { f.syncErr = syscall.EIO })
			appendSync(t, l, "acked-0000") // Sync waits for the write only
			want = append(want, "acked-0000")
			waitFor(t, "the background fsync to fail", func() bool { return l.Stats().Err != nil })
			ffs.set(func(f *faultFS) { f.syncErr = nil })
			waitFor(t, "recovery without an append", func() bool { return l.Stats().Err == nil })
			appendSync(t, l, "after-0000")
			want = append(want, "after-0000")
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if ffs.misuse != 0 {
				t.Fatalf("%d uses of a failed descriptor", ffs.misuse)
			}
			l = openT(t, dir, Options{})
			defer l.Close()
			if _, got := replayAll(t, l, 1); !slices.Equal(got, want) {
				t.Fatalf("after recovery the log holds %q, want %q", got, want)
			}
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A write that fails in a Sync caller's own round (interval, never) puts the log in trouble
// like one in the flusher's, and the flusher, told of it, retries until the disk recovers —
// with one writer, nobody else would wake it.
func TestCallerRoundTroubleRecovers(t *testing.T) {
	for _, p := range []Policy{SyncInterval, SyncNever} {
		t.Run(p.String(), func(t *testing.T) {
			dir := t.TempDir()
			ffs := &faultFS{}
			l := openT(t, dir, Options{Policy: p, fs: ffs, RetryInterval: 5 * time.Millisecond, Interval: time.Hour})
			appendSync(t, l, "before")
			ffs.set(func(f *faultFS) { f.writeErr = syscall.ENOSPC })
			seq, err := l.Append([]byte("during"))
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Sync(context.Background(), seq); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Sync during trouble: %v, want ENOSPC", err)
			}
			ffs.set(func(f *faultFS) { f.writeErr = nil })
			waitFor(t, "the log to recover", func() bool { return l.Stats().Err == nil })
			appendSync(t, l, "after")
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openT(t, dir, Options{})
			defer l.Close()
			// "during" was never acknowledged, but its copy is rewritten on recovery.
			if _, got := replayAll(t, l, 1); !slices.Equal(got, []string{"before", "during", "after"}) {
				t.Fatalf("replayed %q", got)
			}
		})
	}
}

// closeCheckReopen closes l, requires that no descriptor was used after it failed, and opens
// dir again as a restart would.
func closeCheckReopen(t *testing.T, l *Log, ffs *faultFS, dir string) *Log {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if ffs.misuse != 0 {
		t.Fatalf("%d writes/fsyncs on a descriptor after it failed", ffs.misuse)
	}
	return openT(t, dir, Options{})
}

// TestWriteFailureKeepsAcknowledgedFrames: under SyncInterval and SyncNever a frame is
// acknowledged once written to the OS. A later write that fails (a full disk) must not take
// it off the disk again while recovery waits for space: a crash then finds every acknowledged
// frame. (Recovery used to cut the segment back to its last fsync and rewrite from memory; a
// crash before the rewrite lost what had been acknowledged.)
func TestWriteFailureKeepsAcknowledgedFrames(t *testing.T) {
	for _, policy := range []Policy{SyncInterval, SyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			ffs := &faultFS{}
			l := openT(t, dir, Options{Policy: policy, fs: ffs, RetryInterval: 5 * time.Millisecond,
				SegmentSize: 4 * (FrameHeaderSize + 10), Interval: time.Hour})
			var want []string
			for i := range 10 { // segments 1 and 5 full, two frames in segment 9
				p := fmt.Sprintf("ack-%06d", i)
				appendSync(t, l, p)
				want = append(want, p)
			}
			ffs.set(func(f *faultFS) { f.writeErr = syscall.ENOSPC })
			seq, err := l.Append([]byte("nak-000001"))
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Sync(context.Background(), seq); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Sync of a frame whose write failed: %v, want ENOSPC", err)
			}
			time.Sleep(30 * time.Millisecond) // recovery tries, and fails, a few times

			// A crash now: the files are all a restart has.
			crashed := t.TempDir()
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.Name() == "LOCK" {
					continue
				}
				b, err := os.ReadFile(dir + "/" + e.Name())
				if errors.Is(err, os.ErrNotExist) {
					continue // a segment recovery created for its retry and removed again
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(crashed+"/"+e.Name(), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cl := openT(t, crashed, Options{})
			_, got := replayAll(t, cl, 1)
			cl.Close()
			if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
				t.Fatalf("after a crash during the disk trouble the log holds %q, want the acknowledged %q first", got, want)
			}

			// The disk recovers: the failed frame is written after the kept ones.
			ffs.set(func(f *faultFS) { f.writeErr = nil })
			waitFor(t, "the log to recover", func() bool { return l.Stats().Err == nil })
			appendSync(t, l, "ack-after1")
			l = closeCheckReopen(t, l, ffs, dir)
			defer l.Close()
			seqs, got := replayAll(t, l, 1)
			want = append(want, "nak-000001", "ack-after1")
			if !slices.Equal(got, want) || seqs[0] != 1 || seqs[len(seqs)-1] != uint64(len(want)) {
				t.Fatalf("after recovery: seqs %v, frames %q; want %q", seqs, got, want)
			}
		})
	}
}
