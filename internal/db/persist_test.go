package db

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/volandoo/fluxiondb/internal/auth"
	"github.com/volandoo/fluxiondb/internal/engine"
	"github.com/volandoo/fluxiondb/internal/wal"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openT opens a persistent DB in dir; the caller closes it (reopen tests need to).
func openT(t testing.TB, dir string, tune ...func(*Config)) *DB {
	t.Helper()
	cfg := Config{MasterKey: "master-secret-0123456789", Dir: dir, Fsync: wal.SyncNever, Logger: quiet}
	for _, f := range tune {
		f(&cfg)
	}
	d, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return d
}

func closeT(t testing.TB, d *DB) {
	t.Helper()
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// dump renders the whole state deterministically: every collection, document, record,
// KV entry and scoped key.
func dump(d *DB) string {
	var b strings.Builder
	cols := d.Engine.Collections()
	sort.Strings(cols)
	for _, c := range cols {
		fmt.Fprintf(&b, "collection %q\n", c)
		var docs []string
		d.Engine.Latest(c, engine.LatestQuery{TS: math.MaxInt64}, func(doc string, ts int64, data []byte) {
			docs = append(docs, doc)
		})
		sort.Strings(docs)
		for _, doc := range docs {
			fmt.Fprintf(&b, " doc %q:", doc)
			d.Engine.Range(c, doc, engine.RangeQuery{From: math.MinInt64, To: math.MaxInt64}, func(ts int64, data []byte) {
				fmt.Fprintf(&b, " %d=%q", ts, data)
			})
			b.WriteByte('\n')
		}
		var kv []string
		d.Engine.Values(c, nil, func(k, v string) { kv = append(kv, fmt.Sprintf(" kv %q=%q\n", k, v)) })
		sort.Strings(kv)
		b.WriteString(strings.Join(kv, ""))
	}
	for _, k := range d.Keys.Export() {
		fmt.Fprintf(&b, "key %x %q %v\n", k.Hash, k.Hint, k.Scope)
	}
	return b.String()
}

// randomChanges makes n random changes of every kind through d.
func randomChanges(t testing.TB, d *DB, rng *rand.Rand, n int) {
	t.Helper()
	cols := []string{"a", "b", "c/é", ""}
	col := func() string { return cols[rng.IntN(3)] }
	doc := func() string { return fmt.Sprintf("doc%d", rng.IntN(6)) }
	ts := func() int64 { return int64(rng.IntN(50)) - 5 }
	for i := 0; i < n; i++ {
		var err error
		switch k := rng.IntN(20); {
		case k < 10:
			n := 1 + rng.IntN(8)
			if rng.IntN(8) == 0 {
				n = 50 + rng.IntN(200) // large enough to be logged compressed (compressMin)
			}
			recs := make([]engine.Record, n)
			for j := range recs {
				recs[j] = engine.Record{Collection: col(), Doc: doc(), TS: ts(), Data: []byte(fmt.Sprintf(`{"v":%d}`, rng.IntN(1000)))}
			}
			_, err = d.Insert(recs)
		case k == 10:
			_, err = d.DeleteDoc(cols[rng.IntN(4)], doc())
		case k == 11 && rng.IntN(4) == 0:
			_, err = d.DeleteCollection(col())
		case k == 12:
			_, err = d.DeleteRecords([]engine.RecordKey{{Collection: col(), Doc: doc(), TS: ts()}, {Collection: col(), Doc: doc(), TS: ts()}})
		case k == 13:
			from := ts()
			_, err = d.DeleteRange(col(), doc(), from, from+int64(rng.IntN(10)))
		case k < 16:
			_, err = d.SetValue(col(), fmt.Sprintf("k%d", rng.IntN(5)), fmt.Sprintf("v%d", rng.IntN(100)))
		case k == 16:
			_, err = d.DeleteValue(col(), fmt.Sprintf("k%d", rng.IntN(5)))
		case k == 17:
			secret := fmt.Sprintf("scoped-secret-%d-abcdefgh", rng.IntN(4))
			_, err = d.PutKey(auth.HashKey(secret), auth.Hint(secret), auth.Scope(1+rng.IntN(3)))
		case k == 18:
			_, _, err = d.RemoveKey(auth.HashKey(fmt.Sprintf("scoped-secret-%d-abcdefgh", rng.IntN(4))))
		}
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
}

// changesWithSnapshots makes n random changes, then snapshots times a snapshot followed by
// n more: a state held by snapshots and the log after them.
func changesWithSnapshots(t testing.TB, d *DB, rng *rand.Rand, n, snapshots int) {
	t.Helper()
	randomChanges(t, d, rng, n)
	for range snapshots {
		if err := d.Snapshot(context.Background()); err != nil {
			t.Fatal(err)
		}
		randomChanges(t, d, rng, n)
	}
}

// TestReopenSameState: a restart gives exactly the state before it, whether it comes
// from the log alone, a snapshot plus log, or several snapshots and many segments.
func TestReopenSameState(t *testing.T) {
	for _, tc := range []struct {
		name      string
		snapshots int
		segment   int64
	}{
		{"log only", 0, 0},
		{"snapshot then log", 1, 0},
		{"many snapshots, small segments", 4, 2 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			tune := func(c *Config) { c.SegmentSize = tc.segment }
			d := openT(t, dir, tune)
			for i := 0; i <= tc.snapshots; i++ {
				randomChanges(t, d, rng, 400)
				if i < tc.snapshots {
					if err := d.Snapshot(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
			}
			want := dump(d)
			closeT(t, d)
			for round := 0; round < 2; round++ { // reopen twice: the second start reads what the first kept
				d = openT(t, dir, tune)
				if got := dump(d); got != want {
					t.Fatalf("round %d: state after reopen differs:\nwant\n%s\ngot\n%s", round, want, got)
				}
				if tc.snapshots > 0 && d.Recovery().SnapshotSeq == 0 {
					t.Errorf("recovery did not use the snapshot: %+v", d.Recovery())
				}
				closeT(t, d)
			}
		})
	}
}

// TestDeletesStayDeleted: every kind of delete survives a restart, from the log and from
// a snapshot (the original server never persisted record deletes).
func TestDeletesStayDeleted(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir)
	var recs []engine.Record
	for _, c := range []string{"c1", "c2"} {
		for _, doc := range []string{"x", "y", "z"} {
			for ts := int64(1); ts <= 10; ts++ {
				recs = append(recs, engine.Record{Collection: c, Doc: doc, TS: ts, Data: []byte("v")})
			}
		}
	}
	must := func(_ Commit, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.Insert(recs))
	must(d.SetValue("c1", "k", "v"))
	must(d.SetValue("c3", "k", "v"))
	must(d.DeleteRecords([]engine.RecordKey{{Collection: "c1", Doc: "x", TS: 3}}))
	must(d.DeleteRange("c1", "y", 2, 9))
	must(d.DeleteDoc("", "z"))
	must(d.DeleteValue("c1", "k"))
	must(d.DeleteCollection("c3"))
	// Record and KV deletes that empty a collection keep it (listed by cols): e1 emptied by
	// drrng, e2 by drec, e3 by rval; ddoc of e4's last document removes e4.
	must(d.Insert([]engine.Record{{Collection: "e1", Doc: "d", TS: 5, Data: []byte("v")},
		{Collection: "e2", Doc: "d", TS: 5, Data: []byte("v")}, {Collection: "e4", Doc: "d", TS: 5, Data: []byte("v")}}))
	must(d.SetValue("e3", "k", "v"))
	must(d.DeleteRange("e1", "d", 1, 10))
	must(d.DeleteRecords([]engine.RecordKey{{Collection: "e2", Doc: "d", TS: 5}}))
	must(d.DeleteValue("e3", "k"))
	must(d.DeleteDoc("e4", "d"))
	want := dump(d)
	for _, c := range []string{`collection "e1"`, `collection "e2"`, `collection "e3"`} {
		if !strings.Contains(want, c+"\n") {
			t.Fatalf("state before restart lacks the emptied %s:\n%s", c, want)
		}
	}
	if strings.Contains(want, `"e4"`) {
		t.Fatalf("ddoc of the last document left its collection:\n%s", want)
	}
	for _, bad := range []string{`3="v"`, `"z"`, `"c3"`, `kv "k"`} {
		if bad == `3="v"` {
			continue // present in other docs
		}
		if strings.Contains(want, bad) {
			t.Fatalf("state before restart still has %s:\n%s", bad, want)
		}
	}
	closeT(t, d)
	d = openT(t, dir)
	if got := dump(d); got != want {
		t.Fatalf("after restart from the log:\nwant\n%s\ngot\n%s", want, got)
	}
	if err := d.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	closeT(t, d)
	d = openT(t, dir)
	defer closeT(t, d)
	if got := dump(d); got != want {
		t.Fatalf("after restart from the snapshot:\nwant\n%s\ngot\n%s", want, got)
	}
}

// TestKeysPersistWithoutSecrets: scoped keys survive restarts (log and snapshot); no file
// in the data folder holds a secret, and the master key is never written.
func TestKeysPersistWithoutSecrets(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir)
	secrets := []string{"first-scoped-secret-Zq8x", "second-scoped-secret-Wm3v", "third-scoped-secret-Pk5r"}
	for i, s := range secrets {
		if _, err := d.PutKey(auth.HashKey(s), auth.Hint(s), auth.Scope(1+i)); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if err := d.Snapshot(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, _, err := d.RemoveKey(auth.HashKey(secrets[0])); err != nil {
		t.Fatal(err)
	}
	want := dump(d)
	closeT(t, d)
	d = openT(t, dir)
	if got := dump(d); got != want {
		t.Fatalf("keys after restart:\nwant\n%s\ngot\n%s", want, got)
	}
	if e, ok := d.Keys.Lookup(secrets[2]); !ok || e.Scope() != auth.ScopeReadWriteDelete {
		t.Errorf("third key after restart: %v %v", e, ok)
	}
	if _, ok := d.Keys.Lookup(secrets[0]); ok {
		t.Error("a removed key came back after a restart")
	}
	closeT(t, d)
	files := 0
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, s := range append(secrets, "master-secret-0123456789") {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds the secret %q", path, s)
			}
		}
		return nil
	})
	if err != nil || files < 2 {
		t.Fatalf("walk %s: %v (%d files)", dir, err, files)
	}
}

