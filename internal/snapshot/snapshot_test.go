package snapshot

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// state is a plain model of what a snapshot carries.
type state struct {
	Cols   []col
	Extras []string
}

type col struct {
	Name   string
	Docs   []doc
	Values [][2]string
}

type doc struct {
	Name string
	TS   []int64
	Data []string
}

func (s *state) export(e Exporter) error {
	for _, c := range s.Cols {
		if err := e.Collection(c.Name); err != nil {
			return err
		}
		for _, d := range c.Docs {
			if err := e.Document(d.Name, len(d.TS)); err != nil {
				return err
			}
			for i, ts := range d.TS {
				if err := e.Record(ts, []byte(d.Data[i])); err != nil {
					return err
				}
			}
		}
		for _, kv := range c.Values {
			if err := e.Value(kv[0], kv[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *state) extras() [][]byte {
	var out [][]byte
	for _, x := range s.Extras {
		out = append(out, []byte(x))
	}
	return out
}

// collector is a Sink that rebuilds a state.
type collector struct{ s state }

func (c *collector) Collection(name string) error {
	c.s.Cols = append(c.s.Cols, col{Name: name})
	return nil
}
func (c *collector) cur() *col { return &c.s.Cols[len(c.s.Cols)-1] }
func (c *collector) Document(name string, n int) error {
	c.cur().Docs = append(c.cur().Docs, doc{Name: name})
	return nil
}
func (c *collector) Record(ts int64, data []byte) error {
	d := &c.cur().Docs[len(c.cur().Docs)-1]
	d.TS = append(d.TS, ts)
	d.Data = append(d.Data, string(data))
	return nil
}
func (c *collector) Value(k, v string) error {
	c.cur().Values = append(c.cur().Values, [2]string{k, v})
	return nil
}
func (c *collector) Extra(b []byte) error {
	c.s.Extras = append(c.s.Extras, string(b))
	return nil
}

func sample() *state {
	big := strings.Repeat("x", 100<<10) // spans past one body frame
	s := &state{Extras: []string{"key:abc hashed", ""}}
	s.Cols = append(s.Cols, col{Name: "sensors", Values: [][2]string{{"k1", "v1"}, {"empty", ""}}})
	for d := range 50 {
		dd := doc{Name: fmt.Sprintf("device-%d", d)}
		for r := range 40 {
			dd.TS = append(dd.TS, int64(-1000+r*r*1000))
			dd.Data = append(dd.Data, fmt.Sprintf(`{"t":%d}`, r))
		}
		s.Cols[0].Docs = append(s.Cols[0].Docs, dd)
	}
	s.Cols = append(s.Cols, col{Name: "kv-only", Values: [][2]string{{"a", "b"}}})
	s.Cols = append(s.Cols, col{Name: "big", Docs: []doc{{Name: "d", TS: []int64{1, 2}, Data: []string{big, ""}}}})
	return s
}

func writeT(t testing.TB, dir string, seq uint64, s *state) Result {
	t.Helper()
	res, err := Write(dir, seq, s.export, s.extras(), WriteOptions{Logger: quiet})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return res
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := sample()
	now := time.Unix(1700000000, 123)
	res, err := Write(dir, 42, s.export, s.extras(), WriteOptions{Logger: quiet, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != filepath.Join(dir, "snapshot-00000000000000000042.snap") || res.OldestRetainedSeq != 42 {
		t.Fatalf("result %+v", res)
	}
	want := Counts{Collections: 3, Documents: 51, Records: 2002, Values: 3, Extras: 2}
	if res.Counts != want {
		t.Fatalf("counts %+v, want %+v", res.Counts, want)
	}
	var c collector
	info, err := Load(res.Path, &c)
	if err != nil {
		t.Fatal(err)
	}
	if info.Seq != 42 || !info.Created.Equal(now) || info.Counts != want || info.Bytes != res.Bytes {
		t.Fatalf("info %+v", info)
	}
	if !reflect.DeepEqual(*s, c.s) {
		t.Fatalf("state differs:\nwant %.300v\ngot  %.300v", *s, c.s)
	}
	// An empty store snapshots too.
	empty := &state{}
	res = writeT(t, t.TempDir(), 1, empty)
	var c2 collector
	if _, err := Load(res.Path, &c2); err != nil || len(c2.s.Cols) != 0 {
		t.Fatalf("empty: %v %+v", err, c2.s)
	}
}

func TestWriteRejectsBadExport(t *testing.T) {
	dir := t.TempDir()
	short := func(e Exporter) error {
		e.Collection("c")
		e.Document("d", 3)
		return e.Record(1, nil)
	}
	if _, err := Write(dir, 1, short, nil, WriteOptions{Logger: quiet}); err == nil {
		t.Fatal("document with missing records accepted")
	}
	failing := func(e Exporter) error { return errors.New("boom") }
	if _, err := Write(dir, 1, failing, nil, WriteOptions{Logger: quiet}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("export error: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("failed writes left %d files", len(entries))
	}
}

func TestKeepNewestAndLatest(t *testing.T) {
	dir := t.TempDir()
	if _, err := Latest(dir, quiet); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("empty dir: %v", err)
	}
	if _, err := Latest(filepath.Join(dir, "missing"), quiet); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("missing dir: %v", err)
	}
	s := sample()
	os.WriteFile(filepath.Join(dir, ".snapshot-123.tmp"), []byte("crashed write"), 0o644)
	for _, seq := range []uint64{10, 20, 30} {
		res := writeT(t, dir, seq, s)
		if want := max(seq-10, 10); res.OldestRetainedSeq != want {
			t.Fatalf("after %d: oldest retained %d, want %d", seq, res.OldestRetainedSeq, want)
		}
	}
	seqs, _ := list(dir)
	if fmt.Sprint(seqs) != "[20 30]" {
		t.Fatalf("kept %v", seqs)
	}
	if _, err := os.Stat(filepath.Join(dir, ".snapshot-123.tmp")); !os.IsNotExist(err) {
		t.Fatal("stale temp file not removed")
	}
	info, err := Latest(dir, quiet)
	if err != nil || info.Seq != 30 {
		t.Fatalf("Latest: %+v %v", info, err)
	}
}

func TestCorruptSnapshots(t *testing.T) {
	flip := func(off int) func([]byte) []byte { return func(b []byte) []byte { b[off] ^= 1; return b } }
	cases := []struct {
		name   string
		damage func([]byte) []byte
		reason string
	}{
		{"truncated mid-frame", func(b []byte) []byte { return b[:len(b)/2] }, "runs past the end"},
		{"truncated at frame boundary", func(b []byte) []byte { return b[:8+headerSize] }, "truncated"},
		{"trailer missing", func(b []byte) []byte { return b[:len(b)-8-trailerSize] }, "truncated"},
		{"flipped byte in body", flip(5000), "CRC mismatch"},
		{"flipped byte in trailer", func(b []byte) []byte { b[len(b)-3] ^= 1; return b }, "CRC mismatch"},
		{"wrong magic", func(b []byte) []byte {
			return rewriteHeader(b, func(h []byte) { h[1] = 'X' })
		}, "not a FluxionDB snapshot"},
		{"garbage after trailer", func(b []byte) []byte { return append(b, 1, 2, 3) }, "after the trailer"},
		{"empty file", func([]byte) []byte { return nil }, "empty file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			res := writeT(t, dir, 7, sample())
			b, _ := os.ReadFile(res.Path)
			os.WriteFile(res.Path, tc.damage(b), 0o644)
			_, err := Verify(res.Path)
			var ce *CorruptionError
			if !errors.As(err, &ce) || ce.File != res.Path || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("Verify: %v; want CorruptionError on %s mentioning %q", err, res.Path, tc.reason)
			}
			// The only snapshot is damaged: Latest names it and moves nothing.
			_, err = Latest(dir, quiet)
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), res.Path) {
				t.Fatalf("Latest: %v", err)
			}
			if _, serr := os.Stat(res.Path); serr != nil {
				t.Fatal("damaged only snapshot was moved")
			}
		})
	}
}

// rewriteHeader edits the header payload and re-frames it with a valid CRC, so only the
// content check can catch it.
func rewriteHeader(b []byte, edit func([]byte)) []byte {
	h := bytes.Clone(b[8 : 8+headerSize])
	edit(h)
	var out []byte
	out = appendFrameT(out, h)
	return append(out, b[8+headerSize:]...)
}

func TestFallbackToOlderSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := sample()
	writeT(t, dir, 10, s)
	newest := writeT(t, dir, 20, &state{Cols: []col{{Name: "newer"}}})
	b, _ := os.ReadFile(newest.Path)
	os.WriteFile(newest.Path, b[:len(b)-1], 0o644)
	var logs bytes.Buffer
	info, err := Latest(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil || info.Seq != 10 {
		t.Fatalf("Latest: %+v, %v", info, err)
	}
	if !strings.Contains(logs.String(), newest.Path) {
		t.Fatalf("fallback not logged: %s", logs.String())
	}
	if _, err := os.Stat(newest.Path + ".corrupt"); err != nil {
		t.Fatalf("damaged snapshot not moved aside: %v", err)
	}
	var c collector
	if _, err := Load(info.Path, &c); err != nil || len(c.s.Cols) != 3 {
		t.Fatalf("Load older: %v", err)
	}
	// Both damaged: the error names the newest and mentions the other.
	dir2 := t.TempDir()
	a := writeT(t, dir2, 1, s)
	bb := writeT(t, dir2, 2, s)
	for _, p := range []string{a.Path, bb.Path} {
		data, _ := os.ReadFile(p)
		data[100] ^= 0xff
		os.WriteFile(p, data, 0o644)
	}
	_, err = Latest(dir2, quiet)
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.File != bb.Path || !strings.Contains(err.Error(), a.Path) {
		t.Fatalf("both damaged: %v", err)
	}
}

// FuzzLoad feeds arbitrary bytes to the snapshot reader: it must never panic, and when it
// accepts the input the delivered counts must match what it reports.
func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	res, err := Write(dir, 3, sample().export, [][]byte{[]byte("x")}, WriteOptions{Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(res.Path)
	small, _ := Write(f.TempDir(), 1, (&state{Cols: []col{{Name: "c", Docs: []doc{{Name: "d", TS: []int64{5}, Data: []string{"z"}}}}}}).export, nil, WriteOptions{Logger: quiet})
	smallData, _ := os.ReadFile(small.Path)
	f.Add(good)
	f.Add(smallData)
	f.Add(good[:len(good)/3])
	f.Add([]byte{})
	f.Add(appendFrameT(nil, []byte("H")))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c counter
		info, err := decode(bytes.NewReader(data), &c)
		if err != nil {
			return
		}
		if info.Counts != c.Counts {
			t.Fatalf("reported %+v, delivered %+v", info.Counts, c.Counts)
		}
	})
}

