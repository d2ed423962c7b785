package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// frameOffsets returns the byte offset of every frame in a segment file.
func frameOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := 0; off+8 <= len(b); off += 8 + int(binary.LittleEndian.Uint32(b[off:])) {
		offs = append(offs, int64(off))
	}
	return offs
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	return segs
}

// countRecords reads how many records the "c" collection holds over the protocol.
func countRecords(t *testing.T, addr string) int {
	t.Helper()
	c := dial(t, addr, persistKey)
	defer c.close()
	n := 0
	for _, doc := range []string{"d0", "d1", "d2"} {
		var rs []rec
		_ = json.Unmarshal(c.call(t, "qdoc", map[string]any{"col": "c", "doc": doc, "from": 0, "to": int64(math.MaxInt64)})["records"], &rs)
		n += len(rs)
	}
	return n
}

// TestPersistCorruptionCases damages real files in named ways and checks each outcome:
// a crash-shaped tail is truncated and the server starts; anything else stops the start
// with exit code 1 and a message naming the file, the offset and the repair command, and
// after `fluxiondb repair` the server starts with the data before the damage.
func TestPersistCorruptionCases(t *testing.T) {
	bin := buildBinary(t)
	// Base folder: three runs, so three segments of 20 frames (10 records each).
	base := t.TempDir()
	ts := int64(0)
	for run := 0; run < 3; run++ {
		p := startServer(t, bin, base, nil)
		c := dial(t, p.addr, persistKey)
		for i := 0; i < 20; i++ {
			items := make([]map[string]any, 10)
			for j := range items {
				ts++
				items[j] = map[string]any{"col": "c", "doc": []string{"d0", "d1", "d2"}[j%3], "ts": ts, "data": strings.Repeat("p", 30)}
			}
			c.call(t, "ins", items)
		}
		c.close()
		if code := p.stop(t); code != 0 {
			t.Fatalf("exit %d", code)
		}
	}
	if n := len(segments(t, base)); n != 3 {
		t.Fatalf("%d segments, want 3", n)
	}
	const total = 600

	type outcome int
	const (
		starts outcome = iota // starts by itself (torn tail truncated)
		needsRepair
	)
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string) string // returns the file named in the error
		want   outcome
		// records after start (or after repair and start); -1 = some prefix, fewer than total
		records int
	}{
		{"torn last record", func(t *testing.T, dir string) string {
			last := segments(t, dir)[2]
			fi, _ := os.Stat(last)
			must(t, os.Truncate(last, fi.Size()-5))
			return last
		}, starts, total - 10},
		{"garbage appended", func(t *testing.T, dir string) string {
			last := segments(t, dir)[2]
			f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
			must(t, err)
			_, err = f.Write(bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x01}, 20))
			must(t, err)
			must(t, f.Close())
			return last
		}, starts, total},
		{"bad CRC in the last segment", func(t *testing.T, dir string) string {
			last := segments(t, dir)[2]
			flip(t, last, frameOffsets(t, last)[5]+20)
			return last
		}, needsRepair, total - 150},
		{"bad CRC in an earlier segment", func(t *testing.T, dir string) string {
			first := segments(t, dir)[0]
			flip(t, first, frameOffsets(t, first)[10]+30)
			return first
		}, needsRepair, 100},
		{"bad length", func(t *testing.T, dir string) string {
			first := segments(t, dir)[0]
			b, _ := os.ReadFile(first)
			binary.LittleEndian.PutUint32(b[frameOffsets(t, first)[4]:], 0x7fffffff)
			must(t, os.WriteFile(first, b, 0o644))
			return first
		}, needsRepair, 40},
		{"truncated segment", func(t *testing.T, dir string) string {
			mid := segments(t, dir)[1]
			must(t, os.Truncate(mid, frameOffsets(t, mid)[12]))
			return mid
		}, needsRepair, 200 + 120},
		{"missing segment", func(t *testing.T, dir string) string {
			mid := segments(t, dir)[1]
			must(t, os.Remove(mid))
			return "" // the error names the neighbour where the numbering breaks
		}, needsRepair, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if out, err := exec.Command("cp", "-a", base+"/.", dir).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
			file := tc.damage(t, dir)
			p := startServer(t, bin, dir, nil)
			if tc.want == starts {
				if p.addr == "" {
					t.Fatalf("did not start:\n%s", p.log.String())
				}
				if !strings.Contains(p.log.String(), "truncat") {
					t.Errorf("the dropped tail is not logged:\n%s", p.log.String())
				}
				if n := countRecords(t, p.addr); n != tc.records {
					t.Errorf("%d records, want %d", n, tc.records)
				}
				p.stop(t)
				return
			}
			if p.addr != "" {
				t.Fatalf("started despite the damage:\n%s", p.log.String())
			}
			log := p.log.String()
			if code := p.cmd.ProcessState.ExitCode(); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			// The generic command, and the one for this folder to paste.
			for _, want := range []string{file, "offset", "fluxiondb repair --data", "fluxiondb repair --data " + shellQuote(dir)} {
				if !strings.Contains(log, want) {
					t.Errorf("start error does not mention %q:\n%s", want, log)
				}
			}
			out, err := exec.Command(bin, "repair", "--data", dir).CombinedOutput()
			if err != nil {
				t.Fatalf("repair: %v\n%s", err, out)
			}
			p = startServer(t, bin, dir, nil)
			if p.addr == "" {
				t.Fatalf("did not start after repair (%s):\n%s", out, p.log.String())
			}
			if n := countRecords(t, p.addr); n != tc.records {
				t.Errorf("after repair %d records, want %d (repair said %s)", n, tc.records, out)
			}
			if code := p.stop(t); code != 0 {
				t.Errorf("exit %d", code)
			}
			moved, _ := filepath.Glob(filepath.Join(dir, "wal", "corrupt-*", "*"))
			if len(moved) == 0 {
				t.Errorf("repair kept nothing aside: %s", out)
			}
		})
	}

	t.Run("corrupt snapshot", func(t *testing.T) {
		dir := t.TempDir()
		if out, err := exec.Command("cp", "-a", base+"/.", dir).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		p := startServer(t, bin, dir, []string{"FLUXIONDB_SNAPSHOT_AGE=50ms"})
		c := dial(t, p.addr, persistKey)
		// Enough records for several ~64 KiB body frames, so a damaged frame leaves a prefix.
		for i := 0; i < 10; i++ {
			items := make([]map[string]any, 1000)
			for j := range items {
				items[j] = map[string]any{"col": "c", "doc": []string{"d0", "d1", "d2"}[j%3], "ts": 1000 + i*1000 + j, "data": strings.Repeat("q", 40)}
			}
			c.call(t, "ins", items)
		}
		const total = 600 + 10000
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.log.String(), "snapshot written"); {
			if time.Now().After(deadline) {
				t.Fatalf("no snapshot:\n%s", p.log.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		c.close()
		p.stop(t)
		snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*.snap"))
		if len(snaps) == 0 {
			t.Fatal("no snapshot file")
		}
		// Damage every snapshot kept (one or two, depending on timing): no fallback exists.
		for _, s := range snaps {
			fi, _ := os.Stat(s)
			flip(t, s, fi.Size()*3/4)
		}
		snaps = snaps[len(snaps)-1:] // the newest is named in the error and salvaged
		p = startServer(t, bin, dir, nil)
		if p.addr != "" {
			t.Fatal("started with a damaged only snapshot")
		}
		for _, want := range []string{snaps[0], "offset", "fluxiondb repair --data"} {
			if !strings.Contains(p.log.String(), want) {
				t.Errorf("start error does not mention %q:\n%s", want, p.log.String())
			}
		}
		out, err := exec.Command(bin, "repair", "-d", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("repair: %v\n%s", err, out)
		}
		p = startServer(t, bin, dir, nil)
		if p.addr == "" {
			t.Fatalf("did not start after repair (%s):\n%s", out, p.log.String())
		}
		if n := countRecords(t, p.addr); n == 0 || n >= total {
			t.Errorf("after salvage %d records; want the part read before the damage", n)
		}
		p.stop(t)
		if _, err := os.Stat(snaps[0] + ".corrupt"); err != nil {
			t.Errorf("the damaged snapshot was not kept aside: %v", err)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	b[off] ^= 0x5a
	must(t, os.WriteFile(path, b, 0o644))
}

// TestPersistUnusableDataFolder: --data naming something that is not a usable folder is a
// clear error and exit code 1, not a crash.
func TestPersistUnusableDataFolder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(file, []byte("x"), 0o644))
	code, _, stderr := runArgs(t, env(), "--secret-key=k", "--host=127.0.0.1", "--port=0", "--data="+file)
	if code != 1 || !strings.Contains(stderr, "not usable") || !strings.Contains(stderr, file) {
		t.Errorf("exit %d, stderr %q; want 1 and a message naming the folder", code, stderr)
	}
}
