package legacy

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// maxListed bounds the documents an import report lists one by one.
const maxListed = 100

// This file reads the tables of the later original server's SQLite file — enough of the
// SQLite file format (sqlite.org/fileformat2.html) to walk a rowid table's b-tree and decode
// its records, nothing more: no SQL, no indexes, no writing. A file with a hot journal or a
// WAL file beside it is refused (its newest changes are not in the main file yet).

// sqliteDB is an open fluxion.db, mapped into memory (a read-only, one-pass import).
type sqliteDB struct {
	b        []byte
	pageSize int
	usable   int // page size less the reserved bytes at the end of each page
	pages    int
	// used marks every page a read has met (b-tree or overflow): in a sound file no page
	// belongs to two places, and a damaged one that reuses pages could otherwise make a
	// small file yield gigabytes of rows.
	used []bool
}

// A table is a rowid table's root page and its columns; rowidCol is the index of its INTEGER
// PRIMARY KEY column, whose value is the rowid, or -1. err says why it cannot be read (a
// virtual table, SQL this reader does not understand).
type sqliteTable struct {
	root     int
	cols     []sqlColumn
	rowidCol int
	err      error
}

// has reports whether the table has the column.
func (t sqliteTable) has(name string) bool {
	return slices.ContainsFunc(t.cols, func(c sqlColumn) bool { return c.name == name })
}

func (t sqliteTable) names() string {
	var n []string
	for _, c := range t.cols {
		n = append(n, c.name)
	}
	return strings.Join(n, ", ")
}

// checkSides refuses a file whose newest changes are still in a -wal or -journal beside it.
func checkSides(path string) error {
	for _, side := range []string{"-wal", "-journal"} {
		if fi, err := os.Stat(path + side); err == nil && fi.Size() > 0 {
			return fmt.Errorf("%s%s is there: the file's newest changes are not in it yet. Open it once with "+
				"sqlite3 (`sqlite3 %s 'PRAGMA wal_checkpoint(TRUNCATE);'`), which folds them in, then import again", path, side, path)
		}
	}
	return nil
}

func parseSQLite(b []byte) (*sqliteDB, error) {
	if len(b) < 100 || string(b[:16]) != "SQLite format 3\x00" {
		return nil, errors.New("not an SQLite 3 database (bad header)")
	}
	ps := int(binary.BigEndian.Uint16(b[16:18]))
	if ps == 1 {
		ps = 65536
	}
	if ps < 512 || ps > 65536 || ps&(ps-1) != 0 {
		return nil, fmt.Errorf("not an SQLite 3 database (page size %d)", ps)
	}
	reserved := int(b[20])
	if enc := binary.BigEndian.Uint32(b[56:60]); enc != 1 && enc != 0 {
		return nil, fmt.Errorf("text encoding %d: only UTF-8 databases can be read", enc)
	}
	db := &sqliteDB{b: b, pageSize: ps, usable: ps - reserved, pages: len(b) / ps}
	db.used = make([]bool, db.pages+1)
	if db.usable < 480 {
		return nil, errors.New("not an SQLite 3 database (reserved space too large)")
	}
	return db, nil
}

// page returns page n (1-based) and the offset of its b-tree header (100 on page 1), and
// marks it used: a page met twice is damage.
func (db *sqliteDB) page(n int) ([]byte, int, error) {
	if n < 1 || n > db.pages {
		return nil, 0, fmt.Errorf("page %d is outside the file (%d pages)", n, db.pages)
	}
	if db.used[n] {
		return nil, 0, fmt.Errorf("page %d is used twice (the b-tree loops or pages are shared)", n)
	}
	db.used[n] = true
	p := db.b[(n-1)*db.pageSize : n*db.pageSize]
	if n == 1 {
		return p, 100, nil
	}
	return p, 0, nil
}