// TestSnapshotDuringIngest: snapshots taken while writers insert as fast as they can
// stall no writer for long, trim the log, and a restart gives exactly the final state.
func TestSnapshotDuringIngest(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir, func(c *Config) { c.SegmentSize = 256 << 10 })
	var stop atomic.Bool
	var maxPause atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts := int64(0)
			recs := make([]engine.Record, 200)
			for i := 0; !stop.Load(); i++ {
				for j := range recs {
					ts++
					recs[j] = engine.Record{Collection: fmt.Sprintf("col%d", w), Doc: fmt.Sprintf("d%d", j%10), TS: ts, Data: []byte("payload-0123456789-0123456789")}
				}
				start := time.Now()
				c, err := d.Insert(recs)
				if err == nil {
					err = d.Wait(context.Background(), c)
				}
				if p := int64(time.Since(start)); p > maxPause.Load() {
					maxPause.Store(p)
				}
				if err != nil {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					if _, err := d.DeleteRange(fmt.Sprintf("col%d", w), "d3", ts-500, ts-400); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	snaps := 0
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if err := d.Snapshot(context.Background()); err != nil {
			t.Fatal(err)
		}
		snaps++
	}
	stop.Store(true)
	wg.Wait()
	segs := d.p.log.Stats().Segments
	want := dump(d)
	st := d.Engine.Stats()
	closeT(t, d)
	t.Logf("%d snapshots during ingest of %d records; longest insert+wait %v; %d segments left",
		snaps, st.Records, time.Duration(maxPause.Load()), segs)
	if snaps < 2 || st.Records < 10000 {
		t.Fatalf("too little happened: %d snapshots, %d records", snaps, st.Records)
	}
	// The log keeps what the older of the two retained snapshots needs, nothing before.
	segFiles, _ := filepath.Glob(filepath.Join(dir, walSubdir, "*.wal"))
	snapFiles, _ := filepath.Glob(filepath.Join(dir, snapshotSubdir, "*.snap"))
	if len(segFiles) == 0 || len(snapFiles) != 2 {
		t.Fatalf("segments %d, snapshots %v", len(segFiles), snapFiles)
	}
	firstSeg := strings.TrimSuffix(filepath.Base(segFiles[0]), ".wal")
	oldestSnap := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(snapFiles[0]), "snapshot-"), ".snap")
	if firstSeg > oldestSnap { // same width, so string order is number order
		t.Errorf("first segment %s starts after the oldest snapshot %s: frames it needs were removed", firstSeg, oldestSnap)
	}
	if firstSeg == fmt.Sprintf("%020d", 1) {
		t.Errorf("segment 1 is still there after %d snapshots: covered segments are not removed", snaps)
	}
	d = openT(t, dir)
	defer closeT(t, d)
	if got := dump(d); got != want {
		t.Fatalf("state after restart differs (%d vs %d bytes of dump)", len(got), len(want))
	}
}

