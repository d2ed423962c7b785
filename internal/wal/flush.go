package wal

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// segState is a segment file the flusher has written to since it was last fully durable.
type segState struct {
	f      file // nil once closed
	path   string
	first  uint64
	off    int64 // bytes written
	durOff int64 // bytes known to be fsynced
}

// asyncSync is an fsync running in the background (SyncInterval ticks, and segment rolls
// under SyncInterval and SyncNever) so the flusher keeps writing while the disk works.
type asyncSync struct {
	seg        *segState
	upTo       int64  // seg.off when the fsync started
	nChunks    int    // queue[:nChunks] were written before it started
	lastSeq    uint64 // highest sequence number it covers
	closeAfter bool   // seg is finished (rolled): close it once durable
	start      time.Time
	err        error         // the fsync's result, set before done is closed
	done       chan struct{} // closed when the fsync has returned
}

// flusherState belongs to whoever runs a round: the flusher goroutine, or a Sync caller
// (callerRound); both hold Log.tok (except for the atomic fsyncRequested).
type flusherState struct {
	// dirty lists the segments, oldest first, that may hold bytes not yet fsynced: the
	// current one (last) and, while its background fsync runs, the one rolled away from.
	dirty []*segState

	// queue holds every chunk that is not yet durable, in sequence order. The first
	// nWritten of them have been written; the rest wait. Keeping written chunks until fsync
	// lets the log rewrite them after an fsync error (see trim).
	queue    []*chunk
	nWritten int
	// unsynced is the buffer capacity held by queue[:nWritten]: memory kept for frames that
	// are written but not yet known durable.
	unsynced int

	inflight *asyncSync

	lastWritten uint64 // highest sequence number written (published at the end of a round)
	lastDurable uint64 // highest sequence number fsynced

	trouble error // last write/fsync error; nil when healthy
	lastTry time.Time
	// kept: the trouble is a failed write (writeFailure) and the current segment's descriptor
	// and written chunks were kept: recovery makes them durable and cuts the failed chunk's
	// partial bytes, instead of cutting back to the last fsync (keep).
	kept bool

	fsyncRequested atomic.Bool // set by Flush: fsync even if the policy would not

	finished bool // the final round has run: no more rounds
}

func (f *flusherState) cur() *segState {
	if n := len(f.dirty); n > 0 && f.dirty[n-1].f != nil {
		return f.dirty[n-1]
	}
	return nil
}

// run is the flusher goroutine. It runs rounds when woken (an Append past kickBytes, a Sync
// waiter, Flush, Close), on the policy's ticker and on retries; under SyncInterval and
// SyncNever a Sync caller may run a round itself (Sync), so rounds hold l.tok.
func (l *Log) run() {
	defer close(l.exited)
	f := &l.f
	l.tok.Lock()
	f.lastWritten, f.lastDurable = l.written, l.durable
	l.tok.Unlock()
	var tick <-chan time.Time
	if l.opts.Policy == SyncInterval {
		t := time.NewTicker(l.opts.Interval)
		defer t.Stop()
		tick = t.C
	}
	var retry <-chan time.Time
	for {
		l.tok.Lock()
		trouble := f.trouble
		var syncDone <-chan struct{}
		if f.inflight != nil {
			syncDone = f.inflight.done
		}
		l.tok.Unlock()
		// A log in trouble retries on a timer, however it got there (a failed round, or a
		// failed background fsync): appends are refused meanwhile, so no writer would wake it.
		switch {
		case trouble != nil && retry == nil:
			retry = time.After(l.opts.RetryInterval)
		case trouble == nil:
			retry = nil
		}
		final, ticked := false, false
		select {
		case <-l.kick:
		case <-tick:
			ticked = true
		case <-retry:
			retry = nil
		case <-syncDone:
			l.tok.Lock()
			// A caller's round may have finished this fsync (and started another) meanwhile.
			if a := f.inflight; a != nil && a.done == syncDone {
				if err := l.finishAsync(a.err); err != nil {
					l.fail(err)
				} else {
					l.publish()
				}
			}
			l.tok.Unlock()
			continue
		case <-l.quit:
			final = true
		}
		l.tok.Lock()
		l.round(final, ticked, false)
		if final {
			l.shutdown()
			f.finished = true
		}
		l.tok.Unlock()
		if final {
			return
		}
	}
}

