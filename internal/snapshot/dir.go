package snapshot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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
		if seq, ok := ParseFileName(e.Name()); ok && !e.IsDir() {
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

// Paths returns the snapshot files in dir, newest first. A missing dir holds none.
func Paths(dir string) ([]string, error) {
	seqs, err := list(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(seqs))
	for i, seq := range seqs {
		paths[len(seqs)-1-i] = filepath.Join(dir, FileName(seq))
	}
	return paths, nil
}

// Copy copies the snapshot file src (open for reading, at its start) into the folder destDir
// under the same name, verifying it as it goes (the same checks as Verify, in one read),
// and makes the copy durable: temp file, fsync, rename, fsync of destDir. Nothing is left in
// destDir on failure. Damage in src is a *CorruptionError naming it. src is read whole even
// if the file is removed meanwhile (snapshot pruning). It stops with ctx.Err() when ctx
// ends.
func Copy(ctx context.Context, src *os.File, destDir string) (Info, error) {
	name := src.Name()
	var info Info
	dest := filepath.Join(destDir, filepath.Base(name))
	err := publishFile(dest, func(f *os.File) error {
		w := bufio.NewWriterSize(f, 1<<20)
		// decode reads the stream to its end (nothing may follow the trailer), so when it
		// succeeds the tee has passed on every byte.
		var err error
		info, err = decode(bufio.NewReaderSize(io.TeeReader(ctxReader{ctx, src}, w), 1<<20), nil)
		if err != nil {
			var ce *CorruptionError
			if errors.As(err, &ce) {
				ce.File = name
			}
			var ve *VersionError
			if errors.As(err, &ve) {
				ve.File = name
			}
			return err
		}
		if want, _ := ParseFileName(filepath.Base(name)); info.Seq != want {
			return &CorruptionError{File: name, Reason: fmt.Sprintf("header says sequence %d, the name %d", info.Seq, want)}
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("snapshot: copy: write %s: %w", f.Name(), err)
		}
		return nil
	}, nil)
	if err != nil {
		return Info{}, err
	}
	info.Path = dest
	return info, nil
}

// ctxReader is r that fails with ctx's error once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
