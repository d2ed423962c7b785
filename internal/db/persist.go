package db

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/volandoo/fluxiondb/internal/auth"
	"github.com/volandoo/fluxiondb/internal/engine"
	"github.com/volandoo/fluxiondb/internal/legacy"
	"github.com/volandoo/fluxiondb/internal/snapshot"
	"github.com/volandoo/fluxiondb/internal/wal"
)

// Sub-folders of the data folder.
const (
	walSubdir      = "wal"
	snapshotSubdir = "snapshots"
)

// changeLog is the part of *wal.Log the DB uses; tests wrap it to inject disk faults.
type changeLog interface {
	AppendEncoded(encode func([]byte) []byte) (uint64, error)
	Sync(ctx context.Context, seq uint64) error
	Cut() uint64
	Flush(ctx context.Context) error
	RemoveBefore(seq uint64) error
	Stats() wal.Stats
	Close() error
}

// persist is the durable side of a DB: the log, the snapshot folder and the background
// snapshotter.
type persist struct {
	dir, walDir, snapDir string
	log                  changeLog
	logger               *slog.Logger
	snapBytes            int64
	snapAge, snapCheck   time.Duration

	ctx    context.Context // cancelled by close: stops a snapshot in progress
	cancel context.CancelFunc
	done   chan struct{} // closed when the snapshot loop has returned

	snapMu sync.Mutex // one snapshot at a time

	// opBytes counts the changes logged since the last snapshot's cut (or the start) as
	// they would be uncompressed (frame header + op): the size trigger. The log's own byte
	// count is compressed, and a snapshot is not: counting compressed bytes would let the
	// log hold several times the records the trigger means, and start-up replay them all.
	// Reset under the change mutex at the cut.
	opBytes atomic.Int64

	// Figures for metrics and logs.
	recovery     RecoveryStats
	lastSnap     atomic.Pointer[SnapshotStats]
	snapshots    atomic.Uint64
	snapFailures atomic.Uint64
	fsyncSeconds prometheus.Histogram

	closeOnce sync.Once
	closeErr  error
}

// RecoveryStats describe what Open rebuilt from the data folder.
type RecoveryStats struct {
	SnapshotSeq     uint64 // WAL sequence the snapshot started from (0 = none)
	SnapshotRecords int64
	Frames          int64 // log frames replayed
	Records         int64 // records inserted by those frames
	Duration        time.Duration
}

// SnapshotStats describe the last snapshot written.
type SnapshotStats struct {
	Seq      uint64
	At       time.Time
	Bytes    int64
	Records  int64
	Duration time.Duration
}

func (d *DB) openPersist(cfg Config) error {
	if cfg.SnapshotBytes <= 0 {
		// 1 GiB of changes (counted uncompressed: opBytes), like PostgreSQL's max_wal_size: a
		// snapshot rewrites all the data, so taking one every 256 MiB cost a 10M-record ingest
		// about a third more CPU, while replaying 1 GiB of changes (~16M records of 50 B) takes
		// about 4–7 s (2.2–4.3M records/s from a compressed log, BENCHMARKS.md).
		cfg.SnapshotBytes = 1 << 30
	}
	if cfg.SnapshotAge <= 0 {
		cfg.SnapshotAge = time.Hour
	}
	if cfg.SnapshotCheck <= 0 {
		cfg.SnapshotCheck = time.Second
	}
	start := time.Now()
	dir := cfg.Dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data folder %s is not usable: %w", dir, err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("data folder %s is not usable: not a folder", dir)
	}
	if err := refuseFolder(dir, cfg.importing); err != nil {
		return err
	}
	p := &persist{
		dir:       dir,
		walDir:    filepath.Join(dir, walSubdir),
		snapDir:   filepath.Join(dir, snapshotSubdir),
		logger:    cfg.Logger,
		snapBytes: cfg.SnapshotBytes,
		snapAge:   cfg.SnapshotAge,
		snapCheck: cfg.SnapshotCheck,
		done:      make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.fsyncSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "fluxiondb_wal_fsync_seconds",
		Help:    "Latency of log fsyncs (one fsync covers every change waiting for it).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	})

	info, err := snapshot.Latest(p.snapDir, p.logger)
	var damaged *snapshot.CorruptionError
	switch {
	case errors.Is(err, snapshot.ErrNoSnapshot):
		info = snapshot.Info{}
	case errors.As(err, &damaged):
		return fmt.Errorf("%w; to keep what can still be read from it run `%s`", err, wal.RepairCommand)
	case err != nil:
		// Not damage but access (permissions, a file where the folder should be): repair
		// would not help.
		return fmt.Errorf("data folder %s is not usable: %w", dir, err)
	}
	log, err := wal.Open(p.walDir, wal.Options{
		Policy:      cfg.Fsync,
		Interval:    cfg.FlushInterval,
		SegmentSize: cfg.SegmentSize,
		MinSeq:      info.Seq,
		Logger:      p.logger,
		OnFsync:     func(t time.Duration) { p.fsyncSeconds.Observe(t.Seconds()) },
	})
	if err != nil {
		if wal.IsCorruption(err) {
			return err // names file, offset and the repair command
		}
		return fmt.Errorf("data folder %s is not usable: %w", dir, err)
	}
	if err := d.recover(p, log, info); err != nil {
		_ = log.Close()
		return err
	}
	p.recovery.Duration = time.Since(start)
	if cfg.wrapLog != nil {
		p.log = cfg.wrapLog(log)
	} else {
		p.log = log
	}
	d.p = p
	r := p.recovery
	p.logger.Info("recovered the data folder", "dir", dir,
		"snapshot_seq", r.SnapshotSeq, "snapshot_records", r.SnapshotRecords,
		"log_frames", r.Frames, "log_records", r.Records, "took", r.Duration.Round(time.Millisecond))
	if d.Keys.Shadowed() {
		p.logger.Warn("a stored API key has the same secret as --secret-key: the master key stands in " +
			"for it, and it can be neither removed nor re-scoped; after moving --secret-key to another " +
			"secret its old scope applies again, so remove it then (keys remove) if it should not")
	}
	if cfg.importing {
		// Import ends with a snapshot of everything it read. One taken in the background part
		// way (an input over the 1 GiB trigger) would be a second full copy kept beside it.
		close(p.done)
		return nil
	}
	go d.snapshotLoop()
	return nil
}

