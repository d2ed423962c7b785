package wal

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const segmentExt = ".wal"

// segmentName is the file name of the segment whose first frame has sequence number first:
// 20 zero-padded digits so names sort like numbers.
func segmentName(first uint64) string { return fmt.Sprintf("%020d%s", first, segmentExt) }

// parseSegmentName returns the first sequence number encoded in a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// listSegments returns the first sequence numbers of the segment files in dir, ascending.
// Other entries (LOCK, corrupt-* folders, stray files) are ignored.
func listSegments(fs fileSystem, dir string) ([]uint64, error) {
	entries, err := fs.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	var segs []uint64
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if first, ok := parseSegmentName(e.Name()); ok {
			segs = append(segs, first)
		}
	}
	slices.Sort(segs)
	return segs, nil
}

func segmentPath(dir string, first uint64) string { return filepath.Join(dir, segmentName(first)) }

// countFrames scans a whole segment and returns the number of valid frames, the offset after
// the last one and the first problem, if any.
func countFrames(b []byte) (n uint64, end int, p *frameProblem) {
	end, p, _ = scanFrames(b, func(int, []byte) error { n++; return nil })
	return n, end, p
}

// FirstSeq returns the sequence number of the first frame the log in dir holds (its oldest
// segment's); ok is false when it holds no segment. Repair uses it to tell whether the log
// still has every change since the beginning.
func FirstSeq(dir string) (first uint64, ok bool, err error) {
	segs, err := listSegments(osFS{}, dir)
	if err != nil || len(segs) == 0 {
		return 0, false, err
	}
	return segs[0], true, nil
}
