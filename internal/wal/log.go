package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Policy says when Sync considers a frame done.
type Policy int

const (
	// SyncAlways: Sync returns once the frame is written and fsynced. Concurrent callers
	// share one write + fsync (group commit). Nothing acknowledged is lost on power failure.
	SyncAlways Policy = iota
	// SyncInterval: Sync returns once the frame is written to the OS; fsync runs at most
	// every Options.Interval. A process crash loses nothing; an OS crash or power failure
	// loses at most the last Interval.
	SyncInterval
	// SyncNever: Sync returns once the frame is written to the OS; fsync only happens at a
	// segment roll, Cut-driven roll and Close. The OS decides when data reaches the disk.
	SyncNever
)

func (p Policy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy maps the --fsync flag values "always", "interval" and "never" to a Policy.
func ParsePolicy(s string) (Policy, error) {
	switch strings.ToLower(s) {
	case "always":
		return SyncAlways, nil
	case "interval":
		return SyncInterval, nil
	case "never":
		return SyncNever, nil
	}
	return 0, fmt.Errorf("wal: unknown fsync policy %q (want always, interval or never)", s)
}

// Options configure a Log. The zero value is usable: SyncAlways, 64 MiB segments.
type Options struct {
	Policy Policy
	// Interval is the fsync period under SyncInterval. Default 1s.
	Interval time.Duration
	// SegmentSize is the size at which a new segment starts. A frame never spans segments,
	// so a segment ends before the frame that would cross the size (a frame larger than
	// SegmentSize gets a segment of its own). Default 64 MiB.
	SegmentSize int64
	// MinSeq is the sequence number the caller's snapshot starts from (0 = no snapshot).
	// If every frame on disk is older, those segments are covered by the snapshot: they are
	// removed and numbering continues at MinSeq, so the log never reuses numbers the snapshot
	// has already accounted for.
	MinSeq uint64
	// RetryInterval is how often a log in trouble (write or fsync failed) tries to recover.
	// Default 500ms.
	RetryInterval time.Duration
	// Logger receives recovery and disk-trouble reports. Default slog.Default().
	Logger *slog.Logger
	// OnFsync, when set, is called by the flusher after every successful segment fsync with
	// its latency (for a metrics histogram). It must be quick.
	OnFsync func(time.Duration)

	fs fileSystem // tests inject faults here
}

const (
	defaultSegmentSize   = 64 << 20
	defaultInterval      = time.Second
	defaultRetryInterval = 500 * time.Millisecond
	// kickBytes: Append wakes the flusher itself once this much is buffered, so callers
	// that never Sync still see bounded memory.
	kickBytes = 1 << 20
	// backgroundSyncBytes: under SyncInterval and SyncNever the flusher also starts a
	// background fsync once the buffers of frames written since the last one hold this
	// much. Until a frame is fsynced the log keeps its copy for a rewrite after a failed
	// fsync; this bounds those copies (a 15 s interval at 70 MB/s would otherwise hold a
	// whole segment) and lets their buffers be reused instead of allocated afresh. It only
	// makes data durable sooner than the policy promises, never later, and never stalls a
	// writer.
	backgroundSyncBytes = 8 << 20
)

// TailReport describes a torn tail that Open truncated from the last segment.
type TailReport struct {
	File    string
	Offset  int64 // where the file now ends
	Dropped int64 // bytes removed
	Reason  string
}

// Stats are cheap counters for the snapshot trigger and metrics.
type Stats struct {
	NextSeq    uint64 // sequence number the next Append gets
	WrittenSeq uint64 // highest sequence number handed to the OS
	DurableSeq uint64 // highest sequence number fsynced
	Segments   int
	// BytesSinceCut and CutAt drive the snapshot trigger: frame bytes appended since the
	// last Cut (or Open), and when that was.
	BytesSinceCut int64
	CutAt         time.Time
	Fsyncs        uint64
	FsyncTotal    time.Duration
	FsyncMax      time.Duration
	WriteErrors   uint64 // write or fsync failures seen (each one put the log in trouble)
	Err           error  // non-nil while the log is in trouble and refusing appends
}

// chunk is a run of encoded frames with consecutive sequence numbers that all go to the
// same segment.
type chunk struct {
	first  uint64 // sequence number of the first frame
	n      uint64 // frames in buf
	buf    []byte
	newSeg bool // the chunk must start a new segment (roll, Cut, first write after Open)
}

func (c *chunk) last() uint64 { return c.first + c.n - 1 }

// chunkSize is the starting capacity of a chunk buffer; a chunk grows to hold what one
// flusher round takes (usually a few requests' frames).
const chunkSize = 128 << 10

// maxFreeBytes bounds the chunk buffers a Log keeps for reuse. Chunks are released once
// fsynced, so about backgroundSyncBytes of them circulate; keeping them (rather than using a
// sync.Pool, which every GC empties) means the log allocates no buffers in steady state.
const maxFreeBytes = 4 * backgroundSyncBytes

// getChunk returns a chunk for frames from sequence number first, reusing a free buffer
// when there is one. Caller holds mu.
func (l *Log) getChunk(first uint64, newSeg bool) *chunk {
	var c *chunk
	if n := len(l.free); n > 0 {
		c = l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		l.freeBytes -= cap(c.buf)
	} else {
		c = &chunk{buf: make([]byte, 0, chunkSize)}
	}
	c.first, c.n, c.buf, c.newSeg = first, 0, c.buf[:0], newSeg
	return c
}

// putChunk keeps c's buffer for reuse, within maxFreeBytes. Caller holds mu.
func (l *Log) putChunk(c *chunk) {
	if l.freeBytes+cap(c.buf) > maxFreeBytes {
		return // let the GC have it (a burst's extra chunks, a giant frame's buffer)
	}
	l.free = append(l.free, c)
	l.freeBytes += cap(c.buf)
}

// Log is a segmented write-ahead log. See the package documentation for the model.
type Log struct {
	dir    string
	opts   Options
	fs     fileSystem
	lock   io.Closer
	logger *slog.Logger
	tail   *TailReport
	first  uint64 // the first sequence number Replay can deliver

	kick   chan struct{} // cap 1: wakes the flusher
	quit   chan struct{}
	exited chan struct{}

	mu            sync.Mutex
	nextSeq       uint64
	pending       []*chunk // appended, not yet taken by the flusher
	free          []*chunk // released chunks kept for reuse (getChunk, putChunk)
	freeBytes     int      // total capacity of free
	pendingBytes  int
	segBytes      int64 // bytes in the segment the next frame joins (written + pending)
	forceSeg      bool  // the next frame starts a new segment
	written       uint64
	durable       uint64
	syncWant      uint64        // highest sequence number a Sync caller waits for
	done          chan struct{} // closed and replaced after every flusher round
	err           error         // set while the log is in trouble; cleared by recovery
	closed        bool          // Close called: no more appends
	stopped       bool          // flusher has exited
	closeErr      error
	segs          []uint64 // first sequence numbers of segment files, ascending
	bytesSinceCut int64
	cutAt         time.Time
	stats         Stats // fsync and error counters (protected by mu)

	tok sync.Mutex   // held while a round runs (run, callerRound); guards f
	f   flusherState // the round's state
}

// Open opens (creating if needed) the log in dir. It scans the last segment, truncates a
// torn tail there (reported by TailReport and logged) and starts a flusher goroutine.
// Segments before the last are verified by Replay, which must be called before the first
// Append. Damage that is not a torn tail is a *CorruptionError.
func Open(dir string, opts Options) (*Log, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = defaultSegmentSize
	}
	if opts.Interval <= 0 {
		opts.Interval = defaultInterval
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = defaultRetryInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.fs == nil {
		opts.fs = osFS{}
	}
	if opts.Policy < SyncAlways || opts.Policy > SyncNever {
		return nil, fmt.Errorf("wal: open %s: unknown policy %d", dir, opts.Policy)
	}
	fs := opts.fs
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{
		dir: dir, opts: opts, fs: fs, lock: lock, logger: opts.Logger,
		kick: make(chan struct{}, 1), quit: make(chan struct{}), exited: make(chan struct{}),
		done: make(chan struct{}), forceSeg: true, cutAt: time.Now(),
	}
	if err := l.recoverTail(); err != nil {
		lock.Close()
		return nil, err
	}
	if l.nextSeq < opts.MinSeq {
		if err := l.skipTo(opts.MinSeq); err != nil {
			lock.Close()
			return nil, err
		}
	}
	if len(l.segs) > 0 {
		l.first = l.segs[0]
	} else {
		l.first = l.nextSeq
	}
	l.written, l.durable = l.nextSeq-1, l.nextSeq-1
	go l.run()
	return l, nil
}

// recoverTail scans the last segment, truncates a torn tail and sets nextSeq. An empty last
// segment (created just before a crash, or a stray file) holds nothing: it is removed and
// the one before it becomes the last.
func (l *Log) recoverTail() error {
	segs, err := listSegments(l.fs, l.dir)
	if err != nil {
		return err
	}
	l.nextSeq = 1
	for len(segs) > 0 {
		last := segs[len(segs)-1]
		n, err := l.recoverSegment(last)
		if err != nil {
			return err
		}
		if n > 0 {
			l.segs = segs
			l.nextSeq = last + n
			return nil
		}
		// An empty last segment would collide with the segment the next write creates.
		path := segmentPath(l.dir, last)
		if err := l.fs.Remove(path); err != nil {
			return fmt.Errorf("wal: remove empty segment %s: %w", path, err)
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("wal: sync %s: %w", l.dir, err)
		}
		l.logger.Info("wal: removed an empty last segment", "file", path)
		segs = segs[:len(segs)-1]
		// Numbering goes on from its name when no segment is left (the ones before it were
		// covered by a snapshot); otherwise the segment before it decides.
		l.nextSeq = last
	}
	l.segs = segs
	return nil
}

// recoverSegment scans the last segment first, truncates a torn tail (reported by
// TailReport and logged) and returns its number of frames.
func (l *Log) recoverSegment(first uint64) (uint64, error) {
	path := segmentPath(l.dir, first)
	data, err := l.fs.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("wal: read %s: %w", path, err)
	}
	n, end, p := countFrames(data)
	if p == nil {
		return n, nil
	}
	if !p.torn {
		return 0, &CorruptionError{File: path, Offset: int64(p.off), Reason: p.reason}
	}
	rep := TailReport{File: path, Offset: int64(end), Dropped: int64(len(data) - end), Reason: p.reason}
	if err := l.fs.Truncate(path, int64(end)); err != nil {
		return 0, fmt.Errorf("wal: truncate torn tail of %s at %d: %w", path, end, err)
	}
	if err := syncFile(l.fs, path); err != nil {
		return 0, fmt.Errorf("wal: sync %s after truncation: %w", path, err)
	}
	l.tail = &rep
	l.logger.Warn("wal: truncated torn tail of the last segment (a write interrupted by a crash)",
		"file", rep.File, "offset", rep.Offset, "dropped_bytes", rep.Dropped, "reason", rep.Reason)
	return n, nil
}