// refuseFolder stops a start (and a repair) on a folder no start should trust: an unfinished
// backup or import (importing: Import's own open of the folder it fills), or the original
// server's data.
func refuseFolder(dir string, importing bool) error {
	if _, err := os.Stat(filepath.Join(dir, backupIncomplete)); err == nil {
		return fmt.Errorf("data folder %s is a backup that did not finish (%s is there): it may hold only part "+
			"of the data; remove it and make the backup again", dir, backupIncomplete)
	}
	if _, err := os.Stat(filepath.Join(dir, importIncomplete)); err == nil && !importing {
		return fmt.Errorf("data folder %s is an import that did not finish (%s is there): remove the folder "+
			"and run `fluxiondb import` again", dir, importIncomplete)
	}
	return refuseOldData(dir)
}

// refuseOldData stops a start on a folder that holds the original server's data and none of
// ours: the server would start empty beside it, and the user would see their data gone.
func refuseOldData(dir string) error {
	if isOurs(dir) {
		return nil // ours already: whatever else the folder holds was left there knowingly
	}
	kind, evidence, err := legacy.Detect(dir, "lost+found")
	switch {
	case err != nil:
		return fmt.Errorf("data folder %s is not usable: %w", dir, err)
	case kind != legacy.None:
		return fmt.Errorf("data folder %s holds data of the original FluxionDB server (%s): this server keeps its "+
			"own format and would start empty beside it. Import it into a new folder with "+
			"`fluxiondb import --from %s --data NEWDIR` and start with --data NEWDIR", dir, evidence, dir)
	}
	return nil
}

// recover loads the snapshot (if any) and replays the log after it into the engine and
// the key set.
func (d *DB) recover(p *persist, log *wal.Log, info snapshot.Info) error {
	if info.Path != "" {
		l := &loader{d: d}
		if _, err := snapshot.Load(info.Path, l); err != nil {
			return fmt.Errorf("load %s: %w; to keep what can still be read from it run `%s`", info.Path, err, wal.RepairCommand)
		}
		l.flush()
		p.recovery.SnapshotSeq = info.Seq
		p.recovery.SnapshotRecords = info.Records
		p.lastSnap.Store(&SnapshotStats{Seq: info.Seq, At: info.Created, Bytes: info.Bytes, Records: info.Records})
	}
	a := &applier{d: d}
	var dec opDecoder
	err := log.Replay(info.Seq, func(seq uint64, payload []byte) error {
		if err := dec.decode(payload, a); err != nil {
			if errors.Is(err, errNewerOp) {
				return err // not damage: nothing to repair
			}
			// A corruption the log reports with the frame's file and offset, and repair cuts.
			return fmt.Errorf("%w: %w", wal.ErrBadPayload, err)
		}
		p.recovery.Frames++
		return nil
	})
	a.flush()
	p.recovery.Records = a.records
	if err != nil {
		return fmt.Errorf("replay the log: %w", err)
	}
	return nil
}

// applier applies replayed ops to the engine and keys (no publishing: nobody subscribes
// during start-up).
//
// Consecutive inserts are gathered and applied as one engine.Insert of up to replayBatch
// records: one call with their records in log order has the same effect as one call per op
// (within a call the later record for a (collection, doc, ts) wins), and the engine then
// merges the out-of-order records of a document (late data, replaces) into each of its
// blocks once per batch instead of once per logged request. Any other op applies the
// gathered inserts first.
type applier struct {
	d       *DB
	records int64
	batch   recordBatch
}

