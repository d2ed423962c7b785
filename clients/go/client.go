package fluxiondb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Client is a connection to one FluxionDB server. It is safe for concurrent
// use: any number of goroutines may issue requests at once; they are
// pipelined on the one WebSocket and their replies are matched by id.
//
// A Client connects lazily on its first request (or eagerly with Connect /
// Dial), reconnects by itself after a loss (see ReconnectPolicy), and stops
// everything on Close.
type Client struct {
	url    string
	apiKey string
	opts   options
	log    *slog.Logger

	nextID atomic.Uint64

	// mu guards the fields below. Lock order: Client.mu before subsMu and
	// before session.mu; Subscription.mu before session.mu.
	mu      sync.Mutex
	name    string        // connection label, read at each dial
	sess    *session      // live session, nil while disconnected
	waiting chan struct{} // non-nil while a connect attempt or reconnect loop runs; closed when it ends
	lastErr error         // why the last connect attempt failed (while a connect loop runs), or why the loop ended without a session
	closed  bool

	bgCtx    context.Context // cancelled by Close: aborts dials and backoff sleeps
	bgCancel context.CancelFunc
	wg       sync.WaitGroup // connect loops, read loops, subscription goroutines

	// subs holds the live subscriptions, re-established on every new
	// session (see subscribe.go). Guarded by subsMu, under which no other
	// lock is taken.
	subsMu sync.Mutex
	subs   map[*Subscription]struct{}
}

// NewClient returns a client for the server at wsURL (e.g.
// "ws://localhost:8080") that authenticates with apiKey. It does not
// connect: call Connect (or just make a request) to do so.
func NewClient(wsURL, apiKey string, opts ...Option) *Client {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{
		url:      wsURL,
		apiKey:   apiKey,
		opts:     o,
		log:      o.logger,
		name:     o.name,
		bgCtx:    ctx,
		bgCancel: cancel,
	}
}

// Dial creates a client and connects it; on failure it returns the
// connection error and no client. A refused API key gives an error that
// matches ErrUnauthenticated.
func Dial(ctx context.Context, wsURL, apiKey string, opts ...Option) (*Client, error) {
	c := NewClient(wsURL, apiKey, opts...)
	if err := c.ConnectContext(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// Connect connects to the server if not already connected, waiting at most
// the connect timeout. It fails with an error matching ErrUnauthenticated
// when the server refuses the API key.
func (c *Client) Connect() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.connectTimeout)
	defer cancel()
	return c.ConnectContext(ctx)
}

// ConnectContext is Connect bounded by ctx.
func (c *Client) ConnectContext(ctx context.Context) error {
	_, err := c.getSession(ctx)
	return err
}

// closeHandshakeTimeout bounds Close's wait for the server to answer the
// WebSocket close frame; after it the connection is dropped. A server that
// is up answers in well under a millisecond on a LAN.
const closeHandshakeTimeout = time.Second

// Close closes the connection, fails pending requests with ErrClosed, stops
// reconnecting and waits for the client's goroutines to end. Pending
// requests fail at once; the WebSocket closing handshake that follows waits
// at most 1 s for a server that has stopped answering, then drops the
// connection. Calling it again does nothing. It always returns nil; the
// result lets *Client satisfy io.Closer.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	s := c.sess
	c.sess = nil
	c.mu.Unlock()

	c.bgCancel()
	if s != nil {
		s.fail(ErrClosed)
		closeWithin(s, closeHandshakeTimeout)
	}
	c.endSubscriptions(ErrClosed, true)
	c.wg.Wait()
	c.log.Debug("fluxiondb: client closed")
	return nil
}

// closeWithin closes s's connection with the close handshake, or, when the
// server has not answered within d, without it: closing the network
// connection ends the handshake's wait (the library's own bound is 5 s).
func closeWithin(s *session, d time.Duration) {
	done := make(chan struct{})
	go func() {
		_ = s.ws.Close(websocket.StatusNormalClosure, "")
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		if s.raw != nil {
			_ = s.raw.Close()
		}
	}
	s.cancel()
	<-done
}

