package snapshot

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/volandoo/fluxiondb/internal/wal"
)

// Exporter receives the store's content; it matches engine.Exporter method for method, so
// a snapshot encoder can be passed straight to engine.Store.Export.
type Exporter interface {
	Collection(name string) error
	Document(doc string, n int) error   // n = number of Record calls that follow
	Record(ts int64, data []byte) error // data is only read during the call
	Value(key, value string) error
}

// ExportFunc walks the state into an Exporter; for the engine:
//
//	func(e snapshot.Exporter) error { return store.Export(e) }
type ExportFunc func(Exporter) error

// WriteOptions tune Write.
type WriteOptions struct {
	// Keep is how many snapshots to keep, newest first, counting the new one. Default 2.
	Keep int
	// Logger receives pruning reports. Default slog.Default().
	Logger *slog.Logger
	// Now stamps the header. Default time.Now.
	Now func() time.Time
	// BeforePublish, when set, runs once the file is complete and fsynced, just before it is
	// renamed into place; an error abandons the snapshot. The database flushes its log
	// there: the export is fuzzy, so it may hold changes logged after seq, and those must
	// be durable before a start-up can load the snapshot, or a crash could restore part of
	// a change the log never got.
	BeforePublish func() error
}

// Result is what Write produced.
type Result struct {
	Info
	// OldestRetainedSeq is the start of the oldest snapshot still on disk. The WAL must keep
	// every frame from there on (wal.Log.RemoveBefore(OldestRetainedSeq)) so that falling back
	// to that snapshot, if the newest turns out damaged, still has its log.
	OldestRetainedSeq uint64
}

// Write writes a snapshot of export's state into dir as snapshot-<seq>.snap: a temp file in
// dir, buffered writes, fsync, rename, fsync of dir. extra blobs (API-key records) are
// stored as-is after the collections. Then only the newest opts.Keep snapshots are kept.
// Only one Write may run per dir at a time.
func Write(dir string, seq uint64, export ExportFunc, extra [][]byte, opts WriteOptions) (Result, error) {
	if opts.Keep <= 0 {
		opts.Keep = 2
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, fmt.Errorf("snapshot: create %s: %w", dir, err)
	}
	removeTemps(dir)
	created := opts.Now()
	var enc *encoder
	path := filepath.Join(dir, FileName(seq))
	err := publishFile(path, func(f *os.File) error {
		enc = newEncoder(f)
		enc.header(seq, created)
		if enc.err == nil {
			if err := export(enc); err != nil {
				return fmt.Errorf("snapshot: export: %w", err)
			}
		}
		enc.endDoc()
		for _, b := range extra {
			enc.extra(b)
		}
		enc.trailer()
		if enc.err != nil {
			return fmt.Errorf("snapshot: write %s: %w", f.Name(), enc.err)
		}
		return nil
	}, opts.BeforePublish)
	if err != nil {
		return Result{}, err
	}
	res := Result{Info: Info{Path: path, Seq: seq, Created: created, Counts: enc.counts, Bytes: enc.size}}
	oldest, err := prune(dir, opts.Keep, opts.Logger)
	if err != nil {
		return res, err
	}
	res.OldestRetainedSeq = oldest
	return res, nil
}

// publishFile creates path atomically: fill writes a temp file beside it, which is then
// fsynced, closed, passed by beforePublish (when set), renamed into place, and the folder
// fsynced. Nothing is left behind on failure, and fill's error is returned as it is.
func publishFile(path string, fill func(f *os.File) error, beforePublish func() error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, tempPrefix+"*"+tempSuffix)
	if err != nil {
		return fmt.Errorf("snapshot: create temp file: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("snapshot: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("snapshot: close %s: %w", tmp.Name(), err)
	}
	if beforePublish != nil {
		if err := beforePublish(); err != nil {
			return fmt.Errorf("snapshot: before publishing: %w", err)
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("snapshot: rename into place: %w", err)
	}
	ok = true
	if err := wal.SyncDir(dir); err != nil {
		return fmt.Errorf("snapshot: fsync %s: %w", dir, err)
	}
	return nil
}

// prune deletes all but the newest keep snapshots and returns the oldest one kept.
func prune(dir string, keep int, logger *slog.Logger) (uint64, error) {
	seqs, err := list(dir)
	if err != nil {
		return 0, err
	}
	slices.Reverse(seqs) // newest first
	var errs []error
	for _, s := range seqs[min(keep, len(seqs)):] {
		p := filepath.Join(dir, FileName(s))
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
			continue
		}
		logger.Info("snapshot: removed old snapshot", "file", p)
	}
	if len(seqs) > keep {
		if err := wal.SyncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("snapshot: prune %s: %w", dir, err)
	}
	return seqs[min(keep, len(seqs))-1], nil
}