// callerRound runs a round on the calling goroutine (a Sync waiter) if no round is running,
// and reports whether it did. Under SyncInterval and SyncNever a waiter only needs its frames
// handed to the OS: writing them itself saves waking the flusher and being woken back, two
// thread hand-offs per request. Under SyncAlways waiters leave the round to the flusher,
// which makes them share one fsync (group commit).
func (l *Log) callerRound() bool {
	if l.opts.Policy == SyncAlways || !l.tok.TryLock() {
		return false
	}
	f := &l.f
	if f.finished || f.trouble != nil {
		// Closed, or in trouble: the flusher alone retries, on its timer.
		l.tok.Unlock()
		return false
	}
	before := f.inflight
	l.round(false, false, true)
	// The flusher must hear of what the round left for it: a background fsync whose result
	// it has to collect, or trouble it has to retry on its timer.
	wake := (f.inflight != nil && f.inflight != before) || f.trouble != nil
	l.tok.Unlock()
	if wake {
		l.wake()
	}
	return true
}

// round writes what is pending and fsyncs when the policy (or a Flush, or Close) asks;
// caller says a Sync caller runs it (callerRound), which leaves a Flush's fsync to the flusher.
func (l *Log) round(final, ticked, caller bool) {
	f := &l.f
	l.mu.Lock()
	f.queue = append(f.queue, l.pending...)
	clear(l.pending)
	l.pending = l.pending[:0]
	l.pendingBytes = 0
	l.mu.Unlock()

	recovering := f.trouble != nil
	if recovering {
		if !final && time.Since(f.lastTry) < l.opts.RetryInterval {
			l.publish()
			return
		}
		f.lastTry = time.Now()
		if err := l.recoverKept(); err != nil {
			l.fail(err)
			return
		}
		if err := l.trim(); err != nil {
			l.fail(err)
			return
		}
	}
	if err := l.writeQueue(); err != nil {
		l.fail(err)
		return
	}
	var err error
	switch {
	case recovering || final || l.opts.Policy == SyncAlways || (!caller && f.fsyncRequested.Swap(false)):
		// A caller's round (callerRound) leaves a Flush's fsync to the flusher, which Flush
		// wakes: a request must not wait for a disk it did not ask for.
		err = l.syncNow()
	case f.inflight == nil && f.nWritten > 0 &&
		((l.opts.Policy == SyncInterval && ticked) || f.unsynced >= backgroundSyncBytes):
		if cur := f.cur(); cur != nil {
			l.startAsync(cur, false)
		}
	}
	if err != nil {
		l.fail(err)
		return
	}
	if recovering {
		l.logger.Info("wal: recovered from disk trouble; appends resume", "previous_error", f.trouble)
		f.trouble = nil
	}
	l.publish()
}

// writeQueue writes every queued chunk not yet written, starting segments as needed.
func (l *Log) writeQueue() error {
	f := &l.f
	for f.nWritten < len(f.queue) {
		c := f.queue[f.nWritten]
		cur := f.cur()
		if cur == nil || (c.newSeg && cur.first != c.first) {
			if err := l.roll(c.first); err != nil {
				return err
			}
			cur = f.cur()
		}
		n, err := cur.f.Write(c.buf)
		if err == nil && n < len(c.buf) {
			err = fmt.Errorf("short write (%d of %d bytes)", n, len(c.buf))
		}
		if err != nil {
			// cur.off stays at the end of the last whole chunk: recovery cuts what part of
			// this one reached the file.
			return &writeFailure{fmt.Errorf("wal: write %s: %w", cur.path, err)}
		}
		cur.off += int64(n)
		f.nWritten++
		f.unsynced += cap(c.buf)
		f.lastWritten = c.last()
	}
	return nil
}

// roll finishes the current segment and creates the segment starting at first.
//
// The finished segment is fsynced before the new one is used, so after a power failure only
// the last segment can have a torn tail. Under SyncAlways that fsync is inline. Under
// SyncInterval and SyncNever it runs in the background while writing continues in the new
// segment, so rolls do not stall writers; the cost is that a power failure in that window
// can leave a torn tail in the second-to-last segment, which Open reports as corruption
// (repair truncates there, losing only frames younger than the policy's loss window).
func (l *Log) roll(first uint64) error {
	f := &l.f
	if cur := f.cur(); cur != nil {
		if l.opts.Policy == SyncAlways {
			if err := l.syncNow(); err != nil {
				return err
			}
		} else if err := l.waitAsync(); err != nil {
			return err
		}
		if f.nWritten > 0 {
			l.startAsync(cur, true)
		} else {
			if err := l.closeSeg(cur); err != nil {
				return err
			}
			f.dirty = f.dirty[:len(f.dirty)-1]
		}
	}
	seg := &segState{path: segmentPath(l.dir, first), first: first}
	// Listed before the create so trim removes a half-created file too.
	f.dirty = append(f.dirty, seg)
	fh, err := l.fs.OpenFile(seg.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	seg.f = fh
	l.mu.Lock()
	l.segs = append(l.segs, first)
	l.mu.Unlock()
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("wal: sync %s after creating %s: %w", l.dir, seg.path, err)
	}
	return nil
}