// getSession returns the live session, connecting (or waiting for the
// running reconnect loop) when there is none.
func (c *Client) getSession(ctx context.Context) (*session, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if s := c.sess; s != nil {
		c.mu.Unlock()
		return s, nil
	}
	wait := c.waiting
	if wait == nil {
		wait = c.startConnectLocked(false)
	}
	c.mu.Unlock()

	select {
	case <-wait:
	case <-ctx.Done():
		err := ctxError(ctx, "connect", "")
		c.mu.Lock()
		last := c.lastErr
		c.mu.Unlock()
		if last != nil {
			// Say why there is no connection: a server that is down is not a slow reply.
			err = fmt.Errorf("%w; not connected, the last attempt: %w", err, last)
		}
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, ErrClosed
	case c.sess != nil:
		return c.sess, nil
	case c.lastErr != nil:
		return nil, c.lastErr
	}
	return nil, ErrConnectionLost
}

// startConnectLocked starts a connect loop: one attempt, or the reconnect
// loop after a loss. Callers hold c.mu.
func (c *Client) startConnectLocked(reconnect bool) chan struct{} {
	wait := make(chan struct{})
	c.waiting, c.lastErr = wait, nil
	c.wg.Add(1)
	go c.connectLoop(wait, reconnect)
	return wait
}

func (c *Client) connectLoop(wait chan struct{}, reconnect bool) {
	defer c.wg.Done()
	policy := c.opts.reconnect
	var err error
	for attempt := 1; ; attempt++ {
		if reconnect {
			if policy.MaxAttempts > 0 && attempt > policy.MaxAttempts {
				err = fmt.Errorf("%w: gave up after %d reconnect attempts: %w", ErrConnectionLost, policy.MaxAttempts, err)
				break
			}
			d := backoff(policy, attempt)
			c.log.Info("fluxiondb: reconnecting", "attempt", attempt, "delay", d)
			if !sleepCtx(c.bgCtx, d) {
				err = ErrClosed
				break
			}
		}
		var s *session
		s, err = c.dial(c.bgCtx)
		if err == nil {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				_ = s.ws.CloseNow()
				s.cancel()
				err = ErrClosed
				break
			}
			c.sess, c.lastErr, c.waiting = s, nil, nil
			c.wg.Add(3)
			go s.readLoop()
			go c.resubscribe(s)
			go s.heartbeat()
			close(wait)
			c.mu.Unlock()
			c.log.Info("fluxiondb: connected", "url", redactURL(c.url), "attempt", attempt)
			return
		}
		c.log.Warn("fluxiondb: connect failed", "url", redactURL(c.url), "attempt", attempt, "err", err)
		c.mu.Lock()
		c.lastErr = err // for a caller whose wait for the connection ends meanwhile
		c.mu.Unlock()
		if !reconnect || errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrInvalidURL) || c.bgCtx.Err() != nil {
			break
		}
	}
	if c.bgCtx.Err() != nil {
		err = ErrClosed
	}
	c.mu.Lock()
	c.lastErr, c.waiting = err, nil
	close(wait)
	c.mu.Unlock()
	if reconnect && !errors.Is(err, ErrClosed) {
		// Nothing will carry the subscriptions to a new session.
		c.endSubscriptions(err, false)
	}
}

