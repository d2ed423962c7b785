package db

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/volandoo/fluxiondb/internal/engine"
	"github.com/volandoo/fluxiondb/internal/snapshot"
	"github.com/volandoo/fluxiondb/internal/wal"
)

// backupT backs dir up into a new folder and returns it with the report.
func backupT(t *testing.T, dir string) (string, BackupReport) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "backup")
	rep, err := Backup(context.Background(), dir, dest, quiet)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	return dest, rep
}

// stoppedFolder makes a data folder holding n random changes (seeded), then a snapshot when
// snapshot is set, with its server stopped; want is its state.
func stoppedFolder(t *testing.T, seed uint64, n int, snapshot bool) (dir, want string) {
	t.Helper()
	dir = t.TempDir()
	d := openT(t, dir)
	randomChanges(t, d, rand.New(rand.NewPCG(seed, seed)), n)
	if snapshot {
		if err := d.Snapshot(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want = dump(d)
	closeT(t, d)
	return dir, want
}

// TestBackupSameState: a backup of a folder holding snapshots and log after them starts
// with exactly the state of the source — every kind of change, scoped keys included — and
// holds one snapshot plus the log from its position.
func TestBackupSameState(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir, func(c *Config) { c.SegmentSize = 4 << 10 })
	changesWithSnapshots(t, d, rand.New(rand.NewPCG(7, 7)), 400, 2)
	// Acknowledge everything: a change waited for is written, and so is every one before it.
	c, err := d.SetValue("z", "last", "change")
	if err == nil {
		err = d.Wait(context.Background(), c)
	}
	if err != nil {
		t.Fatal(err)
	}
	want := dump(d)

	dest, rep := backupT(t, dir) // while the source is open, as under a running server
	closeT(t, d)
	if rep.Snapshot.Path == "" || rep.Log.Frames == 0 || rep.Log.TornBytes != 0 || len(rep.Skipped) != 0 {
		t.Fatalf("report %+v: want a snapshot, log frames after it, nothing torn or skipped", rep)
	}
	snaps, _ := snapshot.Paths(filepath.Join(dest, snapshotSubdir))
	if len(snaps) != 1 || filepath.Base(snaps[0]) != filepath.Base(rep.Snapshot.Path) {
		t.Errorf("backup holds snapshots %v, want only the newest (%s)", snaps, rep.Snapshot.Path)
	}
	if first, _, _ := wal.FirstSeq(filepath.Join(dest, walSubdir)); first > rep.Snapshot.Seq {
		t.Errorf("backup log starts at %d, after the snapshot's position %d", first, rep.Snapshot.Seq)
	}
	r := openT(t, dest)
	defer closeT(t, r)
	if got := dump(r); got != want {
		t.Errorf("restored state differs from the source\n--- source\n%s\n--- backup\n%s", want, got)
	}
	s := openT(t, dir)
	defer closeT(t, s)
	if dump(s) != want { // and the source is untouched
		t.Errorf("source state changed by the backup")
	}
}

// TestBackupWhileWriting: backups taken while writers insert and snapshots are published
// and pruned as fast as they can be each hold every change acknowledged before the backup
// began, and each writer's changes as a prefix (a change in the backup implies all of that
// writer's earlier ones): a crash-consistent copy. Tiny segments and snapshot thresholds
// make the server remove files under the backup's feet.
func TestBackupWhileWriting(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir, func(c *Config) {
		c.Fsync = wal.SyncInterval
		c.SegmentSize = 8 << 10
		c.SnapshotBytes = 32 << 10
		c.SnapshotCheck = time.Millisecond
	})
	defer closeT(t, d)
	const writers = 4
	var acked [writers]atomic.Int64 // highest ts acknowledged per writer (ts run 1, 2, 3, …)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			doc := fmt.Sprintf("w%d", w)
			for ts := int64(1); ; ts++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := d.Insert([]engine.Record{{Collection: "c", Doc: doc, TS: ts, Data: []byte(`{"x":1}`)}})
				if err == nil {
					err = d.Wait(context.Background(), c)
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				acked[w].Store(ts)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	snapshots := 0
	for i := range 6 {
		time.Sleep(30 * time.Millisecond)
		var before [writers]int64
		for w := range writers {
			before[w] = acked[w].Load()
		}
		dest, rep := backupT(t, dir)
		if rep.Snapshot.Path != "" {
			snapshots++
		}
		t.Logf("backup %d: snapshot at %d, log %d…%d, %d attempt(s)", i, rep.Snapshot.Seq, rep.Log.First, rep.Log.Last, rep.Attempts)
		r := openT(t, dest)
		for w := range writers {
			var got []int64
			r.Engine.Range("c", fmt.Sprintf("w%d", w), engine.RangeQuery{From: math.MinInt64, To: math.MaxInt64},
				func(ts int64, _ []byte) { got = append(got, ts) })
			for j, ts := range got {
				if ts != int64(j+1) {
					t.Fatalf("backup %d, writer %d: records %v…: not a prefix (hole before ts %d)", i, w, got[:min(len(got), 10)], ts)
				}
			}
			if int64(len(got)) < before[w] {
				t.Errorf("backup %d, writer %d: holds %d records, but %d were acknowledged before it began (report %+v)",
					i, w, len(got), before[w], rep)
			}
		}
		closeT(t, r)
	}
	if snapshots == 0 {
		t.Errorf("no backup included a snapshot: the test did not exercise pruning under the copy")
	}
}

// TestBackupRestartsWhenFilesGo: when snapshots are published between the backup's listing
// and its opening of the files, one is harmless (the server keeps the log of the older
// snapshot), two remove the snapshot it listed, and the first one ever removes the log's
// first segments: it starts over, once, and the copy is still whole.
func TestBackupRestartsWhenFilesGo(t *testing.T) {
	for _, tc := range []struct {
		before, during, attempts int // snapshots before the backup, and between its listing and its opening
	}{{2, 1, 1}, {2, 2, 2}, {0, 1, 2}} {
		t.Run(fmt.Sprintf("snapshots=%d+%d", tc.before, tc.during), func(t *testing.T) {
			dir := t.TempDir()
			d := openT(t, dir, func(c *Config) { c.SegmentSize = 2 << 10 })
			defer closeT(t, d)
			rng := rand.New(rand.NewPCG(9, 9))
			randomChanges(t, d, rng, 200)
			for range tc.before {
				randomChanges(t, d, rng, 200)
				if err := d.Snapshot(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			fired := false
			backupListed = func() {
				if fired {
					return
				}
				fired = true
				for range tc.during {
					randomChanges(t, d, rng, 200)
					if err := d.Snapshot(context.Background()); err != nil {
						t.Error(err)
					}
				}
				if err := d.p.log.Flush(context.Background()); err != nil {
					t.Error(err)
				}
			}
			defer func() { backupListed = nil }()
			dest, rep := backupT(t, dir)
			if rep.Attempts != tc.attempts {
				t.Errorf("%d attempts, want %d (report %+v)", rep.Attempts, tc.attempts, rep)
			}
			want := dump(d)
			r := openT(t, dest)
			defer closeT(t, r)
			if dump(r) != want { // the log is read after the hook: every change is in it
				t.Errorf("restored state differs from the source")
			}
		})
	}
}

// TestBackupLeavesTornTailOut: the end of the newest segment that is not a whole frame (a
// frame being written, as a crash leaves it) is left out and reported; the rest is kept.
func TestBackupLeavesTornTailOut(t *testing.T) {
	dir, want := stoppedFolder(t, 3, 200, false)
	segs, _ := filepath.Glob(filepath.Join(dir, walSubdir, "*.wal"))
	last := segs[len(segs)-1]
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{40, 0, 0, 0, 1, 2, 3}); err != nil { // a header, cut short
		t.Fatal(err)
	}
	f.Close()

	dest, rep := backupT(t, dir)
	if rep.Log.TornBytes != 7 || rep.Log.TornFile != last {
		t.Errorf("report torn %d bytes of %q, want 7 of %s", rep.Log.TornBytes, rep.Log.TornFile, last)
	}
	r := openT(t, dest)
	defer closeT(t, r)
	if got := dump(r); got != want {
		t.Errorf("restored state differs from the source")
	}
}

// TestBackupDamage: damage a start-up would refuse fails the backup with an error that
// names the file and the repair command, and leaves no half-made backup behind; a damaged
// newest snapshot is passed over for the older one, as start-up does.
func TestBackupDamage(t *testing.T) {
	build := func(t *testing.T) (dir, want string) {
		dir = t.TempDir()
		d := openT(t, dir, func(c *Config) { c.SegmentSize = 2 << 10 })
		changesWithSnapshots(t, d, rand.New(rand.NewPCG(5, 5)), 300, 2)
		want = dump(d)
		closeT(t, d)
		return dir, want
	}

	t.Run("log", func(t *testing.T) {
		dir, _ := build(t)
		segs, _ := filepath.Glob(filepath.Join(dir, walSubdir, "*.wal"))
		if len(segs) < 3 {
			t.Fatalf("want several segments, have %d", len(segs))
		}
		bad := segs[len(segs)-2] // a finished segment after the snapshots
		flipByte(t, bad, 20)
		dest := filepath.Join(t.TempDir(), "backup")
		_, err := Backup(context.Background(), dir, dest, quiet)
		if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "fluxiondb repair") {
			t.Fatalf("Backup of a damaged log: %v; want an error naming %s and the repair command", err, bad)
		}
		if n := strings.Count(err.Error(), "the log is damaged"); n != 1 {
			t.Errorf("the error says what is wrong %d times: %v", n, err)
		}
		if _, serr := os.Stat(dest); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("a failed backup left %s behind (%v)", dest, serr)
		}
	})

	t.Run("newest segment", func(t *testing.T) {
		// A bad frame that intact frames follow is damage, not a frame being written, even
		// in the newest segment: a server refuses to start from it, and the backup fails
		// rather than copy the frames before it and drop the rest.
		dir, _ := build(t)
		segs, _ := filepath.Glob(filepath.Join(dir, walSubdir, "*.wal"))
		bad := segs[len(segs)-1]
		if fi, err := os.Stat(bad); err != nil || fi.Size() < 200 {
			t.Fatalf("newest segment %s too small to damage in the middle: %v", bad, err)
		}
		flipByte(t, bad, 20)
		dest := filepath.Join(t.TempDir(), "backup")
		_, err := Backup(context.Background(), dir, dest, quiet)
		if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "fluxiondb repair") {
			t.Fatalf("Backup with the newest segment damaged: %v; want an error naming %s and the repair command", err, bad)
		}
		if _, serr := os.Stat(dest); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("a failed backup left %s behind (%v)", dest, serr)
		}
		if _, oerr := Open(Config{Dir: dir, Logger: quiet}); oerr == nil {
			t.Errorf("a server starts from the folder the backup refused")
		}
	})

	t.Run("change that does not decode", func(t *testing.T) {
		// A frame whose CRC checks out but whose change this build cannot read stops a
		// start; the backup checks every change the same way.
		dir := t.TempDir()
		d := openT(t, dir)
		randomChanges(t, d, rand.New(rand.NewPCG(8, 8)), 50)
		if _, err := d.p.log.AppendEncoded(func(b []byte) []byte { return append(b, 'Z', 1, 2, 3) }); err != nil {
			t.Fatal(err)
		}
		closeT(t, d)
		if _, err := Open(Config{Dir: dir, Logger: quiet}); err == nil {
			t.Fatalf("a server starts from a log holding an unreadable change")
		}
		dest := filepath.Join(t.TempDir(), "backup")
		_, err := Backup(context.Background(), dir, dest, quiet)
		if err == nil || !strings.Contains(err.Error(), "would not start") || !strings.Contains(err.Error(), "frame") {
			t.Fatalf("Backup of a log holding an unreadable change: %v", err)
		}
		if _, serr := os.Stat(dest); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("a failed backup left %s behind (%v)", dest, serr)
		}
	})

	t.Run("snapshot", func(t *testing.T) {
		dir, want := build(t)
		snaps, _ := snapshot.Paths(filepath.Join(dir, snapshotSubdir))
		if len(snaps) != 2 {
			t.Fatalf("want 2 snapshots, have %v", snaps)
		}
		flipByte(t, snaps[0], 40) // the newest
		dest, rep := backupT(t, dir)
		if len(rep.Skipped) != 1 || rep.Skipped[0] != snaps[0] || filepath.Base(rep.Snapshot.Path) != filepath.Base(snaps[1]) {
			t.Errorf("report %+v: want %s skipped and %s copied", rep, snaps[0], snaps[1])
		}
		r := openT(t, dest)
		defer closeT(t, r)
		if got := dump(r); got != want {
			t.Errorf("restored state differs from the source")
		}
		if _, err := os.Stat(snaps[0]); err != nil {
			t.Errorf("the backup touched the source's damaged snapshot: %v", err)
		}
	})
}

