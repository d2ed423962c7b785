// Command fluxiondb is the FluxionDB server: an in-memory time-series database served over
// WebSockets. Run `fluxiondb --help` for the flags; every flag can also come from the
// environment as FLUXIONDB_<NAME>.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/volandoo/fluxiondb/internal/db"
	"github.com/volandoo/fluxiondb/internal/server"
	"github.com/volandoo/fluxiondb/internal/wal"
)

// defaultGCPercent is the garbage collector's target unless GOGC is set; see main.
const defaultGCPercent = 25

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	// The heap is mostly pointer-free record blocks, so a garbage collection costs little
	// marking; a collection target of 25% instead of Go's 100% keeps the resident memory near
	// the data (10M records: payload + 10.6 instead of + 33 bytes per record) at the same
	// ingest rate (BENCHMARKS.md). GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code (0 ok, 1 runtime failure,
// 2 bad command line).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck":
			return healthcheck(args[1:], getenv, stdout, stderr)
		case "version":
			fmt.Fprintln(stdout, "fluxiondb", version)
			return 0
		case "repair":
			return repair(args[1:], getenv, stdout, stderr)
		case "backup":
			return backup(ctx, args[1:], getenv, stdout, stderr)
		case "import":
			return importOld(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "fluxiondb: %v\nRun 'fluxiondb --help' for usage.\n", err)
		return 2
	}
	if cfg.Version {
		fmt.Fprintln(stdout, "fluxiondb", version)
		return 0
	}
	log := newLogger(cfg, stderr)
	// The certificate is read before FLUXIONDB_RUN_AS drops root, so a private key readable by
	// root alone (mode 0600, the usual) works; reloads on SIGHUP read as the server's user.
	var certs *certReloader
	if cfg.TLSCert != "" {
		var err error
		if certs, err = newCertReloader(cfg.TLSCert, cfg.TLSKey, log); err != nil {
			log.Error("cannot serve TLS", "err", err)
			return 1
		}
	}
	if user, err := dropRoot(getenv, cfg.Data); err != nil {
		log.Error("cannot switch from root to the server's user", "err", err)
		return 1
	} else if user != "" && cfg.Data != "" {
		log.Info("started as root: gave the data folder to the server's user and switched to it", "uid:gid", user, "data", cfg.Data)
	} else if user != "" {
		log.Info("started as root: switched to the server's user", "uid:gid", user)
	}
	// Listen before recovering the data folder, so that orchestrators see the process alive
	// (/healthz 200) but not ready (/readyz 503) while a large log replays.
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		log.Error("cannot listen", "addr", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), "err", err)
		return 1
	}
	gate := &startGate{}
	// IdleTimeout closes keep-alive HTTP connections (health checks, scrapes) left idle; the
	// HTTP server's own error lines go to our logger (httpErrorLog).
	hs := &http.Server{Handler: gate, ReadHeaderTimeout: cfg.HandshakeTimeout, IdleTimeout: httpIdleTimeout,
		ErrorLog: httpErrorLog(log)}
	scheme := "ws"
	if certs != nil {
		stopWatch := make(chan struct{})
		defer close(stopWatch)
		go certs.watchSIGHUP(stopWatch)
		hs.TLSConfig = certs.config()
		scheme = "wss"
	} else {
		// SIGHUP's default action ends the process; with nothing to reload it only says so.
		hup, stopHup := make(chan os.Signal, 1), make(chan struct{})
		signal.Notify(hup, syscall.SIGHUP)
		defer func() { signal.Stop(hup); close(stopHup) }()
		go func() {
			for {
				select {
				case <-hup:
					log.Info("SIGHUP: nothing to reload (no --tls-cert)")
				case <-stopHup:
					return
				}
			}
		}()
	}
	if cfg.PprofAddr != "" {
		// Like --metrics-addr, an address that cannot be listened on stops the start: it
		// was logged while the server ran on without the listener asked for.
		pln, err := net.Listen("tcp", cfg.PprofAddr)
		if err != nil {
			log.Error("cannot listen for pprof", "addr", cfg.PprofAddr, "err", err)
			return 1
		}
		go servePprof(ctx, pln, log)
	}
	errc := make(chan error, 1)
	go func() {
		if hs.TLSConfig != nil {
			errc <- hs.ServeTLS(ln, "", "")
			return
		}
		errc <- hs.Serve(ln)
	}()
	defer hs.Close()
	// "listening" is logged once requests are served (tools wait for that line); until
	// then the port answers /healthz 200 and everything else 503.
	log.Info("starting", "addr", ln.Addr().String(), "data", cfg.Data)
	if cfg.Data == "" && cfg.Fsync != "always" {
		// Accepted (command lines written for a persistent server keep working), but it
		// changes nothing: say so rather than let it look like a durability setting.
		log.Warn("--fsync has no effect without --data: nothing is written to disk", "fsync", cfg.Fsync)
	}

	d, err := openDB(cfg, getenv, log)
	if err != nil {
		var hints []string
		if strings.Contains(err.Error(), wal.RepairCommand) {
			// The message names the command generically; give the one to paste.
			hints = append(hints, "for this folder (server stopped): fluxiondb repair --data "+shellQuote(cfg.Data))
		}
		if errors.Is(err, fs.ErrPermission) {
			hints = append(hints, fmt.Sprintf("the --data folder must be writable by the server's user (uid %d here; the Docker "+
				"image runs as 65532: chown the mounted folder or run the container with --user)", os.Getuid()))
		}
		if cfg.LogFormat == "json" {
			// Every line of a JSON log is JSON: the hints go in the error line.
			log.Error("cannot open the database", "err", err, "hints", hints)
			return 1
		}
		log.Error("cannot open the database", "err", err)
		fmt.Fprintf(stderr, "fluxiondb: cannot start: %v\n", err)
		for _, h := range hints {
			fmt.Fprintf(stderr, "fluxiondb: %s\n", h)
		}
		return 1
	}
	defer d.Close()

	srv := server.New(d, server.Config{
		MaxMessageSize:  cfg.MaxMessageSize,
		MaxBatchRecords: cfg.MaxBatchRecords,
		MaxReplySize:    cfg.MaxReplySize,
		OutboundQueue:   cfg.OutboundQueue,
		WriteTimeout:    cfg.WriteTimeout,
		SlowRequest:     cfg.SlowRequest,
		MaxConnections:  cfg.MaxConnections,
		RateLimit:       cfg.RateLimit,
		PingInterval:    cfg.PingInterval,
		IdleTimeout:     cfg.IdleTimeout,
		Logger:          log,

		MetricsOnMainPort: cfg.MetricsAddr == "",
	})
	srv.Register(d.Collectors()...)
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			log.Error("cannot listen for metrics", "addr", cfg.MetricsAddr, "err", err)
			return 1
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", srv.MetricsHandler())
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go ms.Serve(mln)
		defer ms.Close()
		log.Info("metrics listening", "addr", mln.Addr().String())
	}
	gate.open(srv)
	log.Info("listening", "addr", ln.Addr().String(), "scheme", scheme, "version", version, "persistence", cfg.Data != "")

	select {
	case err := <-errc:
		log.Error("server stopped", "err", err)
		return 1
	case <-ctx.Done():
	}
	log.Info("shutting down: answering requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Stop accepting, then close the WebSocket connections gracefully (in-flight requests
	// answered, 1001) — while, not after, the HTTP server waits for its own connections: an
	// idle or half-sent HTTP connection would otherwise use up the whole budget first.
	httpDone := make(chan struct{})
	go func() { _ = hs.Shutdown(sctx); close(httpDone) }()
	srv.Shutdown(sctx)
	_ = hs.Close() // HTTP connections still open (idle, half-sent requests) are cut now
	<-httpDone
	if err := d.Close(); err != nil {
		log.Error("closing the database", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func servePprof(ctx context.Context, ln net.Listener, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	// No /debug/pprof/cmdline: the command line may hold --secret-key, and this listener
	// asks for no key.
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("pprof listening", "addr", ln.Addr().String())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stop := context.AfterFunc(ctx, func() { hs.Close() }) // it stops with the server
	defer stop()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("pprof listener stopped", "addr", ln.Addr().String(), "err", err)
	}
}

// httpIdleTimeout closes keep-alive HTTP connections (health checks, metric scrapes) that
// stay idle this long.
const httpIdleTimeout = 90 * time.Second

// httpErrorLog routes net/http's own error lines into the structured log: TLS handshake
// failures (port scanners, plain-HTTP probes) at debug, anything else at warn.
func httpErrorLog(l *slog.Logger) *stdlog.Logger {
	return stdlog.New(httpLogWriter{l}, "", 0)
}

type httpLogWriter struct{ l *slog.Logger }

func (w httpLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
	}
	w.l.Log(context.Background(), level, "http server", "err", msg)
	return len(p), nil
}

// healthcheck asks a local server's /healthz; for container HEALTHCHECKs, where no curl exists.
func healthcheck(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	// The server's own settings from the environment are the defaults, so that a container's
	// HEALTHCHECK follows FLUXIONDB_PORT and FLUXIONDB_HOST without repeating them.
	port := 8080
	if v := getenv(envName("port")); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			fmt.Fprintf(stderr, "fluxiondb healthcheck: %s=%q is not a port number\n", envName("port"), v)
			return 2
		}
		port = p
	}
	host := getenv(envName("host"))
	fs.IntVar(&port, "port", port, "port of the server")
	fs.StringVar(&host, "host", host, "address the server listens on (0.0.0.0, :: or empty: 127.0.0.1)")
	path := fs.String("path", "/healthz", "path to ask (/healthz or /readyz)")
	usage := "Usage: fluxiondb healthcheck [--host=ADDR] [--port=8080] [--path=/healthz]\n\nAsks the server for --path (over TLS when it serves TLS) and exits 0\n" +
		"when it answers 200 OK, 1 otherwise: a container HEALTHCHECK without curl."
	if code, done := parseSub(fs, args, usage, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fluxiondb healthcheck: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	switch host {
	case "", "0.0.0.0", "::", "[::]":
		host = "127.0.0.1" // listening everywhere: loopback reaches it
	}
	// A server with --tls-cert answers plain HTTP with 400 "Client sent an HTTP request to an
	// HTTPS server": then ask again over TLS. The certificate is not verified: this checks
	// that our own process on 127.0.0.1 answers, not who it is (its name is not 127.0.0.1).
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	addr := net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port)) + *path
	resp, err := client.Get("http://" + addr)
	if err == nil && resp.StatusCode == http.StatusBadRequest {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if strings.Contains(string(body), "HTTPS server") {
			resp.Body.Close()
			resp, err = client.Get("https://" + addr)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "unhealthy:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(stderr, "unhealthy: status", resp.Status)
		return 1
	}
	return 0
}

