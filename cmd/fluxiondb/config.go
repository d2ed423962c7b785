package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// config is everything the command line and environment can set.
type config struct {
	SecretKey        string
	Data             string
	FlushInterval    int
	Fsync            string
	Port             int
	Host             string
	MaxMessageSize   int64
	MaxBatchRecords  int
	MaxReplySize     int64
	OutboundQueue    int
	WriteTimeout     time.Duration
	SlowRequest      time.Duration
	MaxConnections   int
	RateLimit        float64
	PingInterval     time.Duration
	IdleTimeout      time.Duration
	HandshakeTimeout time.Duration
	MetricsAddr      string
	SubHistory       int64
	SubRetention     time.Duration
	TLSCert, TLSKey  string
	LogLevel         string
	LogFormat        string
	PprofAddr        string
	Version          bool
}

// envPrefix: every flag --some-name can also come from FLUXIONDB_SOME_NAME; a flag given on
// the command line wins over the environment.
const envPrefix = "FLUXIONDB_"

// runAsEnv names the user a server started as root continues as (runas_linux.go). The Docker
// image sets it to 65532:65532 and starts as root — the model of the official PostgreSQL and
// Redis images — so that `docker run -v $(pwd)/tmp_data:/app/data …` works even though
// Docker creates that host folder owned by root: the server hands the --data folder (and
// everything in it) to the user, then drops root before it reads a byte from the network.
// Started as any other user (Kubernetes' runAsUser, `docker run --user`), it changes nothing.
const runAsEnv = envPrefix + "RUN_AS"

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// byteSize is a flag value in bytes that also takes KiB/MiB/GiB (and KB/MB/GB) suffixes.
type byteSize struct{ p *int64 }

func (b byteSize) String() string {
	if b.p == nil {
		return ""
	}
	return strconv.FormatInt(*b.p, 10)
}

func (b byteSize) Set(s string) error {
	v, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b.p = v
	return nil
}

func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is not a positive size in bytes (examples: 16777216, 16MiB)", s)
	}
	return n * mult, nil
}

