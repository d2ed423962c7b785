// Command fluxbench drives a FluxionDB-compatible server over the standard
// WebSocket protocol and prints records/s, request latency percentiles, the
// server's memory and CPU, and the tool's own CPU and ceiling.
//
//	fluxbench ingest -server ./fluxiondb -ceiling
//	fluxbench qdoc -url ws://127.0.0.1:8080 -key KEY -k 100 -reverse -limit 20
//	fluxbench ingest -server ./fluxiondb -- --data=/tmp/d --fsync=always
//	fluxbench fanout -server ./fluxiondb -conns 100 -writers 1 -rate 2000 -batch 10
//
// Scenarios: ingest, qry, qdoc, mixed, fanout.
// See internal/loadtest for the model and docs/profiling.md for profiling.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/volandoo/fluxiondb/internal/loadtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usageHead = `usage: fluxbench SCENARIO [flags] [-- server args]

Scenarios:
  ingest  batched, pipelined inserts (records/s)
  qry     latest record of every document, after a preload of -docs × -depth
  qdoc    ranges of -k records of random documents, after a preload
  mixed   -writers ingest connections and -conns qdoc readers at once
  fanout  -conns subscriber connections (-subs each) receive the records that
          -writers insert at -rate; events/s and delivery latency

Target: -server PATH starts the server on 127.0.0.1:0 (so its memory and CPU
are known); -url/-key use a running one (-pid adds its /proc figures); -noop
measures the tool against an in-process server that does nothing.

