package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// RepairReport says what Repair did.
type RepairReport struct {
	Clean        bool     // nothing to repair
	Cut          bool     // the log was cut (File, Offset); false when only strays were moved
	Strays       []string // segment files that were not part of the log, moved aside whole
	File         string   // segment where the log now ends (truncated or the last one kept)
	Offset       int64    // where File was cut (its new size)
	Reason       string   // the damage found
	DroppedBytes int64    // bytes moved out of the log (tail of File plus whole later segments)
	MovedTo      string   // folder holding the dropped bytes
	Moved        []string
}

// Repair truncates the log in dir at the first bad frame or sequence gap and moves
// everything after that point into dir/corrupt-<UTC time>/ (the tail of the damaged segment as
// <segment>.from-<offset>, later segments whole). Frames after the damage are lost from the
// log, which is why this is an explicit operator action and never automatic. The log must
// not be open (the folder lock is taken).
func Repair(dir string) (RepairReport, error) {
	return repair(osFS{}, dir, time.Now(), 0, nil)
}

// RepairFrom is Repair for a log that start-up replays from fromSeq (the snapshot's
// position): segments whose frames all come before it are not needed to start, so damage or
// gaps among them are left alone — cutting there would throw away every frame after them.
// The caller holds the folder's lock (Lock): it takes it before it touches anything else of
// the data folder, so that a repair run against a folder in use changes nothing.
//
// check, when not nil, is called for every frame from fromSeq on; the first frame it refuses
// (an error wrapping ErrBadPayload: a payload start-up could not decode although its CRC checks
// out) is damage, cut like a bad CRC.
func RepairFrom(dir string, fromSeq uint64, check func(seq uint64, payload []byte) error) (RepairReport, error) {
	return repairLocked(osFS{}, dir, time.Now(), fromSeq, check)
}

// Lock takes the log folder's exclusive lock, the one an open Log holds: it fails while a
// server uses the folder. Close releases it.
func Lock(dir string) (io.Closer, error) { return lockDir(dir) }

func repair(fs fileSystem, dir string, now time.Time, fromSeq uint64, check func(uint64, []byte) error) (RepairReport, error) {
	lock, err := lockDir(dir)
	if err != nil {
		return RepairReport{}, err
	}
	defer lock.Close()
	return repairLocked(fs, dir, now, fromSeq, check)
}