// openDB opens the database: in memory, or recovered from --data (snapshot + log replay).
func openDB(cfg *config, getenv func(string) string, log *slog.Logger) (*db.DB, error) {
	dcfg := db.Config{MasterKey: cfg.SecretKey, Dir: cfg.Data, Logger: log,
		SubHistoryBytes: cfg.SubHistory, SubRetention: cfg.SubRetention}
	if cfg.Data != "" {
		policy, err := wal.ParsePolicy(cfg.Fsync)
		if err != nil {
			return nil, err
		}
		dcfg.Fsync = policy
		dcfg.FlushInterval = time.Duration(cfg.FlushInterval) * time.Second
		// Snapshot thresholds and the segment size are tuning knobs for operators and
		// tests, read from the environment only (docs/persistence.md).
		if v := getenv(envName("snapshot-bytes")); v != "" {
			n, err := parseBytes(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", envName("snapshot-bytes"), err)
			}
			dcfg.SnapshotBytes = n
		}
		if v := getenv(envName("snapshot-age")); v != "" {
			age, err := time.ParseDuration(v)
			if err != nil || age <= 0 {
				return nil, fmt.Errorf("%s: %q is not a positive duration (examples: 30m, 1h)", envName("snapshot-age"), v)
			}
			dcfg.SnapshotAge = age
			dcfg.SnapshotCheck = min(time.Second, age)
		}
		if v := getenv(envName("wal-segment-bytes")); v != "" {
			n, err := parseBytes(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", envName("wal-segment-bytes"), err)
			}
			dcfg.SegmentSize = n
		}
	}
	return db.Open(dcfg)
}

