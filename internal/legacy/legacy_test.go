package legacy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// write creates files under dir: path (slash-separated) → content.
func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sink records what ReadV1 hands over, in order.
type sink struct{ got []string }

func (s *sink) Document(col, doc string, recs []Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "doc %s/%s:", col, doc)
	for _, r := range recs {
		fmt.Fprintf(&b, " %d=%s", r.TS, r.Data)
	}
	s.got = append(s.got, b.String())
	return nil
}

func (s *sink) Value(col, key, value string) error {
	s.got = append(s.got, fmt.Sprintf("kv %s/%s=%s", col, key, value))
	return nil
}

func TestReadV1(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		// Flushed at 999 then 1000: numeric order, so 1000.json wins for ts 2.
		"sensors/device-1/1000.json":   `[{"ts":2,"data":"late"},{"ts":3,"data":"{\"t\":1}"}]`,
		"sensors/device-1/999.json":    `[{"ts":1,"data":"one"},{"ts":2,"data":"early"}]`,
		"sensors/device-2/5.json":      `[{"ts":9223372036854775807,"data":{"obj":[1, 2]}},{"ts":-4,"data":"neg"}]`,
		"sensors/key_value.json":       `{"b":"2","a":"1","n":7}`,
		"sensors/notes.txt":            "not part of the format",
		"sensors/empty/1.json":         `[]`,
		"kvonly/key_value.json":        `{"k":"v"}`,
		"README":                       "top-level file",
		"wal/00000000000000000001.wal": "this server's own folder",
	})
	var s sink
	rep, err := ReadV1(dir, &s, "wal")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kv kvonly/k=v",
		"doc sensors/device-1: 1=one 2=late 3={\"t\":1}",
		"doc sensors/device-2: -4=neg 9223372036854775807={\"obj\":[1,2]}",
		"kv sensors/a=1", "kv sensors/b=2", "kv sensors/n=7",
	}
	if !reflect.DeepEqual(s.got, want) {
		t.Fatalf("read:\n%s\nwant:\n%s", strings.Join(s.got, "\n"), strings.Join(want, "\n"))
	}
	if rep.Collections != 2 || rep.Documents != 2 || rep.Records != 5 || rep.Values != 4 || rep.Files != 6 {
		t.Errorf("report %+v", rep)
	}
	if len(rep.Skipped) != 2 || !strings.Contains(rep.Skipped[0], "README: ") || !strings.Contains(rep.Skipped[1], "notes.txt: ") {
		t.Errorf("skipped %v, want README and notes.txt", rep.Skipped)
	}
}

func TestReadV1NamesTheBadFile(t *testing.T) {
	for _, tc := range []struct{ name, content, want string }{
		{"not JSON", `[{"ts":1,`, "not a JSON array of records"},
		{"float ts", `[{"ts":1.5,"data":"x"}]`, "record 0: ts 1.5 is not an integer"},
		{"no ts", `[{"data":"x"},{"ts":2}]`, "record 0 has no ts"},
		{"object", `{"ts":1}`, "not a JSON array of records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, map[string]string{"c/d/1.json": tc.content})
			_, err := ReadV1(dir, &sink{})
			if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "c", "d", "1.json")) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want the file's path and %q", err, tc.want)
			}
		})
	}
	dir := t.TempDir()
	write(t, dir, map[string]string{"c/key_value.json": `["a"]`})
	if _, err := ReadV1(dir, &sink{}); err == nil || !strings.Contains(err.Error(), "key_value.json: not a JSON object of values") {
		t.Fatalf("bad key_value.json: %v", err)
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  Kind
		path  string
	}{
		{"empty", nil, None, ""},
		{"this server's own folder", map[string]string{"wal/00000000000000000001.wal": "x", "wal/LOCK": "", "snapshots/snapshot-00000000000000000004.snap": "y"}, None, ""},
		{"lost+found and stray files", map[string]string{"lost+found/x": "", "notes.txt": "", "c/d/readme.md": ""}, None, ""},
		{"v1 values", map[string]string{"c/key_value.json": `{"unit":"C"}`}, V1, "c/key_value.json"},
		{"v1 records", map[string]string{"c/d/1700000000000.json": `[{"ts":1,"data":"x"}]`}, V1, "c/d/1700000000000.json"},
		{"v1 records past empty files", map[string]string{"c/d/1.json": `[]`, "c/e/2.json": `[{"ts":1,"data":"x"}]`}, V1, "c/e/2.json"},
		// Files of that shape whose content is not the old server's are not taken for it.
		{"other JSON files", map[string]string{"exports/2024/1700000000000.json": `{"report":1}`, "node_modules/x/42.json": `[1,2]`,
			"capcut-draft/key_value.json": `{"a":{"b":1}}`, "other/key_value.json": `{}`, "c/d/7.json": `[]`}, None, ""},
		// A file of the old layout cut short (a crash, a full disk) is the old server's still:
		// the import names it and says what is wrong, and a start does not go on beside it.
		{"v1 records cut short", map[string]string{"c/d/1700000000000.json": `[{"ts":1,"data":"a"`}, V1, "c/d/1700000000000.json"},
		{"v1 values cut short", map[string]string{"c/key_value.json": `{"unit":"C`}, V1, "c/key_value.json"},
		{"hidden folders", map[string]string{".cache/key_value.json": `{"a":"b"}`, "c/.git/1.json": `[{"ts":1}]`}, None, ""},
		{"old collection named like ours", map[string]string{"wal/key_value.json": `{"a":"b"}`}, V1, "wal/key_value.json"},
		{"sqlite", map[string]string{SQLiteFile: "SQLite format 3\x00"}, SQLite, SQLiteFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tc.files)
			kind, path, err := Detect(dir, "lost+found")
			if err != nil {
				t.Fatal(err)
			}
			wantPath := ""
			if tc.path != "" {
				wantPath = filepath.Join(dir, filepath.FromSlash(tc.path))
			}
			if kind != tc.want || path != wantPath {
				t.Fatalf("Detect = %v %q, want %v %q", kind, path, tc.want, wantPath)
			}
		})
	}
	if kind, _, err := Detect(filepath.Join(t.TempDir(), "missing")); kind != None || err != nil {
		t.Fatalf("missing folder: %v, %v", kind, err)
	}
}