// walk calls fn with the rowid and payload of every row of the table b-tree rooted at root,
// in rowid order. Damage (a page out of range, a loop, a cell out of its page) is an error.
func (db *sqliteDB) walk(root int, fn func(rowid int64, payload []byte) error) error {
	var visit func(n, depth int) error
	visit = func(n, depth int) error {
		if depth > 64 {
			return fmt.Errorf("page %d: the b-tree is deeper than any SQLite writes", n)
		}
		p, h, err := db.page(n)
		if err != nil {
			return err
		}
		if h+12 > len(p) {
			return fmt.Errorf("page %d: too short", n)
		}
		kind := p[h]
		ncells := int(binary.BigEndian.Uint16(p[h+3 : h+5]))
		hdr := 8
		if kind == 0x05 {
			hdr = 12
		} else if kind == 0x02 || kind == 0x0a {
			return fmt.Errorf("page %d: an index b-tree page where a table's was expected (type %d; WITHOUT ROWID tables cannot be read)", n, kind)
		} else if kind != 0x0d {
			// 0x02, 0x05, 0x0a and 0x0d are the only page types a b-tree has.
			return fmt.Errorf("page %d: not a b-tree page (type byte %d): the file is damaged", n, kind)
		}
		ptrs := h + hdr
		if ptrs+2*ncells > db.usable {
			return fmt.Errorf("page %d: %d cells do not fit", n, ncells)
		}
		if err := db.checkCells(p, ptrs, ncells, kind); err != nil {
			return fmt.Errorf("page %d: %w", n, err)
		}
		for i := range ncells {
			off := int(binary.BigEndian.Uint16(p[ptrs+2*i:]))
			if kind == 0x05 {
				if off+4 > db.usable {
					return fmt.Errorf("page %d: cell %d is cut short", n, i)
				}
				if err := visit(int(binary.BigEndian.Uint32(p[off:])), depth+1); err != nil {
					return err
				}
				continue
			}
			rowid, payload, err := db.leafCell(p, off)
			if err != nil {
				return fmt.Errorf("page %d cell %d: %w", n, i, err)
			}
			if err := fn(rowid, payload); err != nil {
				return err
			}
		}
		if kind == 0x05 {
			return visit(int(binary.BigEndian.Uint32(p[h+8:])), depth+1)
		}
		return nil
	}
	return visit(root, 0)
}

// checkCells checks that a page's cells lie inside its content area and do not overlap, so
// no cell is read twice.
func (db *sqliteDB) checkCells(p []byte, ptrs, ncells int, kind byte) error {
	type extent struct{ start, end int }
	ext := make([]extent, 0, ncells)
	for i := range ncells {
		off := int(binary.BigEndian.Uint16(p[ptrs+2*i:]))
		if off < ptrs+2*ncells || off >= db.usable {
			return fmt.Errorf("cell %d at offset %d is outside the page", i, off)
		}
		cell := p[off:db.usable]
		size := 0
		if kind == 0x05 {
			if len(cell) < 5 {
				return fmt.Errorf("cell %d is cut short", i)
			}
			_, n := sqliteVarint(cell[4:])
			if n == 0 {
				return fmt.Errorf("cell %d: bad rowid", i)
			}
			size = 4 + n
		} else {
			total, n1 := sqliteVarint(cell)
			if n1 == 0 || total > uint64(len(db.b)) {
				return fmt.Errorf("cell %d: bad payload size", i)
			}
			_, n2 := sqliteVarint(cell[n1:])
			if n2 == 0 {
				return fmt.Errorf("cell %d: bad rowid", i)
			}
			local := db.localSize(int(total))
			size = n1 + n2 + local
			if local < int(total) {
				size += 4
			}
		}
		if off+size > db.usable {
			return fmt.Errorf("cell %d at offset %d runs past the page", i, off)
		}
		ext = append(ext, extent{off, off + size})
	}
	slices.SortFunc(ext, func(a, b extent) int { return a.start - b.start })
	for i := 1; i < len(ext); i++ {
		if ext[i].start < ext[i-1].end {
			return fmt.Errorf("cells at offsets %d and %d overlap", ext[i-1].start, ext[i].start)
		}
	}
	return nil
}

// localSize is how much of a table leaf cell's payload of total bytes is on the page itself
// (the rest is in overflow pages): the file format's formula.
func (db *sqliteDB) localSize(total int) int {
	u := db.usable
	x := u - 35
	if total <= x {
		return total
	}
	m := (u-12)*32/255 - 23
	if k := m + (total-m)%(u-4); k <= x {
		return k
	}
	return m
}

