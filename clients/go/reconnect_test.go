package fluxiondb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var fastReconnect = WithReconnectPolicy(ReconnectPolicy{MinDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond})

func (s *testServer) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// freeze stops the server process (SIGSTOP) and waits until the kernel
// reports it stopped, so that nothing sent afterwards gets an answer.
func (s *testServer) freeze(t *testing.T) {
	t.Helper()
	s.signal(syscall.SIGSTOP)
	s.mu.Lock()
	pid := s.cmd.Process.Pid
	s.mu.Unlock()
	waitFor(t, "server to stop", func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// Field 3, after "pid (comm) ", is the state; T = stopped.
		i := bytes.LastIndexByte(b, ')')
		return i > 0 && i+2 < len(b) && b[i+2] == 'T'
	})
}

func (c *Client) pendingCount() int {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestServerKilledAndRestarted: requests pending when the server dies fail
// at once; once it is back on the same port, the client reconnects by
// itself and requests succeed.
func TestServerKilledAndRestarted(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv, fastReconnect)
	ctx := testCtx(t)
	if err := c.Insert(ctx, InsertRecord{Col: "c", Doc: "d", TS: 1, Data: "x"}); err != nil {
		t.Fatal(err)
	}

	// Freeze the server so that requests stay pending, then kill it.
	srv.freeze(t)
	const n = 10
	type result struct {
		err error
		at  time.Time
	}
	results := make(chan result, n)
	for range n {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := c.Collections(ctx)
			results <- result{err, time.Now()}
		}()
	}
	waitFor(t, "pending requests", func() bool { return c.pendingCount() == n })
	killedAt := time.Now()
	srv.kill()
	for range n {
		r := <-results
		if !errors.Is(r.err, ErrConnectionLost) {
			t.Fatalf("pending request: err = %v; want ErrConnectionLost", r.err)
		}
		if d := r.at.Sub(killedAt); d > 2*time.Second {
			t.Fatalf("pending request failed %v after the kill; want at once", d)
		}
	}

	// While the server is down, a request waits for the reconnect only as
	// long as its context allows.
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	// The error says why: the server is down (the last attempt's error), not slow.
	if _, err := c.Collections(short); !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrConnectionLost) ||
		!strings.Contains(err.Error(), "refused") {
		t.Fatalf("request while down: %v; want ErrTimeout and ErrConnectionLost with the refused attempt", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("request while down took %v", d)
	}

	srv.restart()
	// Started before the reconnect completes, this request waits for it.
	if _, err := c.Collections(ctx); err != nil {
		t.Fatalf("request after restart: %v", err)
	}
	if err := c.Insert(ctx, InsertRecord{Col: "c", Doc: "d", TS: 2, Data: "y"}); err != nil {
		t.Fatalf("insert after restart: %v", err)
	}
	conns, err := c.Connections(ctx)
	if err != nil || len(conns) != 1 || !conns[0].Self {
		t.Fatalf("Connections after reconnect = %+v, %v", conns, err)
	}
}

// TestGracefulShutdownReconnect: a server that stops cleanly (close 1001)
// and comes back is reconnected to as well.
func TestGracefulShutdownReconnect(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv, fastReconnect)
	ctx := testCtx(t)
	srv.stop()
	srv.restart()
	if _, err := c.Collections(ctx); err != nil {
		t.Fatalf("after graceful restart: %v", err)
	}
}

// TestReconnectGivesUp: with MaxAttempts, the loop stops and requests fail
// with ErrConnectionLost instead of waiting; a later request tries again.
func TestReconnectGivesUp(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv, WithReconnectPolicy(ReconnectPolicy{MinDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond, MaxAttempts: 2}), WithConnectTimeout(time.Second))
	ctx := testCtx(t)
	srv.kill()
	waitFor(t, "reconnect loop to give up", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.sess == nil && c.waiting == nil && c.lastErr != nil
	})
	if _, err := c.Collections(ctx); !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("after giving up: %v; want ErrConnectionLost", err)
	}
	srv.restart()
	if _, err := c.Collections(ctx); err != nil {
		t.Fatalf("request after the server came back: %v", err)
	}
}

