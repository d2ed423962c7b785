package legacy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
)

// sqliteSink gathers what ReadSQLite hands over.
type sqliteSink struct {
	recs map[string]string // "col/doc/ts" → data
	kv   map[string]string // "col/key" → value
	keys []Key
}

func newSQLiteSink() *sqliteSink {
	return &sqliteSink{recs: map[string]string{}, kv: map[string]string{}}
}

func (s *sqliteSink) Document(col, doc string, recs []Record) error {
	for _, r := range recs {
		s.recs[fmt.Sprintf("%s/%s/%d", col, doc, r.TS)] = string(r.Data)
	}
	return nil
}

func (s *sqliteSink) Value(col, key, value string) error {
	s.kv[col+"/"+key] = value
	return nil
}

func (s *sqliteSink) Key(k Key) error {
	s.keys = append(s.keys, k)
	return nil
}

// fixtureContent is what testdata/make_fixtures.py wrote for n numbered records.
func fixtureContent(n int) *sqliteSink {
	want := newSQLiteSink()
	for i := range n {
		want.recs[fmt.Sprintf("c%d/d%d/%d", i%3, i%7, 1000+i)] = strings.Repeat(fmt.Sprintf("v%d", i), i%5)
	}
	want.recs["big/doc/7"] = strings.Repeat("x", 5000)
	want.recs[fmt.Sprintf("big/doc/%d", int64(1)<<62)] = "far"
	for j := range 20 {
		want.kv[fmt.Sprintf("c0/k%d", j)] = fmt.Sprintf("val%d", j)
	}
	want.keys = []Key{{"the-master", "read_write_delete"}, {"reader-1", "readonly"}, {"writer-1", "read_write"}}
	return want
}

// TestReadSQLite reads the fixtures (a 4 KiB-page file, and a 512-byte-page one whose b-trees
// are three levels deep and whose records table has an INTEGER PRIMARY KEY) and finds every
// row make_fixtures.py wrote, overflow pages included.
func TestReadSQLite(t *testing.T) {
	for _, tc := range []struct {
		file string
		n    int
	}{{"fluxion-4k.db", 1500}, {"fluxion-512-rowid.db", 800}} {
		t.Run(tc.file, func(t *testing.T) {
			got := newSQLiteSink()
			rep, err := ReadSQLite(filepath.Join("testdata", tc.file), got)
			if err != nil {
				t.Fatal(err)
			}
			want := fixtureContent(tc.n)
			if !reflect.DeepEqual(got.recs, want.recs) {
				t.Errorf("records: %d read, want %d", len(got.recs), len(want.recs))
				for k, v := range want.recs {
					if got.recs[k] != v {
						t.Fatalf("record %s = %.40q, want %.40q", k, got.recs[k], v)
					}
				}
			}
			if !reflect.DeepEqual(got.kv, want.kv) || !reflect.DeepEqual(got.keys, want.keys) {
				t.Errorf("kv %v keys %v, want %v %v", got.kv, got.keys, want.kv, want.keys)
			}
			if rep.Collections != 4 || rep.Documents != 7*3+1 || rep.Records != tc.n+2 || rep.Values != 20 || rep.Keys != 3 {
				t.Errorf("report %+v", rep)
			}
		})
	}
}

// TestReadSQLiteRefusesDamage: a file that is not what it says, damage inside the b-tree, and a
// WAL file beside it (changes not in the main file yet) are errors, never a partial read.
func TestReadSQLiteRefusesDamage(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "fluxion-512-rowid.db"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := parseSQLite(good)
	if err != nil {
		t.Fatal(err)
	}
	tabs, err := db.tables()
	if err != nil {
		t.Fatal(err)
	}
	root := tabs["records"].root
	rootPage := func(b []byte) []byte { return b[(root-1)*512 : root*512] }
	if rootPage(good)[0] != 0x05 {
		t.Fatalf("records root is not an interior page (type %d): the fixture should be deeper", rootPage(good)[0])
	}
	for _, tc := range []struct {
		name string
		mod  func(b []byte) []byte
		want string
	}{
		{"not SQLite", func(b []byte) []byte { return []byte("SQLite format 2\x00" + string(b[16:])) }, "bad header"},
		{"cut short", func(b []byte) []byte { return b[:len(b)/2] }, "outside the file"},
		{"loop", func(b []byte) []byte {
			p := rootPage(b)
			binary.BigEndian.PutUint32(p[8:], uint32(root)) // right-most child: itself
			return b
		}, "loops"},
		{"page type", func(b []byte) []byte { rootPage(b)[0] = 0x0a; return b }, "an index b-tree page where a table's was expected"},
		{"cell offset", func(b []byte) []byte {
			p := rootPage(b)
			binary.BigEndian.PutUint16(p[12:], 2) // first cell inside the header
			return b
		}, "outside the page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mod(bytes.Clone(good))
			db, err := parseSQLite(b)
			if err == nil {
				_, err = db.read("x.db", newSQLiteSink())
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	dir := t.TempDir()
	path := filepath.Join(dir, SQLiteFile)
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-wal", []byte("frames"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSQLite(path, newSQLiteSink()); err == nil || !strings.Contains(err.Error(), "wal_checkpoint") {
		t.Fatalf("with a WAL file beside it: %v", err)
	}
}

// FuzzReadSQLite: whatever the file holds, reading it ends (no loop, no panic) with rows or
// an error.
func FuzzReadSQLite(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "fluxion-tiny.db")) // small: mutations stay fast
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:512*4])
	f.Fuzz(func(t *testing.T, b []byte) {
		db, err := parseSQLite(b)
		if err != nil {
			return
		}
		_, _ = db.read("fuzz.db", newSQLiteSink())
	})
}

