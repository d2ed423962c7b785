package snapshot

import (
	"fmt"
	"testing"
	"time"
)

// synth exports docs × perDoc records of 50-byte payloads without materialising them.
type synth struct{ docs, perDoc int }

func (s synth) export(e Exporter) error {
	payload := []byte(`{"temperature":22.5,"humidity":41,"status":"ok!!"}`) // 50 bytes
	if err := e.Collection("bench"); err != nil {
		return err
	}
	for d := range s.docs {
		if err := e.Document(fmt.Sprintf("device-%06d", d), s.perDoc); err != nil {
			return err
		}
		for r := range s.perDoc {
			if err := e.Record(1_700_000_000_000+int64(r)*1000, payload); err != nil {
				return err
			}
		}
	}
	return nil
}

const benchRecords = 1_000_000

var benchSource = synth{docs: 1000, perDoc: 1000}

// BenchmarkWrite writes a snapshot of 1 million 50-byte records (including fsync and rename).
func BenchmarkWrite(b *testing.B) {
	dir := b.TempDir()
	b.ReportAllocs()
	var size int64
	start := time.Now()
	for i := range b.N {
		res, err := Write(dir, uint64(i+1), benchSource.export, nil, WriteOptions{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		size = res.Bytes
	}
	b.SetBytes(size)
	b.ReportMetric(float64(benchRecords*b.N)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkLoad reads that snapshot back into a sink that touches every record.
func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	res, err := Write(dir, 1, benchSource.export, nil, WriteOptions{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(res.Bytes)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		var c counter
		if _, err := Load(res.Path, &c); err != nil {
			b.Fatal(err)
		}
		if c.Records != benchRecords {
			b.Fatalf("loaded %d records", c.Records)
		}
	}
	b.ReportMetric(float64(benchRecords*b.N)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkVerify is the check Latest runs before Load.
func BenchmarkVerify(b *testing.B) {
	res, err := Write(b.TempDir(), 1, benchSource.export, nil, WriteOptions{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(res.Bytes)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := Verify(res.Path); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchRecords*b.N)/time.Since(start).Seconds(), "records/s")
}
