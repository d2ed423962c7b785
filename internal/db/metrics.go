package db

import (
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collectors returns the persistence figures for Prometheus (none in memory): log size,
// segments, fsyncs and their latency, write errors, and the last snapshot's age, size and
// duration. They are read when scraped, so they cost nothing between scrapes.
func (d *DB) Collectors() []prometheus.Collector {
	p := d.p
	if p == nil {
		return nil
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	snap := func(f func(s *SnapshotStats) float64) func() float64 {
		return func() float64 {
			if s := p.lastSnap.Load(); s != nil {
				return f(s)
			}
			return 0
		}
	}
	return []prometheus.Collector{
		p.fsyncSeconds,
		gauge("fluxiondb_wal_bytes", "Bytes in the log's segment files.", func() float64 { return float64(dirBytes(p.walDir)) }),
		gauge("fluxiondb_wal_segments", "Segment files in the log.", func() float64 { return float64(p.log.Stats().Segments) }),
		gauge("fluxiondb_wal_bytes_since_snapshot", "Bytes of changes logged since the last snapshot started, counted uncompressed (the size trigger).", func() float64 {
			return float64(p.opBytes.Load())
		}),
		counter("fluxiondb_wal_fsyncs_total", "Log fsyncs.", func() float64 { return float64(p.log.Stats().Fsyncs) }),
		counter("fluxiondb_wal_write_errors_total", "Log write or fsync failures (each puts the log in trouble until it recovers).", func() float64 {
			return float64(p.log.Stats().WriteErrors)
		}),
		gauge("fluxiondb_wal_in_trouble", "1 while the log refuses changes because a write or fsync failed.", func() float64 {
			if p.log.Stats().Err != nil {
				return 1
			}
			return 0
		}),
		counter("fluxiondb_snapshots_total", "Snapshots written since start.", func() float64 { return float64(p.snapshots.Load()) }),
		counter("fluxiondb_snapshot_failures_total", "Snapshots that failed since start.", func() float64 { return float64(p.snapFailures.Load()) }),
		gauge("fluxiondb_snapshot_age_seconds", "Age of the last snapshot written or loaded (0 = none).", snap(func(s *SnapshotStats) float64 {
			return time.Since(s.At).Seconds()
		})),
		gauge("fluxiondb_snapshot_bytes", "Size of the last snapshot.", snap(func(s *SnapshotStats) float64 { return float64(s.Bytes) })),
		gauge("fluxiondb_snapshot_duration_seconds", "Time the last snapshot written took.", snap(func(s *SnapshotStats) float64 {
			return s.Duration.Seconds()
		})),
		gauge("fluxiondb_recovery_seconds", "Time start-up took to load the snapshot and replay the log.", func() float64 {
			return p.recovery.Duration.Seconds()
		}),
	}
}

// dirBytes sums the sizes of the regular files in dir.
func dirBytes(dir string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}
