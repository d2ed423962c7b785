package db

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/volandoo/fluxiondb/internal/auth"
	"github.com/volandoo/fluxiondb/internal/engine"
	"github.com/volandoo/fluxiondb/internal/legacy"
	"github.com/volandoo/fluxiondb/internal/wal"
)

// oldFolder writes a data folder of the original server's first format.
func oldFolder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range map[string]string{
		"sensors/device-1/1700000015000.json": `[{"ts":1,"data":"a"},{"ts":2,"data":"b"}]`,
		"sensors/device-1/1700000030000.json": `[{"ts":2,"data":"B"},{"ts":3,"data":"{\"t\":22.5}"}]`,
		"sensors/device-2/1700000015000.json": `[{"ts":9223372036854775807,"data":"max"}]`,
		"sensors/key_value.json":              `{"unit":"C"}`,
		"settings/key_value.json":             `{"mode":"auto","n":""}`,
	} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const oldFolderState = `collection "sensors"
 doc "device-1": 1="a" 2="B" 3="{\"t\":22.5}"
 doc "device-2": 9223372036854775807="max"
 kv "unit"="C"
collection "settings"
 kv "mode"="auto"
 kv "n"=""
`

// TestImport: the old folder's collections, records (a later file winning) and values come
// over into a new data folder a server starts from, and the old folder is left as it was.
func TestImport(t *testing.T) {
	old := oldFolder(t)
	dest := filepath.Join(t.TempDir(), "new")
	rep, err := Import(context.Background(), old, dest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Collections != 2 || rep.Documents != 2 || rep.Records != 4 || rep.Values != 3 || rep.Files != 5 {
		t.Errorf("report %+v", rep)
	}
	if _, err := os.Stat(filepath.Join(dest, importIncomplete)); !os.IsNotExist(err) {
		t.Fatalf("the finished import still holds %s: %v", importIncomplete, err)
	}
	d := openT(t, dest)
	if got := dump(d); got != oldFolderState {
		t.Fatalf("imported state:\n%s\nwant\n%s", got, oldFolderState)
	}
	if d.Recovery().SnapshotSeq == 0 || d.Recovery().Frames != 0 {
		t.Errorf("the import should end with a snapshot covering everything: %+v", d.Recovery())
	}
	closeT(t, d)
	if entries, _ := os.ReadDir(old); len(entries) != 2 {
		t.Errorf("the old folder changed: %v", entries)
	}
	// Into an existing, non-empty folder: refused, and that folder is left alone.
	if _, err := Import(context.Background(), old, dest, nil); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Fatalf("import into a used folder: %v", err)
	}
	if _, err := Import(context.Background(), old, old, nil); err == nil {
		t.Fatal("import into the old folder itself was accepted")
	}
	// Into a folder inside the old one (one Docker volume holding both): the new folder is
	// not read as a collection of the old data.
	inside := filepath.Join(old, "fluxiondb")
	rep, err = Import(context.Background(), old, inside, nil)
	if err != nil || rep.Collections != 2 || len(rep.Skipped) != 1 || !strings.Contains(rep.Skipped[0], "not read (the new data folder)") {
		t.Fatalf("import into a folder inside the old one: %+v, %v", rep, err)
	}
	d = openT(t, inside)
	defer closeT(t, d)
	if got := dump(d); got != oldFolderState {
		t.Fatalf("imported state:\n%s\nwant\n%s", got, oldFolderState)
	}
}