func (l *Log) closeSeg(s *segState) error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("wal: close %s: %w", s.path, err)
	}
	return nil
}

// startAsync starts a background fsync of seg covering everything written so far.
func (l *Log) startAsync(seg *segState, closeAfter bool) {
	f := &l.f
	a := &asyncSync{seg: seg, upTo: seg.off, nChunks: f.nWritten, lastSeq: f.lastWritten,
		closeAfter: closeAfter, start: time.Now(), done: make(chan struct{})}
	f.inflight = a
	fh := seg.f
	go func() {
		a.err = fh.Sync()
		close(a.done)
	}()
}

// waitAsync waits for the background fsync, if any, and applies its result.
func (l *Log) waitAsync() error {
	if l.f.inflight == nil {
		return nil
	}
	<-l.f.inflight.done
	return l.finishAsync(l.f.inflight.err)
}

// finishAsync applies the result of the background fsync.
func (l *Log) finishAsync(err error) error {
	f := &l.f
	a := f.inflight
	f.inflight = nil
	if err != nil {
		return fmt.Errorf("wal: fsync %s: %w", a.seg.path, err)
	}
	a.seg.durOff = a.upTo
	l.synced(a.nChunks, a.lastSeq, time.Since(a.start))
	if a.closeAfter {
		if err := l.closeSeg(a.seg); err != nil {
			return err
		}
		if len(f.dirty) > 0 && f.dirty[0] == a.seg {
			f.dirty = f.dirty[1:]
		}
	}
	return nil
}

// syncNow makes everything written durable before returning: it waits for a background
// fsync, then fsyncs the current segment.
func (l *Log) syncNow() error {
	f := &l.f
	if err := l.waitAsync(); err != nil {
		return err
	}
	cur := f.cur()
	if cur == nil || f.nWritten == 0 {
		return nil
	}
	start := time.Now()
	if err := cur.f.Sync(); err != nil {
		return fmt.Errorf("wal: fsync %s: %w", cur.path, err)
	}
	cur.durOff = cur.off
	l.synced(f.nWritten, f.lastWritten, time.Since(start))
	return nil
}

// synced releases the first n queued chunks, now durable up to lastSeq.
func (l *Log) synced(n int, lastSeq uint64, d time.Duration) {
	f := &l.f
	l.mu.Lock()
	for i := range n {
		f.unsynced -= cap(f.queue[i].buf)
		l.putChunk(f.queue[i])
		f.queue[i] = nil
	}
	f.queue = append(f.queue[:0], f.queue[n:]...)
	f.nWritten -= n
	f.lastDurable = lastSeq
	l.stats.Fsyncs++
	l.stats.FsyncTotal += d
	l.stats.FsyncMax = max(l.stats.FsyncMax, d)
	l.mu.Unlock()
	if l.opts.OnFsync != nil {
		l.opts.OnFsync(d)
	}
}

// fail puts the log in trouble after a write or fsync error. A failed write alone keeps what
// was written (see keep and recoverKept); the rest of this comment is about the other cases.
//
// After a failed fsync the kernel may already have dropped the dirty pages and marked them
// clean, so a later fsync on the same file can succeed without the data being on disk
// ("fsyncgate"). The log therefore never trusts a segment past its last successfully fsynced
// offset: its descriptor is closed at once, and recovery (trim) cuts the file back to that
// offset and rewrites every not-yet-durable frame, from the copies kept in memory, into a
// fresh segment, which must itself be written and fsynced before anything is acknowledged
// again. Waiters of the affected frames get the error now; Append refuses new frames until
// recovery succeeds, so memory stays bounded and callers can reject requests up front.
func (l *Log) fail(err error) {
	f := &l.f
	// Let a background fsync finish before closing its descriptor. If it succeeded, its
	// frames really are durable.
	aerr := l.waitAsync()
	if aerr != nil {
		l.logger.Error("wal: background fsync failed too", "err", aerr)
	}
	// A write that failed (a full disk) while no fsync did leaves the frames written before it
	// in the OS — acknowledged under SyncInterval and SyncNever — and they must stay where a
	// crash finds them: recovery (recoverKept) fsyncs and cuts the segment at its last whole
	// chunk, and only the chunks not yet written are written again. Otherwise the segments are
	// not trusted past their last good fsync (above).
	f.kept = keep(err, aerr) && f.cur() != nil
	if !f.kept {
		for _, s := range f.dirty {
			if s.f != nil {
				s.f.Close()
				s.f = nil
			}
		}
		f.nWritten, f.unsynced = 0, 0
	}
	f.trouble = err
	l.logger.Error("wal: write failed; refusing appends until the disk recovers", "err", err,
		"chunks_to_write", len(f.queue)-f.nWritten)
	l.mu.Lock()
	if !f.kept {
		// Frames written in this failed round were never acknowledged; forget them so only the
		// rewrite can acknowledge them.
		f.lastWritten = l.written
	}
	l.err = err
	l.stats.WriteErrors++
	close(l.done)
	l.done = make(chan struct{})
	l.mu.Unlock()
}

