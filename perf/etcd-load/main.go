// etcd-load: the load generator for the etcd side of perf/cluster-compare.sh.
//
// It drives an etcd cluster through etcd's own Go client (clientv3, gRPC), so
// etcd is measured through the protocol and client its users run, not through
// the HTTP/JSON gateway. The workload has ringkv-bench's shape: --connections
// client connections (one clientv3.Client, so one gRPC ClientConn and one
// HTTP/2 TCP connection, each), --pipeline requests in flight on each
// connection, uniform keys "key:" + zero-padded index over --keys, values of
// --value-size bytes, a closed loop for --warmup then --duration seconds.
//
// Pipelining: --pipeline D runs D goroutines per connection, each issuing one
// unary Put at a time over the shared connection, so D requests are in flight
// on one TCP connection as separate HTTP/2 streams. That is gRPC's form of
// RESP or ringkv pipelining: many independent requests outstanding on one
// connection, each acknowledged on its own once durable. (Putting D keys in
// one Txn would instead make one Raft entry and one answer of D writes, an
// atomic batch that neither ringkv-bench nor redis-benchmark sends.)
//
// As in ringkv-bench, a request is measured if it started inside the
// measurement window and finished before its end; put/s is the measured
// requests over the window. The last line of stdout with --json is one JSON
// object with ringkv-bench's field names, plus client_cpu: the fraction of
// one CPU this process used during the window (near 1 means the load
// generator, not etcd, was the limit).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
	"google.golang.org/grpc/status"
)

const keyPrefix = "key:"

type options struct {
	endpoints   []string
	connections int
	pipeline    int
	keys        uint64
	keySize     int
	valueSize   int
	duration    time.Duration
	warmup      time.Duration
	timeout     time.Duration
	seed        int64
	json        bool
}

type worker struct {
	hist       histogram
	errors     map[string]uint64
	unfinished uint64
}

type result struct {
	Protocol       string             `json:"protocol"`
	Addr           string             `json:"addr"`
	Connections    int                `json:"connections"`
	Pipeline       int                `json:"pipeline"`
	Ratio          string             `json:"ratio"`
	Keys           uint64             `json:"keys"`
	KeySize        int                `json:"key_size"`
	ValueSize      int                `json:"value_size"`
	Mode           string             `json:"mode"`
	Seed           int64              `json:"seed"`
	WarmupS        float64            `json:"warmup_s"`
	DurationS      float64            `json:"duration_s"`
	Requests       uint64             `json:"requests"`
	OpsPerSec      float64            `json:"ops_per_sec"`
	LatencyUs      map[string]float64 `json:"latency_us"`
	Errors         uint64             `json:"errors"`
	ErrorsByStatus map[string]uint64  `json:"errors_by_status"`
	Unfinished     uint64             `json:"unfinished"`
	ClientCPU      float64            `json:"client_cpu"`
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "etcd-load: "+format+"\n", args...)
	os.Exit(2)
}

func parseOptions() options {
	var o options
	var endpoints string
	var keys uint64
	flag.StringVar(&endpoints, "endpoints", "", "comma-separated etcd client endpoints HOST:PORT; connection i uses endpoint i mod n (required)")
	flag.IntVar(&o.connections, "connections", 50, "client connections (one gRPC ClientConn each)")
	flag.IntVar(&o.pipeline, "pipeline", 1, "requests in flight per connection (HTTP/2 streams)")
	flag.Uint64Var(&keys, "keys", 100000, "keyspace size")
	flag.IntVar(&o.keySize, "key-size", 16, "key length: \"key:\" + zero-padded index")
	flag.IntVar(&o.valueSize, "value-size", 100, "value length in bytes")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measurement window (e.g. 10s)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured run before the window")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "bound on each request")
	flag.Int64Var(&o.seed, "seed", 1, "random seed")
	flag.BoolVar(&o.json, "json", false, "print one JSON object as the last line of stdout")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: etcd-load --endpoints HOST:PORT[,...] [options]\n"+
			"Closed-loop PUT load on etcd through clientv3 (gRPC), shaped like ringkv-bench.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		fail("unexpected argument %q (see --help)", flag.Arg(0))
	}
	for _, e := range strings.Split(endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			o.endpoints = append(o.endpoints, e)
		}
	}
	digits := len(fmt.Sprint(keys - 1))
	switch {
	case len(o.endpoints) == 0:
		fail("--endpoints is required")
	case o.connections < 1 || o.connections > 10000:
		fail("--connections must be 1..10000")
	case o.pipeline < 1 || o.pipeline > 1024:
		fail("--pipeline must be 1..1024")
	case keys < 1:
		fail("--keys must be at least 1")
	case o.keySize < len(keyPrefix)+digits || o.keySize > 4096:
		fail("--key-size must be %d..4096 for %d keys", len(keyPrefix)+digits, keys)
	case o.valueSize < 0 || o.valueSize > 1<<20:
		fail("--value-size must be 0..1MiB")
	case o.duration <= 0 || o.duration > time.Hour:
		fail("--duration must be in (0, 1h]")
	case o.warmup < 0 || o.warmup > time.Hour:
		fail("--warmup must be in [0, 1h]")
	case o.timeout <= 0:
		fail("--timeout must be positive")
	}
	o.keys = keys
	return o
}