// leafCell decodes a table leaf cell at p[off:]: rowid and the whole payload, overflow
// pages followed.
func (db *sqliteDB) leafCell(p []byte, off int) (int64, []byte, error) {
	// checkCells vetted off, but the file is mapped: a process writing to it can change the
	// pointer between that check and this read.
	if off < 0 || off >= db.usable || db.usable > len(p) {
		return 0, nil, errors.New("cell outside the page (the file changed while it was read?)")
	}
	cell := p[off:db.usable]
	size, n := sqliteVarint(cell)
	if n == 0 || size > uint64(len(db.b)) { // a payload is never larger than its file
		return 0, nil, errors.New("bad payload size")
	}
	cell = cell[n:]
	rowid, n := sqliteVarint(cell)
	if n == 0 {
		return 0, nil, errors.New("bad rowid")
	}
	cell = cell[n:]
	total := int(size)
	u := db.usable
	local := db.localSize(total)
	if local > len(cell) {
		return 0, nil, errors.New("payload runs past the page")
	}
	if local == total {
		return int64(rowid), cell[:local], nil
	}
	if local+4 > len(cell) {
		return 0, nil, errors.New("overflow pointer runs past the page")
	}
	payload := make([]byte, 0, total)
	payload = append(payload, cell[:local]...)
	next := int(binary.BigEndian.Uint32(cell[local:]))
	for len(payload) < total {
		if next == 0 {
			return 0, nil, errors.New("overflow chain ends early")
		}
		op, _, err := db.page(next)
		if err != nil {
			return 0, nil, err
		}
		next = int(binary.BigEndian.Uint32(op))
		payload = append(payload, op[4:min(u, 4+total-len(payload))]...)
	}
	return int64(rowid), payload, nil
}