// TestBackupIncompleteIsRefused: while the copy runs its folder holds the BACKUP-INCOMPLETE
// marker, which a finished backup no longer has; a server refuses to start from a folder
// holding it (a backup killed half way), saying what it is.
func TestBackupIncompleteIsRefused(t *testing.T) {
	dir, _ := stoppedFolder(t, 2, 50, false)
	dest := filepath.Join(t.TempDir(), "backup")
	sawMarker := false
	backupListed = func() {
		_, err := os.Stat(filepath.Join(dest, backupIncomplete))
		sawMarker = err == nil
	}
	defer func() { backupListed = nil }()
	if _, err := Backup(context.Background(), dir, dest, quiet); err != nil {
		t.Fatal(err)
	}
	if !sawMarker {
		t.Errorf("no %s in the destination while the copy ran", backupIncomplete)
	}
	if _, err := os.Stat(filepath.Join(dest, backupIncomplete)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a finished backup still holds %s (%v)", backupIncomplete, err)
	}

	// What a backup killed during the copy leaves: the marker stays.
	if err := os.WriteFile(filepath.Join(dest, backupIncomplete), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Config{Dir: dest, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "backup that did not finish") || !strings.Contains(err.Error(), dest) {
		t.Fatalf("Open of an unfinished backup: %v; want a refusal that says what the folder is", err)
	}
	// Nor is it copied: a backup of it would not hold the marker and would start.
	_, err = Backup(context.Background(), dest, filepath.Join(t.TempDir(), "again"), quiet)
	if err == nil || !strings.Contains(err.Error(), "backup that did not finish") {
		t.Fatalf("Backup of an unfinished backup: %v; want a refusal", err)
	}
	// A new destination is made beside it and renamed into place: nothing else is left there.
	if entries, _ := os.ReadDir(filepath.Dir(dest)); len(entries) != 1 {
		t.Errorf("the destination's parent holds %d entries, want only the backup", len(entries))
	}
}

// TestBackupInterrupted: when its context ends (SIGINT, SIGTERM) the backup stops and removes
// what it wrote.
func TestBackupInterrupted(t *testing.T) {
	dir, _ := stoppedFolder(t, 4, 100, true)
	ctx, cancel := context.WithCancel(context.Background())
	backupListed = cancel // interrupted while copying
	defer func() { backupListed = nil }()
	dest := filepath.Join(t.TempDir(), "backup")
	_, err := Backup(ctx, dir, dest, quiet)
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("Backup interrupted: %v", err)
	}
	if _, serr := os.Stat(dest); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("an interrupted backup left %s behind (%v)", dest, serr)
	}
}

