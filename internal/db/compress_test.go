package db

import (
	"bytes"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/volandoo/fluxiondb/internal/engine"
	"github.com/volandoo/fluxiondb/internal/wal"
)

// sensorBatch returns n records of JSON like the load tool's and most time series: the
// same field names record after record.
func sensorBatch(n int) []engine.Record {
	recs := make([]engine.Record, n)
	for i := range recs {
		recs[i] = engine.Record{Collection: "sensors", Doc: fmt.Sprintf("dev-%d", i%40), TS: int64(1700000000 + i/40),
			Data: fmt.Appendf(nil, `{"temp":%d.%d,"hum":%d,"ok":true}`, 15+i%10, i%10, 30+i%50)}
	}
	return recs
}

func TestEncodeOpCompressesWhenItPays(t *testing.T) {
	random := make([]engine.Record, 200)
	for i := range random {
		random[i] = engine.Record{Collection: "c", Doc: "d", TS: int64(i), Data: make([]byte, 64)}
		crand.Read(random[i].Data)
	}
	for _, tc := range []struct {
		name       string
		encode     func([]byte) []byte
		compressed bool
	}{
		{"sensor batch", func(b []byte) []byte { return appendInsert(b, sensorBatch(1000)) }, true},
		{"random bytes", func(b []byte) []byte { return appendInsert(b, random) }, false},
		{"small op", func(b []byte) []byte { return appendString(append(b, opDeleteCol), "col") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.encode(nil)
			op := encodeOp(tc.encode)
			defer op.release()
			if got := op.payload[0] == opCompressed; got != tc.compressed {
				t.Fatalf("compressed = %v (%d bytes from %d), want %v", got, len(op.payload), len(raw), tc.compressed)
			}
			t.Logf("%d bytes logged for an op of %d", len(op.payload), len(raw))
			if tc.compressed && len(op.payload) > len(raw)/3 {
				t.Errorf("compressed to %d bytes from %d: less than 3×", len(op.payload), len(raw))
			}
			if !tc.compressed && !bytes.Equal(op.payload, raw) {
				t.Errorf("logged raw, but the bytes differ from the op")
			}
			var want, got recorder
			var dec opDecoder
			if err := dec.decode(raw, &want); err != nil {
				t.Fatal(err)
			}
			if err := dec.decode(op.payload, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(want.ops, got.ops) {
				t.Errorf("the logged payload decodes to other changes than the op")
			}
		})
	}
}

// An op over the log's limit is left uncompressed so that the log refuses it: compressed,
// it would fit in a frame that replay then refuses.
func TestEncodeOpLeavesOversizedOpsToTheLog(t *testing.T) {
	defer func(m int) { maxOp = m }(maxOp)
	maxOp = 4096
	op := encodeOp(func(b []byte) []byte { return appendInsert(b, sensorBatch(1000)) })
	defer op.release()
	if op.payload[0] != opInsert {
		t.Fatalf("an op of %d bytes over the %d limit was logged as %q", len(op.raw), maxOp, op.payload[0])
	}
}

func TestDecodeRejectsBadCompressedOps(t *testing.T) {
	inner := appendInsert(nil, sensorBatch(100))
	good := append([]byte{opCompressed}, s2.Encode(nil, inner)...)
	huge := binary.AppendUvarint([]byte{opCompressed}, wal.MaxPayload+1)
	for _, tc := range []struct {
		name string
		p    []byte
	}{
		{"no block", []byte{opCompressed}},
		{"garbage", []byte{opCompressed, 0x10, 0xff, 0xfe, 0x01}},
		{"truncated", good[:len(good)/2]},
		{"decompressed length over the frame limit", append(huge, 0, 0, 0)},
		{"empty op inside", append([]byte{opCompressed}, s2.Encode(nil, nil)...)},
		{"compressed op inside", append([]byte{opCompressed}, s2.Encode(nil, good)...)},
		{"damaged op inside", append([]byte{opCompressed}, s2.Encode(nil, inner[:len(inner)-3])...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{}
			var dec opDecoder
			if err := dec.decode(tc.p, r); err == nil || len(r.ops) > 0 {
				t.Errorf("decoded to %d ops, err %v; want an error and no change", len(r.ops), err)
			}
		})
	}
	var dec opDecoder
	if err := dec.decode(good, &recorder{}); err != nil {
		t.Fatalf("the undamaged op: %v", err)
	}
}

// TestCompressedLogReplays: inserts logged compressed and raw come back after a restart,
// and the log really holds both kinds.
func TestCompressedLogReplays(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir)
	for i := range 4 {
		recs := sensorBatch(500)
		for j := range recs {
			recs[j].TS += int64(i * 1000)
		}
		if _, err := d.Insert(recs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Insert([]engine.Record{{Collection: "c", Doc: "d", TS: 1, Data: []byte("small")}}); err != nil {
		t.Fatal(err)
	}
	want := dump(d)
	closeT(t, d)

	kinds := map[byte]int{}
	log, err := wal.Open(dir+"/wal", wal.Options{Policy: wal.SyncNever, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := log.Replay(0, func(_ uint64, p []byte) error { kinds[p[0]]++; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	if kinds[opCompressed] != 4 || kinds[opInsert] != 1 {
		t.Errorf("log holds %v, want 4 compressed ops and 1 raw insert", kinds)
	}

	d = openT(t, dir)
	defer closeT(t, d)
	if got := dump(d); got != want {
		t.Fatalf("state after reopen differs:\nwant\n%s\ngot\n%s", want, got)
	}
}

// BenchmarkEncodeOp: what logging a 1000-record insert costs before the change lock, for
// compressible records and for random ones (the compression attempt wasted), against the
// encoding alone.
func BenchmarkEncodeOp(b *testing.B) {
	random := sensorBatch(1000)
	for i := range random {
		random[i].Data = make([]byte, 64)
		crand.Read(random[i].Data)
	}
	for _, tc := range []struct {
		name string
		recs []engine.Record
	}{{"sensor", sensorBatch(1000)}, {"random", random}} {
		b.Run(tc.name+"/encode-only", func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				buf = appendInsert(buf[:0], tc.recs)
			}
			b.SetBytes(int64(len(buf)))
		})
		b.Run(tc.name+"/encodeOp", func(b *testing.B) {
			var raw int
			for b.Loop() {
				op := encodeOp(func(dst []byte) []byte { return appendInsert(dst, tc.recs) })
				raw = len(op.raw)
				op.release()
			}
			b.SetBytes(int64(raw))
		})
	}
}

// The snapshot trigger counts changes as they were before compression: the log passing
// SnapshotBytes must mean that much data to replay, not several times more.
func TestSnapshotTriggerCountsUncompressedBytes(t *testing.T) {
	const threshold = 256 << 10
	d := openT(t, t.TempDir(), func(c *Config) { c.SnapshotBytes = threshold; c.SnapshotCheck = 10 * time.Millisecond })
	defer closeT(t, d)
	raw := 0
	for i := 0; raw < threshold+threshold/2; i++ {
		recs := sensorBatch(1000)
		for j := range recs {
			recs[j].TS += int64(i * 1000)
		}
		raw += len(appendInsert(nil, recs))
		if _, err := d.Insert(recs); err != nil {
			t.Fatal(err)
		}
	}
	if logged := d.p.log.Stats().BytesSinceCut; logged >= threshold {
		t.Fatalf("the log holds %d bytes, over the %d threshold: the test needs compressible data", logged, threshold)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := d.LastSnapshot(); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot after %d bytes of changes (%d logged compressed) passed the %d byte threshold",
				raw, d.p.log.Stats().BytesSinceCut, threshold)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A persistent change costs no allocation beyond what the engine and the log make: the
// encoded op and its buffers are pooled.
func TestSmallChangeAllocatesNoOpState(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts need a build without -race (make test's allocation step)")
	}
	d := openT(t, t.TempDir())
	defer closeT(t, d)
	recs := []engine.Record{{Collection: "c", Doc: "d", TS: 1, Data: []byte("x")}}
	for range 100 { // warm the pools and the document
		if _, err := d.Insert(recs); err != nil {
			t.Fatal(err)
		}
	}
	ts := int64(1)
	persistent := testing.AllocsPerRun(500, func() {
		ts++
		recs[0].TS = ts
		if _, err := d.Insert(recs); err != nil {
			t.Fatal(err)
		}
	})
	m, err := Open(Config{MasterKey: "master-secret-0123456789", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	memory := testing.AllocsPerRun(500, func() {
		ts++
		recs[0].TS = ts
		if _, err := m.Insert(recs); err != nil {
			t.Fatal(err)
		}
	})
	if persistent > memory+0.5 {
		t.Errorf("a persistent insert allocates %.2f times, in memory %.2f: logging adds allocations", persistent, memory)
	}
}

// A frame whose CRC checks out but whose change cannot be decoded (here a compressed op's S2
// data damaged, the CRC recomputed: damage the CRC did not catch) stops the start with the
// file, the offset and the repair command, and repair cuts the log there. Repair said "no
// damage found" and the next start failed the same way.
func TestUndecodableFrameIsCorruptionRepairCuts(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir)
	for i := range 6 {
		recs := sensorBatch(500)
		for j := range recs {
			recs[j].Doc = fmt.Sprintf("batch-%d", i)
		}
		if _, err := d.Insert(recs); err != nil {
			t.Fatal(err)
		}
	}
	closeT(t, d)

	// Damage the fourth compressed frame's S2 data and seal the frame again.
	segs, _ := filepath.Glob(filepath.Join(dir, walSubdir, "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("segments %v, want one", segs)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	off, seen, damagedAt := 0, 0, -1
	for off+wal.FrameHeaderSize <= len(b) {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		payload := b[off+wal.FrameHeaderSize : off+wal.FrameHeaderSize+n]
		if payload[0] == opCompressed {
			if seen++; seen == 4 {
				for k := n / 2; k < n/2+4; k++ {
					payload[k] ^= 0xa5
				}
				copy(b[off:], wal.AppendFrame(nil, payload)[:wal.FrameHeaderSize])
				damagedAt = off
				break
			}
		}
		off += wal.FrameHeaderSize + n
	}
	if damagedAt < 0 {
		t.Fatal("no fourth compressed frame")
	}
	if err := os.WriteFile(segs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}

	_, err = Open(Config{Dir: dir, Logger: quiet})
	if !wal.IsCorruption(err) || !strings.Contains(err.Error(), segs[0]) ||
		!strings.Contains(err.Error(), fmt.Sprintf("offset %d", damagedAt)) || !strings.Contains(err.Error(), wal.RepairCommand) {
		t.Fatalf("Open of a log with an undecodable frame: %v", err)
	}
	lines := repairT(t, dir, fmt.Sprintf("at offset %d", damagedAt))
	d = openT(t, dir)
	defer closeT(t, d)
	for i := range 6 {
		n := 0
		d.Engine.Range("sensors", fmt.Sprintf("batch-%d", i), engine.RangeQuery{From: math.MinInt64, To: math.MaxInt64}, func(int64, []byte) { n++ })
		if ok, want := n > 0, i < 3; ok != want {
			t.Errorf("after repair (%q) batch %d present = %v, want %v", lines, i, ok, want)
		}
	}
}

// A frame a newer build wrote (an op this build does not know, its CRC sound) is not damage:
// the start says to use that build, not to run repair, and repair leaves it and every later
// change where they are.
func TestNewerBuildFrameIsNotCutByRepair(t *testing.T) {
	dir := t.TempDir()
	d := openT(t, dir)
	if _, err := d.Insert([]engine.Record{{Collection: "c", Doc: "d", TS: 1, Data: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	closeT(t, d)
	l, err := wal.Open(filepath.Join(dir, walSubdir), wal.Options{Policy: wal.SyncAlways, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append([]byte{'Q', 1, 2, 3}); err != nil { // a newer build's op
		t.Fatal(err)
	}
	if _, err := l.Append(appendInsert(nil, []engine.Record{{Collection: "c", Doc: "d", TS: 2, Data: []byte("b")}})); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(Config{Dir: dir, Logger: quiet})
	if err == nil || wal.IsCorruption(err) || !strings.Contains(err.Error(), "newer version") || strings.Contains(err.Error(), wal.RepairCommand) {
		t.Fatalf("start on a log with a newer build's change: %v; want an error naming the newer version, not corruption", err)
	}
	lines := repairT(t, dir, logClean)
	if strings.Contains(strings.Join(lines, "\n"), "moved") {
		t.Fatalf("repair moved a newer build's change aside: %q", lines)
	}
}
