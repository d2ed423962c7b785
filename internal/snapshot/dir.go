package snapshot

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// list returns the sequence numbers of the snapshot files in dir, ascending.
func list(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("snapshot: list %s: %w", dir, err)
	}
	var seqs []uint64
	for _, e := range entries {
		if seq, ok := parseFileName(e.Name()); ok && !e.IsDir() {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// Latest returns the newest snapshot in dir that verifies fully. Newer snapshots that do not
// verify are logged and renamed to <name>.corrupt, so later runs and pruning ignore them;
// the log still holds their frames because the WAL is trimmed only up to the oldest
// retained snapshot. If no snapshot exists it returns ErrNoSnapshot; if snapshots exist but
// none verifies it returns the newest one's *CorruptionError and renames nothing. A missing
// dir counts as empty.
func Latest(dir string, logger *slog.Logger) (Info, error) {
	if logger == nil {
		logger = slog.Default()
	}
	seqs, err := list(dir)
	if errors.Is(err, os.ErrNotExist) {
		return Info{}, ErrNoSnapshot
	}
	if err != nil {
		return Info{}, err
	}
	if len(seqs) == 0 {
		return Info{}, ErrNoSnapshot
	}
	var bad []error
	var badPaths []string
	for i := len(seqs) - 1; i >= 0; i-- {
		path := filepath.Join(dir, FileName(seqs[i]))
		info, err := Verify(path)
		if err == nil {
			for j, p := range badPaths {
				logger.Error("snapshot: newest snapshot is damaged; using an older one and moving it aside",
					"file", p, "err", bad[j], "using", path)
				if rerr := os.Rename(p, p+".corrupt"); rerr != nil {
					return Info{}, fmt.Errorf("snapshot: move damaged %s aside: %w", p, rerr)
				}
			}
			return info, nil
		}
		var ce *CorruptionError
		if !errors.As(err, &ce) {
			return Info{}, err // I/O trouble: do not guess
		}
		bad = append(bad, err)
		badPaths = append(badPaths, path)
	}
	var ce *CorruptionError
	errors.As(bad[0], &ce)
	if len(bad) > 1 {
		others := make([]string, 0, len(bad)-1)
		for _, e := range bad[1:] {
			others = append(others, e.Error())
		}
		ce.Reason += "; no older snapshot verifies either: " + strings.Join(others, "; ")
	}
	return Info{}, ce
}