// skipTo drops every segment (all older than seq, so covered by the caller's snapshot) and
// continues numbering at seq.
func (l *Log) skipTo(seq uint64) error {
	for _, first := range l.segs {
		if err := l.fs.Remove(segmentPath(l.dir, first)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("wal: remove segment covered by snapshot: %w", err)
		}
	}
	if len(l.segs) > 0 {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("wal: sync %s: %w", l.dir, err)
		}
	}
	// A snapshot is put in place only once the log is durable past its position, and the
	// newest segment is never removed, so a log that ends before the snapshot lost segments
	// (deleted, or moved aside by hand). The snapshot still has everything up to its position.
	l.logger.Warn("wal: the log ends before the snapshot's position: segments written after the snapshot "+
		"may be missing; starting from the snapshot", "log_next_seq", l.nextSeq, "snapshot_seq", seq,
		"segments_removed", len(l.segs))
	l.segs = nil
	l.nextSeq = seq
	return nil
}

// TailReport returns what Open truncated from a torn last segment, or nil.
func (l *Log) TailReport() *TailReport { return l.tail }

// Dir is the folder of the log.
func (l *Log) Dir() string { return l.dir }

// Append buffers payload as the next frame and returns its sequence number. It does no I/O;
// call Sync to wait for durability. Callers serialise Append in the order their mutations
// are applied. While the log is in trouble (a write or fsync failed and recovery has not yet
// succeeded) Append refuses with that error, so callers can reject the request up front.
func (l *Log) Append(payload []byte) (uint64, error) {
	return l.AppendEncoded(func(dst []byte) []byte { return append(dst, payload...) })
}

