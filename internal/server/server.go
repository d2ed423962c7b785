package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/volandoo/fluxiondb/internal/auth"
	"github.com/volandoo/fluxiondb/internal/db"
	"github.com/volandoo/fluxiondb/internal/protocol"
)

// Config holds the server's tunables. Zero values take the defaults noted.
type Config struct {
	MaxMessageSize  int64         // largest accepted frame; default 16 MiB
	MaxBatchRecords int           // largest `ins` batch; 0 = no limit
	MaxReplySize    int64         // largest reply; over it the request gets too_large (qry/qdoc/snapshots stop building there); default 256 MiB
	OutboundQueue   int           // replies queued per connection; default 1024
	WriteTimeout    time.Duration // a reply that cannot be written in this time closes the connection; default 10 s
	SlowRequest     time.Duration // requests slower than this are logged; 0 = never
	MaxConnections  int           // open connections at most; 0 = no limit
	RateLimit       float64       // requests per second per API key (burst: one second's worth); 0 = off
	PingInterval    time.Duration // ping every connection this often; one unanswered for as long closes it; 0 = off
	IdleTimeout     time.Duration // close connections that sent no request for this long; 0 = never
	Logger          *slog.Logger  // default: discard
	// MetricsOnMainPort serves /metrics beside the WebSocket endpoint (when no separate
	// --metrics-addr is used).
	MetricsOnMainPort bool
}

func (c *Config) setDefaults() {
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = 16 << 20
	}
	if c.OutboundQueue <= 0 {
		c.OutboundQueue = 1024
	}
	if c.MaxReplySize <= 0 {
		c.MaxReplySize = 256 << 20
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Server serves the FluxionDB WebSocket protocol and the health endpoints over HTTP.
type Server struct {
	cfg     Config
	db      *db.DB
	log     *slog.Logger
	conns   registry
	metrics *metrics

	// wait is db.Wait; tests put a failing one in its place (export_test.go) to see how a
	// change that cannot be made durable is answered and counted.
	wait func(context.Context, db.Commit) error

	limiter  *limiter
	ready    atomic.Bool
	shutting atomic.Bool
	slots    atomic.Int64   // connections open or being upgraded (--max-connections)
	wg       sync.WaitGroup // one per connection
}

// New creates a server over an open database.
func New(d *db.DB, cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{cfg: cfg, db: d, log: cfg.Logger, metrics: newMetrics(), wait: d.Wait}
	s.conns.m = make(map[*conn]struct{})
	if cfg.RateLimit > 0 {
		s.limiter = &limiter{rate: cfg.RateLimit, burst: max(1, cfg.RateLimit)}
	}
	d.Keys.OnRevoke = s.revoke
	s.metrics.registerDB(s)
	s.ready.Store(true)
	return s
}

// SetReady marks whether the server is ready to serve (GET /readyz).
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// ServeHTTP answers the health endpoints and upgrades every other request that asks for it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isUpgrade(r) {
		switch r.URL.Path {
		case "/healthz":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok\n"))
			return
		case "/metrics":
			if s.cfg.MetricsOnMainPort {
				s.metrics.handler().ServeHTTP(w, r)
				return
			}
			// Served on --metrics-addr instead: a scraper pointed here should hear "not here",
			// not the WebSocket hint.
			http.Error(w, "/metrics is served on the --metrics-addr address, not on this port", http.StatusNotFound)
			return
		case "/readyz":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if !s.ready.Load() || s.shutting.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("not ready\n"))
				return
			}
			_, _ = w.Write([]byte("ready\n"))
			return
		}
		http.Error(w, "FluxionDB speaks WebSocket here: connect with ws://HOST:PORT/?api-key=KEY", http.StatusUpgradeRequired)
		return
	}
	s.upgrade(w, r)
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// apiKey finds the key in the query string (form-decoded: '+' is a space), then in an
// `Authorization: Bearer` or `x-api-key` header.
func apiKey(r *http.Request) string {
	// ParseQuery keeps every well-formed pair even when another one is malformed
	// (a stray '%' or ';' in the connection name must not hide the key).
	q, _ := url.ParseQuery(r.URL.RawQuery)
	if k := q.Get("api-key"); k != "" {
		return k
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return r.Header.Get("X-Api-Key")
}

// refuse answers a refused upgrade with exactly text as the body, as the official v2 server
// does (http.Error would add a newline a client comparing the text would trip over).
func refuse(w http.ResponseWriter, code int, text string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, text)
}

