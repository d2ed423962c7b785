package wal

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by calls on a closed Log.
var ErrClosed = errors.New("wal: log is closed")

// RepairCommand is the operator command named in corruption messages. The CLI owns the
// spelling; it lives here so every message says the same thing.
var RepairCommand = "fluxiondb repair --data DIR"

// CorruptionError reports damage that cannot be explained by a crash during a write:
// a bad frame before the tail of the last segment, or frames missing between segments.
// Opening or replaying the log stops; nothing is dropped without an explicit Repair.
type CorruptionError struct {
	File   string // full path of the damaged (or first affected) segment
	Offset int64  // byte offset of the first bad frame in File
	Reason string
	// missingStart: the log starts after the position replay needs it from. Repair then
	// keeps everything the log holds (it writes a snapshot at the log's start) instead of
	// cutting it, and the message says so.
	missingStart bool
}

func (e *CorruptionError) Error() string {
	if e.missingStart {
		return fmt.Sprintf("wal: corrupt log at %s: %s; to start with every change the log still holds run `%s` "+
			"(it writes a snapshot at the log's first position; the changes in the missing frames are lost)",
			e.File, e.Reason, RepairCommand)
	}
	return fmt.Sprintf("wal: corrupt log file %s at offset %d: %s; "+
		"to keep the data before this point and move the rest aside run `%s` "+
		"(it truncates the log at the first bad frame and saves the dropped bytes in a corrupt-<time> folder)",
		e.File, e.Offset, e.Reason, RepairCommand)
}

// ErrBadPayload marks an error that says a frame's payload cannot be decoded although its CRC
// checks out: damage the CRC did not catch, or a change written by a newer build. Replay turns
// a callback's error wrapping it into a *CorruptionError naming the frame's file and offset, and
// RepairFrom's check cuts the log there.
var ErrBadPayload = errors.New("the frame's payload cannot be decoded")

// IsCorruption reports whether err is or wraps a *CorruptionError.
func IsCorruption(err error) bool {
	var ce *CorruptionError
	return errors.As(err, &ce)
}
