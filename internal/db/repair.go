package db

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/volandoo/fluxiondb/internal/auth"
	"github.com/volandoo/fluxiondb/internal/engine"
	"github.com/volandoo/fluxiondb/internal/snapshot"
	"github.com/volandoo/fluxiondb/internal/wal"
)

// Repair is `fluxiondb repair --data DIR`: the explicit operator act that makes a damaged
// data folder start again, keeping everything that can still be read and moving the rest
// aside (never deleting it). It returns one line per action, for the operator.
//
//   - The log is cut at its first bad frame or sequence gap from the position start-up
//     replays it from (wal.RepairFrom); the dropped bytes go to wal/corrupt-<time>/.
//   - If no snapshot verifies: when the log still holds every change from the first, the
//     snapshots are set aside (<name>.corrupt) and start-up replays the whole log;
//     otherwise the newest one is salvaged: what reads before the damage is written as a
//     new snapshot at the same sequence number (the log after it still applies), and the
//     damaged file is renamed <name>.corrupt. A damaged newest snapshot with an older good
//     one needs no repair: start-up falls back on its own.
//   - A log whose first segments are gone (it starts after the snapshot's position) is
//     bridged with a snapshot at its first position (bridgeMissingFrames).
//
// The server must not be running (the log's folder lock is taken).
func Repair(dir string, logger *slog.Logger) ([]string, error) {
	if logger == nil {
		logger = slog.Default()
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("data folder %s is not a folder", dir)
	}
	// What a start refuses, repair cannot mend: say so rather than "repair done".
	if err := refuseFolder(dir, false); err != nil {
		return nil, err
	}
	walDir := filepath.Join(dir, walSubdir)
	snapDir := filepath.Join(dir, snapshotSubdir)
	if !isOurs(dir) {
		return nil, fmt.Errorf("data folder %s holds no log segment or snapshot of this server: nothing to repair", dir)
	}
	// Nothing is touched before the folder's lock is held: a repair run by mistake against a
	// folder a server uses must change nothing (it set damaged snapshots aside and wrote a
	// salvaged one, then found the log in use).
	if _, err := os.Stat(walDir); err == nil {
		lock, err := wal.Lock(walDir)
		if err != nil {
			return nil, fmt.Errorf("repair: %w; stop the server first", err)
		}
		defer lock.Close()
	}
	// The snapshots first: they decide the position start-up replays the log from, and only
	// the log from there must be sound. Damage before it is left alone: cutting the log there
	// would throw away every frame after it, the newest included.
	snapLine, base, err := repairSnapshots(walDir, snapDir, logger)
	if err != nil {
		return nil, err
	}
	var out []string
	if _, err := os.Stat(walDir); err == nil {
		rep, err := wal.RepairFrom(walDir, base.seq, payloadCheck())
		if err != nil {
			return out, fmt.Errorf("repair the log: %w", err)
		}
		if rep.Clean {
			out = append(out, logClean)
		} else {
			cut := fmt.Sprintf("cut %s at offset %d", rep.File, rep.Offset)
			switch {
			case !rep.Cut: // only stray files were moved
				cut = "no frame of the log was cut"
			case rep.File == "": // the damage was in the first segment needed: none is kept
				cut = "kept no segment"
			}
			out = append(out, fmt.Sprintf("log: %s; %s, moved %d bytes (%s) to %s",
				rep.Reason, cut, rep.DroppedBytes, strings.Join(rep.Moved, ", "), rep.MovedTo))
		}
	}
	out = append(out, snapLine)
	line, err := bridgeMissingFrames(walDir, snapDir, base, logger)
	if err != nil {
		return out, err
	}
	if line != "" {
		// Frames were missing, which the log's own check (damage within what it holds) does
		// not see: its "no damage found" would contradict the line that says so.
		out = slices.DeleteFunc(out, func(l string) bool { return l == logClean })
		out = append(out, line)
	}
	return out, nil
}

// logClean is repair's report of a log with no damaged frame.
const logClean = "log: no damage found"

// startBase is what start-up will load after repair: the snapshot file (path "" for none)
// and the position it replays the log from.
type startBase struct {
	path string
	seq  uint64
}

// repairSnapshots makes a snapshot loadable, or unneeded, and returns what it did and what
// start-up will then start from.
func repairSnapshots(walDir, snapDir string, logger *slog.Logger) (string, startBase, error) {
	before, _ := snapshot.Paths(snapDir)
	info, err := snapshot.Latest(snapDir, logger)
	var ce *snapshot.CorruptionError
	switch {
	case err == nil && info.Path != "" && len(before) > 0 && before[0] != info.Path: // Paths: newest first
		// Latest set damaged newer snapshots aside for this older one: say so, since the
		// changes they held now come from the log alone (and where the log is damaged
		// after this snapshot, from nowhere).
		var aside []string
		for _, p := range before {
			if p > info.Path {
				aside = append(aside, p+".corrupt")
			}
		}
		return fmt.Sprintf("snapshots: the newest did not verify and was moved aside (%s); start-up loads the "+
				"older %s and replays the log from its position %d", strings.Join(aside, ", "), info.Path, info.Seq),
			startBase{info.Path, max(info.Seq, 1)}, nil
	case err == nil || errors.Is(err, snapshot.ErrNoSnapshot):
		return "snapshots: a valid snapshot is in place (or none is needed)", startBase{info.Path, max(info.Seq, 1)}, nil
	case errors.As(err, &ce):
		// When the log still holds every change from the first, no snapshot is needed:
		// setting the damaged ones aside loses nothing (start-up replays the whole log).
		// Otherwise salvage what reads of the newest.
		first, ok, ferr := wal.FirstSeq(walDir)
		if ferr != nil && !errors.Is(ferr, os.ErrNotExist) {
			return "", startBase{}, fmt.Errorf("check the log: %w", ferr)
		}
		if ok && first == 1 {
			line, err := setSnapshotsAside(snapDir, ce)
			return line, startBase{seq: 1}, err
		}
		return salvageSnapshot(snapDir, ce, logger)
	default:
		return "", startBase{}, fmt.Errorf("check the snapshots: %w", err)
	}
}