// sqliteVarint decodes SQLite's big-endian varint (1–9 bytes); n is 0 when b is too short.
func sqliteVarint(b []byte) (v uint64, n int) {
	for i := 0; i < 9; i++ {
		if i >= len(b) {
			return 0, 0
		}
		if i == 8 {
			return v<<8 | uint64(b[i]), 9
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return v, 9
}

// A sqlValue is one decoded column: NULL, an integer, a real, or text/blob bytes.
type sqlValue struct {
	kind byte // 'n', 'i', 'f', 't' (text or blob)
	i    int64
	f    float64
	b    []byte
}

// decodeRecord decodes a record (header of serial types, then the values).
func decodeRecord(payload []byte) ([]sqlValue, error) {
	hsize, n := sqliteVarint(payload)
	if n == 0 || hsize > uint64(len(payload)) || hsize < uint64(n) {
		return nil, errors.New("bad record header")
	}
	hdr, body := payload[n:hsize], payload[hsize:]
	var vals []sqlValue
	for len(hdr) > 0 {
		st, n := sqliteVarint(hdr)
		if n == 0 {
			return nil, errors.New("bad serial type")
		}
		hdr = hdr[n:]
		var v sqlValue
		size := 0
		switch {
		case st == 0:
			v.kind = 'n'
		case st >= 1 && st <= 6:
			size = [...]int{0, 1, 2, 3, 4, 6, 8}[st]
			if size > len(body) {
				return nil, errors.New("record runs short")
			}
			var x int64
			for _, c := range body[:size] {
				x = x<<8 | int64(c)
			}
			shift := 64 - 8*size
			v = sqlValue{kind: 'i', i: x << shift >> shift} // sign-extend
		case st == 7:
			size = 8
			if size > len(body) {
				return nil, errors.New("record runs short")
			}
			v = sqlValue{kind: 'f', f: math.Float64frombits(binary.BigEndian.Uint64(body))}
		case st == 8 || st == 9:
			v = sqlValue{kind: 'i', i: int64(st - 8)}
		case st >= 12:
			if (st-12)/2 > uint64(len(body)) {
				return nil, errors.New("record runs short")
			}
			size = int((st - 12) / 2)
			v = sqlValue{kind: 't', b: body[:size]}
		default:
			return nil, fmt.Errorf("reserved serial type %d", st)
		}
		body = body[size:]
		vals = append(vals, v)
	}
	return vals, nil
}

// tables reads sqlite_schema: every rowid table's root page and columns, by lower-case name.
func (db *sqliteDB) tables() (map[string]sqliteTable, error) {
	out := map[string]sqliteTable{}
	err := db.walk(1, func(_ int64, payload []byte) error {
		v, err := decodeRecord(payload)
		if err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		if len(v) < 5 || v[0].kind != 't' || string(v[0].b) != "table" || v[3].kind != 'i' || v[4].kind != 't' {
			return nil
		}
		t := sqliteTable{root: int(v[3].i)}
		t.cols, t.rowidCol, t.err = parseCreateTable(string(v[4].b))
		if t.err == nil && t.root < 1 {
			t.err = errors.New("not an ordinary table (a virtual table?)")
		}
		out[strings.ToLower(string(v[1].b))] = t
		return nil
	})
	return out, err
}

// rows calls fn with each row of table t as a map from column name to value.
func (db *sqliteDB) rows(t sqliteTable, fn func(row map[string]sqlValue) error) error {
	return db.walk(t.root, func(rowid int64, payload []byte) error {
		vals, err := decodeRecord(payload)
		if err != nil {
			return fmt.Errorf("row %d: %w", rowid, err)
		}
		if len(vals) > len(t.cols) {
			return fmt.Errorf("row %d has %d values for %d columns", rowid, len(vals), len(t.cols))
		}
		row := make(map[string]sqlValue, len(t.cols))
		for i, c := range t.cols {
			switch {
			case i == t.rowidCol:
				row[c.name] = sqlValue{kind: 'i', i: rowid}
			case i < len(vals):
				row[c.name] = vals[i]
			default:
				row[c.name] = c.def // written before ALTER TABLE … ADD COLUMN: the column's DEFAULT
			}
		}
		return fn(row)
	})
}

// text is a value as the bytes the old server kept: text or blob as is, a number as its
// decimal text, NULL as empty.
func (v sqlValue) text() []byte {
	switch v.kind {
	case 't':
		return v.b
	case 'i':
		return strconv.AppendInt(nil, v.i, 10)
	case 'f':
		return realText(v.f)
	}
	return []byte{}
}

// realText formats a REAL as SQLite does when it reads one as text ("%!.15g": 15 digits, and
// always a decimal point: 3.0, 1.0e+20).
func realText(f float64) []byte {
	s := strconv.FormatFloat(f, 'g', 15, 64)
	if math.IsInf(f, 0) || math.IsNaN(f) || strings.ContainsRune(s, '.') {
		return []byte(s)
	}
	if i := strings.IndexByte(s, 'e'); i >= 0 {
		return []byte(s[:i] + ".0" + s[i:])
	}
	return []byte(s + ".0")
}

// integer is a value as an int64: an integer, a real without a fraction, or decimal text.
func (v sqlValue) integer() (int64, bool) {
	switch v.kind {
	case 'i':
		return v.i, true
	case 'f':
		if v.f == math.Trunc(v.f) && v.f >= -(1<<63) && v.f < 1<<63 {
			return int64(v.f), true
		}
	case 't':
		i, err := strconv.ParseInt(strings.TrimSpace(string(v.b)), 10, 64)
		return i, err == nil
	}
	return 0, false
}

// Key is an API key of the old server, in clear text as it stored them.
type Key struct {
	Secret, Scope string
}

// SQLiteSink is Sink plus the API keys the later format stored.
type SQLiteSink interface {
	Sink
	Key(k Key) error
}

// ReadSQLite reads the later original server's fluxion.db: its records (each sent to
// sink.Document on its own; rows come in table order, not grouped), its KV entries and its
// API keys. That server never stored its master key (--secret-key); a row marked not
// deletable comes from an older build, whose server still took it, so it comes over too.
func ReadSQLite(path string, sink SQLiteSink) (rep Report, err error) {
	if err := checkSides(path); err != nil {
		return Report{}, err
	}
	b, unmap, err := mapFile(path)
	if err != nil {
		return Report{}, err
	}
	defer func() { err = errors.Join(err, unmap()) }()
	// The file is mapped: if it shrinks while being read (the original server still running,
	// a copy still being written), a page past its new end faults, from its header on. Such a
	// fault becomes a panic here, recovered into an error; any other panic goes on.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(interface{ Addr() uintptr }); ok && holds(b, f.Addr()) {
				err = fmt.Errorf("%s: the file changed while it was read (is the original server still writing to it?): %v", path, r)
				return
			}
			panic(r)
		}
	}()
	db, err := parseSQLite(b)
	if err != nil {
		return Report{}, err
	}
	return db.read(path, sink)
}