// parseConfig reads flags and environment. It returns flag.ErrHelp for --help.
// The usage goes to stdout (it was asked for); errors are returned for the caller to print
// in one line, without the usage text after them.
func parseConfig(args []string, getenv func(string) string, stdout io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("fluxiondb", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	str := func(p *string, long, short, def, usage string) {
		fs.StringVar(p, long, def, usage)
		if short != "" {
			fs.StringVar(p, short, def, "shorthand for --"+long)
		}
	}
	integer := func(p *int, long, short string, def int, usage string) {
		fs.IntVar(p, long, def, usage)
		if short != "" {
			fs.IntVar(p, short, def, "shorthand for --"+long)
		}
	}
	str(&c.SecretKey, "secret-key", "s", "", "master API key (required); clients send it as ?api-key=")
	str(&c.Data, "data", "d", "", "data folder for persistence; empty = in memory only")
	integer(&c.FlushInterval, "flush-interval", "f", 15, "seconds between log fsyncs with --fsync=interval")
	str(&c.Fsync, "fsync", "", "always", "when the write-ahead log is fsynced: always | interval | never")
	integer(&c.Port, "port", "p", 8080, "TCP port to listen on (0 = any free port)")
	str(&c.Host, "host", "", "0.0.0.0", "address to listen on")
	c.MaxMessageSize = 16 << 20
	fs.Var(byteSize{&c.MaxMessageSize}, "max-message-size", "largest accepted WebSocket message, in bytes (or 16MiB)")
	c.MaxReplySize = 256 << 20
	fs.Var(byteSize{&c.MaxReplySize}, "max-reply-size", "largest reply, in bytes (or 256MiB); a request whose reply would be larger gets a too_large error")
	// Off by default: the official clients take an error reply to an insert for success
	// (PROTOCOL.md §4), so a cap they never knew of would silently lose their records.
	// --max-message-size bounds a batch anyway (16 MiB: a few hundred thousand records).
	integer(&c.MaxBatchRecords, "max-batch-records", "", 0, "largest number of records in one insert (0 = no limit but --max-message-size)")
	integer(&c.OutboundQueue, "outbound-queue", "", 1024, "replies queued per connection before a non-reading client is cut off")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 10*time.Second, "a write to a client that makes no progress for this long (or a reply that cannot be queued) closes its connection")
	fs.DurationVar(&c.SlowRequest, "slow-request", time.Second, "log requests slower than this (0 = never)")
	integer(&c.MaxConnections, "max-connections", "", 10000, "open connections at most (0 = no limit)")
	fs.Float64Var(&c.RateLimit, "rate-limit", 0, "requests per second allowed per API key, shared by its connections (0 = no limit)")
	fs.DurationVar(&c.PingInterval, "ping-interval", 30*time.Second, "ping clients this often; one that does not answer within the interval is disconnected (0 = off)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 0, "disconnect clients that send no request for this long, unless they subscribe (0 = never)")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", 10*time.Second, "time allowed for a client to send its HTTP upgrade request")
	c.SubHistory = 64 << 20
	fs.Var(byteSize{&c.SubHistory}, "sub-history", "change history kept in memory for subscriptions to resume from, in bytes (or 64MiB)")
	fs.DurationVar(&c.SubRetention, "sub-retention", 5*time.Minute, "keep recording subscription history this long after the last subscription ends")
	str(&c.MetricsAddr, "metrics-addr", "", "", "serve /metrics on this address instead of the main port (e.g. 127.0.0.1:9090)")
	str(&c.TLSCert, "tls-cert", "", "", "PEM certificate file: serve wss:// (with --tls-key); reloaded on SIGHUP")
	str(&c.TLSKey, "tls-key", "", "", "PEM private key file for --tls-cert")
	str(&c.LogLevel, "log-level", "", "info", "debug | info | warn | error")
	str(&c.LogFormat, "log-format", "", "text", "text | json")
	str(&c.PprofAddr, "pprof-addr", "", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060); empty = off")
	fs.BoolVar(&c.Version, "version", false, "print the version and exit")

	// Environment first, so that flags given on the command line override it.
	var envErr error
	var fromEnv []string // long names set from the environment
	fs.VisitAll(func(f *flag.Flag) {
		// --version is a command, not a setting: FLUXIONDB_VERSION (often set by deployment
		// tooling to the release being run) must not turn it on.
		if len(f.Name) == 1 || f.Name == "version" || envErr != nil {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("invalid value %q for %s: %v", v, envName(f.Name), err)
			}
			fromEnv = append(fromEnv, f.Name)
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs)
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags look like --name=value)", fs.Arg(0))
	}
	if c.Version {
		return c, nil
	}
	if err := c.validate(); err != nil {
		return nil, nameEnv(err, fromEnv, commandLineNames(fs, args))
	}
	return c, nil
}

// nameEnv adds to a validation error the environment variables behind the flags it names,
// when they were not given on the command line: `--fsync must be …` alone sends the reader
// looking for a flag that is not there.
func nameEnv(err error, fromEnv []string, onCommandLine map[string]bool) error {
	msg := err.Error()
	var vars []string
	for _, n := range fromEnv {
		if !onCommandLine[n] && mentions(msg, "--"+n) {
			vars = append(vars, envName(n))
		}
	}
	if len(vars) == 0 {
		return err
	}
	return fmt.Errorf("%w (set in the environment: %s)", err, strings.Join(vars, ", "))
}

// commandLineNames returns the long names of the flags args sets (shorthands resolved).
func commandLineNames(fs *flag.FlagSet, args []string) map[string]bool {
	names := map[string]bool{}
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if long, ok := strings.CutPrefix(f.Usage, "shorthand for --"); ok && len(name) == 1 {
			name = long
		}
		names[name] = true
	}
	return names
}

// mentions reports whether msg names the flag (not a longer one it is the start of).
func mentions(msg, flagName string) bool {
	for i := 0; ; {
		j := strings.Index(msg[i:], flagName)
		if j < 0 {
			return false
		}
		end := i + j + len(flagName)
		if end == len(msg) || !(msg[end] == '-' || msg[end] >= 'a' && msg[end] <= 'z') {
			return true
		}
		i = end
	}
}

// printUsage writes the help text, flags GNU style: "-s, --secret-key string".
func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: fluxiondb --secret-key=KEY [flags]\n       fluxiondb healthcheck | repair --data=DIR | backup --data=DIR DEST\n       fluxiondb import --from=OLD --data=DIR | version\n\n")
	fmt.Fprintf(w, "FluxionDB: an in-memory time-series database served over WebSockets.\n")
	fmt.Fprintf(w, "Every flag can also be set in the environment as %sNAME (e.g. %s).\n\nFlags:\n", envPrefix, envName("secret-key"))
	printFlags(w, fs)
}

// printFlags lists the flags of fs GNU style, a shorthand beside its long name.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	short := map[string]string{} // long name → one-letter shorthand
	fs.VisitAll(func(f *flag.Flag) {
		if long, ok := strings.CutPrefix(f.Usage, "shorthand for --"); ok && len(f.Name) == 1 {
			short[long] = f.Name
		}
	})
	fs.VisitAll(func(f *flag.Flag) {
		if len(f.Name) == 1 {
			return
		}
		names := "    --" + f.Name
		if s := short[f.Name]; s != "" {
			names = "-" + s + ", --" + f.Name
		}
		typ, usage := flag.UnquoteUsage(f)
		if _, ok := f.Value.(byteSize); ok {
			typ = "size"
		}
		if typ != "" {
			names += " " + typ
		}
		fmt.Fprintf(w, "  %s\n      \t%s", names, usage)
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func (c *config) validate() error {
	var errs []error
	if c.SecretKey == "" {
		errs = append(errs, fmt.Errorf("--secret-key (or %s) is required", envName("secret-key")))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port must be between 0 and 65535, got %d", c.Port))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("--flush-interval must be a positive number of seconds, got %d", c.FlushInterval))
	}
	switch c.Fsync {
	case "always", "interval", "never":
	default:
		errs = append(errs, fmt.Errorf("--fsync must be always, interval or never, got %q", c.Fsync))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat))
	}
	if c.MaxBatchRecords < 0 {
		errs = append(errs, fmt.Errorf("--max-batch-records must not be negative"))
	}
	if c.OutboundQueue <= 0 {
		errs = append(errs, fmt.Errorf("--outbound-queue must be positive"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, fmt.Errorf("--tls-cert and --tls-key go together"))
	}
	if c.MaxConnections < 0 || c.RateLimit < 0 || c.PingInterval < 0 || c.IdleTimeout < 0 || c.HandshakeTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--max-connections, --rate-limit, --ping-interval and --idle-timeout must not be negative; --handshake-timeout must be positive"))
	}
	if math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0) {
		errs = append(errs, fmt.Errorf("--rate-limit must be a number of requests per second (0 = no limit), got %v", c.RateLimit))
	}
	// Shorter periods would wake every connection's keepalive hundreds of times a second and
	// drop clients for a scheduling hiccup.
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--ping-interval", c.PingInterval}, {"--idle-timeout", c.IdleTimeout}} {
		if d.v > 0 && d.v < minKeepalivePeriod {
			errs = append(errs, fmt.Errorf("%s must be 0 (off) or at least %v, got %v", d.name, minKeepalivePeriod, d.v))
		}
	}
	if c.SubRetention <= 0 {
		errs = append(errs, fmt.Errorf("--sub-retention must be positive"))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--write-timeout must be positive"))
	}
	return errors.Join(errs...)
}

// minKeepalivePeriod is the shortest --ping-interval and --idle-timeout accepted.
const minKeepalivePeriod = 10 * time.Millisecond

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level must be debug, info, warn or error, got %q", s)
	}
	return l, nil
}

func newLogger(c *config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		// Durations as text with their unit ("1.5ms"), as in text mode: a bare number of
		// nanoseconds under "duration" or "took" reads as anything.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				return slog.String(a.Key, a.Value.Duration().String())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
