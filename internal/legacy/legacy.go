// Package legacy reads the data folder of the original C++ FluxionDB server (PROTOCOL.md §5),
// so that `fluxiondb import` can bring its data over, and so that a start on such a folder
// stops with an error that says so instead of starting empty beside the old data.
//
// The original's first format (v1) is a folder per collection and a folder per document:
//
//	DIR/<collection>/key_value.json             {"key":"value",…}
//	DIR/<collection>/<document>/<epoch-ms>.json  [{"ts":…,"data":"…"},…]
//
// Each flush wrote the records since the previous one to a new file named after the time of
// the flush; a later file wins for the same ts. Record deletes were never written, so what
// was deleted comes back: that is what the old server itself did after a restart. Its later
// format, one SQLite file DIR/fluxion.db, is read by ReadSQLite.
package legacy

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Kind is what Detect found in a folder.
type Kind int

const (
	None   Kind = iota
	V1          // folders of JSON files
	SQLite      // fluxion.db
)

func (k Kind) String() string {
	switch k {
	case V1:
		return "the original server's JSON files (v1)"
	case SQLite:
		return "the original server's SQLite file fluxion.db"
	}
	return "nothing of the original server"
}

// SQLiteFile is the later original server's single data file.
const SQLiteFile = "fluxion.db"

const keyValueFile = "key_value.json"

// detectLimit bounds how many entries Detect looks at per folder level, and detectBudget
// how many folders and candidate files it opens in all, so a start on a folder with millions
// of files does not stall on the check.
const detectLimit = 256

var detectBudget = 2048 // a variable for tests

// Detect reports whether dir holds data of the original server, and the path that shows it:
// fluxion.db, or a file of the v1 layout whose content is what the old server wrote (a
// key_value.json object of strings, a record file holding records). skip names subfolders
// that are not the old server's; hidden folders (.name) never are.
func Detect(dir string, skip ...string) (Kind, string, error) {
	if fi, err := os.Stat(filepath.Join(dir, SQLiteFile)); err == nil && fi.Mode().IsRegular() {
		return SQLite, filepath.Join(dir, SQLiteFile), nil
	}
	cols, err := readDirLimit(dir, detectLimit)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return None, "", nil
		}
		return None, "", err
	}
	budget := detectBudget
	for _, c := range cols {
		if !isDir(dir, c) || slices.Contains(skip, c.Name()) || strings.HasPrefix(c.Name(), ".") {
			continue
		}
		colDir := filepath.Join(dir, c.Name())
		if kv := filepath.Join(colDir, keyValueFile); looksLike(kv, isValuesFile, `{"`) {
			return V1, kv, nil
		}
		docs, err := readDirLimit(colDir, detectLimit)
		if err != nil {
			continue // not ours to judge: the start reports what it cannot read itself
		}
		for _, d := range docs {
			if !isDir(colDir, d) || strings.HasPrefix(d.Name(), ".") {
				continue
			}
			if budget--; budget < 0 {
				return None, "", nil
			}
			files, err := readDirLimit(filepath.Join(colDir, d.Name()), detectLimit)
			if err != nil {
				continue
			}
			for _, f := range files {
				if _, ok := flushTime(f.Name()); ok {
					if budget--; budget < 0 {
						return None, "", nil
					}
					if p := filepath.Join(colDir, d.Name(), f.Name()); looksLike(p, isRecordsFile, `[{"`) {
						return V1, p, nil
					}
				}
			}
		}
	}
	return None, "", nil
}

// detectRead bounds how much of a candidate file Detect reads.
const detectRead = 1 << 20

// looksLike reports whether path is a regular file whose content passes check, or one that
// starts as such a file does (damaged: it begins with start but is not JSON at all, as a file
// cut short by a crash or a full disk — the import then names it and what is wrong; JSON of
// another shape is somebody else's file). A larger file than detectRead is judged by its
// first bytes alone (`[{` or `{"`).
func looksLike(path string, check func([]byte) bool, start string) bool {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, detectRead+1))
	if err != nil {
		return false
	}
	t := bytes.Join(bytes.Fields(b[:min(len(b), 64)]), nil)
	if len(b) > detectRead {
		return bytes.HasPrefix(t, []byte(`[{"`)) || bytes.HasPrefix(t, []byte(`{"`))
	}
	return check(b) || bytes.HasPrefix(t, []byte(start)) && !json.Valid(b)
}

// isRecordsFile: a JSON array holding at least one record.
func isRecordsFile(b []byte) bool {
	recs, err := ParseRecords(b)
	return err == nil && len(recs) > 0
}

// isValuesFile: a JSON object holding at least one value, all strings.
func isValuesFile(b []byte) bool {
	var kv map[string]string
	return json.Unmarshal(b, &kv) == nil && len(kv) > 0
}

// modeOf is the type of a folder entry, a symbolic link followed (0 when it leads nowhere).
func modeOf(parent string, e fs.DirEntry) fs.FileMode {
	if e.Type()&fs.ModeSymlink == 0 {
		return e.Type()
	}
	fi, err := os.Stat(filepath.Join(parent, e.Name()))
	if err != nil {
		return fs.ModeIrregular
	}
	return fi.Mode().Type()
}

func isDir(parent string, e fs.DirEntry) bool  { return modeOf(parent, e).IsDir() }
func isFile(parent string, e fs.DirEntry) bool { return modeOf(parent, e).IsRegular() }

