package fluxiondb

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// Option configures a Client; pass options to NewClient or Dial.
type Option func(*options)

type options struct {
	name           string
	connectTimeout time.Duration
	requestTimeout time.Duration
	writeTimeout   time.Duration
	reconnect      ReconnectPolicy
	logger         *slog.Logger
	httpClient     *http.Client
	header         http.Header
	maxMessageSize int64
	heartbeat      time.Duration
}

func defaultOptions() options {
	return options{
		connectTimeout: 10 * time.Second,
		requestTimeout: 30 * time.Second,
		writeTimeout:   10 * time.Second,
		reconnect:      DefaultReconnectPolicy,
		logger:         slog.New(discardHandler{}),
		maxMessageSize: 256 << 20,
		heartbeat:      15 * time.Second,
	}
}

// WithHeartbeat sets how often the client pings the server (default 15s; 0
// turns it off). A connection that does not answer a ping within the
// interval is dropped and reconnected as after any loss: a connection that
// died without a word (a dropped network, a frozen server) would otherwise
// look open, every call timing out and subscriptions waiting in silence. A
// connection still receiving (or handing out) a large reply or event is busy,
// not dead: its pong waits behind it, and that does not count.
func WithHeartbeat(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.heartbeat = d
		}
	}
}

// ReconnectPolicy says how the client reconnects after it loses the
// connection. Delays grow exponentially from MinDelay to MaxDelay; each
// delay is randomized to between half and all of its value, so that many
// clients of a restarted server do not reconnect in lockstep.
type ReconnectPolicy struct {
	// Disabled turns automatic reconnection off. The next request after a
	// loss then makes one connection attempt itself.
	Disabled bool
	// MinDelay is the delay before the first attempt (default 100ms).
	MinDelay time.Duration
	// MaxDelay caps the delay (default 5s).
	MaxDelay time.Duration
	// MaxAttempts stops the reconnect loop after that many failed attempts;
	// 0 means no limit. Requests waiting for the connection then fail with
	// ErrConnectionLost.
	MaxAttempts int
}

// DefaultReconnectPolicy reconnects forever, after 100ms, doubling to 5s.
var DefaultReconnectPolicy = ReconnectPolicy{MinDelay: defaultMinDelay, MaxDelay: defaultMaxDelay}

// The delays zero (or negative) delays stand for, whatever DefaultReconnectPolicy has been set
// to: a zeroed MinDelay there made every client retry in a tight loop.
const (
	defaultMinDelay = 100 * time.Millisecond
	defaultMaxDelay = 5 * time.Second
)

// WithConnectionName sets the label the server shows for this connection
// (the "name" query parameter; see Connections).
func WithConnectionName(name string) Option { return func(o *options) { o.name = name } }

// WithConnectTimeout bounds one connection attempt: dial, upgrade and the
// server's ready frame (default 10s).
func WithConnectTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.connectTimeout = d
		}
	}
}

// WithRequestTimeout bounds each request whose context has no deadline of
// its own (default 30s; 0 leaves such requests unbounded).
func WithRequestTimeout(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.requestTimeout = d
		}
	}
}

// WithWriteTimeout bounds writing one frame to the socket (default 10s). A
// write that takes longer means the connection is stuck: it is closed and
// the client reconnects.
func WithWriteTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.writeTimeout = d
		}
	}
}

// WithReconnectPolicy sets how the client reconnects; zero delays take the
// defaults.
func WithReconnectPolicy(p ReconnectPolicy) Option {
	return func(o *options) {
		if p.MinDelay <= 0 {
			p.MinDelay = defaultMinDelay
		}
		if p.MaxDelay <= 0 {
			p.MaxDelay = defaultMaxDelay
		}
		if p.MaxDelay < p.MinDelay {
			p.MaxDelay = p.MinDelay
		}
		o.reconnect = p
	}
}

// WithLogger makes the client log connection events (connects, losses,
// reconnect attempts, unexpected frames) to l. The default logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithHTTPClient sets the HTTP client used for the WebSocket upgrade, e.g.
// for custom TLS settings with wss:// URLs.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.httpClient = hc } }

// WithHeader adds HTTP headers to the upgrade request.
func WithHeader(h http.Header) Option { return func(o *options) { o.header = h.Clone() } }

// WithMaxMessageSize caps the size of one reply frame (default 256 MiB, the
// server's largest reply by default; -1 for no cap; 0 keeps the default). A
// reply over it ends the connection with ErrConnectionLost, saying so.
func WithMaxMessageSize(n int64) Option {
	return func(o *options) {
		if n != 0 {
			o.maxMessageSize = n
		}
	}
}

// discardHandler is a slog.Handler that drops everything: the client is
// silent unless the user hands it a logger.
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }
