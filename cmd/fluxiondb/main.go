// Command fluxiondb is the FluxionDB server: an in-memory time-series database served over
// WebSockets. Run `fluxiondb --help` for the flags; every flag can also come from the
// environment as FLUXIONDB_<NAME>.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/volandoo/fluxiondb/internal/db"
	"github.com/volandoo/fluxiondb/internal/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
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
			return healthcheck(args[1:], getenv, stderr)
		case "version":
			fmt.Fprintln(stdout, "fluxiondb", version)
			return 0
		}
	}
	cfg, err := parseConfig(args, getenv, stderr)
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
	if cfg.Data != "" {
		fmt.Fprintf(stderr, "fluxiondb: --data is not supported by this build yet: persistence is not implemented; run without --data to serve in memory\n")
		return 2
	}

	d, err := db.Open(db.Config{MasterKey: cfg.SecretKey})
	if err != nil {
		log.Error("cannot open the database", "err", err)
		return 1
	}
	defer d.Close()

	srv := server.New(d, server.Config{
		MaxMessageSize:  cfg.MaxMessageSize,
		MaxBatchRecords: cfg.MaxBatchRecords,
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
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		log.Error("cannot listen", "addr", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), "err", err)
		return 1
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: cfg.HandshakeTimeout}
	scheme := "ws"
	if cfg.TLSCert != "" {
		certs, err := newCertReloader(cfg.TLSCert, cfg.TLSKey, log)
		if err != nil {
			log.Error("cannot serve TLS", "err", err)
			return 1
		}
		stopWatch := make(chan struct{})
		defer close(stopWatch)
		go certs.watchSIGHUP(stopWatch)
		hs.TLSConfig = certs.config()
		scheme = "wss"
	}
	if cfg.PprofAddr != "" {
		go servePprof(cfg.PprofAddr, log.Error)
	}
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
	errc := make(chan error, 1)
	go func() {
		if hs.TLSConfig != nil {
			errc <- hs.ServeTLS(ln, "", "")
			return
		}
		errc <- hs.Serve(ln)
	}()
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
	_ = hs.Shutdown(sctx) // stops accepting; hijacked WebSocket connections are ours to close
	srv.Shutdown(sctx)
	if err := d.Close(); err != nil {
		log.Error("closing the database", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func servePprof(addr string, logErr func(string, ...any)) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if err := http.ListenAndServe(addr, mux); err != nil {
		logErr("pprof listener stopped", "addr", addr, "err", err)
	}
}

// healthcheck asks a local server's /healthz; for container HEALTHCHECKs, where no curl exists.
func healthcheck(args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := 8080
	if v := getenv(envName("port")); v != "" {
		if p, err := strconv.Atoi(v); err == nil {
			port = p
		}
	}
	fs.IntVar(&port, "port", port, "port of the server")
	path := fs.String("path", "/healthz", "path to ask (/healthz or /readyz)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(port) + *path)
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