func formatKey(buf []byte, index uint64) string {
	for i := len(buf) - 1; i >= len(keyPrefix); i-- {
		buf[i] = byte('0' + index%10)
		index /= 10
	}
	return string(buf)
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func statusName(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Code().String()
	}
	if err == context.DeadlineExceeded {
		return "DeadlineExceeded"
	}
	return "other"
}

func main() {
	o := parseOptions()
	const slack = 1024
	alphabet := "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	seedRng := rand.New(rand.NewSource(o.seed))
	pool := make([]byte, o.valueSize+slack)
	for i := range pool {
		pool[i] = alphabet[seedRng.Intn(len(alphabet))]
	}
	values := make([]string, slack)
	for i := range values {
		values[i] = string(pool[i : i+o.valueSize])
	}

	clients := make([]*clientv3.Client, o.connections)
	for i := range clients {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{o.endpoints[i%len(o.endpoints)]},
			DialTimeout: 5 * time.Second,
		})
		if err != nil {
			fail("connect to %s: %v", o.endpoints[i%len(o.endpoints)], err)
		}
		defer c.Close()
		clients[i] = c
	}

	// One write and read-back before the load, so a cluster that accepts
	// connections but not writes fails here, loudly, not as a zero result.
	{
		ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
		probe := "etcd-load-probe"
		if _, err := clients[0].Put(ctx, probe, "ok"); err != nil {
			fail("probe put: %v", err)
		}
		r, err := clients[0].Get(ctx, probe)
		if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "ok" {
			fail("probe read-back failed: %v", err)
		}
		clients[0].Delete(ctx, probe)
		cancel()
	}

	start := time.Now()
	measureStart := start.Add(o.warmup)
	measureEnd := measureStart.Add(o.duration)
	// Requests still in flight at the end get this long to finish before
	// their contexts are cancelled; they are not measured either way.
	runCtx, stop := context.WithDeadline(context.Background(), measureEnd.Add(o.timeout))
	defer stop()

	var cpuStart, cpuEnd float64
	var cpuWG sync.WaitGroup
	cpuWG.Add(1)
	go func() {
		defer cpuWG.Done()
		time.Sleep(time.Until(measureStart))
		cpuStart = cpuSeconds()
		time.Sleep(time.Until(measureEnd))
		cpuEnd = cpuSeconds()
	}()

	workers := make([]*worker, o.connections*o.pipeline)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{errors: map[string]uint64{}}
		workers[i] = w
		cli := clients[i/o.pipeline]
		rng := rand.New(rand.NewSource(o.seed*1000003 + int64(i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			keyBuf := make([]byte, o.keySize)
			copy(keyBuf, keyPrefix)
			for {
				t0 := time.Now()
				if !t0.Before(measureEnd) {
					return
				}
				key := formatKey(keyBuf, uint64(rng.Int63())%o.keys)
				ctx, cancel := context.WithTimeout(runCtx, o.timeout)
				_, err := cli.Put(ctx, key, values[rng.Intn(slack)])
				cancel()
				t1 := time.Now()
				if t0.Before(measureStart) {
					continue
				}
				if t1.After(measureEnd) {
					w.unfinished++
					continue
				}
				if err != nil {
					w.errors[statusName(err)]++
					continue
				}
				w.hist.record(uint64(t1.Sub(t0).Nanoseconds()))
			}
		}()
	}
	wg.Wait()
	cpuWG.Wait()

	var all histogram
	res := result{
		Protocol: "etcd-grpc", Addr: strings.Join(o.endpoints, ","),
		Connections: o.connections, Pipeline: o.pipeline, Ratio: "0:1",
		Keys: o.keys, KeySize: o.keySize, ValueSize: o.valueSize, Mode: "closed",
		Seed: o.seed, WarmupS: o.warmup.Seconds(), DurationS: o.duration.Seconds(),
		ErrorsByStatus: map[string]uint64{},
	}
	for _, w := range workers {
		all.merge(&w.hist)
		res.Unfinished += w.unfinished
		for k, v := range w.errors {
			res.ErrorsByStatus[k] += v
			res.Errors += v
		}
	}
	us := func(ns uint64) float64 { return float64(ns) / 1e3 }
	res.Requests = all.total
	res.OpsPerSec = float64(all.total) / o.duration.Seconds()
	mean := 0.0
	if all.total > 0 {
		mean = float64(all.sum) / float64(all.total) / 1e3
	}
	res.LatencyUs = map[string]float64{
		"p50": us(all.percentile(0.50)), "p90": us(all.percentile(0.90)),
		"p99": us(all.percentile(0.99)), "p999": us(all.percentile(0.999)),
		"max": us(all.max), "mean": mean,
	}
	res.ClientCPU = (cpuEnd - cpuStart) / o.duration.Seconds()

	fmt.Printf("etcd-grpc %s, %d connections, pipeline %d, PUT only, %d keys, closed loop\n",
		res.Addr, o.connections, o.pipeline, o.keys)
	fmt.Printf("measured %.2f s (after %.2f s warm-up); latency in microseconds\n",
		o.duration.Seconds(), o.warmup.Seconds())
	fmt.Printf("put/s %.0f  requests %d  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  errors %d  client CPU %.2f\n",
		res.OpsPerSec, res.Requests, res.LatencyUs["p50"], res.LatencyUs["p90"],
		res.LatencyUs["p99"], res.LatencyUs["p999"], res.LatencyUs["max"], res.Errors, res.ClientCPU)
	if o.json {
		line, err := json.Marshal(res)
		if err != nil {
			fail("json: %v", err)
		}
		fmt.Println(string(line))
	}
}