// backoff is the delay before reconnect attempt n (1-based): exponential
// from MinDelay to MaxDelay, randomized to [d/2, d].
func backoff(p ReconnectPolicy, n int) time.Duration {
	if p.MinDelay <= 0 { // DefaultReconnectPolicy changed by hand: zero delays take the defaults
		p.MinDelay = defaultMinDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = defaultMaxDelay
	}
	p.MaxDelay = max(p.MaxDelay, p.MinDelay)
	d := p.MinDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	half := int64(d / 2)
	return time.Duration(half + rand.Int64N(half+1))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dialURL is the server URL with the api-key and name query parameters.
func (c *Client) dialURL() (string, error) {
	u, err := url.Parse(c.url)
	if err != nil {
		// The parse error quotes the URL, with a key written into it ("?api-key=…").
		return "", fmt.Errorf("%w (want ws://host:port or wss://host:port): %w", ErrInvalidURL, c.hideKey(err, c.url))
	}
	switch {
	case u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%w %q: the scheme must be ws:// or wss:// (as in ws://host:port)", ErrInvalidURL, redactURL(c.url))
	case u.Host == "":
		return "", fmt.Errorf("%w %q: no host (want ws://host:port)", ErrInvalidURL, redactURL(c.url))
	}
	q := u.Query()
	q.Set("api-key", c.apiKey)
	c.mu.Lock()
	name := c.name
	c.mu.Unlock()
	if name != "" {
		q.Set("name", name)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// redactURL drops the query string, which may hold the API key, and a password in the
// URL's user information, for errors and logs.
func redactURL(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return raw
}

// tooLargeRequest is a request over a server limit found without a server
// reply (the server closed the socket with 1009): ErrTooLarge, and so
// ErrInvalidRequest, like the server's too_large code.
var tooLargeRequest = &ServerError{Code: CodeTooLarge, Message: "request frame over the server's --max-message-size"}

// hideKey takes the API key out of a dial error: net/http's error names the URL it requested,
// query string and all, and the WebSocket library's wrappers copy that text. The result says
// the same without the query string, and unwraps to the errors of the chain whose own text
// holds no secret (the *url.Error, its network error below): errors.Is and errors.As keep
// working, and a tool that records every level of the chain records no key.
func (c *Client) hideKey(err error, dialURL string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = redactURL(ue.URL)
	}
	var secrets []string // each with what stands in for it
	if i := strings.IndexByte(dialURL, '?'); i >= 0 {
		secrets = append(secrets, dialURL[i:], "")
	}
	if len(c.apiKey) >= 6 { // a second line of defence; a very short key would match ordinary words
		secrets = append(secrets, url.QueryEscape(c.apiKey), "[api key]", c.apiKey, "[api key]")
	}
	holds := func(msg string) bool {
		for i := 0; i < len(secrets); i += 2 {
			if strings.Contains(msg, secrets[i]) {
				return true
			}
		}
		return false
	}
	msg := err.Error()
	if !holds(msg) {
		return err
	}
	msg = strings.NewReplacer(secrets...).Replace(msg)
	return &redactedError{msg: msg, causes: cleanCauses(err, holds)}
}

// cleanCauses returns the highest errors of err's chain whose text does not hold a secret.
func cleanCauses(err error, holds func(string) bool) []error {
	if err == nil {
		return nil
	}
	if !holds(err.Error()) {
		return []error{err}
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return cleanCauses(u.Unwrap(), holds)
	case interface{ Unwrap() []error }:
		var out []error
		for _, e := range u.Unwrap() {
			out = append(out, cleanCauses(e, holds)...)
		}
		return out
	}
	return nil
}

// redactedError is an error whose text had a secret taken out; it unwraps to the causes whose
// text holds none.
type redactedError struct {
	msg    string
	causes []error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Unwrap() []error { return e.causes }

// recordingClient returns an HTTP client for one dial that records in *raw the network
// connection it opens, so that Close can cut a connection whose closing handshake the server
// never answers (the WebSocket library offers no way to abort its own wait). A client whose
// Transport is not an *http.Transport is used as given, and nothing is recorded.
//
// The connection also counts the bytes read from it (read), so the heartbeat can tell a
// connection busy receiving a large reply from a dead one. done must be called once the dial
// is over: after a refused upgrade (401, a load balancer's 503) the clone's pool kept the
// connection, and two goroutines, for its idle timeout (90 s), even past Close.
func recordingClient(hc *http.Client, raw *net.Conn, read *atomic.Int64) (client *http.Client, done func()) {
	base := http.DefaultTransport
	if hc != nil && hc.Transport != nil {
		base = hc.Transport
	}
	t, ok := base.(*http.Transport)
	if !ok {
		return hc, func() {}
	}
	t = t.Clone()
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dial(ctx, network, addr)
		if err == nil {
			nc = &countingConn{Conn: nc, read: read}
			*raw = nc // one dial at a time per call (a WebSocket upgrade opens one connection)
		}
		return nc, err
	}
	out := &http.Client{}
	if hc != nil {
		*out = *hc
	}
	out.Transport = t
	return out, t.CloseIdleConnections
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// dial makes one connection attempt: upgrade, then the ready frame.
func (c *Client) dial(ctx context.Context) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.connectTimeout)
	defer cancel()
	u, err := c.dialURL()
	if err != nil {
		return nil, err
	}
	var raw net.Conn
	read := new(atomic.Int64)
	hc, dialDone := recordingClient(c.opts.httpClient, &raw, read)
	defer dialDone()
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPClient: hc,
		HTTPHeader: c.opts.header,
	})
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			reason := resp.Status
			if resp.Body != nil {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
				_ = resp.Body.Close()
				if len(strings.TrimSpace(string(b))) > 0 {
					// A proxy's error page may echo the request line, key and all.
					reason = c.hideKey(errors.New(strings.TrimSpace(string(b))), u).Error()
				}
			}
			return nil, &AuthError{Reason: reason, HTTPStatus: resp.StatusCode}
		}
		if resp != nil && resp.Body != nil {
			// Another answer than an upgrade: its text says why (a TLS port asked over ws://
			// answers "Client sent an HTTP request to an HTTPS server").
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			_ = resp.Body.Close()
			if text := strings.TrimSpace(string(b)); text != "" {
				hint := ""
				if strings.Contains(text, "HTTPS server") {
					hint = " (the server speaks TLS: use a wss:// URL)"
				}
				err = fmt.Errorf("%w: HTTP %d: %s%s", err, resp.StatusCode, c.hideKey(errors.New(text), u), hint)
			}
		}
		err = c.hideKey(err, u)
		if ctx.Err() != nil && c.bgCtx.Err() == nil {
			return nil, fmt.Errorf("%w: connect to %s: %w: %w", ErrConnectionLost, redactURL(c.url), ErrTimeout, err)
		}
		return nil, fmt.Errorf("%w: connect to %s: %w", ErrConnectionLost, redactURL(c.url), err)
	}
	ws.SetReadLimit(c.opts.maxMessageSize)

	// The server's first frame confirms authentication. The v1 server
	// instead accepted the upgrade and closed with 1008 and the reason.
	_, frame, err := ws.Read(ctx)
	if err != nil {
		_ = ws.CloseNow()
		var ce websocket.CloseError
		if errors.As(err, &ce) && ce.Code == websocket.StatusPolicyViolation {
			return nil, &AuthError{Reason: ce.Reason}
		}
		return nil, fmt.Errorf("%w: waiting for ready frame: %w", ErrConnectionLost, err)
	}
	h, err := parseHeader(frame)
	if err == nil && h.Type != "ready" {
		err = fmt.Errorf("%w: expected ready frame, got %.200s", ErrProtocol, frame)
	}
	if err != nil {
		_ = ws.CloseNow()
		return nil, err
	}
	sctx, scancel := context.WithCancel(context.Background())
	return &session{
		c:        c,
		ws:       ws,
		raw:      raw,
		read:     read,
		ctx:      sctx,
		cancel:   scancel,
		writeSem: make(chan struct{}, 1),
		pending:  make(map[string]pendingCall),
	}, nil
}