func repairLocked(fs fileSystem, dir string, now time.Time, fromSeq uint64, check func(uint64, []byte) error) (RepairReport, error) {
	segs, err := listSegments(fs, dir)
	if err != nil {
		return RepairReport{}, err
	}
	// Skip the segments start-up does not need (the next one starts at or before fromSeq).
	start := 0
	for start+1 < len(segs) && segs[start+1] <= fromSeq {
		start++
	}
	// Find the cut: segment index and offset within it. A segment that breaks the numbering
	// while a later one continues it (it starts inside the segment before it, or skips ahead)
	// is a stray file, not a gap: it alone is moved aside and the chain goes on.
	cutSeg, cutOff, reason := -1, int64(0), ""
	var strays []uint64
	for i := start; i < len(segs); i++ {
		first := segs[i]
		path := segmentPath(dir, first)
		data, err := fs.ReadFile(path)
		if err != nil {
			return RepairReport{}, fmt.Errorf("wal: repair: read %s: %w", path, err)
		}
		n, p := checkSegment(data, first, fromSeq, check)
		if p != nil {
			cutSeg, cutOff, reason = i, int64(p.off), p.reason
			break
		}
		if i+1 < len(segs) && first+n != segs[i+1] {
			if j := slices.Index(segs[i+2:], first+n); j >= 0 {
				segs = slices.Clone(segs)
				strays = append(strays, segs[i+1:i+2+j]...)
				segs = slices.Delete(segs, i+1, i+2+j)
				continue
			}
			cutSeg, cutOff = i+1, 0
			reason = fmt.Sprintf("segment %s ends at sequence %d but the next one starts at %d",
				segmentName(first), first+n-1, segs[i+1])
			break
		}
	}
	if cutSeg < 0 && len(strays) == 0 {
		return RepairReport{Clean: true}, nil
	}
	aside := filepath.Join(dir, "corrupt-"+now.UTC().Format("20060102T150405.000000000Z"))
	if err := fs.MkdirAll(aside, 0o755); err != nil {
		return RepairReport{}, fmt.Errorf("wal: repair: %w", err)
	}
	rep := RepairReport{Reason: reason, MovedTo: aside, Offset: cutOff, Cut: cutSeg >= 0}
	for _, first := range strays {
		rep.Strays = append(rep.Strays, segmentName(first))
	}
	if len(strays) > 0 {
		rep.Reason = strings.TrimPrefix(rep.Reason+"; ", "; ") + fmt.Sprintf(
			"%s not part of the log (the segments around continue its numbering)", strings.Join(rep.Strays, ", "))
	}
	rest := strays
	if cutSeg >= 0 {
		rest = append(rest, segs[cutSeg:]...)
	}
	if cutSeg < 0 {
		// Only strays: nothing is cut.
	} else if cutOff > 0 {
		// Keep the good prefix of the damaged segment; save its tail.
		path := segmentPath(dir, segs[cutSeg])
		data, err := fs.ReadFile(path)
		if err != nil {
			return rep, fmt.Errorf("wal: repair: read %s: %w", path, err)
		}
		tail := filepath.Join(aside, fmt.Sprintf("%s.from-%d", segmentName(segs[cutSeg]), cutOff))
		if err := writeFileSync(fs, tail, data[cutOff:]); err != nil {
			return rep, fmt.Errorf("wal: repair: save tail: %w", err)
		}
		if err := fs.Truncate(path, cutOff); err != nil {
			return rep, fmt.Errorf("wal: repair: truncate %s: %w", path, err)
		}
		if err := syncFile(fs, path); err != nil {
			return rep, fmt.Errorf("wal: repair: sync %s: %w", path, err)
		}
		rep.File = path
		rep.DroppedBytes += int64(len(data)) - cutOff
		rep.Moved = append(rep.Moved, tail)
		rest = slices.DeleteFunc(rest, func(first uint64) bool { return first == segs[cutSeg] })
	} else if cutSeg > 0 {
		rep.File = segmentPath(dir, segs[cutSeg-1])
		data, err := fs.ReadFile(rep.File)
		if err != nil {
			return rep, fmt.Errorf("wal: repair: read %s: %w", rep.File, err)
		}
		rep.Offset = int64(len(data))
	}
	for _, first := range rest {
		from := segmentPath(dir, first)
		to := filepath.Join(aside, segmentName(first))
		data, err := fs.ReadFile(from)
		if err != nil {
			return rep, fmt.Errorf("wal: repair: read %s: %w", from, err)
		}
		if err := fs.Rename(from, to); err != nil {
			return rep, fmt.Errorf("wal: repair: move %s aside: %w", from, err)
		}
		rep.DroppedBytes += int64(len(data))
		rep.Moved = append(rep.Moved, to)
	}
	if err := fs.SyncDir(aside); err != nil {
		return rep, fmt.Errorf("wal: repair: sync %s: %w", aside, err)
	}
	if err := fs.SyncDir(dir); err != nil {
		return rep, fmt.Errorf("wal: repair: sync %s: %w", dir, err)
	}
	return rep, nil
}

func writeFileSync(fs fileSystem, name string, data []byte) error {
	f, err := fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkSegment counts the valid frames of the segment starting at first and returns its first
// problem: a bad frame, or, with check, an earlier frame from fromSeq whose payload check
// refuses (an error wrapping ErrBadPayload). One pass over the segment.
func checkSegment(data []byte, first, fromSeq uint64, check func(uint64, []byte) error) (n uint64, p *frameProblem) {
	var bad *frameProblem
	_, p, _ = scanFrames(data, func(off int, payload []byte) error {
		if seq := first + n; check != nil && seq >= fromSeq {
			if err := check(seq, payload); errors.Is(err, ErrBadPayload) {
				bad = &frameProblem{off: off, reason: fmt.Sprintf("frame %d: %v", seq, err)}
				return err
			}
		}
		n++
		return nil
	})
	if bad != nil {
		return n, bad
	}
	return n, p
}
