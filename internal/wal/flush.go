package wal

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// flusherState is owned by the flusher goroutine; nothing else touches it (except the
// atomic fsyncRequested).
type flusherState struct {
	cur     file   // open segment being written; nil when none (or after trouble)
	curPath string // segment file that trim must cut back; "" when nothing to trim
	curOff  int64  // bytes written to curPath
	durOff  int64  // bytes of curPath known to be fsynced

	// queue holds every chunk that is not yet durable, in sequence order. The first
	// nWritten of them have been written to cur; the rest wait. Keeping written chunks until
	// fsync lets the log rewrite them after an fsync error (see trim).
	queue    []*chunk
	nWritten int

	lastWritten uint64 // highest sequence number written (published at the end of a round)
	lastDurable uint64 // highest sequence number fsynced
	lastFsync   time.Time

	trouble error // last write/fsync error; nil when healthy
	lastTry time.Time

	fsyncRequested atomic.Bool // set by Flush: fsync even if the policy would not
}

// run is the flusher goroutine: the only writer of segment files.
func (l *Log) run() {
	defer close(l.exited)
	f := &l.f
	f.lastWritten, f.lastDurable, f.lastFsync = l.written, l.durable, time.Now()
	var tick <-chan time.Time
	if l.opts.Policy == SyncInterval {
		t := time.NewTicker(l.opts.Interval)
		defer t.Stop()
		tick = t.C
	}
	var retry <-chan time.Time
	for {
		final, ticked := false, false
		select {
		case <-l.kick:
		case <-tick:
			ticked = true
		case <-retry:
		case <-l.quit:
			final = true
		}
		l.round(final, ticked)
		retry = nil
		if f.trouble != nil {
			retry = time.After(l.opts.RetryInterval)
		}
		if final {
			l.shutdown()
			return
		}
	}
}

// round writes what is pending and fsyncs when the policy (or a Flush, or Close) asks.
func (l *Log) round(final, ticked bool) {
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
		if err := l.trim(); err != nil {
			l.fail(err)
			return
		}
	}
	if err := l.writeQueue(); err != nil {
		l.fail(err)
		return
	}
	sync := recovering || final || f.fsyncRequested.Swap(false) ||
		l.opts.Policy == SyncAlways || (l.opts.Policy == SyncInterval && ticked)
	if sync {
		if err := l.syncCur(); err != nil {
			l.fail(err)
			return
		}
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
		if c.newSeg || f.cur == nil {
			if err := l.roll(c.first); err != nil {
				return err
			}
		}
		n, err := f.cur.Write(c.buf)
		f.curOff += int64(n)
		if err == nil && n < len(c.buf) {
			err = fmt.Errorf("short write (%d of %d bytes)", n, len(c.buf))
		}
		if err != nil {
			return fmt.Errorf("wal: write %s: %w", f.curPath, err)
		}
		f.nWritten++
		f.lastWritten = c.last()
	}
	return nil
}

// roll finishes the current segment (fsync, close) and creates the segment starting at
// first. Finishing with an fsync whatever the policy keeps the rule simple: only the last
// segment can ever have a torn tail.
func (l *Log) roll(first uint64) error {
	f := &l.f
	if f.cur != nil {
		if err := l.syncCur(); err != nil {
			return err
		}
		err := f.cur.Close()
		f.cur = nil
		if err != nil {
			return fmt.Errorf("wal: close %s: %w", f.curPath, err)
		}
	}
	path := segmentPath(l.dir, first)
	f.curPath, f.curOff, f.durOff = path, 0, 0
	fh, err := l.fs.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	f.cur = fh
	l.mu.Lock()
	l.segs = append(l.segs, first)
	l.mu.Unlock()
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("wal: sync %s after creating %s: %w", l.dir, path, err)
	}
	return nil
}