// hasSubscriptions reports whether any subscription is live. Callers hold c.mu.
func (c *Client) hasSubscriptions() bool {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	return len(c.subs) > 0
}

// lost handles the end of session s: fail its pending requests, forget it,
// and start reconnecting. It may run more than once for one session.
func (c *Client) lost(s *session, cause error) {
	var revoked *AuthError
	var ce websocket.CloseError
	if errors.As(cause, &ce) && ce.Code == websocket.StatusPolicyViolation && strings.Contains(strings.ToLower(ce.Reason), "revoked") {
		revoked = &AuthError{Reason: ce.Reason}
	}
	// Forget the session before failing its requests: a caller woken by
	// the failure that retries at once must not be handed the dead session.
	c.mu.Lock()
	current := c.sess == s
	var endSubs error
	if current {
		c.sess = nil
		c.log.Warn("fluxiondb: connection lost", "url", redactURL(c.url), "err", cause)
		switch {
		case c.closed:
		case revoked != nil:
			c.lastErr = revoked
			endSubs = revoked
		case c.opts.reconnect.Disabled:
			c.lastErr = fmt.Errorf("%w: %w", ErrConnectionLost, cause)
			endSubs = c.lastErr
		case websocket.CloseStatus(cause) == websocket.StatusNormalClosure && !c.hasSubscriptions():
			// The server closed an idle connection (--idle-timeout). Reconnecting at once would
			// be closed again a period later, forever, which is what the operator set the
			// timeout to avoid: the next call connects.
			c.lastErr = nil
		default:
			c.startConnectLocked(true)
		}
	}
	c.mu.Unlock()

	switch {
	case errors.Is(cause, websocket.ErrMessageTooBig):
		// This client's read limit refused a reply.
		s.fail(fmt.Errorf("%w: a reply was larger than WithMaxMessageSize (%d bytes): %w", ErrConnectionLost, c.opts.maxMessageSize, cause))
	case websocket.CloseStatus(cause) == websocket.StatusMessageTooBig:
		// The server closes with 1009 when a request frame is over its size limit. Only
		// the requests over it are told so (ErrTooLarge is an ErrInvalidRequest: not to be
		// retried); the others on the connection were lost with it, valid and safe to retry.
		s.failTooLarge(cause)
	default:
		s.fail(fmt.Errorf("%w: %w", ErrConnectionLost, cause))
	}
	s.cancel()
	_ = s.ws.CloseNow()
	if endSubs != nil {
		c.endSubscriptions(endSubs, false)
	}
}

