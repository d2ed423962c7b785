package protocol_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/volandoo/fluxiondb/internal/protocol"
)

// checkWriter appends every ts with one RecordWriter and compares each record with
// AppendRecord, which formats every number afresh.
func checkWriter(t *testing.T, seq []int64) {
	t.Helper()
	var w protocol.RecordWriter
	var got, want []byte
	for i, ts := range seq {
		data := []byte(`{"v":"x"}`)
		got = w.Append(got[:0], ts, data)
		want = protocol.AppendRecord(want[:0], ts, data)
		if !bytes.Equal(got, want) {
			t.Fatalf("record %d (ts %d after %v): %s, want %s", i, ts, seq[max(0, i-1):i], got, want)
		}
	}
}

func TestRecordWriterTimestamps(t *testing.T) {
	for _, seq := range [][]int64{
		{1700000000000, 1700000000001, 1700000000002, 1700000000999, 1700000001000},
		{9, 10, 11, 99, 100, 101, 999999, 1000000, 999999, 99, 9, 1},      // digit count changes both ways
		{1000, 999, 1000, 1001, 1000},                                     // borrow into the leading digit
		{5, 1 << 40, (1 << 40) - 3, 7, 7, 7},                              // jumps beyond the step, repeats
		{0, 1, -1, 5, math.MinInt64, 3, math.MaxInt64, math.MaxInt64 - 1}, // zero, negatives, extremes
		{math.MaxInt64 - (1 << 19), math.MaxInt64},                        // within the step, 19 digits
		{1700000000000, 1699999999000, 1699999000000, 1700000999999},      // reverse order, carries
	} {
		checkWriter(t, seq)
	}
}

// FuzzRecordWriter: any run of timestamps (8 bytes each) formats exactly as AppendRecord.
func FuzzRecordWriter(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 9})
	f.Add(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 999999), 1000000))
	f.Fuzz(func(t *testing.T, b []byte) {
		var seq []int64
		for ; len(b) >= 8; b = b[8:] {
			v := int64(binary.BigEndian.Uint64(b))
			if len(seq) > 0 && b[0]&1 == 0 { // mostly small steps from the previous one
				v = seq[len(seq)-1] + int64(int16(binary.BigEndian.Uint16(b[6:])))
			}
			seq = append(seq, v)
		}
		checkWriter(t, seq)
	})
}
