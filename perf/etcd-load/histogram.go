// Latency histogram for etcd-load: log-linear buckets, so a value is kept
// within 1/64 (1.6%) of itself whatever its size, in a fixed array that
// never allocates while requests run. Each worker owns one; they are merged
// once the run is over, so no lock or atomic is taken per request.
package main

import "math/bits"

const (
	histSubBits = 7                // values below 1<<7 ns are exact
	histSub     = 1 << histSubBits // 128
	histHalf    = histSub / 2      // sub-buckets per power of two above that
	histBuckets = histSub + (64-histSubBits)*histHalf
)

type histogram struct {
	counts [histBuckets]uint64
	total  uint64
	sum    uint64 // nanoseconds, for the mean
	max    uint64
}

func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits // >= 1
	top := v >> uint(shift)              // in [64, 127]
	return histSub + (shift-1)*histHalf + int(top-histHalf)
}

// histValue is the middle of bucket i: the value reported for it.
func histValue(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	shift := (i-histSub)/histHalf + 1
	top := uint64((i-histSub)%histHalf + histHalf)
	return top<<uint(shift) + (uint64(1)<<uint(shift))/2
}

func (h *histogram) record(ns uint64) {
	h.counts[histIndex(ns)]++
	h.total++
	h.sum += ns
	if ns > h.max {
		h.max = ns
	}
}

func (h *histogram) merge(o *histogram) {
	for i := range h.counts {
		h.counts[i] += o.counts[i]
	}
	h.total += o.total
	h.sum += o.sum
	if o.max > h.max {
		h.max = o.max
	}
}

// percentile returns the value at fraction p (0 < p <= 1) of the recorded
// values, in nanoseconds: the smallest bucket whose cumulative count reaches
// ceil(p * total). Never above the largest value seen.
func (h *histogram) percentile(p float64) uint64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(p*float64(h.total) + 0.999999)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if v := histValue(i); v < h.max {
				return v
			}
			return h.max
		}
	}
	return h.max
}
