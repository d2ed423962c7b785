package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

const (
	// FrameHeaderSize is the size of the header in front of every payload:
	// a 4-byte little-endian payload length and a 4-byte CRC32C.
	FrameHeaderSize = 8

	// MaxPayload bounds one frame's payload. Larger lengths are refused by Append, and
	// a reader that meets one knows the length field itself is damaged (corruption)
	// rather than a frame cut short by a crash (torn tail).
	MaxPayload = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameCRC covers the length field as well as the payload, so a header of zero bytes
// (a zero-filled tail) never checks out: crc32c of four zero bytes is not zero.
func frameCRC(lenField, payload []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, lenField), castagnoli, payload)
}

// AppendFrame appends payload, framed as length + CRC32C + payload, to dst and returns the
// extended slice. The snapshot format reuses it. Callers keep len(payload) <= MaxPayload.
func AppendFrame(dst, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, FrameHeaderSize)...)
	dst = append(dst, payload...)
	sealFrame(dst[start:])
	return dst
}

// sealFrame fills in the header of frame, whose payload follows FrameHeaderSize bytes of
// room for the header.
func sealFrame(frame []byte) {
	binary.LittleEndian.PutUint32(frame[0:4], uint32(len(frame)-FrameHeaderSize))
	binary.LittleEndian.PutUint32(frame[4:8], frameCRC(frame[0:4], frame[FrameHeaderSize:]))
}

// frameProblem describes the first bad frame found by scanFrames.
type frameProblem struct {
	off    int
	reason string
	// torn is true when no intact frame follows the damage, which is what a write cut
	// short by a crash leaves. It only counts as a torn tail in the last segment.
	torn bool
}

// scanFrames walks the frames in b and calls fn (when non-nil) for each valid one, in order.
// It returns the offset just past the last valid frame and, when the data does not end
// there cleanly, the problem at that offset. An error from fn stops the walk and is returned.
func scanFrames(b []byte, fn func(off int, payload []byte) error) (end int, p *frameProblem, err error) {
	off := 0
	for off < len(b) {
		rest := len(b) - off
		if allZero(b[off:]) {
			return off, &frameProblem{off: off, reason: fmt.Sprintf("zero-filled tail (%d bytes)", rest), torn: true}, nil
		}
		if rest < FrameHeaderSize {
			return off, &frameProblem{off: off, reason: fmt.Sprintf("partial frame header (%d bytes)", rest), torn: true}, nil
		}
		n := binary.LittleEndian.Uint32(b[off:])
		sum := binary.LittleEndian.Uint32(b[off+4:])
		var reason string
		switch {
		case n > MaxPayload:
			reason = fmt.Sprintf("bad frame length %d (limit %d)", n, MaxPayload)
		case int64(n) > int64(rest-FrameHeaderSize):
			reason = fmt.Sprintf("frame length %d runs past the end of the file (%d bytes left)", n, rest-FrameHeaderSize)
		case frameCRC(b[off:off+4], b[off+FrameHeaderSize:off+FrameHeaderSize+int(n)]) != sum:
			reason = "CRC mismatch"
		}
		if reason != "" {
			return off, &frameProblem{off: off, reason: reason, torn: !intactFrameAfter(b, off+1)}, nil
		}
		stop := off + FrameHeaderSize + int(n)
		if fn != nil {
			if err := fn(off, b[off+FrameHeaderSize:stop]); err != nil {
				return off, nil, err
			}
		}
		off = stop
	}
	return off, nil, nil
}

// resyncBudget bounds the CRC work intactFrameAfter may do (pathological input only).
const resyncBudget = 256 << 20

// intactFrameAfter reports whether a complete frame with a matching CRC starts at any offset
// from `from` on. A write cut short by a crash leaves nothing intact after the damage; an
// intact frame after it means data that was once complete has been damaged. When the
// budget runs out it answers true: refusing to start is safer than dropping data.
func intactFrameAfter(b []byte, from int) bool {
	budget := resyncBudget
	for o := from; o+FrameHeaderSize <= len(b); o++ {
		n := binary.LittleEndian.Uint32(b[o:])
		if n > MaxPayload || int64(n) > int64(len(b)-o-FrameHeaderSize) {
			continue
		}
		sum := binary.LittleEndian.Uint32(b[o+4:])
		if n == 0 && sum == 0 {
			continue
		}
		if budget -= int(n) + 4; budget < 0 {
			return true
		}
		if frameCRC(b[o:o+4], b[o+FrameHeaderSize:o+FrameHeaderSize+int(n)]) == sum {
			return true
		}
	}
	return false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// FrameError reports a bad frame met by a FrameReader.
type FrameError struct {
	Offset int64
	Reason string
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("bad frame at offset %d: %s", e.Offset, e.Reason)
}

// FrameReader reads frames one after another from a stream (the snapshot reader uses it).
// Unlike segment recovery it never guesses about torn tails: any damage is a *FrameError.
type FrameReader struct {
	r       io.Reader
	off     int64
	buf     []byte
	lastCRC uint32
}

// NewFrameReader returns a reader of the frames in r. Wrap r in a bufio.Reader for speed.
func NewFrameReader(r io.Reader) *FrameReader { return &FrameReader{r: r} }

// Offset is the file offset of the next frame.
func (fr *FrameReader) Offset() int64 { return fr.off }

// LastCRC is the CRC field of the frame last returned by Next.
func (fr *FrameReader) LastCRC() uint32 { return fr.lastCRC }

// Next returns the next frame's payload, valid until the following call. It returns io.EOF
// at a clean end of the stream (exactly between frames) and a *FrameError on damage.
func (fr *FrameReader) Next() ([]byte, error) {
	var h [FrameHeaderSize]byte
	k, err := io.ReadFull(fr.r, h[:])
	if err == io.EOF {
		return nil, io.EOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, &FrameError{Offset: fr.off, Reason: fmt.Sprintf("partial frame header (%d bytes)", k)}
	}
	if err != nil {
		return nil, fmt.Errorf("read frame at offset %d: %w", fr.off, err)
	}
	n := binary.LittleEndian.Uint32(h[0:4])
	if n > MaxPayload {
		return nil, &FrameError{Offset: fr.off, Reason: fmt.Sprintf("bad frame length %d (limit %d)", n, MaxPayload)}
	}
	if cap(fr.buf) < int(n) {
		// Grow in steps so a corrupt length cannot force a huge allocation before the
		// read shows the data is not there: read what exists, then check.
		fr.buf = make([]byte, 0, min(int(n), 1<<20))
	}
	payload, err := readUpTo(fr.r, fr.buf[:0], int(n))
	fr.buf = payload[:0]
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return nil, &FrameError{Offset: fr.off, Reason: fmt.Sprintf("frame length %d runs past the end (%d bytes left)", n, len(payload))}
	}
	if err != nil {
		return nil, fmt.Errorf("read frame at offset %d: %w", fr.off, err)
	}
	sum := binary.LittleEndian.Uint32(h[4:8])
	if frameCRC(h[0:4], payload) != sum {
		return nil, &FrameError{Offset: fr.off, Reason: "CRC mismatch"}
	}
	fr.off += int64(FrameHeaderSize) + int64(n)
	fr.lastCRC = sum
	return payload, nil
}

// readUpTo appends exactly n bytes from r to dst, growing dst as data actually arrives.
func readUpTo(r io.Reader, dst []byte, n int) ([]byte, error) {
	for len(dst) < n {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		end := min(cap(dst), n)
		k, err := io.ReadFull(r, dst[len(dst):end])
		dst = dst[:len(dst)+k]
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}
