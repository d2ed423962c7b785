package legacy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// This file reads the tables of the later original server's SQLite file — enough of the
// SQLite file format (sqlite.org/fileformat2.html) to walk a rowid table's b-tree and decode
// its records, nothing more: no SQL, no indexes, no writing. A file with a hot journal or a
// WAL file beside it is refused (its newest changes are not in the main file yet).

// sqliteDB is an open fluxion.db, read whole into memory (a read-only, one-pass import).
type sqliteDB struct {
	b        []byte
	pageSize int
	usable   int // page size less the reserved bytes at the end of each page
	pages    int
}

// A table is a rowid table's root page and its column names (lower case); rowidCol is the
// index of its INTEGER PRIMARY KEY column, whose value is the rowid, or -1.
type sqliteTable struct {
	root     int
	cols     []string
	rowidCol int
}

func openSQLite(path string) (*sqliteDB, error) {
	for _, side := range []string{"-wal", "-journal"} {
		if fi, err := os.Stat(path + side); err == nil && fi.Size() > 0 {
			return nil, fmt.Errorf("%s%s is there: the file's newest changes are not in it yet. Open it once with "+
				"sqlite3 (`sqlite3 %s 'PRAGMA wal_checkpoint(TRUNCATE);'`), which folds them in, then import again", path, side, path)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseSQLite(b)
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
	if db.usable < 480 {
		return nil, errors.New("not an SQLite 3 database (reserved space too large)")
	}
	return db, nil
}

// page returns page n (1-based) and the offset of its b-tree header (100 on page 1).
func (db *sqliteDB) page(n int) ([]byte, int, error) {
	if n < 1 || n > db.pages {
		return nil, 0, fmt.Errorf("page %d is outside the file (%d pages)", n, db.pages)
	}
	p := db.b[(n-1)*db.pageSize : n*db.pageSize]
	if n == 1 {
		return p, 100, nil
	}
	return p, 0, nil
}

// walk calls fn with the rowid and payload of every row of the table b-tree rooted at root,
// in rowid order. Damage (a page out of range, a loop, a cell out of its page) is an error.
func (db *sqliteDB) walk(root int, fn func(rowid int64, payload []byte) error) error {
	seen := map[int]bool{}
	var visit func(n, depth int) error
	visit = func(n, depth int) error {
		if seen[n] || depth > 64 {
			return fmt.Errorf("page %d: the b-tree loops", n)
		}
		seen[n] = true
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
		} else if kind != 0x0d {
			return fmt.Errorf("page %d: not a table b-tree page (type %d; WITHOUT ROWID tables cannot be read)", n, kind)
		}
		ptrs := h + hdr
		if ptrs+2*ncells > db.usable {
			return fmt.Errorf("page %d: %d cells do not fit", n, ncells)
		}
		for i := range ncells {
			off := int(binary.BigEndian.Uint16(p[ptrs+2*i:]))
			if off < ptrs+2*ncells || off >= db.usable {
				return fmt.Errorf("page %d: cell %d at offset %d is outside the page", n, i, off)
			}
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

// leafCell decodes a table leaf cell at p[off:]: rowid and the whole payload, overflow
// pages followed.
func (db *sqliteDB) leafCell(p []byte, off int) (int64, []byte, error) {
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
	x := u - 35
	local := total
	if total > x {
		m := (u-12)*32/255 - 23
		k := m + (total-m)%(u-4)
		local = m
		if k <= x {
			local = k
		}
	}
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
	for hops := 0; len(payload) < total; hops++ {
		if next == 0 || hops > db.pages {
			return 0, nil, errors.New("overflow chain ends early or loops")
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
		cols, rowidCol := columns(string(v[4].b))
		out[strings.ToLower(string(v[1].b))] = sqliteTable{root: int(v[3].i), cols: cols, rowidCol: rowidCol}
		return nil
	})
	return out, err
}

// columns reads the column names (lower case, unquoted) from a CREATE TABLE statement and
// which one, if any, is an INTEGER PRIMARY KEY (the rowid's alias, stored as NULL).
func columns(sql string) ([]string, int) {
	open, end := strings.IndexByte(sql, '('), strings.LastIndexByte(sql, ')')
	if open < 0 || end < open {
		return nil, -1
	}
	var defs []string
	depth, start := 0, open+1
	for i := open + 1; i < end; i++ {
		switch sql[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				defs = append(defs, sql[start:i])
				start = i + 1
			}
		}
	}
	defs = append(defs, sql[start:end])
	var cols []string
	rowidCol := -1
	for _, d := range defs {
		f := strings.Fields(strings.TrimSpace(d))
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "CONSTRAINT":
			continue // a table constraint, not a column
		}
		name := strings.ToLower(strings.Trim(f[0], "\"`[]'"))
		rest := strings.ToUpper(strings.Join(f[1:], " "))
		if strings.HasPrefix(rest, "INTEGER PRIMARY KEY") {
			rowidCol = len(cols)
		}
		cols = append(cols, name)
	}
	return cols, rowidCol
}

// rows calls fn with each row of table t as a map from column name to value.
func (db *sqliteDB) rows(t sqliteTable, fn func(row map[string]sqlValue) error) error {
	return db.walk(t.root, func(rowid int64, payload []byte) error {
		vals, err := decodeRecord(payload)
		if err != nil {
			return fmt.Errorf("row %d: %w", rowid, err)
		}
		row := make(map[string]sqlValue, len(t.cols))
		for i, c := range t.cols {
			switch {
			case i == t.rowidCol:
				row[c] = sqlValue{kind: 'i', i: rowid}
			case i < len(vals):
				row[c] = vals[i]
			default:
				row[c] = sqlValue{kind: 'n'} // a column added later: its default, taken as NULL
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
		return strconv.AppendFloat(nil, v.f, 'g', -1, 64)
	}
	return []byte{}
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
// deletable API keys (the master key was --secret-key, not a row to carry over).
func ReadSQLite(path string, sink SQLiteSink) (Report, error) {
	db, err := openSQLite(path)
	if err != nil {
		return Report{}, err
	}
	return db.read(path, sink)
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
		for _, c := range cols {
			if !slices.Contains(t.cols, c) {
				return t, false, fmt.Errorf("%s: table %s has no column %s (columns: %s)", path, table, c, strings.Join(t.cols, ", "))
			}
		}
		return t, true, nil
	}
	cols := map[string]bool{}
	docs := map[[2]string]bool{}
	if t, ok, err := need("records", "collection", "doc", "ts", "data"); err != nil {
		return rep, err
	} else if ok {
		err := db.rows(t, func(row map[string]sqlValue) error {
			col, doc := string(row["collection"].text()), string(row["doc"].text())
			ts, ok := row["ts"].integer()
			if !ok || col == "" || doc == "" {
				return fmt.Errorf("%s: records row (%q, %q, %q): a row needs a collection, a document and an integer ts", path, col, doc, row["ts"].text())
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
			if col == "" {
				return fmt.Errorf("%s: key_values row with an empty collection", path)
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
			if d, ok := row["deletable"].integer(); ok && d == 0 {
				return nil // the master key of that server
			}
			rep.Keys++
			return sink.Key(Key{Secret: string(row["api_key"].text()), Scope: string(row["scope"].text())})
		})
		if err != nil {
			return rep, fmt.Errorf("%s: %w", path, err)
		}
	}
	rep.Collections, rep.Documents, rep.Files = len(cols), len(docs), 1
	return rep, nil
}