// TestBackgroundSnapshot: the size threshold triggers a snapshot on its own.
func TestBackgroundSnapshot(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir, func(c *Config) { c.SnapshotBytes = 64 << 10; c.SnapshotCheck = 10 * time.Millisecond })
	randomChanges(t, d, rand.New(rand.NewPCG(7, 7)), 3000)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := d.LastSnapshot(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no snapshot after the log passed the size threshold")
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := dump(d)
	closeT(t, d)
	d = openT(t, dir)
	defer closeT(t, d)
	if d.Recovery().SnapshotSeq == 0 {
		t.Error("restart did not start from the background snapshot")
	}
	if got := dump(d); got != want {
		t.Fatal("state after restart differs")
	}
}

// faultyLog injects disk trouble in front of the real log: while failing is set, AppendEncoded
// and Sync fail with ENOSPC the way *wal.Log does when its disk is full.
type faultyLog struct {
	changeLog
	failing atomic.Bool
}

func (f *faultyLog) AppendEncoded(encode func([]byte) []byte) (uint64, error) {
	if f.failing.Load() {
		return 0, fmt.Errorf("wal: write segment: %w", syscall.ENOSPC)
	}
	return f.changeLog.AppendEncoded(encode)
}

func (f *faultyLog) Sync(ctx context.Context, seq uint64) error {
	if f.failing.Load() {
		return fmt.Errorf("wal: fsync segment: %w", syscall.ENOSPC)
	}
	return f.changeLog.Sync(ctx, seq)
}