// TestReconnectDisabled: without automatic reconnection, the next request
// reconnects by itself.
func TestReconnectDisabled(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv, WithReconnectPolicy(ReconnectPolicy{Disabled: true}))
	ctx := testCtx(t)
	srv.kill()
	waitFor(t, "loss to be noticed", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.sess == nil
	})
	c.mu.Lock()
	running := c.waiting != nil
	c.mu.Unlock()
	if running {
		t.Fatal("reconnect loop started although disabled")
	}
	srv.restart()
	if _, err := c.Collections(ctx); err != nil {
		t.Fatalf("request after restart: %v", err)
	}
}

// TestCloseDuringReconnect: Close ends the reconnect loop promptly, and
// requests waiting for the connection fail with ErrClosed.
func TestCloseDuringReconnect(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv, WithReconnectPolicy(ReconnectPolicy{MinDelay: time.Second, MaxDelay: time.Second}))
	srv.kill()
	waitFor(t, "loss to be noticed", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.sess == nil
	})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Collections(context.Background())
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiting request: %v; want ErrClosed", err)
	}
}

func TestBackoff(t *testing.T) {
	p := ReconnectPolicy{MinDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	for n := 1; n <= 40; n++ {
		full := p.MinDelay << min(n-1, 20)
		full = min(full, p.MaxDelay)
		for range 50 {
			d := backoff(p, n)
			if d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %v; want in [%v, %v]", n, d, full/2, full)
			}
		}
	}
}

// TestBackoffZeroDelays: zero delays, however they got into a policy (DefaultReconnectPolicy
// set by hand), take the defaults: a zero MinDelay retried in a tight loop (2,500 attempts in
// half a second).
func TestBackoffZeroDelays(t *testing.T) {
	for _, p := range []ReconnectPolicy{{}, {MinDelay: -time.Second}, {MaxDelay: time.Millisecond}} {
		for n := 1; n <= 3; n++ {
			if d := backoff(p, n); d < defaultMinDelay/2 {
				t.Fatalf("backoff(%+v, %d) = %v; want at least %v", p, n, d, defaultMinDelay/2)
			}
		}
	}
}

// TestSubscriptionCloseFrozenServer: Close ends a subscription without
// waiting long for a server that stopped answering (the unsub reply is
// waited for at most unsubWait).
func TestSubscriptionCloseFrozenServer(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv)
	ctx := testCtx(t)
	sub, err := c.Subscribe(ctx, SubscribeQuery{Col: "frozen"})
	if err != nil {
		t.Fatal(err)
	}
	srv.freeze(t)
	defer srv.signal(syscall.SIGCONT)
	start := time.Now()
	err = sub.Close()
	if d := time.Since(start); d > unsubWait+time.Second {
		t.Fatalf("Close took %v against a frozen server; want about %v at most", d, unsubWait)
	}
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Close: err = %v; want ErrTimeout (the server did not confirm)", err)
	}
	if _, ok := <-sub.Events(); ok {
		t.Fatal("Events still open after Close")
	}
	srv.signal(syscall.SIGCONT)
}

// TestCloseFrozenServer: Close does not wait long for a server that has
// stopped answering; it drops the connection after a short close handshake.
func TestCloseFrozenServer(t *testing.T) {
	c, _ := frozenAfterConnect(t)
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > closeHandshakeTimeout+time.Second {
		t.Fatalf("Close took %v with the server frozen; want at most ~%v", d, closeHandshakeTimeout)
	}
}

