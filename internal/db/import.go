package db

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/volandoo/fluxiondb/internal/auth"
	"github.com/volandoo/fluxiondb/internal/legacy"
	"github.com/volandoo/fluxiondb/internal/snapshot"
	"github.com/volandoo/fluxiondb/internal/wal"
)

// importIncomplete is the file an import's destination holds until the import is complete;
// Open refuses a data folder that holds it.
const importIncomplete = "IMPORT-INCOMPLETE"

// isOurs reports whether dir is already a data folder of this server: its log's lock file,
// a log segment or a snapshot is there (a mere folder named wal or snapshots may be an old
// collection).
func isOurs(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, walSubdir, "LOCK")); err == nil {
		return true
	}
	_, segs, _ := wal.FirstSeq(filepath.Join(dir, walSubdir))
	snaps, _ := snapshot.Paths(filepath.Join(dir, snapshotSubdir))
	return segs || len(snaps) > 0
}

// ImportReport says what Import brought over.
type ImportReport struct {
	legacy.Report
	Duration time.Duration
}

// Import is `fluxiondb import --from OLD --data DEST`: it reads the data folder of the
// original C++ server (its JSON files, legacy.ReadV1, or its later SQLite file,
// legacy.ReadSQLite) and writes it as a data folder of this server in dest, which must not
// exist or be empty, ending with a snapshot: a server started with --data dest has every
// collection, record and KV entry the old server would have loaded, and (from the SQLite
// file) its API keys, hashed. The old folder is only read. Until the import is complete dest
// holds an IMPORT-INCOMPLETE file, which Open refuses; on failure, or when ctx ends, whatever
// Import wrote is removed.
func Import(ctx context.Context, from, dest string, logger *slog.Logger) (ImportReport, error) {
	start := time.Now()
	var rep ImportReport
	// Left unread, and listed: a file system's lost+found, this server's own folders when
	// it ran on the old folder, and the new folder when it is inside the old one.
	skip := map[string]string{"lost+found": "a file system's lost+found"}
	if isOurs(from) {
		skip[walSubdir], skip[snapshotSubdir] = "this server's own log", "this server's own snapshots"
	}
	kind, evidence, err := legacy.Detect(from, slices.Collect(maps.Keys(skip))...)
	switch {
	case err != nil:
		return rep, fmt.Errorf("read %s: %w", from, err)
	case kind == legacy.None:
		return rep, fmt.Errorf("%s holds no data of the original server (no <collection>/key_value.json "+
			"or <collection>/<document>/<epoch-ms>.json)", from)
	}
	absFrom, err1 := filepath.Abs(from)
	absDest, err2 := filepath.Abs(dest)
	if err1 == nil && err2 == nil && absFrom == absDest {
		return rep, errors.New("--data must be another folder than --from: the old data is only read")
	}
	if err1 == nil && err2 == nil && filepath.Dir(absDest) == absFrom {
		skip[filepath.Base(absDest)] = "the new data folder" // one Docker volume holding both
	}
	created, err := newDataFolder(dest)
	if err != nil {
		return rep, err
	}
	remove := func() error {
		var what []string
		if created {
			what = []string{dest}
		} else {
			what = []string{filepath.Join(dest, walSubdir), filepath.Join(dest, snapshotSubdir), filepath.Join(dest, importIncomplete)}
		}
		for _, p := range what {
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("remove the unfinished import: %w", err)
			}
		}
		return nil
	}
	// The marker goes first, so a crash at any later point leaves a folder no start takes
	// for a whole one.
	if err := writeMarker(dest, importIncomplete, "an import by `fluxiondb import` that did not finish: remove this folder and import again\n"); err != nil {
		return rep, errors.Join(err, remove())
	}
	d, err := Open(Config{Dir: dest, Fsync: wal.SyncNever, Logger: logger, importing: true})
	if err != nil {
		return rep, errors.Join(err, remove())
	}
	fail := func(err error) (ImportReport, error) {
		return rep, errors.Join(err, d.Close(), remove())
	}
	sink := &importSink{ctx: ctx, d: d}
	if kind == legacy.SQLite {
		rep.Report, err = legacy.ReadSQLite(evidence, sink)
	} else {
		rep.Report, err = legacy.ReadV1(from, sink, slices.Collect(maps.Keys(skip))...)
		for _, name := range slices.Sorted(maps.Keys(skip)) {
			if _, serr := os.Lstat(filepath.Join(from, name)); serr == nil {
				rep.Skipped = append(rep.Skipped, filepath.Join(from, name)+": not read ("+skip[name]+")")
			}
		}
	}
	if err == nil {
		err = sink.flush()
	}
	if err != nil {
		return fail(err)
	}
	rep.Skipped = append(rep.Skipped, sink.skipped...)
	// Counted by the reader, listed as skipped here.
	rep.Keys -= sink.skippedKeys
	rep.Documents -= sink.skippedDocs
	rep.Records -= sink.skippedRecords
	rep.Values -= sink.skippedValues
	rep.Collections -= len(sink.skippedCols)
	if err := d.Snapshot(ctx); err != nil {
		return fail(err)
	}
	if err := d.Close(); err != nil {
		return rep, errors.Join(err, remove())
	}
	if err := os.Remove(filepath.Join(dest, importIncomplete)); err != nil {
		return rep, errors.Join(err, remove())
	}
	if err := wal.SyncDir(dest); err != nil {
		return rep, err
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// newDataFolder makes dest, or checks that it is an empty folder. created says Import made it.
func newDataFolder(dest string) (created bool, err error) {
	entries, err := os.ReadDir(dest)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return false, fmt.Errorf("data folder %s: %w", dest, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("data folder %s: %w", dest, err)
	case slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == importIncomplete }):
		return false, fmt.Errorf("data folder %s holds an import that did not finish (%s): remove the folder and import again", dest, importIncomplete)
	case len(entries) > 0:
		return false, fmt.Errorf("data folder %s is not empty: import into a new or empty folder", dest)
	}
	return false, nil
}