type counter struct{ Counts }

func (c *counter) Collection(string) error    { c.Collections++; return nil }
func (c *counter) Document(string, int) error { c.Documents++; return nil }
func (c *counter) Record(int64, []byte) error { c.Records++; return nil }
func (c *counter) Value(string, string) error { c.Values++; return nil }
func (c *counter) Extra([]byte) error         { c.Extras++; return nil }

// TestBeforePublish: the hook runs with the file complete but not yet in place; its error
// abandons the snapshot and leaves nothing behind.
func TestBeforePublish(t *testing.T) {
	dir := t.TempDir()
	s := sample()
	calls := 0
	check := func() error {
		calls++
		if _, err := os.Stat(filepath.Join(dir, FileName(7))); !os.IsNotExist(err) {
			t.Errorf("snapshot in place before BeforePublish returned: %v", err)
		}
		return nil
	}
	if _, err := Write(dir, 7, s.export, s.extras(), WriteOptions{Logger: quiet, BeforePublish: check}); err != nil || calls != 1 {
		t.Fatalf("Write: %v, BeforePublish called %d times", err, calls)
	}
	boom := errors.New("log flush failed")
	_, err := Write(dir, 9, s.export, s.extras(), WriteOptions{Logger: quiet, BeforePublish: func() error { return boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("Write with a failing BeforePublish: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != FileName(7) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("folder after an abandoned snapshot: %v, want only %s", names, FileName(7))
	}
}

// TestNewerVersionStopsTheStart: a snapshot in a format version this build does not read is
// not damage: Latest stops on it, names it, and neither sets it aside nor falls back to an
// older snapshot (a build that reads it must).
func TestNewerVersionStopsTheStart(t *testing.T) {
	dir := t.TempDir()
	writeT(t, dir, 5, sample())
	res := writeT(t, dir, 7, sample())
	b, _ := os.ReadFile(res.Path)
	if err := os.WriteFile(res.Path, rewriteHeader(b, func(h []byte) { binary.LittleEndian.PutUint16(h[9:], 9) }), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Latest(dir, quiet)
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Version != 9 || ve.File != res.Path || !strings.Contains(err.Error(), "newer FluxionDB") {
		t.Fatalf("Latest: %v, want a VersionError for %s", err, res.Path)
	}
	if _, serr := os.Stat(res.Path); serr != nil {
		t.Fatalf("the newer snapshot was moved: %v", serr)
	}
	// A backup's copy names it too (it said "snapshot:  is in format version 9").
	src, err := os.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = Copy(context.Background(), src, t.TempDir())
	if !errors.As(err, &ve) || ve.File != res.Path {
		t.Fatalf("Copy: %v, want a VersionError that names %s", err, res.Path)
	}
}