// writeFailure is a failed segment write, as opposed to a failed fsync (see fail).
type writeFailure struct{ err error }

func (e *writeFailure) Error() string { return e.err.Error() }
func (e *writeFailure) Unwrap() error { return e.err }

// keep reports whether fail may keep what was written: the error is a failed write and no
// fsync failed with it.
func keep(err, asyncErr error) bool {
	var wf *writeFailure
	return asyncErr == nil && errors.As(err, &wf)
}

// recoverKept is recovery's first step after a failed write (fail, kept): it fsyncs the
// current segment — everything written to it, the failed chunk's partial bytes included — and
// marks it durable up to its last whole chunk, so that trim then cuts only those partial
// bytes and the rewrite starts at the first chunk not written. A failed fsync here is a disk
// error like any other: the segment is not trusted past its last good fsync (fail).
func (l *Log) recoverKept() error {
	f := &l.f
	if !f.kept {
		return nil
	}
	f.kept = false
	cur := f.cur()
	start := time.Now()
	err := cur.f.Sync()
	cur.f.Close()
	cur.f = nil
	if err != nil {
		return fmt.Errorf("wal: fsync %s: %w", cur.path, err)
	}
	cur.durOff = cur.off
	l.synced(f.nWritten, f.lastWritten, time.Since(start))
	return nil
}

// trim cuts the segments that may hold non-durable bytes back to their last fsynced offset
// (removing those where nothing was fsynced) so the rewrite can start a fresh segment.
func (l *Log) trim() error {
	f := &l.f
	for i := len(f.dirty) - 1; i >= 0; i-- {
		s := f.dirty[i]
		if s.durOff == 0 {
			if err := l.fs.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("wal: remove unsynced segment %s: %w", s.path, err)
			}
			l.mu.Lock()
			if n := len(l.segs); n > 0 && l.segs[n-1] == s.first {
				l.segs = l.segs[:n-1]
			}
			l.mu.Unlock()
		} else {
			if err := l.fs.Truncate(s.path, s.durOff); err != nil {
				return fmt.Errorf("wal: truncate %s to %d: %w", s.path, s.durOff, err)
			}
			if err := syncFile(l.fs, s.path); err != nil {
				return fmt.Errorf("wal: fsync %s after truncation: %w", s.path, err)
			}
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("wal: sync %s: %w", l.dir, err)
		}
		f.dirty = f.dirty[:i]
	}
	return nil
}

// publish makes the round's progress visible and wakes every Sync waiter.
func (l *Log) publish() {
	f := &l.f
	l.mu.Lock()
	if f.trouble == nil {
		l.written, l.durable, l.err = f.lastWritten, f.lastDurable, nil
	}
	close(l.done)
	l.done = make(chan struct{})
	l.mu.Unlock()
}

// shutdown runs after the final round: close the segments and record the outcome.
func (l *Log) shutdown() {
	f := &l.f
	var err error
	if f.inflight != nil { // only after a failed final round
		<-f.inflight.done
		f.inflight = nil
	}
	for _, s := range f.dirty {
		if cerr := l.closeSeg(s); cerr != nil && err == nil {
			err = cerr
		}
	}
	if f.trouble != nil {
		err = fmt.Errorf("wal: close: %d chunk(s) of frames could not be made durable: %w", len(f.queue), f.trouble)
	}
	f.queue = nil
	l.mu.Lock()
	l.closeErr = err
	l.stopped = true
	close(l.done)
	l.done = make(chan struct{})
	l.mu.Unlock()
}