Flags:
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg loadtest.Config
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cfg.Scenario, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("fluxbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	scenario := fs.String("scenario", cfg.Scenario, "scenario (or give it as the first argument)")
	url := fs.String("url", "", "WebSocket URL of a running server")
	key := fs.String("key", os.Getenv("FLUXBENCH_KEY"), "API key (default $FLUXBENCH_KEY; a random key when -server starts the server)")
	server := fs.String("server", "", "server binary to start, optionally with arguments (split on spaces); args after -- are added")
	serverLog := fs.String("server-log", "", "file for the started server's stderr")
	pid := fs.Int("pid", 0, "PID of the server behind -url, for memory and CPU figures")
	noop := fs.Bool("noop", false, "run against an in-process no-op server: the tool's own ceiling")
	ceiling := fs.Bool("ceiling", false, "after the run, repeat it against the no-op server and print both")
	jsonOut := fs.Bool("json", false, "print the result as JSON on stdout (the table goes to stderr)")
	quiet := fs.Bool("q", false, "no progress lines")
	cpuProfile := fs.String("cpuprofile", "", "write the tool's own CPU profile to this file")
	fs.IntVar(&cfg.Conns, "conns", 0, "connections (qdoc readers in mixed, subscribers in fanout) (default per scenario: ingest 2, qry 1, qdoc 2, mixed 1, fanout 100)")
	fs.IntVar(&cfg.Inflight, "inflight", 0, "requests in flight per connection (default 4; qry 1)")
	fs.IntVar(&cfg.Batch, "batch", 0, "records per ins request (default 1000; fanout 10)")
	fs.IntVar(&cfg.Payload, "payload", 50, "payload bytes per record")
	fs.IntVar(&cfg.Docs, "docs", 0, "documents (default 10000; qdoc, mixed and fanout 1000)")
	fs.IntVar(&cfg.Collections, "collections", 1, "collections the documents are spread over")
	fs.Int64Var(&cfg.Records, "records", 0, "ingest: records to send (default: run for -duration)")
	fs.Int64Var(&cfg.Requests, "requests", 0, "qry/qdoc: requests to send (default: run for -duration)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to run when -records/-requests are not given (default 5s)")
	fs.IntVar(&cfg.Depth, "depth", 0, "qry/qdoc/mixed: records preloaded per document (default qry 1, else 1000)")
	fs.IntVar(&cfg.K, "k", 100, "qdoc: records per range")
	fs.IntVar(&cfg.Limit, "limit", 0, "qdoc: limit field (0 = none)")
	fs.BoolVar(&cfg.Reverse, "reverse", false, "qdoc: reverse field (newest first)")
	fs.IntVar(&cfg.Writers, "writers", 1, "mixed, fanout: ingest connections")
	fs.IntVar(&cfg.Subs, "subs", 1, "fanout: subscriptions per subscriber connection (each gets every record)")
	fs.Float64Var(&cfg.Rate, "rate", 2000, "fanout: records/s inserted over all writers; 0 = flat out (2000 × 100 subscribers = issue 8's 200k events/s)")
	fs.StringVar(&cfg.Prefix, "prefix", "fb", "prefix of generated collection and document names")
	fs.DurationVar(&cfg.Settle, "settle", time.Second, "wait before the final server memory sample")
	fs.DurationVar(&cfg.Stall, "stall", 10*time.Second, "abort when no reply arrives for this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg.Scenario = *scenario
	if cfg.Scenario == "" {
		fmt.Fprintln(stderr, "fluxbench: no scenario given")
		fs.Usage()
		return 2
	}
	targets := 0
	for _, set := range []bool{*url != "", *server != "", *noop} {
		if set {
			targets++
		}
	}
	if targets != 1 {
		fmt.Fprintln(stderr, "fluxbench: give exactly one of -url, -server, -noop")
		return 2
	}
	if *url != "" && *key == "" {
		fmt.Fprintln(stderr, "fluxbench: -url needs -key (or $FLUXBENCH_KEY)")
		return 2
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "fluxbench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "fluxbench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	cfg.Key = *key
	cfg.PID = *pid

	var res *loadtest.Result
	var err error
	switch {
	case *noop:
		res, err = loadtest.RunCeiling(ctx, cfg)
	case *server != "":
		argv := append(strings.Fields(*server), fs.Args()...)
		res, err = runServer(ctx, cfg, argv, *serverLog, stderr)
	default:
		cfg.URL = *url
		res, err = loadtest.Run(ctx, cfg)
	}
	if err == nil && *ceiling && !*noop {
		cfg.PID = 0
		var c *loadtest.Result
		c, err = loadtest.RunCeiling(ctx, cfg)
		res.Ceiling = c
		if err != nil {
			err = fmt.Errorf("ceiling run: %w", err)
		}
	}
	table := stdout
	if *jsonOut {
		table = stderr
	}
	if res != nil && res.Measured != nil {
		loadtest.WriteTable(table, res)
		fmt.Fprintln(table, loadtest.Summary(res))
	}
	if *jsonOut && res != nil {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(res); jerr != nil && err == nil {
			err = jerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "fluxbench: %v\n", err)
		return 1
	}
	return 0
}

func runServer(ctx context.Context, cfg loadtest.Config, argv []string, logPath string, stderr io.Writer) (*loadtest.Result, error) {
	if cfg.Key == "" {
		cfg.Key = fmt.Sprintf("fluxbench-%d", time.Now().UnixNano())
	}
	var log io.Writer
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			return nil, fmt.Errorf("server log: %w", err)
		}
		defer f.Close()
		log = f
	}
	p, err := loadtest.StartServer(ctx, argv, cfg.Key, log)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "fluxbench: started %s (pid %d) on %s\n", strings.Join(argv, " "), p.PID, p.Addr)
	cfg.URL, cfg.PID = p.URL(), p.PID
	res, err := loadtest.Run(ctx, cfg)
	if res != nil {
		res.Target = "server " + strings.Join(argv, " ")
	}
	if serr := p.Stop(10 * time.Second); serr != nil {
		fmt.Fprintf(stderr, "fluxbench: server stop: %v\n%s\n", serr, p.Tail())
	}
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("%w\nlast server log lines:\n%s", err, p.Tail())
	}
	return res, err
}