// replayBatch bounds the records gathered before they are applied.
const replayBatch = 64 << 10

func (a *applier) insert(recs []engine.Record) {
	a.records += int64(len(recs))
	for _, r := range recs {
		a.batch.add(r.Collection, r.Doc, r.TS, r.Data)
	}
	if a.batch.full(replayBatch) {
		a.flush()
	}
}

// flush applies the gathered inserts.
func (a *applier) flush() { a.batch.apply(a.d.Engine) }

func (a *applier) deleteDoc(col, doc string)   { a.flush(); a.d.Engine.DeleteDoc(col, doc) }
func (a *applier) deleteCollection(col string) { a.flush(); a.d.Engine.DeleteCollection(col) }
func (a *applier) deleteRecords(keys []engine.RecordKey) {
	a.flush()
	a.d.Engine.DeleteRecords(keys, nil)
}
func (a *applier) deleteRange(col, doc string, from, to int64) {
	a.flush()
	a.d.Engine.DeleteRange(col, doc, from, to)
}
func (a *applier) setValue(col, key, value string) { a.flush(); a.d.Engine.SetValue(col, key, value) }
func (a *applier) deleteValue(col, key string)     { a.flush(); a.d.Engine.DeleteValue(col, key) }

// Keys are not records: no need to apply the gathered inserts first.
func (a *applier) putKey(h auth.Hash, hint string, s auth.Scope) { a.d.Keys.Put(h, hint, s) }
func (a *applier) removeKey(h auth.Hash)                         { a.d.Keys.Remove(h) }

// loader feeds a snapshot into the engine: a document's records are copied into an arena
// and inserted in bulk (they arrive in ascending order, so the engine appends).
type loader struct {
	d     *DB
	col   string
	doc   string
	batch recordBatch
}

const loaderChunk = 16384

func (l *loader) flush() { l.batch.apply(l.d.Engine) }

// recordBatch gathers records for one engine.Insert, their payloads copied into one arena
// (the bytes they are read from are only valid during the callback that hands them over).
type recordBatch struct {
	recs  []engine.Record
	ends  []int // recs[i].Data is arena[ends[i-1]:ends[i]], set by apply: the arena may move
	arena []byte
}

func (b *recordBatch) add(col, doc string, ts int64, data []byte) {
	b.arena = append(b.arena, data...)
	b.ends = append(b.ends, len(b.arena))
	b.recs = append(b.recs, engine.Record{Collection: col, Doc: doc, TS: ts})
}

// full reports whether the batch holds maxRecords records or 8 MiB of payload.
func (b *recordBatch) full(maxRecords int) bool {
	return len(b.recs) >= maxRecords || len(b.arena) >= 8<<20
}

// apply inserts the gathered records into e and empties the batch.
func (b *recordBatch) apply(e *engine.Store) {
	if len(b.recs) == 0 {
		return
	}
	e.Insert(b.records())
	b.reset()
}

// records returns the gathered records, their Data pointing into the arena (valid until reset).
func (b *recordBatch) records() []engine.Record {
	start := 0
	for i, end := range b.ends {
		b.recs[i].Data = b.arena[start:end:end]
		start = end
	}
	return b.recs
}

// reset empties the batch, keeping its buffers.
func (b *recordBatch) reset() {
	clear(b.recs)
	b.recs, b.ends, b.arena = b.recs[:0], b.ends[:0], b.arena[:0]
}

func (l *loader) Collection(name string) error {
	l.flush()
	l.col = name
	l.d.Engine.CreateCollection(name) // one that record or KV deletes emptied has no other entry
	return nil
}

func (l *loader) Document(doc string, n int) error {
	l.flush()
	l.doc = doc
	return nil
}

func (l *loader) Record(ts int64, data []byte) error {
	l.batch.add(l.col, l.doc, ts, data)
	if l.batch.full(loaderChunk) {
		l.flush()
	}
	return nil
}

func (l *loader) Value(key, value string) error {
	l.flush()
	l.d.Engine.SetValue(l.col, key, value)
	return nil
}

func (l *loader) Extra(blob []byte) error {
	l.flush()
	k, err := decodeKeyBlob(blob)
	if err != nil {
		return err
	}
	l.d.Keys.Put(k.Hash, k.Hint, k.Scope)
	return nil
}

