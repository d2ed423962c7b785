package wal

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	payloads := [][]byte{{}, []byte("a"), bytes.Repeat([]byte("xyz"), 1000)}
	var b []byte
	for _, p := range payloads {
		b = AppendFrame(b, p)
	}
	var got [][]byte
	end, p, err := scanFrames(b, func(_ int, pl []byte) error {
		got = append(got, append([]byte(nil), pl...))
		return nil
	})
	if err != nil || p != nil || end != len(b) {
		t.Fatalf("scanFrames: end=%d/%d problem=%v err=%v", end, len(b), p, err)
	}
	if len(got) != len(payloads) {
		t.Fatalf("got %d frames, want %d", len(got), len(payloads))
	}
	for i := range got {
		if !bytes.Equal(got[i], payloads[i]) {
			t.Errorf("frame %d differs", i)
		}
	}

	fr := NewFrameReader(bytes.NewReader(b))
	for i := range payloads {
		pl, err := fr.Next()
		if err != nil || !bytes.Equal(pl, payloads[i]) {
			t.Fatalf("FrameReader frame %d: %q, %v", i, pl, err)
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("FrameReader at end: %v, want io.EOF", err)
	}
}

func TestScanFramesClassifies(t *testing.T) {
	good := AppendFrame(AppendFrame(nil, []byte("one")), []byte("two"))
	firstLen := FrameHeaderSize + 3
	flip := func(i int) []byte { c := bytes.Clone(good); c[i] ^= 0x40; return c }
	huge := bytes.Clone(good)
	huge[firstLen+3] = 0x7f // length of the second frame > MaxPayload
	cases := []struct {
		name string
		data []byte
		end  int
		torn bool
	}{
		{"partial header", append(bytes.Clone(good), 1, 2, 3), len(good), true},
		{"partial payload", good[:len(good)-1], firstLen, true},
		{"zero tail", append(bytes.Clone(good), make([]byte, 100)...), len(good), true},
		{"crc mismatch final frame", flip(len(good) - 1), firstLen, true},
		{"crc mismatch with data after", flip(FrameHeaderSize), 0, false},
		{"bad length over limit at the end", huge, firstLen, true},
		{"bad length over limit with a frame after", append(bytes.Clone(huge), AppendFrame(nil, []byte("later"))...), firstLen, false},
		{"garbage tail", append(bytes.Clone(good), []byte("some random garbage bytes")...), len(good), true},
		{"garbage after zero header", append(append(bytes.Clone(good), make([]byte, 8)...), AppendFrame(nil, []byte("x"))...), len(good), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			end, p, _ := scanFrames(tc.data, nil)
			if p == nil {
				t.Fatal("no problem reported")
			}
			if end != tc.end || p.off != tc.end || p.torn != tc.torn {
				t.Fatalf("end=%d off=%d torn=%v (%s); want end=%d torn=%v", end, p.off, p.torn, p.reason, tc.end, tc.torn)
			}
		})
	}
}

func TestFrameReaderErrors(t *testing.T) {
	good := AppendFrame(nil, []byte("payload"))
	for _, data := range [][]byte{good[:3], good[:len(good)-2], func() []byte { c := bytes.Clone(good); c[9] ^= 1; return c }()} {
		fr := NewFrameReader(bytes.NewReader(data))
		_, err := fr.Next()
		var fe *FrameError
		if !errors.As(err, &fe) || fe.Offset != 0 {
			t.Fatalf("data %x: err %v, want *FrameError at 0", data, err)
		}
	}
	// A huge length must not allocate before the data shows up.
	h := []byte{0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0}
	fr := NewFrameReader(bytes.NewReader(h))
	if _, err := fr.Next(); err == nil {
		t.Fatal("expected error for truncated huge frame")
	}
}

// FuzzReadSegment feeds arbitrary bytes to the segment scanner and the stream reader. Both
// must stop at the same frame, never panic, and everything before the stop must re-encode to
// the same bytes.
func FuzzReadSegment(f *testing.F) {
	good := AppendFrame(AppendFrame(nil, []byte("hello")), []byte{})
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(append(bytes.Clone(good), 0, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var re []byte
		var frames [][]byte
		end, p, err := scanFrames(data, func(off int, pl []byte) error {
			if off != len(re) {
				t.Fatalf("frame at %d, want %d", off, len(re))
			}
			re = AppendFrame(re, pl)
			frames = append(frames, bytes.Clone(pl))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if end != len(re) || !bytes.Equal(re, data[:end]) {
			t.Fatalf("prefix mismatch: end %d, re-encoded %d", end, len(re))
		}
		if (p == nil) != (end == len(data)) {
			t.Fatalf("problem %v with end %d of %d", p, end, len(data))
		}
		fr := NewFrameReader(bytes.NewReader(data))
		for i := 0; ; i++ {
			pl, err := fr.Next()
			if err == io.EOF {
				if p != nil {
					t.Fatalf("stream reader reached EOF but scanner found %v", p)
				}
				break
			}
			if err != nil {
				if p == nil || fr.Offset() != int64(end) {
					t.Fatalf("stream reader error %v at %d, scanner end %d problem %v", err, fr.Offset(), end, p)
				}
				break
			}
			if i >= len(frames) || !bytes.Equal(pl, frames[i]) {
				t.Fatalf("stream frame %d differs", i)
			}
		}
	})
}