// startGate is the HTTP handler while the data folder is recovered: /healthz answers 200,
// /readyz and every upgrade 503; once open hands it the server, it delegates.
type startGate struct{ srv atomic.Pointer[server.Server] }

func (g *startGate) open(s *server.Server) { g.srv.Store(s) }

func (g *startGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s := g.srv.Load(); s != nil {
		s.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if r.URL.Path == "/healthz" && !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		_, _ = w.Write([]byte("ok\n"))
		return
	}
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte("starting: recovering data\n"))
}

// parseSub parses a subcommand's flags as the main command line is parsed: --help prints
// usage and the flags (GNU style) on stdout, a mistake one line on stderr. done says the
// caller is to return code.
func parseSub(fs *flag.FlagSet, args []string, usage string, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stdout, "%s\n\nFlags:\n", usage)
		printFlags(stdout, fs)
		return 0, true
	case err != nil:
		fmt.Fprintf(stderr, "fluxiondb %s: %v\nRun 'fluxiondb %s --help' for usage.\n", fs.Name(), err, fs.Name())
		return 2, true
	}
	return 0, false
}

// dataFlags is the command line of a subcommand that works on a data folder: --data/-d
// (default FLUXIONDB_DATA).
func dataFlags(name, dataHelp string, getenv func(string) string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	dir := getenv(envName("data"))
	fs.StringVar(&dir, "data", dir, dataHelp)
	fs.StringVar(&dir, "d", dir, "shorthand for --data")
	return fs, &dir
}

