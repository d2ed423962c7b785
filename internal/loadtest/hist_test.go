package loadtest

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHistogramQuantilesMatchSortedReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]int64, 100_000)
	for i := range vals {
		// log-uniform from 1 µs to 10 s, the range latencies live in
		v := int64(math.Exp(rng.Float64()*math.Log(1e7)) * 1e3)
		vals[i] = v
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		rank := int(math.Ceil(q * float64(len(vals))))
		want := vals[rank-1]
		got := h.Quantile(q)
		if d := math.Abs(float64(got-want)) / float64(want); d > 0.01 {
			t.Errorf("q%.3f = %d, reference %d (%.2f%% off, want ≤ 1%%)", q, got, want, d*100)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Quantile(1) != vals[len(vals)-1] {
		t.Errorf("max %d, want %d", h.Max(), vals[len(vals)-1])
	}
	if h.Min() != vals[0] {
		t.Errorf("min %d, want %d", h.Min(), vals[0])
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("count %d", h.Count())
	}
	var sum float64
	for _, v := range vals {
		sum += float64(v)
	}
	if m := h.Mean(); math.Abs(m-sum/float64(len(vals))) > 1e-6*m {
		t.Errorf("mean %f, want %f", m, sum/float64(len(vals)))
	}
}

func TestHistogramSmallValuesExact(t *testing.T) {
	var h Histogram
	for v := int64(0); v < 200; v++ {
		h.Record(v)
	}
	if got := h.Quantile(0.5); got != 99 {
		t.Errorf("median of 0..199 = %d, want 99", got)
	}
	if got := h.Quantile(0); got != 0 {
		t.Errorf("q0 = %d", got)
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram must report 0")
	}
	h.Record(-5) // clock went backwards: counts as 0
	h.Record(math.MaxInt64)
	if h.Min() != 0 || h.Max() != math.MaxInt64 || h.Quantile(1) != math.MaxInt64 {
		t.Errorf("min %d max %d", h.Min(), h.Max())
	}
	if got := h.Quantile(0.99); float64(got) < 0.99*math.MaxInt64 {
		t.Errorf("q99 = %d, want within 1%% of MaxInt64", got)
	}
	for i := 0; i < histBuckets; i++ {
		v := histValue(i)
		if histIndex(v) != i {
			t.Fatalf("bucket %d: value %d maps to bucket %d", i, v, histIndex(v))
		}
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	for v := int64(1); v <= 10000; v++ {
		all.Record(v * 1000)
		if v%2 == 0 {
			a.Record(v * 1000)
		} else {
			b.Record(v * 1000)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{})
	for _, q := range []float64{0.5, 0.9, 0.99} {
		if m.Quantile(q) != all.Quantile(q) {
			t.Errorf("q%v merged %d, direct %d", q, m.Quantile(q), all.Quantile(q))
		}
	}
	if m.Min() != 1000 || m.Max() != 10_000_000 || m.Count() != 10000 {
		t.Errorf("min %d max %d count %d", m.Min(), m.Max(), m.Count())
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	v := int64(1)
	for b.Loop() {
		h.Record(v)
		v = v*7 + 3&(1<<40-1)
	}
}