// TestContextBoundsAStuckWrite: a call whose frame cannot be written (the server stopped
// reading and the socket's buffers are full) returns at its context's deadline, not after
// WithWriteTimeout.
func TestContextBoundsAStuckWrite(t *testing.T) {
	c, _ := frozenAfterConnect(t, WithWriteTimeout(20*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Insert(ctx, InsertRecord{Col: "c", Doc: "d", TS: 1, Data: strings.Repeat("x", 12<<20)})
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Insert returned after %v; its context ended after 300ms", d)
	}
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Insert: %v; want ErrTimeout", err)
	}
}

// TestStuckInlineWriteEndsAtTheWriteTimeout: a call whose context never ends writes its frame
// on the calling goroutine (no write goroutine); when the socket is stuck, WithWriteTimeout still
// ends the write, and the call fails with ErrConnectionLost instead of hanging until the
// request timeout.
func TestStuckInlineWriteEndsAtTheWriteTimeout(t *testing.T) {
	c, _ := frozenAfterConnect(t, WithWriteTimeout(300*time.Millisecond), WithRequestTimeout(time.Minute))
	start := time.Now()
	err := c.Insert(context.Background(), InsertRecord{Col: "c", Doc: "d", TS: 1, Data: strings.Repeat("x", 12<<20)})
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Insert returned after %v; the write timeout is 300ms", d)
	}
	if !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("Insert: %v; want ErrConnectionLost", err)
	}
}

// TestHeartbeatDropsASilentConnection: with the server frozen (no FIN, no RST, no pong) the
// heartbeat ends the connection, so a call in flight fails with ErrConnectionLost instead of
// waiting for its deadline; the client reconnects once the server answers again.
func TestHeartbeatDropsASilentConnection(t *testing.T) {
	c, srv := frozenAfterConnect(t, WithHeartbeat(200*time.Millisecond), fastReconnect)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Collections(ctx)
	if !errors.Is(err, ErrConnectionLost) || time.Since(start) > 3*time.Second {
		t.Fatalf("call in flight on a silent connection: %v after %v; want ErrConnectionLost within ~0.4s", err, time.Since(start))
	}
	srv.signal(syscall.SIGCONT)
	if _, err := c.Collections(testCtx(t)); err != nil {
		t.Fatalf("after the server answered again: %v", err)
	}
}

// frozenAfterConnect starts a server, connects a client with opts (a first call proves the
// connection), then freezes the server (SIGSTOP: no reply, no FIN, no RST) until the test ends.
func frozenAfterConnect(t *testing.T, opts ...Option) (*Client, *testServer) {
	t.Helper()
	srv := startServer(t)
	c := newTestClient(t, srv, opts...)
	if _, err := c.Collections(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	srv.freeze(t)
	t.Cleanup(func() { srv.signal(syscall.SIGCONT) })
	return c, srv
}

// TestIdleCloseReconnectsLazily: after the server closes an idle connection (--idle-timeout),
// the client does not reconnect in the background — it would be closed again every period,
// for as long as it stays idle — and the next call connects.
func TestIdleCloseReconnectsLazily(t *testing.T) {
	srv := startServer(t, "--idle-timeout=200ms", "--ping-interval=50ms")
	c := newTestClient(t, srv, fastReconnect)
	ctx := testCtx(t)
	if _, err := c.Collections(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // several idle periods
	if n := connectionsOpened(t, srv); n != 1 {
		t.Fatalf("%v connections opened while the client was idle; want 1 (no reconnect loop)", n)
	}
	if _, err := c.Collections(ctx); err != nil {
		t.Fatalf("call after the idle close: %v", err)
	}
	if n := connectionsOpened(t, srv); n != 2 {
		t.Fatalf("%v connections opened; want 2 (the call reconnected)", n)
	}
}

// connectionsOpened reads fluxiondb_connections_total from the server's /metrics.
func connectionsOpened(t *testing.T, s *testServer) float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^fluxiondb_connections_total (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no fluxiondb_connections_total in /metrics")
	}
	n, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