// TestDiskTrouble: while the log refuses changes, a change is rejected and changes
// nothing, reads keep working, and changes resume once the disk recovers.
func TestDiskTrouble(t *testing.T) {
	dir := t.TempDir()
	var fl *faultyLog
	d := openT(t, dir, func(c *Config) {
		c.Fsync = wal.SyncAlways
		c.wrapLog = func(l changeLog) changeLog { fl = &faultyLog{changeLog: l}; return fl }
	})
	ins := func(ts int64) (Commit, error) {
		return d.Insert([]engine.Record{{Collection: "c", Doc: "d", TS: ts, Data: []byte("x")}})
	}
	c, err := ins(1)
	if err != nil || d.Wait(context.Background(), c) != nil {
		t.Fatalf("healthy insert: %v", err)
	}
	before := dump(d)

	fl.failing.Store(true)
	if _, err := ins(2); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("insert while the disk is full: %v, want ENOSPC", err)
	}
	if _, err := d.SetValue("c", "k", "v"); err == nil {
		t.Fatal("sval while the disk is full succeeded")
	}
	if _, _, err := d.RemoveKey(auth.HashKey("nobody")); err == nil {
		t.Fatal("key removal while the disk is full succeeded")
	}
	if got := dump(d); got != before {
		t.Fatalf("a refused change was applied:\n%s", got)
	}
	if v := d.Engine.Stats().Records; v != 1 {
		t.Fatalf("reads during trouble: %d records", v)
	}
	// A change logged just before trouble whose sync then fails is not acknowledged.
	fl.failing.Store(false)
	c, err = ins(3)
	if err != nil {
		t.Fatal(err)
	}
	fl.failing.Store(true)
	if err := d.Wait(context.Background(), c); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Wait during trouble: %v, want ENOSPC", err)
	}

	fl.failing.Store(false) // the disk recovers
	c, err = ins(4)
	if err != nil || d.Wait(context.Background(), c) != nil {
		t.Fatalf("insert after recovery: %v", err)
	}
	want := dump(d)
	closeT(t, d)
	d = openT(t, dir)
	defer closeT(t, d)
	if got := dump(d); got != want {
		t.Fatalf("after restart:\nwant\n%s\ngot\n%s", want, got)
	}
}

// TestUnusableDataFolder: a data folder that cannot be used is a clear error.
func TestUnusableDataFolder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "sub")} {
		_, err := Open(Config{Dir: dir, Logger: quiet})
		if err == nil || !strings.Contains(err.Error(), "not usable") || !strings.Contains(err.Error(), dir) {
			t.Errorf("Open(%s): %v, want a 'not usable' error naming the folder", dir, err)
		}
	}
	// A file where the snapshots folder should be is not damage: no repair hint.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, snapshotSubdir), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Config{Dir: dir, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "not usable") || strings.Contains(err.Error(), "repair") {
		t.Errorf("Open with a file as %s: %v, want 'not usable' and no repair hint", snapshotSubdir, err)
	}
}

// TestSecondProcessRefused: the folder lock keeps a second open out, with a clear error.
func TestSecondProcessRefused(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir)
	defer closeT(t, d)
	if _, err := Open(Config{Dir: dir, Logger: quiet}); err == nil {
		t.Fatal("a second Open of the same folder succeeded")
	}
}