// handleEvent receives frames without an id other than subscription
// pushes: in practice only an unexpected ready or error frame.
func (c *Client) handleEvent(h replyHeader, frame []byte) {
	if h.Error != "" {
		c.log.Warn("fluxiondb: error frame without id", "error", h.Error, "code", h.Code)
		return
	}
	c.log.Debug("fluxiondb: frame without id", "type", h.Type, "len", len(frame))
}

// session is one live WebSocket connection and its in-flight requests.
type session struct {
	c        *Client
	ws       *websocket.Conn
	raw      net.Conn        // the network connection under ws; nil when not known (recordingClient)
	read     *atomic.Int64   // bytes read from raw (stays 0 when raw is not known)
	routing  atomic.Bool     // the read loop is handing out a frame (and reads nothing)
	ctx      context.Context // ends with the session
	cancel   context.CancelFunc
	writeSem chan struct{} // one writer at a time; a channel so waiting honours ctx

	mu      sync.Mutex
	pending map[string]pendingCall
	subs    map[string]*Subscription // server subscription id -> subscription
	err     error                    // set once the session is dead
}

type pendingCall struct {
	typ  string
	size int        // the request frame's bytes (requestLen): who a 1009 close was for
	ch   chan reply // buffered 1: the read loop never blocks on it
	// onReply, when set, runs in the read loop on a successful reply
	// before any later frame is read: a sub reply registers its
	// subscription id there, so the first event frame finds it.
	onReply func(frame []byte) error
}