// holds reports whether addr is inside b.
func holds(b []byte, addr uintptr) bool {
	if len(b) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return addr >= start && addr < start+uintptr(len(b))
}

func (db *sqliteDB) read(path string, sink SQLiteSink) (Report, error) {
	var rep Report
	tabs, err := db.tables()
	if err != nil {
		return rep, fmt.Errorf("%s: %w", path, err)
	}
	need := func(table string, cols ...string) (sqliteTable, bool, error) {
		t, ok := tabs[table]
		if !ok {
			return t, false, nil
		}
		if t.err != nil {
			return t, false, fmt.Errorf("%s: table %s: %w", path, table, t.err)
		}
		for _, c := range cols {
			if !t.has(c) {
				return t, false, fmt.Errorf("%s: table %s has no column %s (columns: %s)", path, table, c, t.names())
			}
		}
		return t, true, nil
	}
	cols := map[string]bool{}
	docs := map[[2]string]bool{}
	unnamed, unnamedKV, notUTF8KV := 0, 0, 0
	notUTF8 := map[[2]string]int{} // records of documents whose names are not UTF-8
	if t, ok, err := need("records", "collection", "doc", "ts", "data"); err != nil {
		return rep, err
	} else if ok {
		err := db.rows(t, func(row map[string]sqlValue) error {
			col, doc := string(row["collection"].text()), string(row["doc"].text())
			ts, ok := row["ts"].integer()
			if !ok {
				return fmt.Errorf("records row (%q, %q, %q): ts is not an integer", col, doc, row["ts"].text())
			}
			if col == "" || doc == "" {
				unnamed++ // no request can name it here: listed, not imported
				return nil
			}
			if !utf8.ValidString(col) || !utf8.ValidString(doc) {
				// A request's names are UTF-8 text: this one would read as U+FFFD and match
				// nothing. Listed once per document, not imported, counted nowhere else.
				notUTF8[[2]string{col, doc}]++
				return nil
			}
			cols[col] = true
			docs[[2]string{col, doc}] = true
			rep.Records++
			return sink.Document(col, doc, []Record{{TS: ts, Data: row["data"].text()}})
		})
		if err != nil {
			return rep, fmt.Errorf("%s: %w", path, err)
		}
	}
	if t, ok, err := need("key_values", "collection", "key", "value"); err != nil {
		return rep, err
	} else if ok {
		err := db.rows(t, func(row map[string]sqlValue) error {
			col := string(row["collection"].text())
			if col == "" || len(row["key"].text()) == 0 {
				unnamedKV++
				return nil
			}
			if !utf8.ValidString(col) || !utf8.Valid(row["key"].text()) {
				notUTF8KV++
				return nil
			}
			cols[col] = true
			rep.Values++
			return sink.Value(col, string(row["key"].text()), string(row["value"].text()))
		})
		if err != nil {
			return rep, fmt.Errorf("%s: %w", path, err)
		}
	}
	if t, ok, err := need("api_keys", "api_key", "scope"); err != nil {
		return rep, err
	} else if ok {
		err := db.rows(t, func(row map[string]sqlValue) error {
			rep.Keys++
			return sink.Key(Key{Secret: string(row["api_key"].text()), Scope: string(row["scope"].text())})
		})
		if err != nil {
			return rep, fmt.Errorf("%s: %w", path, err)
		}
	}
	rep.Collections, rep.Documents, rep.Files = len(cols), len(docs), 1
	if unnamed > 0 {
		rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: %d records rows with an empty collection or document name (no request can name them here)", path, unnamed))
	}
	if unnamedKV > 0 {
		rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: %d key_values rows with an empty collection or key", path, unnamedKV))
	}
	if notUTF8KV > 0 {
		rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: %d key_values rows whose collection or key is not UTF-8 (no request can name them)", path, notUTF8KV))
	}
	bad := slices.SortedFunc(maps.Keys(notUTF8), func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
	for i, d := range bad {
		if i == maxListed {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: %d more documents whose names are not UTF-8, not imported", path, len(bad)-i))
			break
		}
		rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: document %q of collection %q: %d records not imported (a name that is not UTF-8, which no request can name)", path, d[1], d[0], notUTF8[d]))
	}
	return rep, nil
}