// FuzzParseRecords: whatever a record file holds, ParseRecords never panics, and what it
// accepts is what encoding/json reads there (ts exact, data a string's bytes).
func FuzzParseRecords(f *testing.F) {
	for _, s := range []string{`[]`, `[{"ts":1,"data":"x"}]`, `[{"ts":-9223372036854775808,"data":{"a":1}}]`,
		`[{"ts":1.5}]`, `[{"ts":"1"}]`, `{}`, `null`, `[{"ts":1,"data":null}]`, `[{"ts":1,"data":"\u00e9\n"}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := ParseRecords(b)
		if err != nil {
			return
		}
		var ref []struct {
			TS   int64 `json:"ts"`
			Data any   `json:"data"`
		}
		if json.Unmarshal(b, &ref) != nil {
			// ParseRecords accepted what a typed decode refuses: only data of another type
			// (kept as JSON text) may explain it.
			var loose []map[string]json.RawMessage
			if json.Unmarshal(b, &loose) != nil {
				t.Fatalf("accepted %q, which is not a JSON array of objects", b)
			}
			return
		}
		if len(recs) != len(ref) {
			t.Fatalf("%d records, want %d", len(recs), len(ref))
		}
		for i := range recs {
			if recs[i].TS != ref[i].TS {
				t.Fatalf("record %d ts %d, want %d", i, recs[i].TS, ref[i].TS)
			}
			if s, ok := ref[i].Data.(string); ok && string(recs[i].Data) != s {
				t.Fatalf("record %d data %q, want %q", i, recs[i].Data, s)
			}
		}
	})
}

// FuzzParseValues: never panics; accepted input is a JSON object whose string values come
// back byte-exact.
func FuzzParseValues(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"b"}`, `{"n":1,"o":{"x":[1]}}`, `null`, `[]`, `{"a":"\u2028"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		kv, err := ParseValues(b)
		if err != nil {
			return
		}
		var ref map[string]any
		if json.Unmarshal(b, &ref) != nil || ref == nil {
			t.Fatalf("accepted %q, which is not a JSON object", b)
		}
		for k, v := range ref {
			if s, ok := v.(string); ok && kv[k] != s {
				t.Fatalf("value %q = %q, want %q", k, kv[k], s)
			}
		}
	})
}

// TestDetectIsBounded: Detect gives up after a bounded number of folders and files (a start
// must not walk a huge unrelated tree): with no budget left it does not reach evidence it
// otherwise finds.
func TestDetectIsBounded(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"c/d/1.json": `[{"ts":1,"data":"x"}]`})
	defer func(b int) { detectBudget = b }(detectBudget)
	for budget, want := range map[int]Kind{0: None, 1: None, 2: V1} { // the doc folder, then its file
		detectBudget = budget
		if kind, _, err := Detect(dir); kind != want || err != nil {
			t.Errorf("budget %d: Detect = %v, %v; want %v", budget, kind, err, want)
		}
	}
}