// truncatingSink cuts the file it is being fed from at its first record, as a copy still
// being written or a server still shrinking the file might.
type truncatingSink struct {
	*sqliteSink
	path string
	done bool
}

func (s *truncatingSink) Document(col, doc string, recs []Record) error {
	if !s.done {
		s.done = true
		if err := os.Truncate(s.path, 8192); err != nil {
			return err
		}
	}
	return s.sqliteSink.Document(col, doc, recs)
}

// A file that shrinks while it is read (it is mapped) is an error that says so, not a crash.
func TestReadSQLiteFileShrinkingUnderTheRead(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "fluxion-4k.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fluxion.db")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ReadSQLite(path, &truncatingSink{sqliteSink: newSQLiteSink(), path: path})
	if err == nil || !strings.Contains(err.Error(), "changed while it was read") {
		t.Fatalf("ReadSQLite of a file cut under it: %v; want an error saying it changed", err)
	}
}

// A page whose type byte is none of a b-tree's is damage, and said to be (a zeroed page was
// reported as a WITHOUT ROWID table).
func TestReadSQLiteZeroedPage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "fluxion-512-rowid.db"))
	if err != nil {
		t.Fatal(err)
	}
	ps := int(binary.BigEndian.Uint16(b[16:18]))
	clear(b[ps : 2*ps]) // page 2
	db, err := parseSQLite(b)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.read("x.db", newSQLiteSink())
	if err == nil || !strings.Contains(err.Error(), "not a b-tree page (type byte 0): the file is damaged") {
		t.Fatalf("a zeroed page: %v", err)
	}
}

// rewritingSink overwrites bytes of the file it is fed from (as the original server, still
// running, rewriting a page in place would) at its first record.
type rewritingSink struct {
	*sqliteSink
	path string
	off  int64
	b    []byte
	done bool
}

func (s *rewritingSink) Document(col, doc string, recs []Record) error {
	if !s.done {
		s.done = true
		f, err := os.OpenFile(s.path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.WriteAt(s.b, s.off); err != nil {
			return err
		}
	}
	return s.sqliteSink.Document(col, doc, recs)
}

// The file is mapped: a page rewritten in place while it is read (the original server still
// running) can change a cell pointer between checkCells and leafCell. That is an error, not a
// panic out of the page's bounds.
func TestReadSQLiteFileRewrittenInPlace(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "fluxion-4k.db"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := parseSQLite(append([]byte(nil), b...))
	if err != nil {
		t.Fatal(err)
	}
	tabs, err := db.tables()
	if err != nil {
		t.Fatal(err)
	}
	// The first leaf page walk meets in the records table: follow cell 0 down.
	n := tabs["records"].root
	var p []byte
	var h int
	for {
		p = b[(n-1)*db.pageSize : n*db.pageSize]
		h = 0
		if n == 1 {
			h = 100
		}
		if p[h] != 0x05 {
			break
		}
		off := int(binary.BigEndian.Uint16(p[h+12:]))
		n = int(binary.BigEndian.Uint32(p[off:]))
	}
	if p[h] != 0x0d || binary.BigEndian.Uint16(p[h+3:]) < 2 {
		t.Fatalf("page %d: not a leaf with 2 cells", n)
	}
	path := filepath.Join(t.TempDir(), "fluxion.db")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sink := &rewritingSink{sqliteSink: newSQLiteSink(), path: path,
		off: int64((n-1)*db.pageSize + h + 8 + 2), b: []byte{0xff, 0xff}} // cell 1's pointer
	defer func() {
		if r := recover(); r != nil {
			t.Log(string(debug.Stack()))
			t.Fatalf("ReadSQLite of a file rewritten under it panicked: %v; want an error", r)
		}
	}()
	_, err = ReadSQLite(path, sink)
	if err == nil {
		t.Fatalf("ReadSQLite of a file rewritten under it: no error")
	}
}