// backup is `fluxiondb backup --data DIR DEST`: copy a data folder, which a server may be
// using, into a new folder a server starts from (db.Backup).
func backup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs, dirp := dataFlags("backup", "data folder to back up (the server may be running on it)", getenv)
	usage := "Usage: fluxiondb backup --data DIR DEST\n\nCopies the data folder DIR into DEST, a new or empty folder, while the server runs or not:\n" +
		"the newest snapshot and the log after it, every byte checked. DEST is a data folder:\n" +
		"start a server with --data DEST to restore it."
	var dest string
	if code, done := parseSub(fs, args, usage, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 { // DEST may come before the flags too
		dest = fs.Arg(0)
		if code, done := parseSub(fs, fs.Args()[1:], usage, stdout, stderr); done {
			return code
		}
	}
	dir := *dirp
	if dir == "" || dest == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fluxiondb backup: usage: fluxiondb backup --data DIR DEST (one destination folder)\n")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	rep, err := db.Backup(ctx, dir, dest, log) // SIGINT/SIGTERM end ctx: the copy stops and is removed
	if err != nil {
		fmt.Fprintf(stderr, "fluxiondb backup: %v\n", err)
		return 1
	}
	snap := "no snapshot (the log holds every change)"
	if rep.Snapshot.Path != "" {
		snap = fmt.Sprintf("snapshot %s (%d records, %d values, position %d)", filepath.Base(rep.Snapshot.Path),
			rep.Snapshot.Records, rep.Snapshot.Values, rep.Snapshot.Seq)
	}
	fmt.Fprintf(stdout, "backup: %s\n", snap)
	switch {
	case rep.Log.Frames > 0:
		fmt.Fprintf(stdout, "backup: log changes %d to %d (%d segments, %d bytes)\n", rep.Log.First, rep.Log.Last, rep.Log.Segments, rep.Log.Bytes)
	case rep.Snapshot.Path != "":
		fmt.Fprintf(stdout, "backup: no change logged after the snapshot\n")
	default:
		fmt.Fprintf(stdout, "backup: no change logged yet\n")
	}
	if rep.Log.TornBytes > 0 {
		fmt.Fprintf(stdout, "backup: left out %d bytes at the end of %s (a change being written at that moment)\n",
			rep.Log.TornBytes, filepath.Base(rep.Log.TornFile))
	}
	for _, p := range rep.Skipped {
		fmt.Fprintf(stdout, "backup: skipped %s: it does not verify (start-up sets it aside too)\n", p)
	}
	fmt.Fprintf(stdout, "backup done in %s: start a server with --data %s to restore it\n", rep.Duration.Round(time.Millisecond), dest)
	return 0
}