type reply struct {
	frame []byte
	err   error
}

func (s *session) readLoop() {
	defer s.c.wg.Done()
	for {
		_, frame, err := s.ws.Read(s.ctx)
		if err != nil {
			s.c.lost(s, err)
			return
		}
		s.routing.Store(true) // no pong is read meanwhile (heartbeat)
		s.route(frame)
		s.routing.Store(false)
	}
}

// heartbeat pings the server every WithHeartbeat interval while the session
// lives, and ends the session when a ping gets no answer within the interval.
func (s *session) heartbeat() {
	defer s.c.wg.Done()
	every := s.c.opts.heartbeat
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		from := s.read.Load()
		ctx, cancel := context.WithTimeout(s.ctx, every)
		err := s.ws.Ping(ctx) // the read loop reads the pong
		cancel()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			if s.read.Load()-from > maxControlFrame || s.routing.Load() {
				// The pong is behind a large reply or event still arriving, or still being
				// handed out: the connection is alive, only busy.
				continue
			}
			s.c.lost(s, fmt.Errorf("no answer to ping within %v: %w", every, err))
			return
		}
	}
}

// maxControlFrame is the most a pong takes on the wire (header and payload).
const maxControlFrame = 2 + 125

// route hands a frame to the request waiting for its id.
func (s *session) route(frame []byte) {
	if bytes.HasPrefix(frame, eventFramePrefix) {
		// Our server's event frames, the bulk of a subscriber's traffic:
		// decode them once, not header first. A frame that does not decode
		// takes the general path, which reports it.
		if f, err := decodePush(frame); err == nil {
			s.push(pushEvent, f.Sub, f, nil)
			return
		}
	}
	h, err := parseHeader(frame)
	if err != nil {
		s.c.log.Warn("fluxiondb: dropping frame", "err", err)
		return
	}
	if h.ID == "" {
		switch h.Type {
		case pushEvent, pushOverflow:
			f, err := decodePush(frame)
			s.push(h.Type, h.Sub, f, err)
		default:
			s.c.handleEvent(h, frame)
		}
		return
	}
	s.mu.Lock()
	p, ok := s.pending[h.ID]
	delete(s.pending, h.ID)
	s.mu.Unlock()
	if !ok {
		// The caller gave up (timeout, cancel) before the reply came.
		s.c.log.Debug("fluxiondb: reply for abandoned request", "id", h.ID)
		return
	}
	if h.Error != "" {
		p.ch <- reply{err: newServerError(h.ID, p.typ, h.Code, h.Error)}
		return
	}
	if p.onReply != nil {
		if err := p.onReply(frame); err != nil {
			p.ch <- reply{err: err}
			return
		}
	}
	p.ch <- reply{frame: frame}
}

// fail marks the session dead and fails every pending request with err.
func (s *session) fail(err error) { s.failEach(err, nil) }

// failEach is fail with a request's own error where errFor gives one (non-nil); err
// is what the session's later callers get.
func (s *session) failEach(err error, errFor func(pendingCall) error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, p := range pending {
		e := err
		if errFor != nil {
			if own := errFor(p); own != nil {
				e = own
			}
		}
		p.ch <- reply{err: e}
	}
}

func (s *session) forget(id string) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// call is a request that has been written and awaits its reply.
type call struct {
	s   *session
	id  string
	typ string
	ch  chan reply
}

// send registers and writes one request; data is its data field as appendRequest takes it.
// ctx bounds only the wait for the socket: an expired ctx must not abort a half-written
// frame, which would kill the connection for every other caller.
func (s *session) send(ctx context.Context, typ string, data []byte) (*call, error) {
	return s.sendHook(ctx, typ, data, nil)
}

