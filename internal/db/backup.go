package db

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/volandoo/fluxiondb/internal/auth"
	"github.com/volandoo/fluxiondb/internal/engine"
	"github.com/volandoo/fluxiondb/internal/snapshot"
	"github.com/volandoo/fluxiondb/internal/wal"
)

// BackupReport says what Backup copied.
type BackupReport struct {
	Snapshot snapshot.Info // the snapshot copied (Path "" when none was needed)
	Log      wal.CopyReport
	// Skipped lists snapshots passed over because they do not verify (start-up would set
	// them aside too).
	Skipped  []string
	Attempts int // >1 when files the server removed meanwhile made it start over
	Duration time.Duration
}

// backupIncomplete is the file a backup holds until it is complete; Open refuses a data
// folder that holds it, and Backup refuses to copy one.
const backupIncomplete = "BACKUP-INCOMPLETE"

// backupAttempts bounds the restarts: each one is caused by the server publishing a
// snapshot and removing old segments between Backup's listing and its opening the files,
// which takes a snapshot interval, not a moment.
const backupAttempts = 5

// errPublished marks an attempt that met files the server removed or added meanwhile (a
// snapshot was published): Backup starts over.
var errPublished = errors.New("a snapshot was published during the copy")

// Backup is `fluxiondb backup --data DIR DEST`: it copies the data folder dir into dest, a
// new folder, as a data folder a server starts from with the state dir had when the copy was
// made. A server may be running on dir meanwhile: Backup only reads there and takes no lock.
//
// The copy is the newest snapshot that verifies plus the log from its position to the last
// whole frame at the moment the log was read: it holds every change acknowledged before
// Backup started (under --fsync=interval and never too: it reads what the server handed to
// the OS), and each later change either whole or not at all, like a crash at that moment.
// Every byte copied is checked (the snapshot as start-up verifies it, every log frame's CRC,
// every finished segment's frame count, every logged change decoded as replay would), and
// damage start-up would refuse fails the backup.
//
// dest must not exist or be an empty folder. Until the copy is complete it holds a
// BACKUP-INCOMPLETE file, and Open refuses a folder that does: a backup killed half way
// cannot pass for a smaller data set. On failure, or when ctx ends, whatever Backup wrote is
// removed.
func Backup(ctx context.Context, dir, dest string, logger *slog.Logger) (BackupReport, error) {
	if logger == nil {
		logger = slog.Default()
	}
	start := time.Now()
	var rep BackupReport
	if fi, err := os.Stat(dir); err != nil {
		return rep, fmt.Errorf("data folder: %w", err)
	} else if !fi.IsDir() {
		return rep, fmt.Errorf("data folder %s is not a folder", dir)
	}
	walDir, snapDir := filepath.Join(dir, walSubdir), filepath.Join(dir, snapshotSubdir)
	if _, err := os.Stat(walDir); err != nil {
		return rep, fmt.Errorf("%s is not a FluxionDB data folder (a server run with --data there makes %s): %w",
			dir, walSubdir+string(filepath.Separator), err)
	}
	if _, err := os.Stat(filepath.Join(dir, backupIncomplete)); err == nil {
		return rep, fmt.Errorf("%s is a backup that did not finish (%s is there): it may hold only part of the "+
			"data, so it is not copied", dir, backupIncomplete)
	}
	if _, err := os.Stat(filepath.Join(dir, importIncomplete)); err == nil {
		return rep, fmt.Errorf("%s is an import that did not finish (%s is there): it may hold only part of the "+
			"data, so it is not copied; remove the folder and run `fluxiondb import` again", dir, importIncomplete)
	}
	created, err := makeBackupDir(dest, "fluxiondb backup of "+dir+" started at "+start.UTC().Format(time.RFC3339)+
		" has not finished: this folder may hold only part of the data. Remove it and make the backup again.\n")
	if err != nil {
		return rep, err
	}
	err = copyWithRetries(ctx, walDir, snapDir, dest, &rep, logger)
	if err == nil {
		err = wal.SyncDir(dest) // the copy's folders are durable before the marker goes
	}
	if err == nil {
		err = os.Remove(filepath.Join(dest, backupIncomplete))
	}
	if err == nil {
		err = wal.SyncDir(dest)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted: %w", err)
		}
		return rep, errors.Join(err, removeBackup(dest, created))
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// copyWithRetries runs backupOnce into dest, starting over (at most backupAttempts times in
// all) when the server published a snapshot between the listing and the opening of files.
func copyWithRetries(ctx context.Context, walDir, snapDir, dest string, rep *BackupReport, logger *slog.Logger) error {
	destWal, destSnap := filepath.Join(dest, walSubdir), filepath.Join(dest, snapshotSubdir)
	for {
		rep.Attempts++
		err := ctx.Err()
		if err == nil {
			err = cleanBackupDir(dest)
		}
		if err == nil {
			err = backupOnce(ctx, walDir, snapDir, destWal, destSnap, rep, logger)
		}
		if !errors.Is(err, errPublished) || rep.Attempts == backupAttempts {
			return err
		}
		logger.Info("backup: the server published a snapshot during the copy; starting over", "reason", err)
	}
}

// backupListed, when set (tests), runs after each listing of the snapshots: the server's
// pruning can strike there.
var backupListed func()

// backupOnce copies the newest snapshot that verifies and the log from its position (the
// whole log when no snapshot exists). A file gone, or a log that now starts later, while
// the snapshots have changed since the listing, is errPublished: start over.
func backupOnce(ctx context.Context, walDir, snapDir, destWal, destSnap string, rep *BackupReport, logger *slog.Logger) error {
	rep.Snapshot, rep.Log, rep.Skipped = snapshot.Info{}, wal.CopyReport{}, nil
	paths, err := snapshot.Paths(snapDir)
	if err != nil {
		return err
	}
	if backupListed != nil {
		backupListed()
	}
	published := func(err error) error {
		now, lerr := snapshot.Paths(snapDir)
		changed := lerr == nil && len(now) > 0 && (len(paths) == 0 || now[0] != paths[0])
		if changed && (errors.Is(err, os.ErrNotExist) || wal.IsCorruption(err)) {
			return fmt.Errorf("%w (%s is new)", errPublished, filepath.Base(now[0]))
		}
		return err
	}
	var firstDamage error
	for _, p := range paths {
		err := backupFrom(ctx, p, walDir, destWal, destSnap, rep)
		var ce *snapshot.CorruptionError
		if !errors.As(err, &ce) {
			return logDamage(published(err))
		}
		logger.Warn("backup: skipping a snapshot that does not verify", "file", p, "err", err)
		rep.Skipped = append(rep.Skipped, p)
		if firstDamage == nil {
			firstDamage = err
		}
	}
	// No snapshot (or none verifies): the log must hold every change from the first.
	r, err := wal.OpenReading(walDir, 1)
	if err = published(err); wal.IsCorruption(err) && firstDamage != nil {
		return fmt.Errorf("no snapshot verifies (%w) and the log does not hold every change from the first, so "+
			"the folder cannot be copied as a working whole: stop the server, copy the folder as it is "+
			"(cp -a) and run `%s` on one of the copies", firstDamage, wal.RepairCommand)
	}
	if err != nil {
		return logDamage(err)
	}
	defer r.Close()
	rep.Log, err = r.CopyTo(ctx, destWal, opCheck())
	return logDamage(err)
}

// backupFrom copies the snapshot at path and the log from its position. The snapshot and
// every segment it needs are opened before anything is read, so the server's pruning can
// only get in the way while they are opened.
func backupFrom(ctx context.Context, path, walDir, destWal, destSnap string, rep *BackupReport) error {
	seq, ok := snapshot.ParseFileName(filepath.Base(path))
	if !ok {
		return fmt.Errorf("snapshot %s: cannot tell its position from the name", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	r, err := wal.OpenReading(walDir, seq)
	if err != nil {
		return err // the caller words damage, once it knows no snapshot was published
	}
	defer r.Close()
	if rep.Snapshot, err = snapshot.Copy(ctx, f, destSnap); err != nil {
		return err
	}
	rep.Log, err = r.CopyTo(ctx, destWal, opCheck())
	return err
}

// opCheck returns a check for Reading.CopyTo that decodes each logged change as start-up's
// replay would, applying it nowhere: a frame whose CRC checks out over a change this build
// cannot read would stop a start from the copy.
func opCheck() func(uint64, []byte) error {
	var dec opDecoder
	return func(_ uint64, payload []byte) error {
		if err := dec.decode(payload, discard{}); err != nil {
			return fmt.Errorf("%w; a server would not start from this log either", err)
		}
		return nil
	}
}

// payloadCheck returns a check for wal.RepairFrom: a frame whose change start-up could not
// decode (its CRC sound) is damage, where repair cuts the log.
func payloadCheck() func(uint64, []byte) error {
	check := opCheck()
	return func(seq uint64, payload []byte) error {
		err := check(seq, payload)
		if err == nil || errors.Is(err, errNewerOp) {
			return nil // a newer build's change is not damage: repair leaves it
		}
		return fmt.Errorf("%w: %w", wal.ErrBadPayload, err)
	}
}

// discard is a target that applies nothing.
type discard struct{}

func (discard) insert([]engine.Record)                   {}
func (discard) deleteDoc(string, string)                 {}
func (discard) deleteCollection(string)                  {}
func (discard) deleteRecords([]engine.RecordKey)         {}
func (discard) deleteRange(string, string, int64, int64) {}
func (discard) setValue(string, string, string)          {}
func (discard) deleteValue(string, string)               {}
func (discard) putKey(auth.Hash, string, auth.Scope)     {}
func (discard) removeKey(auth.Hash)                      {}

// logDamage words damage in the source log for the operator.
func logDamage(err error) error {
	if wal.IsCorruption(err) {
		return fmt.Errorf("the log is damaged (%w); a server would not start from it either: stop the server, "+
			"copy the folder as it is (cp -a) and run `%s` on one of the copies", err, wal.RepairCommand)
	}
	return err
}

// makeBackupDir prepares dest holding the incomplete-backup marker with text, and says
// whether it created dest. A new dest is made as a temporary folder beside it, marker
// inside, and renamed into place, so that no moment leaves an empty dest a server would
// start from as an empty database. An existing dest must be an empty folder.
func makeBackupDir(dest, text string) (created bool, err error) {
	dest = filepath.Clean(dest) // "bk/": its parent is ".", not "bk"
	entries, err := os.ReadDir(dest)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if fi, lerr := os.Lstat(dest); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
			return false, fmt.Errorf("backup folder %s is a symbolic link to a folder that does not exist", dest)
		}
		tmp, err := os.MkdirTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".partial-")
		if err != nil {
			return false, fmt.Errorf("backup folder: %w", err)
		}
		err = os.Chmod(tmp, 0o755)
		if err == nil {
			err = writeMarker(tmp, backupIncomplete, text)
		}
		if err == nil {
			err = os.Rename(tmp, dest)
		}
		if err == nil {
			return true, wal.SyncDir(filepath.Dir(dest))
		}
		return false, errors.Join(fmt.Errorf("backup folder: %w", err), os.RemoveAll(tmp))
	case err != nil:
		return false, fmt.Errorf("backup folder: %w", err)
	case len(entries) > 0:
		return false, fmt.Errorf("backup folder %s is not empty: give a new or empty folder", dest)
	}
	if err := writeMarker(dest, backupIncomplete, text); err != nil {
		return false, errors.Join(fmt.Errorf("backup folder: %w", err), removeBackup(dest, false))
	}
	return false, nil
}

// writeMarker writes a marker file (BACKUP-INCOMPLETE, IMPORT-INCOMPLETE) into dir, durably.
func writeMarker(dir, name, text string) error {
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		return err
	}
	return wal.SyncDir(dir)
}

// cleanBackupDir empties dest's two sub-folders (an earlier attempt's copies), making them.
func cleanBackupDir(dest string) error {
	for _, sub := range []string{walSubdir, snapshotSubdir} {
		p := filepath.Join(dest, sub)
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("backup folder: %w", err)
		}
		if err := os.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("backup folder: %w", err)
		}
	}
	return nil
}

// removeBackup removes what Backup wrote in dest, and dest itself when Backup created it.
func removeBackup(dest string, created bool) error {
	if created {
		if err := os.RemoveAll(dest); err != nil {
			return fmt.Errorf("remove the unfinished backup: %w", err)
		}
		return nil
	}
	for _, name := range []string{walSubdir, snapshotSubdir, backupIncomplete} {
		p := filepath.Join(dest, name)
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove the unfinished backup: %w", err)
		}
	}
	return nil
}