// AppendEncoded is Append for a payload that encode appends to dst, the log's own buffer,
// so the payload is never built elsewhere and copied in. encode runs under the log's lock
// and must only append to dst (growing it is fine); it must not call the Log.
func (l *Log) AppendEncoded(encode func(dst []byte) []byte) (uint64, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return 0, err
	}
	seq := l.nextSeq
	c := l.tailChunk(seq, l.forceSeg)
	start := len(c.buf)
	c.buf = encode(append(c.buf, make([]byte, FrameHeaderSize)...))
	n := len(c.buf) - start - FrameHeaderSize
	if n > MaxPayload {
		c.buf = c.buf[:start]
		l.dropEmptyTail(c)
		l.mu.Unlock()
		return 0, fmt.Errorf("wal: append: payload of %d bytes exceeds the %d byte limit", n, MaxPayload)
	}
	sealFrame(c.buf[start:])
	size := int64(FrameHeaderSize + n)
	newSeg := l.forceSeg || (l.segBytes > 0 && l.segBytes+size > l.opts.SegmentSize)
	if newSeg && c.n > 0 {
		// The frame must open a new segment but landed behind others: move it to a chunk
		// of its own (once per segment, so the copy does not matter).
		nc := l.getChunk(seq, true)
		nc.buf = append(nc.buf, c.buf[start:]...)
		c.buf = c.buf[:start]
		l.pending = append(l.pending, nc)
		c = nc
	}
	c.newSeg = c.newSeg || newSeg
	if newSeg {
		l.forceSeg, l.segBytes = false, 0
	}
	c.n++
	l.nextSeq++
	l.segBytes += size
	l.bytesSinceCut += size
	before := l.pendingBytes
	l.pendingBytes += int(size)
	l.mu.Unlock()
	if before < kickBytes && before+int(size) >= kickBytes {
		l.wake()
	}
	return seq, nil
}