func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) {
	if s.shutting.Load() {
		s.metrics.reject("shutdown")
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	secret := apiKey(r)
	if secret == "" {
		s.metrics.reject("auth")
		refuse(w, http.StatusUnauthorized, protocol.TextMissingKey)
		return
	}
	key, ok := s.db.Keys.Lookup(secret)
	if !ok {
		s.metrics.reject("auth")
		s.log.Info("connection refused: unknown API key", "remote", r.RemoteAddr)
		refuse(w, http.StatusUnauthorized, protocol.TextUnknownKey)
		return
	}
	// A slot is taken before the upgrade and given back when the connection ends (or the
	// upgrade fails), so upgrades racing each other cannot pass the limit together.
	if max := s.cfg.MaxConnections; max > 0 {
		if s.slots.Add(1) > int64(max) {
			s.slots.Add(-1)
			s.metrics.reject("limit")
			s.log.Warn("connection refused: --max-connections reached", "remote", r.RemoteAddr, "limit", max)
			http.Error(w, "too many connections (server limit "+strconv.Itoa(max)+")", http.StatusServiceUnavailable)
			return
		}
		defer s.slots.Add(-1)
	}
	bw := &bigWriteBuffer{ResponseWriter: w, writeTimeout: s.cfg.WriteTimeout}
	ws, err := websocket.Accept(bw, r, &websocket.AcceptOptions{
		// Browsers on any origin may connect: access is granted by the API key, not by origin.
		InsecureSkipVerify: true,
	})
	if err != nil {
		s.log.Debug("upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	ws.SetReadLimit(s.cfg.MaxMessageSize)

	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	c := &conn{
		srv: s, ws: ws, cork: bw.cork, rd: bw.rd, key: key, ip: ip,
		name:      connName(r.URL.RawQuery),
		since:     time.Now(),
		out:       make(chan reply, s.cfg.OutboundQueue),
		closed:    make(chan struct{}),
		handshake: make(chan struct{}),
	}
	c.idle = sync.NewCond(&c.mu)
	c.lastActive.Store(c.since.UnixNano())
	c.ctx, c.cancel = context.WithCancel(context.Background())
	keyID := "master"
	if !key.Master {
		keyID = key.Hash.ID()
	}
	c.log = s.log.With("remote", r.RemoteAddr, "conn_name", c.name, "key_id", keyID)
	if !s.conns.add(c, &s.wg) {
		_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	if key.Revoked() {
		// The key was removed after the lookup above, and the removal's walk over the open
		// connections (revoke) came before this one was added: close it as that walk would.
		c.closeWith(websocket.StatusPolicyViolation, "API key revoked")
	}
	s.metrics.connOpened()
	c.log.Info("connection opened", "scope", key.Scope().String())
	defer s.metrics.connClosed()
	defer s.wg.Done()
	c.serve()
}

// revoke closes every connection that authenticated with a removed key.
func (s *Server) revoke(e *auth.Entry) {
	if s.limiter != nil {
		s.limiter.forget(e)
	}
	for _, c := range s.conns.list() {
		if c.key == e {
			c.closeWith(websocket.StatusPolicyViolation, "API key revoked")
		}
	}
}

// Shutdown stops accepting connections, answers the requests in flight (those read before
// it began: the read loops skip later ones unhandled, since no reply may follow the close
// frame), closes every connection with 1001 and waits for them, or until ctx ends.
func (s *Server) Shutdown(ctx context.Context) {
	s.shutting.Store(true)
	s.conns.close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	var wg sync.WaitGroup
	for _, c := range s.conns.list() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.waitIdle(deadline)
			c.closeWith(websocket.StatusGoingAway, "server shutting down")
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range s.conns.list() {
			_ = c.ws.CloseNow()
			c.cancel()
		}
		<-done
	}
}

// registry is the set of open connections.
type registry struct {
	mu     sync.Mutex
	m      map[*conn]struct{}
	closed bool
}

func (r *registry) add(c *conn, wg *sync.WaitGroup) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.m[c] = struct{}{}
	wg.Add(1)
	return true
}

func (r *registry) remove(c *conn) {
	r.mu.Lock()
	delete(r.m, c)
	r.mu.Unlock()
}

func (r *registry) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
}

func (r *registry) list() []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*conn, 0, len(r.m))
	for c := range r.m {
		out = append(out, c)
	}
	return out
}

// Len returns the number of open connections.
func (s *Server) Len() int {
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	return len(s.conns.m)
}

// maxConnName bounds the connection name kept (the `name` query parameter): it goes into
// every log line about the connection and into `conn` listings, and the request line alone
// allows about a megabyte.
const maxConnName = 256

func connName(rawQuery string) string {
	q, _ := url.ParseQuery(rawQuery)
	name := q.Get("name")
	if len(name) > maxConnName {
		name = strings.ToValidUTF8(name[:maxConnName], "") + "…"
	}
	return name
}
