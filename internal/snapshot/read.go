package snapshot

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/volandoo/fluxiondb/internal/wal"
)

// Sink receives a snapshot's content from Load, in file order: each Collection is followed
// by its Documents (each followed by exactly n Records, ascending ts) and Values; the Extra
// blobs come last. Byte slices are only valid during the call. An error stops the load.
type Sink interface {
	Exporter
	Extra(blob []byte) error
}

// Load reads the snapshot at path into sink, verifying every frame, the counts and the
// checksum as it goes. If it fails part-way, sink has received a prefix: verify first
// (Latest does) and treat a Load error as fatal for the state being built.
func Load(path string, sink Sink) (Info, error) {
	return readFile(path, sink)
}

// Verify reads the whole snapshot at path without delivering it anywhere.
func Verify(path string) (Info, error) {
	return readFile(path, nil)
}

func readFile(path string, sink Sink) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: open: %w", err)
	}
	defer f.Close()
	info, err := decode(bufio.NewReaderSize(f, 1<<20), sink)
	info.Path = path
	var ce *CorruptionError
	if errors.As(err, &ce) {
		ce.File = path
	}
	var ve *VersionError
	if errors.As(err, &ve) {
		ve.File = path
	}
	return info, err
}

// decoder walks body entries; records of one document may span frames.
type decoder struct {
	sink   Sink
	counts Counts
	inColl bool
	left   uint64 // records still due for the current document
	prevTS int64
}

var errShort = errors.New("entry runs past the end of its frame")

// decode reads a snapshot stream. With a nil sink it only verifies.
func decode(r io.Reader, sink Sink) (Info, error) {
	fr := wal.NewFrameReader(r)
	bad := func(off int64, format string, args ...any) (Info, error) {
		return Info{}, &CorruptionError{Offset: off, Reason: fmt.Sprintf(format, args...)}
	}
	frameErr := func(err error) (Info, error) {
		var fe *wal.FrameError
		if errors.As(err, &fe) {
			return bad(fe.Offset, "%s", fe.Reason)
		}
		if err == io.EOF {
			return bad(fr.Offset(), "file ends before the trailer (truncated)")
		}
		return Info{}, fmt.Errorf("snapshot: read: %w", err)
	}

	p, err := fr.Next()
	if err != nil {
		if err == io.EOF {
			return bad(0, "empty file")
		}
		return frameErr(err)
	}
	if len(p) != headerSize || p[0] != kindHeader || !bytes.Equal(p[1:9], magic[:]) {
		return bad(0, "not a FluxionDB snapshot (bad header)")
	}
	if v := binary.LittleEndian.Uint16(p[9:]); v != Version {
		// Not damage: a build that knows the version must read it. Latest stops on this
		// rather than setting the file aside and starting from an older snapshot.
		return Info{}, &VersionError{Version: v}
	}
	info := Info{
		Seq:     binary.LittleEndian.Uint64(p[13:]),
		Created: time.Unix(0, int64(binary.LittleEndian.Uint64(p[21:]))),
	}
	sum := chainCRC(0, fr.LastCRC())
	d := decoder{sink: sink}
	var frames int64
	for {
		off := fr.Offset()
		p, err := fr.Next()
		if err != nil {
			return frameErr(err)
		}
		switch {
		case len(p) > 0 && p[0] == kindBody:
			if err := d.body(p[1:]); err != nil {
				var ce *CorruptionError
				if errors.As(err, &ce) || errors.Is(err, errShort) {
					return bad(off, "%v", err)
				}
				return Info{}, err // from the sink
			}
			frames++
			sum = chainCRC(sum, fr.LastCRC())
		case len(p) == trailerSize && p[0] == kindTrailer:
			var n [6]int64
			for i := range n {
				n[i] = int64(binary.LittleEndian.Uint64(p[1+8*i:]))
			}
			want := Counts{n[0], n[1], n[2], n[3], n[4]}
			if d.left != 0 {
				return bad(off, "document is missing %d records", d.left)
			}
			if want != d.counts || n[5] != frames {
				return bad(off, "trailer counts %+v in %d frames, file holds %+v in %d", want, n[5], d.counts, frames)
			}
			if got := binary.LittleEndian.Uint32(p[49:]); got != sum {
				return bad(off, "checksum mismatch (trailer %08x, computed %08x)", got, sum)
			}
			if _, err := fr.Next(); err != io.EOF {
				return bad(fr.Offset(), "data after the trailer")
			}
			info.Counts = d.counts
			info.Bytes = fr.Offset()
			return info, nil
		default:
			return bad(off, "unexpected frame kind")
		}
	}
}

func (d *decoder) body(b []byte) error {
	for len(b) > 0 {
		if d.left > 0 {
			delta, n := binary.Varint(b)
			if n <= 0 {
				return errShort
			}
			size, m := binary.Uvarint(b[n:])
			if m <= 0 || size > uint64(len(b)-n-m) {
				return errShort
			}
			data := b[n+m : n+m+int(size)]
			b = b[n+m+int(size):]
			d.prevTS += delta
			d.left--
			d.counts.Records++
			if d.sink != nil {
				if err := d.sink.Record(d.prevTS, data); err != nil {
					return err
				}
			}
			continue
		}
		tag := b[0]
		b = b[1:]
		switch tag {
		case tagCollection:
			name, rest, ok := cutString(b)
			if !ok {
				return errShort
			}
			b = rest
			d.inColl = true
			d.counts.Collections++
			if d.sink != nil {
				if err := d.sink.Collection(string(name)); err != nil {
					return err
				}
			}
		case tagDocument:
			name, rest, ok := cutString(b)
			if !ok {
				return errShort
			}
			n, k := binary.Uvarint(rest)
			if k <= 0 {
				return errShort
			}
			if !d.inColl {
				return &CorruptionError{Reason: "document before any collection"}
			}
			if n > 1<<40 {
				return &CorruptionError{Reason: fmt.Sprintf("document claims %d records", n)}
			}
			b = rest[k:]
			d.left, d.prevTS = n, 0
			d.counts.Documents++
			if d.sink != nil {
				if err := d.sink.Document(string(name), int(n)); err != nil {
					return err
				}
			}
		case tagValue:
			key, rest, ok := cutString(b)
			if !ok {
				return errShort
			}
			val, rest, ok := cutString(rest)
			if !ok {
				return errShort
			}
			if !d.inColl {
				return &CorruptionError{Reason: "value before any collection"}
			}
			b = rest
			d.counts.Values++
			if d.sink != nil {
				if err := d.sink.Value(string(key), string(val)); err != nil {
					return err
				}
			}
		case tagExtra:
			blob, rest, ok := cutString(b)
			if !ok {
				return errShort
			}
			b = rest
			d.counts.Extras++
			if d.sink != nil {
				if err := d.sink.Extra(blob); err != nil {
					return err
				}
			}
		default:
			return &CorruptionError{Reason: fmt.Sprintf("unknown entry tag 0x%02x", tag)}
		}
	}
	return nil
}

// cutString splits a uvarint-length-prefixed byte string off b.
func cutString(b []byte) (s, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}