// syncCur fsyncs the current segment and releases the chunks written to it.
func (l *Log) syncCur() error {
	f := &l.f
	if f.cur == nil || (f.nWritten == 0 && f.durOff == f.curOff) {
		return nil
	}
	start := time.Now()
	if err := f.cur.Sync(); err != nil {
		return fmt.Errorf("wal: fsync %s: %w", f.curPath, err)
	}
	d := time.Since(start)
	f.durOff = f.curOff
	f.lastDurable = f.lastWritten
	f.lastFsync = time.Now()
	for i := range f.nWritten {
		putChunk(f.queue[i])
		f.queue[i] = nil
	}
	f.queue = append(f.queue[:0], f.queue[f.nWritten:]...)
	f.nWritten = 0
	l.mu.Lock()
	l.stats.Fsyncs++
	l.stats.FsyncTotal += d
	l.stats.FsyncMax = max(l.stats.FsyncMax, d)
	l.mu.Unlock()
	if l.opts.OnFsync != nil {
		l.opts.OnFsync(d)
	}
	return nil
}

// fail puts the log in trouble after a write or fsync error.
//
// After a failed fsync the kernel may already have dropped the dirty pages and marked them
// clean, so a later fsync on the same file can succeed without the data being on disk
// ("fsyncgate"). The log therefore never trusts the failed segment past its last
// successfully fsynced offset: the descriptor is closed at once, and recovery (trim) cuts
// the file back to that offset and rewrites every not-yet-durable frame, from the copies
// kept in memory, into a fresh segment, which must itself be written and fsynced before
// anything is acknowledged again. Waiters of the affected frames get the error now; Append
// refuses new frames until recovery succeeds, so memory stays bounded and callers can
// reject requests instead of queueing them.
func (l *Log) fail(err error) {
	f := &l.f
	if f.cur != nil {
		f.cur.Close()
		f.cur = nil
	}
	f.nWritten = 0
	f.trouble = err
	l.logger.Error("wal: write failed; refusing appends until the disk recovers", "err", err,
		"unsynced_chunks", len(f.queue))
	l.mu.Lock()
	// Frames written in this failed round were never acknowledged; forget them so only the
	// rewrite can acknowledge them.
	f.lastWritten = l.written
	l.err = err
	l.stats.WriteErrors++
	close(l.done)
	l.done = make(chan struct{})
	l.mu.Unlock()
}

// trim cuts the segment that was being written back to its last fsynced offset (removing it
// when nothing in it was fsynced) so that the rewrite can start a fresh segment right after.
func (l *Log) trim() error {
	f := &l.f
	if f.curPath == "" {
		return nil
	}
	if f.durOff == 0 {
		if err := l.fs.Remove(f.curPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("wal: remove unsynced segment %s: %w", f.curPath, err)
		}
		first, _ := parseSegmentName(pathBase(f.curPath))
		l.mu.Lock()
		if n := len(l.segs); n > 0 && l.segs[n-1] == first {
			l.segs = l.segs[:n-1]
		}
		l.mu.Unlock()
	} else {
		if err := l.fs.Truncate(f.curPath, f.durOff); err != nil {
			return fmt.Errorf("wal: truncate %s to %d: %w", f.curPath, f.durOff, err)
		}
		if err := syncFile(l.fs, f.curPath); err != nil {
			return fmt.Errorf("wal: fsync %s after truncation: %w", f.curPath, err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("wal: sync %s: %w", l.dir, err)
	}
	f.curPath, f.curOff, f.durOff = "", 0, 0
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

// shutdown runs after the final round: close the segment and record the outcome.
func (l *Log) shutdown() {
	f := &l.f
	var err error
	if f.cur != nil {
		if cerr := f.cur.Close(); cerr != nil {
			err = fmt.Errorf("wal: close %s: %w", f.curPath, cerr)
		}
		f.cur = nil
	}
	if f.trouble != nil {
		err = fmt.Errorf("wal: close: %d chunk(s) of frames could not be made durable: %w", len(f.queue), f.trouble)
	}
	for _, c := range f.queue {
		putChunk(c)
	}
	f.queue = nil
	l.mu.Lock()
	l.closeErr = err
	l.stopped = true
	close(l.done)
	l.done = make(chan struct{})
	l.mu.Unlock()
}

func pathBase(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if os.IsPathSeparator(p[i]) {
			return p[i+1:]
		}
	}
	return p
}
