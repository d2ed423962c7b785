package db

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

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

// backupIncomplete is the file Backup keeps in its destination until the copy is complete;
// Open refuses a data folder that holds it.
const backupIncomplete = "BACKUP-INCOMPLETE"

// backupAttempts bounds the restarts: each one is caused by the server publishing a
// snapshot and removing old segments between Backup's listing and its opening the files,
// which takes a snapshot interval, not a moment.
const backupAttempts = 5

// Backup is `fluxiondb backup --data DIR DEST`: it copies the data folder dir into dest, a
// new folder, as a data folder a server starts from with the state dir had when the copy was
// made. A server may be running on dir meanwhile: Backup only reads there and takes no lock.
//
// The copy is the newest snapshot that verifies plus the log from its position to the last
// whole frame at the moment the log was read: it holds every change acknowledged before
// Backup started (under --fsync=interval and never too: it reads what the server handed to
// the OS), and each later change either whole or not at all, like a crash at that moment.
// Every byte copied is checked (the snapshot as start-up verifies it, every log frame's CRC,
// every finished segment's frame count). dest must not exist or be an empty folder; on
// failure whatever Backup wrote there is removed. Until the copy is complete dest holds a
// BACKUP-INCOMPLETE file, and Open refuses a folder that does: a backup killed half way
// cannot pass for a smaller data set.
func Backup(dir, dest string, logger *slog.Logger) (BackupReport, error) {
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
	created, err := makeBackupDir(dest)
	if err != nil {
		return rep, err
	}
	// Until the copy is complete a marker says so, and a server refuses to start from the
	// folder: a backup killed half way must not pass for a (smaller) data set.
	marker := filepath.Join(dest, backupIncomplete)
	err = os.WriteFile(marker, []byte("fluxiondb backup of "+dir+" started at "+start.UTC().Format(time.RFC3339)+
		" has not finished: this folder may hold only part of the data. Remove it and make the backup again.\n"), 0o644)
	if err == nil {
		err = wal.SyncDir(dest)
	}
	if err == nil {
		err = copyWithRetries(walDir, snapDir, dest, &rep, logger)
	}
	if err == nil {
		err = wal.SyncDir(dest) // the copy's folders are durable before the marker goes
	}
	if err == nil {
		err = os.Remove(marker)
	}
	if err == nil {
		err = wal.SyncDir(dest)
	}
	if err != nil {
		return rep, errors.Join(err, removeBackup(dest, created))
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// copyWithRetries runs backupOnce into dest, starting over (at most backupAttempts times in
// all) when a file the listing named is gone: the server published a snapshot and removed
// what it covered between the listing and the opening.
func copyWithRetries(walDir, snapDir, dest string, rep *BackupReport, logger *slog.Logger) error {
	destWal, destSnap := filepath.Join(dest, walSubdir), filepath.Join(dest, snapshotSubdir)
	for {
		rep.Attempts++
		err := cleanBackupDir(dest)
		if err == nil {
			err = backupOnce(walDir, snapDir, destWal, destSnap, rep, logger)
		}
		if !errors.Is(err, os.ErrNotExist) || rep.Attempts == backupAttempts {
			return err
		}
		logger.Info("backup: a file was removed by the server during the copy; starting over", "err", err)
	}
}

// backupListed, when set (tests), runs after each listing of the snapshots: the server's
// pruning can strike there.
var backupListed func()

// backupOnce copies the newest snapshot that verifies and the log from its position (the
// whole log when no snapshot exists).
func backupOnce(walDir, snapDir, destWal, destSnap string, rep *BackupReport, logger *slog.Logger) error {
	rep.Snapshot, rep.Log, rep.Skipped = snapshot.Info{}, wal.CopyReport{}, nil
	paths, err := snapshot.Paths(snapDir)
	if err != nil {
		return err
	}
	if backupListed != nil {
		backupListed()
	}
	var firstDamage error
	for _, p := range paths {
		err := backupFrom(p, walDir, destWal, destSnap, rep)
		var ce *snapshot.CorruptionError
		if !errors.As(err, &ce) {
			return err
		}
		logger.Warn("backup: skipping a snapshot that does not verify", "file", p, "err", err)
		rep.Skipped = append(rep.Skipped, p)
		if firstDamage == nil {
			firstDamage = err
		}
	}
	// No snapshot (or none verifies): the log must hold every change from the first.
	r, err := wal.OpenReading(walDir, 1)
	if wal.IsCorruption(err) && firstDamage != nil {
		return fmt.Errorf("no snapshot verifies (%w) and the log does not hold every change from the first, so "+
			"the folder cannot be copied as a working whole: stop the server, copy the folder as it is "+
			"(cp -a) and run `%s` on one of the copies", firstDamage, wal.RepairCommand)
	}
	if err != nil {
		return logDamage(err)
	}
	defer r.Close()
	rep.Log, err = r.CopyTo(destWal)
	return logDamage(err)
}

// backupFrom copies the snapshot at path and the log from its position. The snapshot and
// every segment it needs are opened before anything is read, so the server's pruning can
// only get in the way during the listing (an os.ErrNotExist error: Backup starts over).
func backupFrom(path, walDir, destWal, destSnap string, rep *BackupReport) error {
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
	if wal.IsCorruption(err) && newerSnapshot(path) {
		// The segments after this snapshot were removed: two newer snapshots were
		// published since the listing. Not damage: start over.
		return fmt.Errorf("%w (snapshots were published meanwhile): %w", os.ErrNotExist, err)
	}
	if err != nil {
		return logDamage(err)
	}
	defer r.Close()
	if rep.Snapshot, err = snapshot.Copy(f, destSnap); err != nil {
		return err
	}
	rep.Log, err = r.CopyTo(destWal)
	return logDamage(err)
}

// newerSnapshot reports whether the folder of the snapshot at path now holds a newer one.
func newerSnapshot(path string) bool {
	paths, err := snapshot.Paths(filepath.Dir(path))
	return err == nil && len(paths) > 0 && paths[0] != path
}

// logDamage words damage in the source log for the operator.
func logDamage(err error) error {
	if wal.IsCorruption(err) {
		return fmt.Errorf("the log is damaged (%w); a server would not start from it either: stop the server, "+
			"copy the folder as it is (cp -a) and run `%s` on one of the copies", err, wal.RepairCommand)
	}
	return err
}

// makeBackupDir creates dest, or accepts it when it is an empty folder; created says which.
func makeBackupDir(dest string) (created bool, err error) {
	entries, err := os.ReadDir(dest)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.Mkdir(dest, 0o755); err != nil {
			return false, fmt.Errorf("backup folder: %w", err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("backup folder: %w", err)
	case len(entries) > 0:
		return false, fmt.Errorf("backup folder %s is not empty: give a new or empty folder", dest)
	}
	return false, nil
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
	for _, sub := range []string{walSubdir, snapshotSubdir, backupIncomplete} {
		if err := os.RemoveAll(filepath.Join(dest, sub)); err != nil {
			return fmt.Errorf("backup folder: %w", err)
		}
	}
	if created {
		if err := os.Remove(dest); err != nil {
			return fmt.Errorf("backup folder: %w", err)
		}
	}
	return nil
}
