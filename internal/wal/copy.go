package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// CopyReport says what Reading.CopyTo copied.
type CopyReport struct {
	Segments int    // segment files written
	Frames   uint64 // frames copied
	Bytes    int64  // bytes written
	First    uint64 // sequence number of the first frame copied (0 when none)
	Last     uint64 // sequence number of the last frame copied (0 when none)
	// TornFile and TornBytes name the bytes left out at the end of the last segment: a frame
	// the server was writing at that moment (or damage there; the two look alike).
	TornFile  string
	TornBytes int64
}

// Reading is a set of log segments opened for copying (OpenReading); a server may go on
// appending to the log and removing old segments meanwhile.
type Reading struct {
	dir   string
	from  uint64
	segs  []uint64
	files []*os.File
}

// OpenReading opens, for CopyTo, the segments of the log in dir from the one holding
// sequence number from to the newest. It only reads dir and takes no lock. Every segment is
// opened before any is read: an open file stays readable after the server removes it, so
// once OpenReading returns nothing can vanish mid-copy. A segment removed between the
// listing and its opening (a snapshot let the server drop it) gives an error for which
// errors.Is(err, os.ErrNotExist) holds: list again. A log that starts after from is a
// *CorruptionError.
func OpenReading(dir string, from uint64) (*Reading, error) {
	segs, err := listSegments(osFS{}, dir)
	if err != nil {
		return nil, err
	}
	from = max(from, 1)
	if len(segs) > 0 && segs[0] > from {
		return nil, &CorruptionError{File: segmentPath(dir, segs[0]), Reason: fmt.Sprintf(
			"the log starts at sequence %d but it is needed from %d: segments are missing", segs[0], from)}
	}
	i0 := 0
	for i, first := range segs {
		if first <= from {
			i0 = i
		}
	}
	r := &Reading{dir: dir, from: from}
	for _, first := range segs[i0:] {
		f, err := os.Open(segmentPath(dir, first))
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("wal: copy: %w", err)
		}
		r.segs, r.files = append(r.segs, first), append(r.files, f)
	}
	return r, nil
}

// Close closes the segments.
func (r *Reading) Close() {
	for _, f := range r.files {
		f.Close()
	}
	r.files = nil
}

// CopyTo copies the opened segments that hold frames from the position given to
// OpenReading on (and the newest one holding frames), up to the last whole frame of the
// newest, into dest (an existing folder holding no segments), as a log that Open accepts,
// fsynced. Every frame it copies is checked (length, CRC, and each finished segment holds
// exactly the frames the numbering says), and check (when not nil) is called with each
// frame from the OpenReading position on, as a replay would see it: an error from it stops
// the copy. So a copy that succeeds replays. Damage in a finished segment is a
// *CorruptionError, and so is a bad frame in the newest one that intact frames follow; a
// torn end of the newest one (a frame being written) is left out and reported (TornBytes),
// as start-up would truncate it. It stops with ctx.Err() when ctx ends.
func (r *Reading) CopyTo(ctx context.Context, dest string, check func(seq uint64, payload []byte) error) (CopyReport, error) {
	var rep CopyReport
	for i, f := range r.files {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		first, path := r.segs[i], segmentPath(r.dir, r.segs[i])
		last := i == len(r.files)-1
		data, err := io.ReadAll(f)
		if err != nil {
			return rep, fmt.Errorf("wal: copy: read %s: %w", path, err)
		}
		var n uint64
		end, p, err := scanFrames(data, func(_ int, payload []byte) error {
			seq := first + n
			n++
			if check == nil || seq < r.from {
				return nil
			}
			if err := check(seq, payload); err != nil {
				return fmt.Errorf("wal: frame %d in %s: %w", seq, path, err)
			}
			return nil
		})
		if err != nil {
			return rep, err
		}
		if !last {
			// A finished segment: the server wrote it whole before it created the next one.
			if p != nil {
				return rep, &CorruptionError{File: path, Offset: int64(p.off), Reason: p.reason}
			}
			if want := r.segs[i+1] - first; n != want {
				return rep, &CorruptionError{File: path, Offset: int64(end), Reason: fmt.Sprintf(
					"segment holds %d frames but the next segment's first sequence %d implies %d", n, r.segs[i+1], want)}
			}
		} else if p != nil {
			if !p.torn {
				// Intact frames follow the bad one: damage, not a frame being written (which
				// only ever ends the file). Start-up refuses this too.
				return rep, &CorruptionError{File: path, Offset: int64(p.off), Reason: p.reason}
			}
			rep.TornFile, rep.TornBytes = path, int64(len(data)-end)
		}
		if n == 0 || (first+n <= r.from && !last) {
			// The newest segment, just created, or one whose frames all come before the
			// position the copy is needed from (a snapshot cut the log after it). The
			// newest segment holding frames is kept even then: a log that ends before the
			// snapshot's position looks to start-up like one that lost segments.
			continue
		}
		if err := writeSegmentCopy(segmentPath(dest, first), data[:end]); err != nil {
			return rep, err
		}
		rep.Segments++
		rep.Frames += n
		rep.Bytes += int64(end)
		if rep.First == 0 {
			rep.First = first
		}
		rep.Last = first + n - 1
	}
	if err := SyncDir(dest); err != nil {
		return rep, fmt.Errorf("wal: copy: sync %s: %w", dest, err)
	}
	return rep, nil
}

// writeSegmentCopy creates path (it must not exist) with data, fsynced.
func writeSegmentCopy(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("wal: copy: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errors.Join(fmt.Errorf("wal: copy: write %s: %w", path, err), os.Remove(path))
	}
	return nil
}