// TestImportFailureLeavesNothing: a file that does not parse stops the import with its name,
// and the destination is removed (or emptied, when it existed before).
func TestImportFailureLeavesNothing(t *testing.T) {
	old := oldFolder(t)
	bad := filepath.Join(old, "sensors", "device-2", "1700000099000.json")
	if err := os.WriteFile(bad, []byte(`[{"ts":"soon"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "new")
	if _, err := Import(context.Background(), old, dest, nil); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("err = %v, want one naming %s", err, bad)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("a failed import left %s: %v", dest, err)
	}
	empty := t.TempDir()
	if _, err := Import(context.Background(), old, empty, nil); err == nil {
		t.Fatal("import of a bad folder succeeded")
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatalf("a failed import left %v in the folder it was given", entries)
	}
	// Nothing to import, and the SQLite format: clear refusals.
	if _, err := Import(context.Background(), t.TempDir(), filepath.Join(t.TempDir(), "x"), nil); err == nil || !strings.Contains(err.Error(), "holds no data of the original server") {
		t.Fatalf("empty folder: %v", err)
	}
	sq := t.TempDir()
	if err := os.WriteFile(filepath.Join(sq, "fluxion.db"), []byte("SQLite format 3\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(context.Background(), sq, filepath.Join(t.TempDir(), "x"), nil); err == nil || !strings.Contains(err.Error(), "bad header") {
		t.Fatalf("damaged SQLite file: %v", err)
	}
}

// TestImportSQLite: the later format's records, values and API keys (hashed) come over, the
// row marked not deletable too (that server took it as a key like the others).
func TestImportSQLite(t *testing.T) {
	old := sqliteFolder(t, "fluxion-512-rowid.db", 0)
	dest := filepath.Join(t.TempDir(), "new")
	rep, err := Import(context.Background(), old, dest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 802 || rep.Values != 20 || rep.Keys != 3 {
		t.Errorf("report %+v", rep)
	}
	d := openT(t, dest)
	defer closeT(t, d)
	st := d.Engine.Stats()
	if st.Collections != 4 || st.Documents != 22 || st.Records != 802 || st.KVEntries != 20 {
		t.Fatalf("imported %+v", st)
	}
	var got []string
	d.Engine.Range("c1", "d3", engine.RangeQuery{From: 0, To: 1100}, func(ts int64, data []byte) {
		got = append(got, fmt.Sprintf("%d=%s", ts, data))
	})
	// Rows i with i%3 == 1 and i%7 == 3: i = 10, 31, 52, 73, 94 (ts 1000+i, data "v<i>" × i%5).
	if want := []string{"1010=", "1031=v31", "1052=v52v52", "1073=v73v73v73", "1094=v94v94v94v94"}; !slices.Equal(got, want) {
		t.Fatalf("c1/d3 = %v, want %v", got, want)
	}
	for secret, scope := range map[string]auth.Scope{"reader-1": auth.ScopeReadOnly, "writer-1": auth.ScopeReadWrite, "the-master": auth.ScopeReadWriteDelete} {
		if e, ok := d.Keys.Lookup(secret); !ok || e.Scope() != scope || e.Master {
			t.Errorf("key %s: %+v %v, want scope %v", secret, e, ok, scope)
		}
	}
}

// TestOpenRefusesOldData: a start on the old server's folder stops with an error that says
// what to do, instead of starting empty beside the old data; so does a start on an import
// that did not finish. A folder that is already ours starts whatever else it holds.
func TestOpenRefusesOldData(t *testing.T) {
	old := oldFolder(t)
	if _, err := Open(Config{Dir: old}); err == nil || !strings.Contains(err.Error(), "fluxiondb import --from "+old) {
		t.Fatalf("Open(old folder) = %v, want the import command", err)
	}
	if _, err := os.Stat(filepath.Join(old, walSubdir)); !os.IsNotExist(err) {
		t.Fatalf("the refused start wrote into the old folder: %v", err)
	}
	sq := t.TempDir()
	if err := os.WriteFile(filepath.Join(sq, "fluxion.db"), []byte("SQLite format 3\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: sq}); err == nil || !strings.Contains(err.Error(), "fluxiondb import --from "+sq) {
		t.Fatalf("Open(SQLite folder) = %v", err)
	}
	unfinished := t.TempDir()
	if err := os.WriteFile(filepath.Join(unfinished, importIncomplete), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: unfinished}); err == nil || !strings.Contains(err.Error(), "import that did not finish") {
		t.Fatalf("Open(unfinished import) = %v", err)
	}
	// A folder named wal is not enough to count as ours (an old collection may have that
	// name); this server's lock file in it is: the old files beside it are then the user's
	// business.
	mixed := oldFolder(t)
	if err := os.Mkdir(filepath.Join(mixed, walSubdir), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: mixed}); err == nil {
		t.Fatal("an empty wal folder made the old folder count as ours")
	}
	if err := os.WriteFile(filepath.Join(mixed, walSubdir, "LOCK"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	closeT(t, openT(t, mixed))
}

// TestImportOldCollectionsNamedLikeOurs: old collections named wal or snapshots are read like
// any other; only when the old folder really holds this server's files are those skipped,
// and listed.
func TestImportOldCollectionsNamedLikeOurs(t *testing.T) {
	old := oldFolder(t)
	for _, p := range []string{"wal/d/5.json", "snapshots/d/5.json"} {
		full := filepath.Join(old, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(`[{"ts":5,"data":"x"}]`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Import(context.Background(), old, filepath.Join(t.TempDir(), "new"), nil)
	if err != nil || rep.Collections != 4 || len(rep.Skipped) != 0 {
		t.Fatalf("import: %+v, %v", rep, err)
	}
	if err := os.WriteFile(filepath.Join(old, walSubdir, "LOCK"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = Import(context.Background(), old, filepath.Join(t.TempDir(), "new"), nil)
	if err != nil || rep.Collections != 2 || len(rep.Skipped) != 2 || !strings.Contains(rep.Skipped[0], "this server's own snapshots") {
		t.Fatalf("import of a folder this server ran on: %+v, %v", rep, err)
	}
}

// TestImportBatchesByBytes: large records go to the log in several inserts, each far below
// the largest frame the log takes, not in one batch of 65,536 records.
func TestImportBatchesByBytes(t *testing.T) {
	d := openT(t, t.TempDir(), func(c *Config) { c.Fsync = wal.SyncNever })
	defer closeT(t, d)
	s := &importSink{ctx: context.Background(), d: d}
	big := make([]byte, 1<<20)
	var recs []legacy.Record
	for i := range 40 {
		recs = append(recs, legacy.Record{TS: int64(i), Data: big})
	}
	before := d.p.log.Stats()
	if err := s.Document("c", "d", recs); err != nil {
		t.Fatal(err)
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	frames := d.p.log.Stats().NextSeq - before.NextSeq
	if st := d.Engine.Stats(); st.Records != 40 || frames < 2 {
		t.Fatalf("%d records in %d log frames, want 40 in at least 2", st.Records, frames)
	}
}

// TestImportSkipsUnknownScopes: an old key with a scope this server does not know is listed
// and not counted as imported.
func TestImportSkipsUnknownScopes(t *testing.T) {
	d := openT(t, t.TempDir())
	defer closeT(t, d)
	s := &importSink{ctx: context.Background(), d: d}
	for _, k := range []legacy.Key{{Secret: "good-key-1", Scope: "Read-Only"}, {Secret: "odd-key-22", Scope: "admin"}} {
		if err := s.Key(k); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := d.Keys.Lookup("good-key-1"); !ok || s.skippedKeys != 1 || len(s.skipped) != 1 || !strings.Contains(s.skipped[0], `scope "admin"`) {
		t.Fatalf("imported good-key-1: %v; skipped %d %q", ok, s.skippedKeys, s.skipped)
	}
	if _, ok := d.Keys.Lookup("odd-key-22"); ok {
		t.Fatal("a key with an unknown scope was imported")
	}
}

// TestImportSkipsUnreachableNames: an old folder's entry no request could name here (an empty
// key, a name that is not UTF-8) is not imported but reported; stored, it showed in listings
// (as U+FFFD) and could be neither read nor deleted.
func TestImportSkipsUnreachableNames(t *testing.T) {
	old := oldFolder(t)
	for p, content := range map[string]string{
		"sensors/caf\xe9/1700000015000.json":  `[{"ts":1,"data":"a"},{"ts":2,"data":"b"}]`,
		"m\xfcll/device-1/1700000015000.json": `[{"ts":1,"data":"a"}]`,
		"settings/key_value.json":             `{"mode":"auto","n":"","":"x"}`,
	} {
		full := filepath.Join(old, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dest := filepath.Join(t.TempDir(), "new")
	rep, err := Import(context.Background(), old, dest, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := openT(t, dest)
	defer closeT(t, d)
	if got := dump(d); got != oldFolderState {
		t.Fatalf("imported state:\n%s\nwant\n%s", got, oldFolderState)
	}
	if rep.Collections != 2 || rep.Documents != 2 || rep.Records != 4 || rep.Values != 3 {
		t.Errorf("report counts what was not imported: %+v", rep)
	}
	skipped := strings.Join(rep.Skipped, "\n")
	for _, want := range []string{`document "caf\xe9" of collection "sensors": 2 records`, `collection "m\xfcll"`, `value "" of collection "settings"`} {
		if !strings.Contains(skipped, want) {
			t.Errorf("skipped does not report %s:\n%s", want, skipped)
		}
	}
}

// TestRepairRefusesWhatAStartRefuses: repair of a folder no start would take (an unfinished
// backup or import, the original server's data, nothing of ours) says why, instead of
// "repair done: start the server again".
func TestRepairRefusesWhatAStartRefuses(t *testing.T) {
	backup := t.TempDir()
	if err := os.WriteFile(filepath.Join(backup, backupIncomplete), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	unfinished := t.TempDir()
	if err := os.WriteFile(filepath.Join(unfinished, importIncomplete), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, dir, want string }{
		{"unfinished backup", backup, "backup that did not finish"},
		{"unfinished import", unfinished, "import that did not finish"},
		{"original server's data", oldFolder(t), "fluxiondb import --from"},
		{"empty folder", t.TempDir(), "nothing to repair"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Repair(tc.dir, quiet); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Repair = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// Import's own open of the folder takes no background snapshot, whatever the thresholds: the
// import ends with a snapshot of everything, and one taken part way through an input over
// the trigger was a second full copy kept beside it.
func TestImportOpenTakesNoBackgroundSnapshot(t *testing.T) {
	d, err := Open(Config{Dir: t.TempDir(), Fsync: wal.SyncNever, Logger: quiet, importing: true,
		SnapshotBytes: 1, SnapshotAge: time.Millisecond, SnapshotCheck: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer closeT(t, d)
	if _, err := d.Insert(sensorBatch(100)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if s, ok := d.LastSnapshot(); ok {
		t.Fatalf("a background snapshot was taken during the import: %+v", s)
	}
}

// An import's memory follows the data it reads, not the size of fluxion.db: the original
// server's file holds its data four times over (the table and four indexes) and keeps every
// page its deletes freed. Here 32 MiB of pages no table reaches follow the fixture's tables;
// read whole, the file cost its size in memory.
func TestImportSQLiteMemoryFollowsTheData(t *testing.T) {
	const unused = 32 << 20
	old := sqliteFolder(t, "fluxion-512-rowid.db", unused)
	dest := filepath.Join(t.TempDir(), "new")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rep, err := Import(context.Background(), old, dest, quiet)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 802 {
		t.Fatalf("imported %d records, want 802", rep.Records)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("the import allocated %d bytes", alloc)
	if alloc > unused/4 {
		t.Errorf("the import allocated %d bytes for a file with %d unused bytes holding %d records", alloc, unused, rep.Records)
	}
}

// An import report's figures are what the new folder holds. In a fluxion.db the rows of a
// document whose name is not UTF-8 (which no request can name) were each counted as a skipped
// document and subtracted from the distinct documents read (the report said -1 documents),
// listed once per row, and their collections still counted.
func TestImportSQLiteReportMatchesTheFolder(t *testing.T) {
	old := sqliteFolder(t, "fluxion-nonutf8.db", 0)
	dest := filepath.Join(t.TempDir(), "new")
	rep, err := Import(context.Background(), old, dest, quiet)
	if err != nil {
		t.Fatal(err)
	}
	d := openT(t, dest)
	defer closeT(t, d)
	st := d.Engine.Stats()
	if int64(rep.Collections) != st.Collections || int64(rep.Documents) != st.Documents ||
		int64(rep.Records) != st.Records || int64(rep.Values) != st.KVEntries {
		t.Errorf("the report says %d collections, %d documents, %d records, %d values; the folder holds %d, %d, %d, %d",
			rep.Collections, rep.Documents, rep.Records, rep.Values, st.Collections, st.Documents, st.Records, st.KVEntries)
	}
	skipped := strings.Join(rep.Skipped, "\n")
	if n := strings.Count(skipped, `document "\xff\xfe"`); n != 1 {
		t.Errorf("the document whose name is not UTF-8 is listed %d times, want once:\n%s", n, skipped)
	}
	if !strings.Contains(skipped, "3 records not imported") || !strings.Contains(skipped, "2 key_values rows whose collection or key is not UTF-8") ||
		!strings.Contains(skipped, "an API key with an empty secret") || rep.Keys != 0 {
		t.Errorf("skipped list:\n%s", skipped)
	}
}

// A second import into the folder of one that did not finish (killed) says so, not merely
// "not empty".
func TestImportIntoAnUnfinishedImport(t *testing.T) {
	old := oldFolder(t)
	dest := t.TempDir()
	if err := os.WriteFile(filepath.Join(dest, importIncomplete), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Import(context.Background(), old, dest, quiet)
	if err == nil || !strings.Contains(err.Error(), "did not finish") || !strings.Contains(err.Error(), importIncomplete) {
		t.Fatalf("Import into an unfinished import's folder: %v", err)
	}
}

// sqliteFolder returns a folder holding the legacy package's fixture name as fluxion.db,
// followed by unused zero bytes (pages no table reaches).
func sqliteFolder(t *testing.T, name string, unused int) string {
	t.Helper()
	fixture, err := os.ReadFile(filepath.Join("..", "legacy", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	old := t.TempDir()
	if err := os.WriteFile(filepath.Join(old, "fluxion.db"), append(fixture, make([]byte, unused)...), 0o644); err != nil {
		t.Fatal(err)
	}
	return old
}
