package wal

import (
	"errors"
	"fmt"
)

// Replay calls fn for every frame with sequence number >= fromSeq, in order. Call it after
// Open and before the first Append (it reads the segment files, not the in-memory buffer).
// It verifies every segment it reads: a bad frame, or a segment holding fewer or more frames
// than the numbering of the next segment implies (a truncated or missing segment), is a
// *CorruptionError. So is a log that starts after fromSeq: the frames in between are gone.
// payload is only valid during the call. An error from fn stops the replay and is returned.
func (l *Log) Replay(fromSeq uint64, fn func(seq uint64, payload []byte) error) error {
	l.mu.Lock()
	segs := append([]uint64(nil), l.segs...)
	first, next := l.first, l.nextSeq
	l.mu.Unlock()
	fromSeq = max(fromSeq, 1)
	if fromSeq < first {
		file := l.dir
		if len(segs) > 0 {
			file = segmentPath(l.dir, segs[0])
		}
		return &CorruptionError{File: file, Offset: 0, missingStart: true, Reason: fmt.Sprintf(
			"the log starts at sequence %d but replay needs it from %d: segments are missing "+
				"(was the snapshot that covered them lost?)", first, fromSeq)}
	}
	for i, segFirst := range segs {
		isLast := i == len(segs)-1
		end := next // exclusive end of this segment's sequence numbers
		if !isLast {
			end = segs[i+1]
		}
		if end <= fromSeq {
			continue
		}
		path := segmentPath(l.dir, segFirst)
		data, err := l.fs.ReadFile(path)
		if err != nil {
			return fmt.Errorf("wal: replay: read %s: %w", path, err)
		}
		seq := segFirst
		var over *CorruptionError
		_, p, err := scanFrames(data, func(off int, payload []byte) error {
			if seq >= end {
				over = &CorruptionError{File: path, Offset: int64(off), Reason: fmt.Sprintf(
					"segment holds more frames than the next segment's first sequence %d allows", end)}
				return over
			}
			if seq >= fromSeq {
				if err := fn(seq, payload); err != nil {
					if errors.Is(err, ErrBadPayload) {
						return &CorruptionError{File: path, Offset: int64(off), Reason: fmt.Sprintf("frame %d: %v", seq, err)}
					}
					return fmt.Errorf("wal: replay seq %d: %w", seq, err)
				}
			}
			seq++
			return nil
		})
		if err != nil {
			return err
		}
		if p != nil {
			return &CorruptionError{File: path, Offset: int64(p.off), Reason: p.reason}
		}
		if seq != end {
			return &CorruptionError{File: path, Offset: int64(len(data)), Reason: fmt.Sprintf(
				"segment ends at sequence %d but the next one starts at %d: frames are missing "+
					"(truncated or missing segment)", seq-1, end)}
		}
	}
	return nil
}