// importSink inserts what legacy.ReadV1 or ReadSQLite reads, in batches of importBatch
// records or importBatchBytes (a batch may hold many documents: the SQLite table's rows come
// one at a time).
type importSink struct {
	ctx     context.Context
	d       *DB
	batch   recordBatch // payloads copied: a reader's bytes are valid only during its call
	bytes   int
	skipped []string
	// skippedKeys counts the API keys listed in skipped; the others, what skipped entries of
	// unreachable names held (the reader counted them as read).
	skippedKeys, skippedDocs, skippedRecords, skippedValues int
	skippedCols                                             map[string]bool
}

// unreachable says why no request could name an entry called name (empty, or not UTF-8: a
// request's names are UTF-8 text, so such a name would be shown as U+FFFD and never match),
// or "" when one can.
func unreachable(name string) string {
	switch {
	case name == "":
		return "an empty name"
	case !utf8.ValidString(name):
		return "a name that is not UTF-8"
	}
	return ""
}

// importBatch and importBatchBytes bound one logged insert during an import (a log frame
// holds at most wal.MaxPayload).
const (
	importBatch      = 1 << 16
	importBatchBytes = 32 << 20
)

func (s *importSink) Document(col, doc string, recs []legacy.Record) error {
	why, what := unreachable(col), "collection"
	if why == "" {
		why, what = unreachable(doc), "document"
	}
	if why != "" {
		// Stored, it could be neither read nor deleted but by dropping its collection; the
		// SQLite reader leaves empty names out too.
		s.skipped = append(s.skipped, fmt.Sprintf("document %q of collection %q: %d records not imported (the %s has %s, which no request can name)",
			doc, col, len(recs), what, why))
		s.skippedDocs++
		s.skippedRecords += len(recs)
		if what == "collection" {
			if s.skippedCols == nil {
				s.skippedCols = map[string]bool{}
			}
			s.skippedCols[col] = true
		}
		return nil
	}
	for _, r := range recs {
		size := len(col) + len(doc) + len(r.Data) + 3*binary.MaxVarintLen64
		if size > wal.MaxPayload-64 {
			return fmt.Errorf("import %s/%s record %d: %d bytes, more than one change may hold here (%d)", col, doc, r.TS, len(r.Data), wal.MaxPayload-64)
		}
		if s.bytes+size > importBatchBytes {
			if err := s.flush(); err != nil {
				return err
			}
		}
		s.batch.add(col, doc, r.TS, r.Data)
		s.bytes += size
		if len(s.batch.recs) >= importBatch {
			if err := s.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush inserts the gathered records.
func (s *importSink) flush() error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	if len(s.batch.recs) == 0 {
		return nil
	}
	if _, err := s.d.Insert(s.batch.records()); err != nil {
		return fmt.Errorf("import records: %w", err)
	}
	s.batch.reset()
	s.bytes = 0
	return nil
}

func (s *importSink) Value(col, key, value string) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	if why := cmp.Or(unreachable(col), unreachable(key)); why != "" {
		s.skipped = append(s.skipped, fmt.Sprintf("value %q of collection %q: not imported (%s, which no request can name)", key, col, why))
		s.skippedValues++
		return nil
	}
	if _, err := s.d.SetValue(col, key, value); err != nil {
		return fmt.Errorf("import %s value %q: %w", col, key, err)
	}
	return nil
}

// Key stores an API key of the old server, hashed like every key here. One this server
// cannot take (no secret, a scope it does not know) is reported as skipped.
func (s *importSink) Key(k legacy.Key) error {
	scope, ok := auth.ParseScope(k.Scope)
	switch {
	case k.Secret == "":
		s.skipped = append(s.skipped, fmt.Sprintf("an API key with an empty secret (scope %q): no client can send it", k.Scope))
		s.skippedKeys++
		return nil
	case !ok:
		s.skipped = append(s.skipped, fmt.Sprintf("API key %s: scope %q is not readonly, read_write or read_write_delete", auth.Hint(k.Secret), k.Scope))
		s.skippedKeys++
		return nil
	}
	if _, err := s.d.PutKey(auth.HashKey(k.Secret), auth.Hint(k.Secret), scope); err != nil {
		return fmt.Errorf("import API key %s: %w", auth.Hint(k.Secret), err)
	}
	return nil
}