// snapshotLoop takes a snapshot whenever the changes logged since the last one pass the
// size threshold (counted uncompressed: opBytes), or there is any and the age threshold has
// passed.
func (d *DB) snapshotLoop() {
	p := d.p
	defer close(p.done)
	t := time.NewTicker(p.snapCheck)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		st := p.log.Stats()
		logged := p.opBytes.Load()
		if st.Err != nil || logged == 0 {
			continue
		}
		// The size threshold grows with the data: a snapshot rewrites everything, so taking one
		// every fixed number of log bytes would cost more per write as the data grows. Waiting
		// until the log is at least as big as the last snapshot keeps the snapshot work per
		// logged byte constant, and start-up replays at most about the data's size again.
		threshold := p.snapBytes
		if last := p.lastSnap.Load(); last != nil && last.Bytes > threshold {
			threshold = last.Bytes
		}
		if logged < threshold && time.Since(st.CutAt) < p.snapAge {
			continue
		}
		if err := d.Snapshot(p.ctx); err != nil && p.ctx.Err() == nil {
			p.logger.Error("snapshot failed; the log keeps everything and the next attempt follows the next threshold", "err", err)
		}
	}
}

// Snapshot writes a snapshot of the current state and removes the log segments it makes
// unnecessary. Writers are held only for the Cut (no I/O) and, per collection, while the
// engine copies its block index. It runs in the background on its own; tests and
// operators may call it directly.
func (d *DB) Snapshot(ctx context.Context) error {
	p := d.p
	if p == nil {
		return errors.New("snapshot: the database is in memory only")
	}
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	start := time.Now()
	d.mu.Lock()
	seq := p.log.Cut()
	p.opBytes.Store(0)
	keys := d.Keys.Export() // consistent at seq; later key changes are in the log
	d.mu.Unlock()
	err := d.writeSnapshot(ctx, seq, keys, start)
	if err != nil {
		p.snapFailures.Add(1)
	}
	return err
}

func (d *DB) writeSnapshot(ctx context.Context, seq uint64, keys []auth.Stored, start time.Time) error {
	p := d.p
	if err := p.log.Flush(ctx); err != nil {
		return fmt.Errorf("snapshot at %d: flush the log: %w", seq, err)
	}
	blobs := keyBlobs(keys)
	// The export is fuzzy: changes applied while it runs (logged after seq) may be in it, in
	// part. Each was appended to the log before it was applied, so flushing the log once the
	// export is done makes every one of them durable before the snapshot can be loaded:
	// start-up replays them whole, in order, over the snapshot.
	publish := func() error {
		if err := p.log.Flush(ctx); err != nil {
			return fmt.Errorf("flush the log over the export: %w", err)
		}
		return nil
	}
	res, err := snapshot.Write(p.snapDir, seq, func(e snapshot.Exporter) error {
		return d.Engine.Export(ctxExporter{e, ctx})
	}, blobs, snapshot.WriteOptions{Logger: p.logger, BeforePublish: publish})
	if err != nil {
		return fmt.Errorf("snapshot at %d: %w", seq, err)
	}
	// Keep the log from the oldest retained snapshot: if the newest turns out damaged at
	// the next start, the older one still has every frame it needs.
	if err := p.log.RemoveBefore(res.OldestRetainedSeq); err != nil {
		p.logger.Warn("snapshot written, but old log segments could not be removed", "err", err)
	}
	took := time.Since(start)
	p.lastSnap.Store(&SnapshotStats{Seq: seq, At: time.Now(), Bytes: res.Bytes, Records: res.Records, Duration: took})
	p.snapshots.Add(1)
	p.logger.Info("snapshot written", "file", res.Path, "seq", seq, "records", res.Records,
		"bytes", res.Bytes, "took", took.Round(time.Millisecond))
	return nil
}

// keyBlobs encodes scoped API keys as a snapshot's extra blobs (each an opPutKey payload).
func keyBlobs(keys []auth.Stored) [][]byte {
	blobs := make([][]byte, len(keys))
	for i, k := range keys {
		blobs[i] = appendPutKey(nil, k.Hash, k.Hint, k.Scope)
	}
	return blobs
}

// ctxExporter stops an export when ctx ends (Close during a snapshot).
type ctxExporter struct {
	snapshot.Exporter
	ctx context.Context
}

func (c ctxExporter) Document(doc string, n int) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	return c.Exporter.Document(doc, n)
}

func (p *persist) close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		<-p.done
		if err := p.log.Close(); err != nil {
			p.closeErr = fmt.Errorf("close the log: %w", err)
		}
	})
	return p.closeErr
}

// Recovery returns what Open rebuilt from the data folder (zero in memory).
func (d *DB) Recovery() RecoveryStats {
	if d.p == nil {
		return RecoveryStats{}
	}
	return d.p.recovery
}

// LastSnapshot returns the figures of the last snapshot written or loaded, if any.
func (d *DB) LastSnapshot() (SnapshotStats, bool) {
	if d.p == nil {
		return SnapshotStats{}, false
	}
	s := d.p.lastSnap.Load()
	if s == nil {
		return SnapshotStats{}, false
	}
	return *s, true
}
