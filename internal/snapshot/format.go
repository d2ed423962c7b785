package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"
)

// Version is the snapshot format version this build writes and reads.
const Version = 1

var magic = [8]byte{'F', 'L', 'X', 'S', 'N', 'A', 'P', 0}

// Frame kinds: the first payload byte of every frame.
const (
	kindHeader  = 'H'
	kindBody    = 'B'
	kindTrailer = 'T'
)

// Entry tags inside body frames. Records carry no tag: a document entry says how many
// records follow it.
const (
	tagCollection = 'c'
	tagDocument   = 'd'
	tagValue      = 'v'
	tagExtra      = 'x'
)

const (
	headerSize  = 1 + 8 + 2 + 2 + 8 + 8 // kind, magic, version, reserved, seq, created
	trailerSize = 1 + 6*8 + 4           // kind, six counts, checksum
	// bodyTarget is the size at which the writer closes a body frame. Entries never span
	// frames; a frame can exceed this by one entry.
	bodyTarget = 64 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// chainCRC folds one frame's CRC field into the file checksum: CRC32C over the CRC fields of
// all frames before the trailer, in order. Each frame CRC already covers its bytes, so this
// detects missing, repeated or reordered frames at the cost of 4 bytes per frame.
func chainCRC(sum, frameCRC uint32) uint32 {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], frameCRC)
	return crc32.Update(sum, castagnoli, b[:])
}

// Counts are the totals recorded in the trailer.
type Counts struct {
	Collections, Documents, Records, Values, Extras int64
}

// Info describes a snapshot file.
type Info struct {
	Path    string
	Seq     uint64 // the WAL sequence number the snapshot starts from: replay frames >= Seq
	Created time.Time
	Counts
	Bytes int64 // file size
}

// CorruptionError reports a snapshot file that does not verify: truncated, damaged, or
// of another format or version.
type CorruptionError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("snapshot: %s is not a valid snapshot (offset %d): %s", e.File, e.Offset, e.Reason)
}

// VersionError says a snapshot is in a format version this build does not read (written by
// a newer build): the start stops with it, and nothing is set aside.
type VersionError struct {
	File    string
	Version uint16
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("snapshot: %s is in format version %d, which this build does not read (it reads %d): "+
		"it was written by a newer FluxionDB; run that build, or a newer one", e.File, e.Version, Version)
}

// ErrNoSnapshot is returned by Latest when the folder holds no snapshot file.
var ErrNoSnapshot = errors.New("snapshot: no snapshot")

const (
	filePrefix = "snapshot-"
	fileSuffix = ".snap"
	tempPrefix = ".snapshot-"
	tempSuffix = ".tmp"
)

// FileName is the name of the snapshot that starts at WAL sequence seq.
func FileName(seq uint64) string { return fmt.Sprintf("%s%020d%s", filePrefix, seq, fileSuffix) }

// ParseFileName returns the sequence number a snapshot file name (no folder) carries.
func ParseFileName(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, filePrefix)
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, fileSuffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