// TestCorruptLogStopsOpenAndRepairRecovers: damage in an earlier segment stops Open with
// an error naming the file and the repair command; Repair keeps the good prefix.
func TestCorruptLogStopsOpenAndRepairRecovers(t *testing.T) {
	dir := t.TempDir()
	tune := func(c *Config) { c.SegmentSize = 4 << 10 }
	d := openT(t, dir, tune)
	for i := 0; i < 200; i++ {
		if _, err := d.SetValue("c", fmt.Sprintf("k%03d", i), strings.Repeat("v", 100)); err != nil {
			t.Fatal(err)
		}
	}
	closeT(t, d)
	segs, _ := filepath.Glob(filepath.Join(dir, walSubdir, "*.wal"))
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %v", segs)
	}
	damaged := segs[1]
	b, _ := os.ReadFile(damaged)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(damaged, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Config{Dir: dir, Logger: quiet})
	if !wal.IsCorruption(err) || !strings.Contains(err.Error(), damaged) || !strings.Contains(err.Error(), wal.RepairCommand) {
		t.Fatalf("Open of a damaged log: %v", err)
	}
	lines, err := Repair(dir, quiet)
	if err != nil {
		t.Fatalf("Repair: %v (%q)", err, lines)
	}
	d = openT(t, dir, tune)
	defer closeT(t, d)
	n := len(d.Engine.Keys("c"))
	if n == 0 || n >= 200 {
		t.Errorf("after repair %d values; want the prefix before the damage", n)
	}
	for i := 0; i < n; i++ {
		if _, ok := d.Engine.Value("c", fmt.Sprintf("k%03d", i)); !ok {
			t.Errorf("k%03d missing: the kept data is not a prefix", i)
		}
	}
}