// sendHook is send with a hook run by the read loop on a successful reply
// (pendingCall.onReply).
func (s *session) sendHook(ctx context.Context, typ string, data []byte, onReply func([]byte) error) (*call, error) {
	return s.sendOn(ctx, typ, data, onReply, ctx.Done() == nil)
}

// sendOn is sendHook that writes the frame on the calling goroutine when
// inline: the caller says nothing can end ctx before WithWriteTimeout, which
// bounds the write anyway (ctx never ends, or only at a deadline no earlier
// than that). Otherwise the write runs on a goroutine of its own so that ctx
// can end the call while the frame is stuck in the socket. Writing inline
// saves starting a goroutine, and waking a thread for it, per request.
func (s *session) sendOn(ctx context.Context, typ string, data []byte, onReply func([]byte) error, inline bool) (*call, error) {
	id := strconv.FormatUint(s.c.nextID.Add(1), 36)
	cl := &call{s: s, id: id, typ: typ, ch: make(chan reply, 1)}
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return nil, err
	}
	s.pending[id] = pendingCall{typ: typ, size: requestLen(id, typ, data), ch: cl.ch, onReply: onReply}
	s.mu.Unlock()

	select {
	case s.writeSem <- struct{}{}:
	case <-ctx.Done():
		s.forget(id)
		return nil, ctxError(ctx, typ, id)
	case <-s.ctx.Done():
		return cl, nil // fail() has posted the error on cl.ch
	}
	bp := framePool.Get().(*[]byte)
	frame := appendRequest((*bp)[:0], id, typ, data)
	if inline {
		s.writeFrame(bp, frame)
		return cl, nil
	}
	// The write runs on its own goroutine so that the caller's ctx bounds the call even when
	// the socket is stuck (a server that stopped reading): a frame cannot be abandoned half
	// written, so the write itself goes on, bounded by WithWriteTimeout, and the caller
	// returns at its deadline (the request may still reach the server, as after any timeout).
	written := make(chan struct{})
	go func() {
		defer close(written)
		s.writeFrame(bp, frame)
	}()
	select {
	case <-written:
		return cl, nil
	case <-ctx.Done():
		s.forget(id)
		return nil, ctxError(ctx, typ, id)
	}
}

// writeFrame writes one request frame (held in bp, from framePool), bounded by
// WithWriteTimeout, and releases the write slot and the buffer. A failed write
// ends the session.
func (s *session) writeFrame(bp *[]byte, frame []byte) {
	wctx, cancel := context.WithTimeout(s.ctx, s.c.opts.writeTimeout)
	err := s.ws.Write(wctx, websocket.MessageText, frame)
	cancel()
	<-s.writeSem
	if cap(frame) <= 1<<20 {
		*bp = frame
		framePool.Put(bp)
	}
	if err != nil {
		// A server that refuses a frame closes the connection saying why (1009: over its
		// size limit), and the write then fails with a bare "use of closed network
		// connection". The read loop is about to report the close code, which says which
		// requests were at fault: give it a moment to do so first.
		t := time.NewTimer(closeVerdictWait)
		select {
		case <-s.ctx.Done():
		case <-t.C:
		}
		t.Stop()
		s.c.lost(s, fmt.Errorf("write: %w", err))
	}
}

// closeVerdictWait bounds how long a failed write waits for the read loop to report why the
// connection ended.
const closeVerdictWait = 500 * time.Millisecond

// failTooLarge fails the session's requests after the server closed it with 1009: those
// whose frame is over the server's limit with ErrTooLarge, the others with ErrConnectionLost
// alone. The limit is read from the close reason ("read limited at N bytes", the text of the
// WebSocket library FluxionDB uses: the limit is N-1); when the reason does not say, the
// largest request is the one blamed.
func (s *session) failTooLarge(cause error) {
	limit, known := closeReadLimit(cause)
	s.mu.Lock()
	if !known {
		largest := 0
		for _, p := range s.pending {
			largest = max(largest, p.size)
		}
		limit = largest - 1
	}
	s.mu.Unlock()
	tooLarge := fmt.Errorf("%w: %w: %w", ErrConnectionLost, tooLargeRequest, cause)
	innocent := fmt.Errorf("%w: the server closed the connection because another request on it was over its --max-message-size; this one was not: %w", ErrConnectionLost, cause)
	s.failEach(innocent, func(p pendingCall) error {
		if p.size > limit {
			return tooLarge
		}
		return nil
	})
}