// removeTemps deletes temp files left by a Write that crashed.
func removeTemps(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, tempPrefix) && strings.HasSuffix(n, tempSuffix) {
			os.Remove(filepath.Join(dir, n))
		}
	}
}

// encoder implements Exporter by appending entries to body frames. It keeps the first
// error (sticky) so the visitor methods stay cheap; Write checks it once.
type encoder struct {
	w      *bufio.Writer
	err    error
	body   []byte // current body frame payload
	frame  []byte // framed output scratch
	sum    uint32
	frames int64
	size   int64
	counts Counts
	inColl bool
	left   int   // records still expected for the current document
	prevTS int64 // previous record ts in the document (delta base)
}

func newEncoder(w io.Writer) *encoder {
	return &encoder{w: bufio.NewWriterSize(w, 1<<20), body: append(make([]byte, 0, bodyTarget+1024), kindBody)}
}

func (e *encoder) emit(payload []byte) {
	if e.err != nil {
		return
	}
	e.frame = wal.AppendFrame(e.frame[:0], payload)
	_, e.err = e.w.Write(e.frame)
	e.size += int64(len(e.frame))
	if payload[0] != kindTrailer {
		e.sum = chainCRC(e.sum, binary.LittleEndian.Uint32(e.frame[4:8]))
	}
}

func (e *encoder) header(seq uint64, created time.Time) {
	h := make([]byte, 0, headerSize)
	h = append(h, kindHeader)
	h = append(h, magic[:]...)
	h = binary.LittleEndian.AppendUint16(h, Version)
	h = binary.LittleEndian.AppendUint16(h, 0)
	h = binary.LittleEndian.AppendUint64(h, seq)
	h = binary.LittleEndian.AppendUint64(h, uint64(created.UnixNano()))
	e.emit(h)
}

// entryDone closes the body frame once it is big enough; entries never span frames.
func (e *encoder) entryDone() {
	if len(e.body) >= bodyTarget {
		e.flushBody()
	}
}

func (e *encoder) flushBody() {
	if len(e.body) > 1 {
		if len(e.body) > wal.MaxPayload {
			e.fail(fmt.Errorf("entry of %d bytes exceeds the frame limit", len(e.body)))
			return
		}
		e.emit(e.body)
		e.frames++
	}
	e.body = e.body[:1]
}

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// endDoc checks that the previous document got the records it announced.
func (e *encoder) endDoc() {
	if e.left != 0 {
		e.fail(fmt.Errorf("document announced %d more records than were exported", e.left))
		e.left = 0
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (e *encoder) Collection(name string) error {
	e.endDoc()
	e.body = appendString(append(e.body, tagCollection), name)
	e.inColl = true
	e.counts.Collections++
	e.entryDone()
	return e.err
}

func (e *encoder) Document(doc string, n int) error {
	e.endDoc()
	if !e.inColl {
		e.fail(errors.New("document exported before any collection"))
		return e.err
	}
	if n < 0 {
		e.fail(fmt.Errorf("document %q with %d records", doc, n))
		return e.err
	}
	e.body = appendString(append(e.body, tagDocument), doc)
	e.body = binary.AppendUvarint(e.body, uint64(n))
	e.left, e.prevTS = n, 0
	e.counts.Documents++
	e.entryDone()
	return e.err
}

func (e *encoder) Record(ts int64, data []byte) error {
	if e.left <= 0 {
		e.fail(errors.New("more records exported than the document announced"))
		return e.err
	}
	e.body = binary.AppendVarint(e.body, ts-e.prevTS)
	e.body = binary.AppendUvarint(e.body, uint64(len(data)))
	e.body = append(e.body, data...)
	e.prevTS = ts
	e.left--
	e.counts.Records++
	e.entryDone()
	return e.err
}

func (e *encoder) Value(key, value string) error {
	e.endDoc()
	if !e.inColl {
		e.fail(errors.New("value exported before any collection"))
		return e.err
	}
	e.body = appendString(appendString(append(e.body, tagValue), key), value)
	e.counts.Values++
	e.entryDone()
	return e.err
}

func (e *encoder) extra(blob []byte) {
	e.body = binary.AppendUvarint(append(e.body, tagExtra), uint64(len(blob)))
	e.body = append(e.body, blob...)
	e.counts.Extras++
	e.entryDone()
}

func (e *encoder) trailer() {
	e.flushBody()
	t := make([]byte, 0, trailerSize)
	t = append(t, kindTrailer)
	for _, n := range []int64{e.counts.Collections, e.counts.Documents, e.counts.Records,
		e.counts.Values, e.counts.Extras, e.frames} {
		t = binary.LittleEndian.AppendUint64(t, uint64(n))
	}
	t = binary.LittleEndian.AppendUint32(t, e.sum)
	e.emit(t)
	if e.err == nil {
		e.err = e.w.Flush()
	}
}