// tailChunk returns the pending chunk the next frame is appended to, starting one (first
// frame seq) when nothing is pending or when the frame must start a new segment. Caller
// holds mu.
func (l *Log) tailChunk(seq uint64, newSeg bool) *chunk {
	if n := len(l.pending); n > 0 && !newSeg {
		return l.pending[n-1]
	}
	c := l.getChunk(seq, newSeg)
	l.pending = append(l.pending, c)
	return c
}

// dropEmptyTail forgets c when it is the last pending chunk and holds no frame (an append
// that was refused after tailChunk started it). Caller holds mu.
func (l *Log) dropEmptyTail(c *chunk) {
	if n := len(l.pending); c.n == 0 && n > 0 && l.pending[n-1] == c {
		l.pending[n-1] = nil
		l.pending = l.pending[:n-1]
		l.putChunk(c)
	}
}

func (l *Log) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// acked reports whether seq is done under the policy. Caller holds mu.
func (l *Log) acked(seq uint64) bool {
	if l.opts.Policy == SyncAlways {
		return seq <= l.durable
	}
	return seq <= l.written
}

// Sync waits until frame seq (and so every frame before it) is done under the policy:
// fsynced for SyncAlways, written to the OS otherwise. Many concurrent callers share one
// write and one fsync. If the write or fsync covering seq fails, every waiter of an affected
// frame gets that error (errors.Is works with syscall.ENOSPC, EIO, …).
func (l *Log) Sync(ctx context.Context, seq uint64) error {
	tried := false
	l.mu.Lock()
	for {
		if l.acked(seq) {
			l.mu.Unlock()
			return nil
		}
		if seq >= l.nextSeq {
			next := l.nextSeq
			l.mu.Unlock()
			return fmt.Errorf("wal: sync %d: not appended yet (next is %d)", seq, next)
		}
		if l.err != nil {
			err := l.err
			l.mu.Unlock()
			return err
		}
		if l.stopped {
			err := l.closeErr
			l.mu.Unlock()
			if err == nil {
				err = ErrClosed
			}
			return err
		}
		if l.opts.Policy != SyncAlways && !tried {
			// Write the frames here rather than wake the flusher and wait to be woken.
			l.mu.Unlock()
			tried = !l.callerRound() // a round is running: wait for it (once) below
			l.mu.Lock()
			continue
		}
		tried = false
		if seq > l.syncWant {
			l.syncWant = seq
			l.wake()
		}
		ch := l.done
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wal: sync %d: %w", seq, ctx.Err())
		}
		l.mu.Lock()
	}
}