// closeReadLimit returns the size limit a 1009 close reason names: the WebSocket library
// FluxionDB uses says "read limited at N bytes" when a frame passed N-1 bytes.
func closeReadLimit(cause error) (int, bool) {
	var ce websocket.CloseError
	if !errors.As(cause, &ce) {
		return 0, false
	}
	_, rest, ok := strings.Cut(ce.Reason, "read limited at ")
	if !ok {
		return 0, false
	}
	digits, _, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 {
		return 0, false
	}
	return n - 1, true
}

// wait blocks for the reply and decodes it into out.
func (cl *call) wait(ctx context.Context, out any) error {
	select {
	case r := <-cl.ch:
		if r.err != nil {
			return r.err
		}
		return decodeReply(r.frame, cl.typ, out)
	case <-ctx.Done():
		cl.s.forget(cl.id)
		return ctxError(ctx, cl.typ, cl.id)
	}
}

// ctxError turns an ended context into the client's error: a deadline is
// ErrTimeout (and context.DeadlineExceeded), a cancel is context.Canceled.
func ctxError(ctx context.Context, typ, id string) error {
	what := typ
	if id != "" {
		what += " request " + id
	}
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		// "fluxiondb: cols: timeout (context deadline exceeded)", not "fluxiondb: cols:
		// fluxiondb: timeout: …", and still errors.Is ErrTimeout and DeadlineExceeded.
		return &wrapped{msg: "fluxiondb: " + what + ": timeout (" + err.Error() + ")", errs: []error{ErrTimeout, err}}
	}
	return fmt.Errorf("fluxiondb: %s: %w", what, err)
}

// wrapped is an error with its own text that unwraps to several.
type wrapped struct {
	msg  string
	errs []error
}

func (e *wrapped) Error() string   { return e.msg }
func (e *wrapped) Unwrap() []error { return e.errs }

// emptyData is the data of messages without parameters: the JSON document {} as a string.
var emptyData = []byte(`"{}"`)

// quotedData is request data already built as the string literal a frame carries (appendRequest);
// do sends it as it is.
type quotedData []byte

// inlineOK reports whether a call with context ctx (before the request timeout is added)
// may write its frame on the calling goroutine (sendOn): nothing but the request timeout can end
// it, and that is no shorter than the write timeout, which bounds the write anyway.
func (c *Client) inlineOK(ctx context.Context) bool {
	return ctx.Done() == nil && (c.opts.requestTimeout == 0 || c.opts.requestTimeout >= c.opts.writeTimeout)
}

// do sends one request and decodes its reply into out (nil: discard).
func (c *Client) do(ctx context.Context, typ string, params any, out any) error {
	if ctx == nil {
		ctx = context.Background()
	}
	inline := c.inlineOK(ctx)
	if c.opts.requestTimeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.opts.requestTimeout)
			defer cancel()
		}
	}
	if ctx.Err() != nil {
		return ctxError(ctx, typ, "")
	}
	data := emptyData
	if q, ok := params.(quotedData); ok {
		data = q
	} else if params != nil {
		doc, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("fluxiondb: encode %s request: %w", typ, err)
		}
		data = quoteData(doc)
	}
	s, err := c.getSession(ctx)
	if err != nil {
		return err
	}
	cl, err := s.sendOn(ctx, typ, data, nil, inline)
	if err != nil {
		return err
	}
	return cl.wait(ctx, out)
}
