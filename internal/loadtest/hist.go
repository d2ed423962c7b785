package loadtest

import (
	"math"
	"math/bits"
)

// Histogram bucket layout: values below histLinear are counted exactly; above
// that every power of two is split into histSub buckets, so a bucket is at most
// 1/histSub of its lower bound wide (0.78%) and the midpoint we report is within
// 0.4% of any value in it. 7296 buckets cover the whole int64 range, which keeps
// Record a few shifts and one increment with no allocation.
const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	histLinear  = 2 * histSub
	histBuckets = histLinear + (63-histSubBits-1)*histSub
)

// Histogram is a log-linear (HDR-style) histogram of non-negative int64
// values, used for latencies in nanoseconds. The zero value is ready to use.
// It is not safe for concurrent use: each reader goroutine owns one and they
// are merged at the end.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

func histIndex(v int64) int {
	if v < histLinear {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - histSubBits - 1
	top := int(uint64(v) >> uint(shift))
	return histLinear + (shift-1)*histSub + (top - histSub)
}

// histValue returns the midpoint of bucket i.
func histValue(i int) int64 {
	if i < histLinear {
		return int64(i)
	}
	j := i - histLinear
	shift := uint(j/histSub + 1)
	top := int64(j%histSub + histSub)
	// The largest bucket starts at 255<<55 = 2^63-2^55, so this cannot overflow.
	return top<<shift + int64(1)<<(shift-1)
}

// Record adds one value; negative values count as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.counts[histIndex(v)]++
	h.n++
	h.sum += float64(v)
}

// RecordN adds the value v n times: a fan-out receiver sees one send stamp
// for every event of a batch and records them in one step.
func (h *Histogram) RecordN(v int64, n uint64) {
	if n == 0 {
		return
	}
	if v < 0 {
		v = 0
	}
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.counts[histIndex(v)] += n
	h.n += n
	h.sum += float64(v) * float64(n)
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest recorded value (exact).
func (h *Histogram) Max() int64 { return h.max }

// Min returns the smallest recorded value (exact).
func (h *Histogram) Min() int64 { return h.min }

// Mean returns the arithmetic mean (exact up to float rounding).
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Quantile returns the value at quantile q in [0,1]: the value of rank
// ceil(q*n) in sorted order, to within the bucket precision, clamped to the
// exact min and max.
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			v := histValue(i)
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}