// parseFile reads path and decodes it with parse; an error names the file.
func parseFile[T any](path string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	b, err := os.ReadFile(path)
	if err != nil {
		return zero, err
	}
	v, err := parse(b)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func readDirLimit(dir string, n int) ([]fs.DirEntry, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(n)
	if err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty folder
		return nil, err
	}
	return entries, nil
}

// flushTime parses a record file's name, <epoch-ms>.json.
func flushTime(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, ".json")
	if !ok || digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, false
	}
	ms, err := strconv.ParseInt(digits, 10, 64)
	return ms, err == nil
}

// Record is one record of a document.
type Record struct {
	TS   int64
	Data []byte
}

// Sink receives what ReadV1 reads.
type Sink interface {
	// Document receives one document's records, ascending ts, each ts once. Their Data is
	// valid only during the call (the SQLite reader hands out bytes of the mapped file).
	Document(collection, doc string, recs []Record) error
	Value(collection, key, value string) error
}

// Report counts what ReadV1 read and names what it left out.
type Report struct {
	Collections, Documents, Records, Values, Keys, Files int
	Skipped                                              []string // entries that are not part of the format
}

// ReadV1 reads a v1 data folder into sink: collections and documents in name order, a
// document's files in the order they were flushed (a later file wins for the same ts). skip
// names top-level folders to leave alone. A file that does not parse stops the read with an
// error that names it: an import never leaves data out silently.
func ReadV1(dir string, sink Sink, skip ...string) (Report, error) {
	var rep Report
	cols, err := os.ReadDir(dir)
	if err != nil {
		return rep, err
	}
	for _, c := range cols {
		name := c.Name()
		if slices.Contains(skip, name) {
			continue
		}
		if !isDir(dir, c) {
			rep.Skipped = append(rep.Skipped, filepath.Join(dir, name)+": not part of the old format")
			continue
		}
		if err := readCollection(filepath.Join(dir, name), name, sink, &rep); err != nil {
			return rep, err
		}
		rep.Collections++
	}
	return rep, nil
}

func readCollection(colDir, col string, sink Sink, rep *Report) error {
	entries, err := os.ReadDir(colDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		path := filepath.Join(colDir, e.Name())
		switch {
		case e.Name() == keyValueFile && isFile(colDir, e):
			kv, err := parseFile(path, ParseValues)
			if err != nil {
				return err
			}
			rep.Files++
			for _, k := range slices.Sorted(maps.Keys(kv)) {
				if err := sink.Value(col, k, kv[k]); err != nil {
					return err
				}
				rep.Values++
			}
		case isDir(colDir, e):
			if err := readDocument(path, col, e.Name(), sink, rep); err != nil {
				return err
			}
		default:
			rep.Skipped = append(rep.Skipped, path+": not part of the old format")
		}
	}
	return nil
}

func readDocument(docDir, col, doc string, sink Sink, rep *Report) error {
	entries, err := os.ReadDir(docDir)
	if err != nil {
		return err
	}
	type file struct {
		ms   int64
		name string
	}
	var files []file
	for _, e := range entries {
		if ms, ok := flushTime(e.Name()); ok && isFile(docDir, e) {
			files = append(files, file{ms, e.Name()})
		} else {
			rep.Skipped = append(rep.Skipped, filepath.Join(docDir, e.Name())+": not part of the old format")
		}
	}
	// Flush order is the number's order, not the names' (999.json before 1000.json).
	slices.SortFunc(files, func(a, b file) int {
		if a.ms != b.ms {
			return cmp.Compare(a.ms, b.ms)
		}
		return strings.Compare(a.name, b.name)
	})
	byTS := map[int64][]byte{}
	for _, f := range files {
		recs, err := parseFile(filepath.Join(docDir, f.name), ParseRecords)
		if err != nil {
			return err
		}
		rep.Files++
		for _, r := range recs {
			byTS[r.TS] = r.Data // a later file, or a later element, wins
		}
	}
	if len(byTS) == 0 {
		return nil // a document with no records does not exist
	}
	recs := make([]Record, 0, len(byTS))
	for ts, data := range byTS {
		recs = append(recs, Record{ts, data})
	}
	slices.SortFunc(recs, func(a, b Record) int { return cmp.Compare(a.TS, b.TS) })
	rep.Documents++
	rep.Records += len(recs)
	return sink.Document(col, doc, recs)
}

// ParseRecords decodes one record file: a JSON array of {"ts": integer, "data": string}.
// data of another JSON type is kept as its JSON text. Records are returned in file order.
func ParseRecords(b []byte) ([]Record, error) {
	var raw []struct {
		TS   json.RawMessage `json:"ts"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON array of records: %w", err)
	}
	recs := make([]Record, len(raw))
	for i, r := range raw {
		if r.TS == nil {
			return nil, fmt.Errorf("record %d has no ts", i)
		}
		ts, err := strconv.ParseInt(string(r.TS), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("record %d: ts %s is not an integer", i, r.TS)
		}
		recs[i] = Record{TS: ts, Data: payload(r.Data)}
	}
	return recs, nil
}

// ParseValues decodes a key_value.json file: a JSON object of strings (a value of another
// JSON type is kept as its JSON text).
func ParseValues(b []byte) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object of values: %w", err)
	}
	if raw == nil {
		return nil, errors.New("not a JSON object of values: null")
	}
	kv := make(map[string]string, len(raw))
	for k, v := range raw {
		kv[k] = string(payload(v))
	}
	return kv, nil
}

// payload is a stored string as its bytes; any other JSON value (or none) as its compact text.
func payload(v json.RawMessage) []byte {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return []byte{}
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return []byte(s)
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) == nil {
		return buf.Bytes()
	}
	return append([]byte(nil), v...)
}
