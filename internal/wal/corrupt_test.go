package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// buildLog writes 9 frames of 100 bytes into segments of 3 frames each: 1, 4, 7.
func buildLog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	l := openT(t, dir, Options{SegmentSize: 3 * (FrameHeaderSize + 100)})
	for i := range 9 {
		appendSync(t, l, fmt.Sprintf("%-100d", i+1))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if segs, _ := listSegments(osFS{}, dir); !slices.Equal(segs, []uint64{1, 4, 7}) {
		t.Fatalf("setup: segments %v", segs)
	}
	return dir
}

const frameSize = FrameHeaderSize + 100

func segFile(dir string, first uint64) string { return segmentPath(dir, first) }

func mutate(t *testing.T, path string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// outcome opens and replays the log: returns the replayed sequence numbers, the tail report
// and the error (from Open or Replay).
func outcome(t *testing.T, dir string) ([]uint64, *TailReport, error) {
	t.Helper()
	l, err := Open(dir, Options{Logger: quiet})
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	var seqs []uint64
	err = l.Replay(1, func(seq uint64, _ []byte) error { seqs = append(seqs, seq); return nil })
	return seqs, l.TailReport(), err
}

func seqRange(a, b uint64) []uint64 {
	var s []uint64
	for i := a; i <= b; i++ {
		s = append(s, i)
	}
	return s
}

func TestCorruptionCases(t *testing.T) {
	type want struct {
		seqs      []uint64 // replayed frames when recovery succeeds
		tail      bool     // a torn tail was truncated
		corrupt   uint64   // segment named in the CorruptionError (0 = none)
		offset    int64
		afterRepr []uint64 // frames left after Repair (when corrupt)
	}
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   want
	}{
		{"torn last record", func(t *testing.T, dir string) {
			mutate(t, segFile(dir, 7), func(b []byte) []byte { return b[:len(b)-30] })
		}, want{seqs: seqRange(1, 8), tail: true}},
		{"torn last header", func(t *testing.T, dir string) {
			mutate(t, segFile(dir, 7), func(b []byte) []byte { return b[:2*frameSize+5] })
		}, want{seqs: seqRange(1, 8), tail: true}},
		{"zero-filled tail", func(t *testing.T, dir string) {
			mutate(t, segFile(dir, 7), func(b []byte) []byte { return append(b, make([]byte, 4096)...) })
		}, want{seqs: seqRange(1, 9), tail: true}},
		{"empty segment continuing the numbering", func(t *testing.T, dir string) {
			// A crash right after a roll created the next segment.
			mutate(t, segFile(dir, 10), func([]byte) []byte { return nil })
		}, want{seqs: seqRange(1, 9)}},
		{"stray empty segment far ahead", func(t *testing.T, dir string) {
			mutate(t, segFile(dir, 9999), func([]byte) []byte { return nil })
		}, want{seqs: seqRange(1, 9)}},
		{"garbage appended to last segment", func(t *testing.T, dir string) {
			mutate(t, segFile(dir, 7), func(b []byte) []byte { return append(b, []byte("garbage!garbage!garbage!")...) })
		}, want{seqs: seqRange(1, 9), tail: true}},
		{"bad CRC in final frame", func(t *testing.T, dir string) {
			mutate(t, segFile(dir, 7), func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
		}, want{seqs: seqRange(1, 8), tail: true}},
		{"bad CRC mid last segment", func(t *testing.T, dir string) {
			mutate(t, segFile(dir, 7), func(b []byte) []byte { b[frameSize+20] ^= 1; return b })
		}, want{corrupt: 7, offset: frameSize, afterRepr: seqRange(1, 7)}},
		{"bad CRC in earlier segment", func(t *testing.T, dir string) {
			mutate(t, segFile(dir, 4), func(b []byte) []byte { b[FrameHeaderSize+3] ^= 0x80; return b })
		}, want{corrupt: 4, offset: 0, afterRepr: seqRange(1, 3)}},
		{"bad length over limit", func(t *testing.T, dir string) {
			mutate(t, segFile(dir, 4), func(b []byte) []byte {
				binary.LittleEndian.PutUint32(b[frameSize:], 0xfffffff0)
				return b
			})
		}, want{corrupt: 4, offset: frameSize, afterRepr: seqRange(1, 4)}},
		{"bad length in range", func(t *testing.T, dir string) {
			mutate(t, segFile(dir, 7), func(b []byte) []byte {
				binary.LittleEndian.PutUint32(b[0:], 50)
				return b
			})
		}, want{corrupt: 7, offset: 0, afterRepr: seqRange(1, 6)}},
		{"truncated segment at frame boundary", func(t *testing.T, dir string) {
			mutate(t, segFile(dir, 4), func(b []byte) []byte { return b[:frameSize] })
		}, want{corrupt: 4, offset: frameSize, afterRepr: seqRange(1, 4)}},
		{"truncated segment mid-frame", func(t *testing.T, dir string) {
			mutate(t, segFile(dir, 1), func(b []byte) []byte { return b[:frameSize+50] })
		}, want{corrupt: 1, offset: frameSize, afterRepr: seqRange(1, 1)}},
		{"garbage appended to earlier segment", func(t *testing.T, dir string) {
			mutate(t, segFile(dir, 1), func(b []byte) []byte { return append(b, "junk"...) })
		}, want{corrupt: 1, offset: 3 * frameSize, afterRepr: seqRange(1, 3)}},
		{"zeros after an earlier segment", func(t *testing.T, dir string) {
			// Only the last segment may end in zeros (a crash mid-write).
			mutate(t, segFile(dir, 4), func(b []byte) []byte { return append(b, make([]byte, 4096)...) })
		}, want{corrupt: 4, offset: 3 * frameSize, afterRepr: seqRange(1, 6)}},
		{"stray segment inside the numbering", func(t *testing.T, dir string) {
			// A file named 5.wal beside 4.wal (frames 4–6) and 7.wal: the numbering breaks,
			// but 7.wal continues 4.wal, so only the stray has to go.
			b, err := os.ReadFile(segFile(dir, 4))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(segFile(dir, 5), b[frameSize:], 0o644); err != nil {
				t.Fatal(err)
			}
		}, want{corrupt: 4, offset: frameSize, afterRepr: seqRange(1, 9)}},
		{"missing segment", func(t *testing.T, dir string) {
			os.Remove(segFile(dir, 4))
		}, want{corrupt: 1, offset: 3 * frameSize, afterRepr: seqRange(1, 3)}},
		{"missing first segment", func(t *testing.T, dir string) {
			os.Remove(segFile(dir, 1))
		}, want{corrupt: 4, offset: 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := buildLog(t)
			tc.damage(t, dir)
			seqs, tail, err := outcome(t, dir)
			if tc.want.corrupt == 0 {
				if err != nil {
					t.Fatalf("recovery failed: %v", err)
				}
				if !slices.Equal(seqs, tc.want.seqs) {
					t.Fatalf("replayed %v, want %v", seqs, tc.want.seqs)
				}
				if (tail != nil) != tc.want.tail {
					t.Fatalf("tail report %+v, want present=%v", tail, tc.want.tail)
				}
				if tail != nil && (tail.Dropped <= 0 || tail.File != segFile(dir, 7)) {
					t.Fatalf("tail report %+v", tail)
				}
				// The log continues cleanly after the truncation, and a reopen agrees.
				l := openT(t, dir, Options{})
				appendSync(t, l, "next")
				l.Close()
				if seqs2, tail2, err := outcome(t, dir); err != nil || tail2 != nil || len(seqs2) != len(seqs)+1 {
					t.Fatalf("after reopen: %v frames, tail %v, err %v", len(seqs2), tail2, err)
				}
				return
			}
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *CorruptionError", err)
			}
			if ce.File != segFile(dir, tc.want.corrupt) || ce.Offset != tc.want.offset {
				t.Fatalf("CorruptionError at %s:%d, want %s:%d (%v)", ce.File, ce.Offset,
					segFile(dir, tc.want.corrupt), tc.want.offset, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, ce.File) || !strings.Contains(msg, fmt.Sprint(ce.Offset)) || !strings.Contains(msg, "repair") {
				t.Fatalf("message lacks file/offset/repair hint: %s", msg)
			}
			if tc.want.afterRepr == nil {
				return
			}
			rep, err := Repair(dir)
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			if rep.Clean || rep.DroppedBytes <= 0 || len(rep.Moved) == 0 {
				t.Fatalf("repair report %+v", rep)
			}
			for _, m := range rep.Moved {
				if _, err := os.Stat(m); err != nil || filepath.Dir(m) != rep.MovedTo {
					t.Fatalf("moved file %s: %v", m, err)
				}
			}
			seqs, tail, err = outcome(t, dir)
			if err != nil || tail != nil || !slices.Equal(seqs, tc.want.afterRepr) {
				t.Fatalf("after repair: %v, tail %v, err %v; want %v", seqs, tail, err, tc.want.afterRepr)
			}
			if rep2, err := Repair(dir); err != nil || !rep2.Clean {
				t.Fatalf("second repair: %+v, %v", rep2, err)
			}
		})
	}
}

func TestRepairCleanLog(t *testing.T) {
	dir := buildLog(t)
	rep, err := Repair(dir)
	if err != nil || !rep.Clean {
		t.Fatalf("Repair of a clean log: %+v, %v", rep, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			t.Fatalf("clean repair created %s", e.Name())
		}
	}
}