// TestCorruptSnapshot: a damaged newest snapshot with an older good one is set aside
// automatically; a damaged only snapshot stops Open, and Repair salvages what reads.
func TestCorruptSnapshot(t *testing.T) {
	t.Run("older one exists", func(t *testing.T) {
		dir := t.TempDir()
		d := openT(t, dir)
		randomChanges(t, d, rand.New(rand.NewPCG(3, 3)), 300)
		for i := 0; i < 2; i++ {
			if err := d.Snapshot(context.Background()); err != nil {
				t.Fatal(err)
			}
			randomChanges(t, d, rand.New(rand.NewPCG(4, uint64(i))), 300)
		}
		want := dump(d)
		closeT(t, d)
		snaps, _ := filepath.Glob(filepath.Join(dir, snapshotSubdir, "*.snap"))
		if len(snaps) != 2 {
			t.Fatalf("snapshots %v", snaps)
		}
		flipByte(t, snaps[1], 40)
		d = openT(t, dir)
		defer closeT(t, d)
		if got := dump(d); got != want {
			t.Fatal("state after falling back to the older snapshot differs")
		}
		if _, err := os.Stat(snaps[1] + ".corrupt"); err != nil {
			t.Errorf("damaged snapshot not set aside: %v", err)
		}
	})
	t.Run("repair names the damaged newest snapshot it set aside", func(t *testing.T) {
		dir := t.TempDir()
		d := openT(t, dir)
		changesWithSnapshots(t, d, rand.New(rand.NewPCG(5, 5)), 300, 2)
		closeT(t, d)
		snaps, _ := filepath.Glob(filepath.Join(dir, snapshotSubdir, "*.snap"))
		if len(snaps) != 2 {
			t.Fatalf("snapshots %v", snaps)
		}
		flipByte(t, snaps[1], 40)
		// It said "a valid snapshot is in place (or none is needed)".
		repairT(t, dir, "the newest did not verify and was moved aside ("+snaps[1]+".corrupt); start-up loads the older "+snaps[0])
	})
	t.Run("none verifies, the log was trimmed", func(t *testing.T) {
		dir := t.TempDir()
		d := openT(t, dir)
		var recs []engine.Record
		for i := 0; i < 20000; i++ {
			recs = append(recs, engine.Record{Collection: "c", Doc: fmt.Sprintf("d%02d", i%50), TS: int64(i), Data: bytes.Repeat([]byte{'p'}, 40)})
		}
		if _, err := d.Insert(recs); err != nil {
			t.Fatal(err)
		}
		// Two snapshots with changes between them: the log is trimmed to the older one,
		// so it no longer holds the records, and only a salvage can keep some of them.
		for _, k := range []string{"mid", "mid2"} {
			if err := d.Snapshot(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := d.SetValue(k, "k", "v"); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Snapshot(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := d.SetValue("after", "k", "v"); err != nil {
			t.Fatal(err)
		}
		closeT(t, d)
		if first, _, _ := wal.FirstSeq(filepath.Join(dir, walSubdir)); first == 1 {
			t.Fatal("setup: the log was not trimmed")
		}
		snaps, _ := filepath.Glob(filepath.Join(dir, snapshotSubdir, "*.snap"))
		for _, s := range snaps {
			fi, _ := os.Stat(s)
			flipByte(t, s, fi.Size()*3/4)
		}
		snaps = snaps[len(snaps)-1:] // the newest is named and salvaged
		_, err := Open(Config{Dir: dir, Logger: quiet})
		if err == nil || !strings.Contains(err.Error(), snaps[0]) || !strings.Contains(err.Error(), wal.RepairCommand) {
			t.Fatalf("Open with every snapshot damaged: %v", err)
		}
		lines, err := Repair(dir, quiet)
		if err != nil {
			t.Fatalf("Repair: %v", err)
		}
		t.Logf("repair: %q", lines)
		d = openT(t, dir)
		defer closeT(t, d)
		n := d.Engine.Stats().Records
		if n == 0 || n >= 20000 {
			t.Errorf("after salvage %d records; want the part before the damage", n)
		}
		if v, _ := d.Engine.Value("after", "k"); v != "v" {
			t.Error("the log after the salvaged snapshot was not replayed")
		}
	})
	t.Run("none verifies, the log holds everything", func(t *testing.T) {
		// A snapshot at position 1 keeps the whole log (the log is kept from the oldest
		// snapshot retained), so damaged snapshots lose nothing: repair must not salvage
		// a part of one when the log can rebuild it all.
		dir := t.TempDir()
		d := openT(t, dir)
		if err := d.Snapshot(context.Background()); err != nil {
			t.Fatal(err)
		}
		randomChanges(t, d, rand.New(rand.NewPCG(5, 5)), 400)
		if err := d.Snapshot(context.Background()); err != nil {
			t.Fatal(err)
		}
		randomChanges(t, d, rand.New(rand.NewPCG(6, 6)), 100)
		want := dump(d)
		closeT(t, d)
		snaps, _ := filepath.Glob(filepath.Join(dir, snapshotSubdir, "*.snap"))
		if len(snaps) != 2 {
			t.Fatalf("snapshots %v", snaps)
		}
		for _, s := range snaps {
			fi, _ := os.Stat(s)
			flipByte(t, s, fi.Size()/2)
		}
		if _, err := Open(Config{Dir: dir, Logger: quiet}); err == nil {
			t.Fatal("Open with every snapshot damaged succeeded")
		}
		repairT(t, dir, "nothing is lost")
		d = openT(t, dir)
		defer closeT(t, d)
		if got := dump(d); got != want {
			t.Fatalf("after repair the state differs from before the damage:\nwant\n%.500s\ngot\n%.500s", want, got)
		}
		for _, s := range snaps {
			if _, err := os.Stat(s + ".corrupt"); err != nil {
				t.Errorf("damaged snapshot not kept aside: %v", err)
			}
		}
	})
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x5a
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// flushSpy counts the log flushes a snapshot makes and runs onFlush before each.
type flushSpy struct {
	changeLog
	calls   int
	onFlush func(call int)
}

func (f *flushSpy) Flush(ctx context.Context) error {
	f.calls++
	if f.onFlush != nil {
		f.onFlush(f.calls)
	}
	return f.changeLog.Flush(ctx)
}

// TestSnapshotPublishedOverDurableLog: the export is fuzzy, so a change applied after the
// cut may be in the snapshot; the snapshot must not be put in place before the log holds
// that change durably, or a crash would restore part of a change that replay cannot
// complete (found by a SIGKILL-at-snapshot storm).
func TestSnapshotPublishedOverDurableLog(t *testing.T) {
	dir := t.TempDir()
	var spy *flushSpy
	d := openT(t, dir, func(c *Config) {
		c.Fsync = wal.SyncNever // nothing but the snapshot's flushes makes the log durable
		c.SnapshotBytes, c.SnapshotAge = 1<<40, time.Hour
		c.wrapLog = func(l changeLog) changeLog { spy = &flushSpy{changeLog: l}; return spy }
	})
	defer closeT(t, d)
	if _, err := d.Insert([]engine.Record{{Collection: "c", Doc: "a", TS: 1, Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	var during Commit
	snapDir := filepath.Join(dir, snapshotSubdir)
	spy.onFlush = func(call int) {
		switch call {
		case 1: // after the cut, before the export: a change the export will contain
			var err error
			if during, err = d.Insert([]engine.Record{{Collection: "c", Doc: "b", TS: 2, Data: []byte("y")}}); err != nil {
				t.Error(err)
			}
		case 2: // the export is written; the snapshot must not be in place yet
			if snaps, _ := filepath.Glob(filepath.Join(snapDir, "*.snap")); len(snaps) != 0 {
				t.Errorf("snapshot %v in place before the log was flushed over its export", snaps)
			}
		}
	}
	if err := d.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if spy.calls != 2 {
		t.Fatalf("the snapshot flushed the log %d times, want 2 (at the cut, and over the export before publishing)", spy.calls)
	}
	if st := spy.Stats(); st.DurableSeq < uint64(during) {
		t.Fatalf("snapshot published while the log was durable to %d only; the export holds change %d", st.DurableSeq, during)
	}
	if snaps, _ := filepath.Glob(filepath.Join(snapDir, "*.snap")); len(snaps) != 1 {
		t.Fatalf("snapshots after Snapshot: %v", snaps)
	}
}

// TestRepairMissingFirstSegments: without a snapshot covering them, lost first segments stop
// the start; repair bridges the gap with a snapshot at the log's first position, so the
// server starts with every change the remaining log holds.
func TestRepairMissingFirstSegments(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir, func(c *Config) { c.SegmentSize = 4 << 10; c.SnapshotBytes, c.SnapshotAge = 1<<40, time.Hour })
	for i := range 200 {
		if _, err := d.Insert([]engine.Record{{Collection: "c", Doc: "d", TS: int64(i), Data: bytes.Repeat([]byte{'x'}, 100)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.SetValue("c", "last", "v"); err != nil {
		t.Fatal(err)
	}
	closeT(t, d)
	walDir := filepath.Join(dir, walSubdir)
	segs, _ := filepath.Glob(filepath.Join(walDir, "*.wal"))
	if len(segs) < 3 {
		t.Fatalf("setup: %d segments", len(segs))
	}
	for _, s := range segs[:2] {
		if err := os.Remove(s); err != nil {
			t.Fatal(err)
		}
	}
	first, _, _ := wal.FirstSeq(walDir)
	if _, err := Open(Config{Dir: dir, Logger: quiet}); err == nil || !strings.Contains(err.Error(), wal.RepairCommand) ||
		!strings.Contains(err.Error(), "every change the log still holds") {
		t.Fatalf("Open without the first segments: %v; want the repair command and what it keeps", err)
	}
	if lines := repairT(t, dir, "are missing"); slices.Contains(lines, logClean) {
		t.Errorf("repair says both that the log has no damage and that frames are missing: %q", lines)
	}
	d = openT(t, dir)
	var got []int64
	d.Engine.Range("c", "d", engine.RangeQuery{From: math.MinInt64, To: math.MaxInt64}, func(ts int64, _ []byte) { got = append(got, ts) })
	v, _ := d.Engine.Value("c", "last")
	closeT(t, d)
	// Insert i is frame i+1: the records from the first remaining frame on are back.
	if len(got) == 0 || got[0] != int64(first-1) || got[len(got)-1] != 199 || len(got) != 200-int(first-1) || v != "v" {
		t.Fatalf("after repair: records %d..%d (%d), value %q; want %d..199 and the value", got[0], got[len(got)-1], len(got), v, first-1)
	}
	if lines, err := Repair(dir, quiet); err != nil || strings.Contains(strings.Join(lines, "\n"), "missing") {
		t.Fatalf("second repair: %q, %v", lines, err)
	}
}

// TestRepairLeavesUnneededLogAlone: damage in log segments before the newest snapshot's
// position does not stop a start, and repair must not cut the log there — that would move
// every later segment aside, and the next start would skip to the snapshot without them.
func TestRepairLeavesUnneededLogAlone(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir, func(c *Config) { c.SegmentSize = 4 << 10; c.SnapshotBytes, c.SnapshotAge = 1<<40, time.Hour })
	changesWithSnapshots(t, d, rand.New(rand.NewPCG(7, 7)), 300, 2)
	want := dump(d)
	closeT(t, d)

	// Remove a segment between the two snapshots: only a fall-back to the older one needs it.
	snaps, _ := filepath.Glob(filepath.Join(dir, snapshotSubdir, "*.snap"))
	if len(snaps) != 2 {
		t.Fatalf("snapshots %v", snaps)
	}
	newest, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(snaps[1]), "snapshot-"), ".snap"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, walSubdir, "*.wal"))
	victim := ""
	for i := 1; i+1 < len(segs); i++ {
		next, _ := strconv.ParseUint(strings.TrimSuffix(filepath.Base(segs[i+1]), ".wal"), 10, 64)
		if next <= newest {
			victim = segs[i]
		}
	}
	if victim == "" {
		t.Fatalf("setup: no segment wholly before the newest snapshot (%d) among %v", newest, segs)
	}
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		d := openT(t, dir)
		got := dump(d)
		closeT(t, d)
		if got != want {
			t.Fatalf("%s: state differs from before the damage", when)
		}
	}
	check("before repair")
	repairT(t, dir, "log: no damage found")
	check("after repair")
}

// repairT runs Repair and requires its report to mention want.
func repairT(t *testing.T, dir, want string) []string {
	t.Helper()
	lines, err := Repair(dir, quiet)
	if err != nil {
		t.Fatalf("Repair: %v", err)
	}
	if !strings.Contains(strings.Join(lines, "\n"), want) {
		t.Errorf("repair report does not say %q: %q", want, lines)
	}
	return lines
}

// appendGate holds a change between its log append and its apply.
type appendGate struct {
	changeLog
	appended, release chan struct{}
}

func (g *appendGate) AppendEncoded(encode func([]byte) []byte) (uint64, error) {
	seq, err := g.changeLog.AppendEncoded(encode)
	if g.appended != nil {
		close(g.appended)
		<-g.release
		g.appended = nil
	}
	return seq, err
}

// TestSnapshotWaitsForLoggedChanges: a change is logged, then applied; a snapshot's cut must
// come after the apply of every change logged before it, or a change logged but not yet
// applied when the cut is taken is neither in the export nor replayed after it. (A variant
// that logged the next change while the previous one was applied, with the cut under the
// apply lock only, lost the change here.)
func TestSnapshotWaitsForLoggedChanges(t *testing.T) {
	dir := t.TempDir()
	gate := &appendGate{appended: make(chan struct{}), release: make(chan struct{})}
	d := openT(t, dir, func(c *Config) {
		c.SnapshotBytes, c.SnapshotAge = 1<<40, time.Hour
		c.wrapLog = func(l changeLog) changeLog { gate.changeLog = l; return gate }
	})
	inserted := make(chan error, 1)
	go func() {
		_, err := d.Insert([]engine.Record{{Collection: "c", Doc: "d", TS: 1, Data: []byte("x")}})
		inserted <- err
	}()
	<-gate.appended // logged, not applied
	snapped := make(chan error, 1)
	go func() { snapped <- d.Snapshot(context.Background()) }()
	select {
	case err := <-snapped:
		t.Errorf("the snapshot was taken (err %v) while a logged change waited to be applied", err)
		close(gate.release)
	case <-time.After(200 * time.Millisecond):
		close(gate.release)
		if err := <-snapped; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-inserted; err != nil {
		t.Fatal(err)
	}
	closeT(t, d)
	d = openT(t, dir)
	defer closeT(t, d)
	var got []int64
	d.Engine.Range("c", "d", engine.RangeQuery{From: 0, To: 10}, func(ts int64, _ []byte) { got = append(got, ts) })
	if len(got) != 1 {
		t.Fatalf("after a restart from the snapshot the change is %v; want [1]", got)
	}
}

// TestRepairOfAFolderInUseChangesNothing: a repair run by mistake while a server has the folder
// open refuses before it touches anything. It used to set the damaged newest snapshot aside and
// write a salvaged one in its place, then find the log in use: the next start went on
// quietly with the changes before that snapshot gone.
func TestRepairOfAFolderInUseChangesNothing(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir, func(c *Config) { c.SegmentSize = 4 << 10; c.SnapshotBytes, c.SnapshotAge = 1<<40, time.Hour })
	changesWithSnapshots(t, d, rand.New(rand.NewPCG(9, 9)), 200, 1)
	snaps, _ := filepath.Glob(filepath.Join(dir, snapshotSubdir, "*"))
	if len(snaps) == 0 {
		t.Fatal("setup: no snapshot")
	}
	newest := snaps[len(snaps)-1]
	b, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff // damage the snapshot the server already loaded
	if err := os.WriteFile(newest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	listing := func() string {
		var names []string
		_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err == nil {
				names = append(names, p)
			}
			return nil
		})
		return strings.Join(names, "\n")
	}
	before := listing()
	if _, err := Repair(dir, quiet); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Repair of a folder in use: %v, want an error saying it is in use", err)
	}
	if after := listing(); after != before {
		t.Fatalf("a refused repair changed the folder:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got, _ := os.ReadFile(newest); !bytes.Equal(got, b) {
		t.Fatal("a refused repair rewrote the snapshot")
	}
	closeT(t, d)
}