// TestBackupOfIdleFolderStartsQuietly: a backup taken when nothing changed since the last
// snapshot starts without the warning of a log that lost segments after the snapshot.
func TestBackupOfIdleFolderStartsQuietly(t *testing.T) {
	dir, want := stoppedFolder(t, 6, 100, true)
	dest, _ := backupT(t, dir)
	var logs strings.Builder
	r := openT(t, dest, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	defer closeT(t, r)
	if dump(r) != want {
		t.Errorf("restored state differs from the source")
	}
	if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("the backup starts with a warning:\n%s", logs.String())
	}
}

// TestBackupDestination: the destination must be new or an empty folder; a folder that
// holds anything is refused and left as it was.
func TestBackupDestination(t *testing.T) {
	dir, want := stoppedFolder(t, 1, 50, false)

	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Backup(context.Background(), dir, full, quiet); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Backup into a folder that holds a file: %v, want a 'not empty' error", err)
	}
	if entries, _ := os.ReadDir(full); len(entries) != 1 {
		t.Errorf("the refused destination now holds %d entries", len(entries))
	}

	empty := t.TempDir()
	if _, err := Backup(context.Background(), dir, empty, quiet); err != nil {
		t.Fatalf("Backup into an empty folder: %v", err)
	}
	r := openT(t, empty)
	defer closeT(t, r)
	if got := dump(r); got != want {
		t.Errorf("restored state differs from the source")
	}
	if _, err := Backup(context.Background(), filepath.Join(dir, "nope"), filepath.Join(t.TempDir(), "b"), quiet); err == nil {
		t.Errorf("Backup of a missing folder succeeded")
	}

	// A new destination given with a trailing slash ("bk/"): its parent is the folder above.
	slash := filepath.Join(t.TempDir(), "bk") + string(filepath.Separator)
	if _, err := Backup(context.Background(), dir, slash, quiet); err != nil {
		t.Fatalf("Backup into a new folder given with a trailing slash: %v", err)
	}
	r2 := openT(t, slash)
	defer closeT(t, r2)
	if got := dump(r2); got != want {
		t.Errorf("restored state (trailing slash) differs from the source")
	}
}

// TestBackupRefusesAnUnfinishedImport: a start refuses a folder an import did not finish, and
// so does a backup; the copy, without the marker, started as if it were whole.
func TestBackupRefusesAnUnfinishedImport(t *testing.T) {
	dir, _ := stoppedFolder(t, 1, 50, false)
	if err := os.WriteFile(filepath.Join(dir, importIncomplete), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "bk")
	_, err := Backup(context.Background(), dir, dest, quiet)
	if err == nil || !strings.Contains(err.Error(), "import that did not finish") {
		t.Fatalf("Backup of an unfinished import: %v; want a refusal", err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused backup left %s behind (%v)", dest, err)
	}
}