// bridgeMissingFrames handles a log that starts after the position start-up must replay it
// from (the snapshot's, or 1 without one): its first segments are gone and no snapshot
// covers them, so the server cannot start. The changes in the missing frames are lost
// whatever is done; what remains is kept by writing the newest snapshot's state (or an
// empty one) as a snapshot at the log's first position, from where the log replays.
func bridgeMissingFrames(walDir, snapDir string, base startBase, logger *slog.Logger) (string, error) {
	first, ok, err := wal.FirstSeq(walDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("check the log: %w", err)
	}
	if !ok || first <= base.seq {
		return "", nil
	}
	tmp, from := emptyState(), "an empty state"
	if base.path != "" {
		if tmp, err = loadState(base.path); err != nil {
			return "", fmt.Errorf("load %s: %w", base.path, err)
		}
		from = "the state of " + base.path
	}
	res, err := writeStateSnapshot(tmp, snapDir, first, logger)
	if err != nil {
		return "", fmt.Errorf("write a snapshot at the log's start: %w", err)
	}
	return fmt.Sprintf("log: it starts at sequence %d, but start-up needs it from %d: the frames in between are "+
		"missing (segment files removed?) and their changes are lost; wrote %s holding %s, from which the log "+
		"replays", first, base.seq, res.Path, from), nil
}

// setSnapshotsAside renames every snapshot (none verifies) to <name>.corrupt.
func setSnapshotsAside(snapDir string, ce *snapshot.CorruptionError) (string, error) {
	paths, err := snapshot.Paths(snapDir)
	if err != nil {
		return "", err
	}
	for _, p := range paths {
		if err := os.Rename(p, p+".corrupt"); err != nil {
			return "", fmt.Errorf("move damaged snapshot aside: %w", err)
		}
	}
	if err := wal.SyncDir(snapDir); err != nil {
		return "", fmt.Errorf("sync %s: %w", snapDir, err)
	}
	return fmt.Sprintf("snapshot: %s was damaged (%s at offset %d) and no other snapshot verifies; the log still "+
		"holds every change from the first, so nothing is lost: %d snapshot file(s) moved aside as <name>.corrupt, "+
		"and the next start rebuilds the state from the whole log", ce.File, ce.Reason, ce.Offset, len(paths)), nil
}

// salvageSnapshot rewrites the readable prefix of a damaged snapshot under its own name.
func salvageSnapshot(snapDir string, ce *snapshot.CorruptionError, logger *slog.Logger) (string, startBase, error) {
	name := filepath.Base(ce.File)
	seq, ok := snapshot.ParseFileName(name)
	if !ok || snapshot.FileName(seq) != name {
		return "", startBase{}, fmt.Errorf("damaged snapshot %s: cannot tell its sequence number from the name", ce.File)
	}
	tmp, loadErr := loadState(ce.File)
	if loadErr == nil {
		return "", startBase{}, fmt.Errorf("snapshot %s reads fully now; nothing to salvage", ce.File)
	}
	aside := ce.File + ".corrupt"
	if err := os.Rename(ce.File, aside); err != nil {
		return "", startBase{}, fmt.Errorf("move damaged snapshot aside: %w", err)
	}
	res, err := writeStateSnapshot(tmp, snapDir, seq, logger)
	if err != nil {
		return "", startBase{}, fmt.Errorf("write the salvaged snapshot: %w", err)
	}
	return fmt.Sprintf("snapshot: %s was damaged (%v); kept the %d records and %d values read before the damage in %s; "+
		"the rest of that snapshot is lost; the damaged file is kept as %s",
		ce.File, loadErr, res.Records, res.Values, res.Path, aside), startBase{res.Path, seq}, nil
}

func emptyState() *DB { return &DB{Engine: engine.New(), Keys: auth.New("")} }

// loadState reads a snapshot file into a fresh in-memory state; on damage it returns what
// read before it along with the error.
func loadState(path string) (*DB, error) {
	tmp := emptyState()
	l := &loader{d: tmp}
	_, err := snapshot.Load(path, l)
	l.flush()
	return tmp, err
}

// writeStateSnapshot writes the whole state of tmp (a DB repair rebuilt in memory) as the
// snapshot at seq.
func writeStateSnapshot(tmp *DB, snapDir string, seq uint64, logger *slog.Logger) (snapshot.Result, error) {
	return snapshot.Write(snapDir, seq, func(e snapshot.Exporter) error { return tmp.Engine.Export(e) },
		keyBlobs(tmp.Keys.Export()), snapshot.WriteOptions{Logger: logger})
}
