// Checks of the latency histogram: every value lands in a bucket whose
// reported value is within 1/64 of it, buckets are in order, and
// percentiles of a known distribution come out where they must.
package main

import (
	"math/rand"
	"testing"
)

func TestBucketWithinOneSixtyFourth(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200000; i++ {
		v := uint64(rng.Int63()) >> uint(rng.Intn(63))
		idx := histIndex(v)
		if idx < 0 || idx >= histBuckets {
			t.Fatalf("value %d: index %d out of range", v, idx)
		}
		got := histValue(idx)
		diff := int64(got) - int64(v)
		if diff < 0 {
			diff = -diff
		}
		if v >= histSub && uint64(diff)*64 > v {
			t.Fatalf("value %d reported as %d (more than 1/64 off)", v, got)
		}
		if v < histSub && got != v {
			t.Fatalf("small value %d reported as %d", v, got)
		}
	}
	if histIndex(^uint64(0)) != histBuckets-1 {
		t.Fatalf("largest value in bucket %d of %d", histIndex(^uint64(0)), histBuckets)
	}
}

func TestBucketsInOrder(t *testing.T) {
	for i := 1; i < histBuckets; i++ {
		if histValue(i) <= histValue(i-1) {
			t.Fatalf("bucket %d value %d not above bucket %d value %d",
				i, histValue(i), i-1, histValue(i-1))
		}
		if histIndex(histValue(i)) != i {
			t.Fatalf("bucket %d's value %d maps to bucket %d", i, histValue(i), histIndex(histValue(i)))
		}
	}
}

func TestPercentiles(t *testing.T) {
	var h histogram
	for v := uint64(1); v <= 100000; v++ {
		h.record(v * 1000) // 1 µs .. 100 ms
	}
	for _, c := range []struct {
		p    float64
		want uint64
	}{{0.5, 50000000}, {0.99, 99000000}, {0.999, 99900000}, {1, 100000000}} {
		got := h.percentile(c.p)
		diff := int64(got) - int64(c.want)
		if diff < 0 {
			diff = -diff
		}
		if uint64(diff)*64 > c.want {
			t.Errorf("p%g = %d, want %d within 1/64", c.p*100, got, c.want)
		}
	}
	if h.max != 100000000 || h.total != 100000 {
		t.Errorf("max %d total %d", h.max, h.total)
	}
	var other histogram
	other.record(5)
	h.merge(&other)
	if h.total != 100001 || h.percentile(0.000001) != 5 {
		t.Errorf("merge: total %d, smallest %d", h.total, h.percentile(0.000001))
	}
	var empty histogram
	if empty.percentile(0.99) != 0 {
		t.Errorf("empty histogram's p99 is %d", empty.percentile(0.99))
	}
}