// Flush writes and fsyncs every frame appended so far, whatever the policy. Call it after
// Cut and before publishing a snapshot so the frames the snapshot relies on the log for
// are on disk even under SyncInterval or SyncNever.
func (l *Log) Flush(ctx context.Context) error {
	l.mu.Lock()
	target := l.nextSeq - 1
	for {
		if target <= l.durable {
			l.mu.Unlock()
			return nil
		}
		if l.err != nil {
			err := l.err
			l.mu.Unlock()
			return err
		}
		if l.stopped {
			l.mu.Unlock()
			return ErrClosed
		}
		if target > l.syncWant {
			l.syncWant = target
		}
		l.f.fsyncRequested.Store(true)
		l.wake()
		ch := l.done
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wal: flush: %w", ctx.Err())
		}
		l.mu.Lock()
	}
}

// Cut makes the next appended frame start a new segment and returns its sequence number.
// A snapshot taken after Cut starts from that number; once the snapshot is safe,
// RemoveBefore(seq) deletes the segments it covers. Cut does no I/O.
func (l *Log) Cut() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forceSeg = true
	l.segBytes = 0
	l.bytesSinceCut = 0
	l.cutAt = time.Now()
	return l.nextSeq
}

// RemoveBefore deletes the segments whose frames all have sequence numbers below seq. The
// newest segment is always kept: it anchors the numbering across restarts.
func (l *Log) RemoveBefore(seq uint64) error {
	l.mu.Lock()
	var victims []uint64
	for len(l.segs) > 1 && l.segs[1] <= seq {
		victims = append(victims, l.segs[0])
		l.segs = l.segs[1:]
	}
	if len(victims) > 0 && l.first < l.segs[0] {
		l.first = l.segs[0]
	}
	l.mu.Unlock()
	if len(victims) == 0 {
		return nil
	}
	var errs []error
	for _, first := range victims {
		if err := l.fs.Remove(segmentPath(l.dir, first)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("wal: remove segments before %d: %w", seq, err)
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.NextSeq, s.WrittenSeq, s.DurableSeq = l.nextSeq, l.written, l.durable
	s.Segments = len(l.segs)
	s.BytesSinceCut, s.CutAt = l.bytesSinceCut, l.cutAt
	s.Err = l.err
	return s
}

// Close writes and fsyncs everything appended, stops the flusher and releases the folder.
// If the log is in trouble it makes one last recovery attempt; the error says if that failed
// (the frames that were not acknowledged are then lost). Close is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.exited
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.closeErr
	}
	l.closed = true
	l.mu.Unlock()
	close(l.quit)
	<-l.exited
	lerr := l.lock.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	if lerr != nil && l.closeErr == nil {
		l.closeErr = fmt.Errorf("wal: release lock: %w", lerr)
	}
	return l.closeErr
}