// importOld is `fluxiondb import --from OLD --data DEST`: bring the original C++ server's data
// folder over into a new data folder (db.Import).
func importOld(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs, destp := dataFlags("import", "new data folder to write (must not exist, or be empty)", getenv)
	from := fs.String("from", "", "data folder of the original FluxionDB server (read only)")
	usage := "Usage: fluxiondb import --from OLD --data DIR\n\nReads the data folder of the original FluxionDB server (its JSON files, or its later\n" +
		"SQLite file fluxion.db) and writes it into DIR, a new data folder, ending with a snapshot:\n" +
		"start a server with --data DIR. OLD is only read. See docs/persistence.md."
	if code, done := parseSub(fs, args, usage, stdout, stderr); done {
		return code
	}
	if *from == "" || *destp == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fluxiondb import: usage: fluxiondb import --from OLD --data DIR\n")
		return 2
	}
	// In the Docker image (root, FLUXIONDB_RUN_AS set) the new folder goes to the user the
	// server will run as, as a server start does with its --data folder.
	if _, err := dropRoot(getenv, *destp); err != nil {
		fmt.Fprintf(stderr, "fluxiondb import: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	rep, err := db.Import(ctx, *from, *destp, log)
	if err != nil {
		fmt.Fprintf(stderr, "fluxiondb import: %v\n", err)
		return 1
	}
	for _, p := range rep.Skipped {
		fmt.Fprintf(stdout, "import: skipped %s\n", p)
	}
	fmt.Fprintf(stdout, "import: %d collections, %d documents, %d records, %d values, %d API keys from %d files\n",
		rep.Collections, rep.Documents, rep.Records, rep.Values, rep.Keys, rep.Files)
	fmt.Fprintf(stdout, "import done in %s: start a server with --data %s\n", rep.Duration.Round(time.Millisecond), *destp)
	return 0
}

// repair is `fluxiondb repair --data DIR`: cut a damaged log at its first bad frame and
// salvage a damaged snapshot, moving what is dropped aside (db.Repair).
func repair(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs, dirp := dataFlags("repair", "data folder to repair (the server must be stopped)", getenv)
	usage := "Usage: " + wal.RepairCommand + "\n\nCuts a damaged write-ahead log at its first bad frame and salvages a damaged snapshot;\n" +
		"everything dropped is moved aside, never deleted. Stop the server first."
	if code, done := parseSub(fs, args, usage, stdout, stderr); done {
		return code
	}
	dir := *dirp
	if dir == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fluxiondb repair: --data DIR is required and takes no other arguments\n")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	lines, err := db.Repair(dir, log)
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	if err != nil {
		fmt.Fprintf(stderr, "fluxiondb repair: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "repair done: start the server again")
	return 0
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain path characters.
func shellQuote(s string) string {
	plain := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@,", r)) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
