package fluxiondb

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestDialErrorChainHoldsNoKey: no level of a failed dial's error chain holds the API key.
// The top message was clean, but the WebSocket library's wrappers below it kept the text
// net/http wrote, URL and query string included, for any tool that records every level.
func TestDialErrorChainHoldsNoKey(t *testing.T) {
	const key = "my-secret-api-key-123"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Dial(ctx, "ws://127.0.0.1:1/path?x=1", key, WithReconnectPolicy(ReconnectPolicy{Disabled: true}))
	if err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
	if !errors.Is(err, ErrConnectionLost) {
		t.Errorf("err = %v, want ErrConnectionLost", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Errorf("err = %v: the *url.Error is no longer in the chain", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) {
		t.Errorf("err = %v: the network error is no longer in the chain", err)
	}
	queue := []error{err}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		if text := e.Error(); strings.Contains(text, key) || strings.Contains(text, "api-key=") {
			t.Fatalf("a level of the chain (%T) shows the key: %s", e, text)
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			if next := u.Unwrap(); next != nil {
				queue = append(queue, next)
			}
		case interface{ Unwrap() []error }:
			queue = append(queue, u.Unwrap()...)
		}
	}
}

// TestRefusedDialsLeaveNoConnections: a refused upgrade (a bad key, a proxy's 503) leaves
// no connection or goroutine behind; each one stayed in a pool of its own for 90 s.
func TestRefusedDialsLeaveNoConnections(t *testing.T) {
	srv := startServer(t)
	ctx := testCtx(t)
	before := runtime.NumGoroutine()
	for range 20 {
		if _, err := Dial(ctx, srv.url(), "wrong-key"); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("Dial with a wrong key: %v", err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Fatalf("%d goroutines after 20 refused dials, %d before", n, before)
	}
}

// TestHeartbeatSparesABusyConnection: a reply that takes longer to arrive than the heartbeat
// period (a slow link) keeps its connection: the pong waits behind it, and the heartbeat
// dropped the connection, failing the call, every time.
func TestHeartbeatSparesABusyConnection(t *testing.T) {
	srv := startServer(t)
	ctx := testCtx(t)
	w := newTestClient(t, srv)
	const records, size = 8, 1 << 20
	for i := 1; i <= records; i++ {
		if err := w.Insert(ctx, InsertRecord{Col: "big", Doc: "d", TS: int64(i), Data: strings.Repeat("z", size)}); err != nil {
			t.Fatal(err)
		}
	}
	// A proxy that passes the server's bytes at ~4 MB/s: the 8 MiB reply takes ~2 s.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", strings.TrimPrefix(srv.url(), "ws://"))
			if err != nil {
				in.Close()
				return
			}
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() {
				defer in.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := out.Read(buf)
					if n > 0 {
						if _, werr := in.Write(buf[:n]); werr != nil {
							return
						}
						time.Sleep(8 * time.Millisecond)
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	c, err := Dial(ctx, "ws://"+ln.Addr().String(), masterKey, WithHeartbeat(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	recs, err := c.History(ctx, HistoryQuery{Col: "big", Doc: "d", To: 100})
	if err != nil {
		t.Fatalf("History over a slow link with a 250ms heartbeat (after %v): %v", time.Since(start).Round(time.Millisecond), err)
	}
	if len(recs) != records {
		t.Fatalf("%d records, want %d", len(recs), records)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("the reply took only %v: the link was not slow enough to check anything", d)
	}
}

// TestURLSecretsStayOut: a password in the URL's user information and a key written into the
// URL's query string show neither in errors nor in logs.
func TestURLSecretsStayOut(t *testing.T) {
	for _, u := range []string{
		"ws://proxyuser:Pr0xyPassw0rd@127.0.0.1:1",
		"ws://127.0.0.1:1 ?api-key=typed-in-secret-key",
	} {
		var logged strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := Dial(ctx, u, "the-configured-key", WithReconnectPolicy(ReconnectPolicy{Disabled: true}),
			WithLogger(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		cancel()
		if err == nil {
			t.Fatalf("Dial %q succeeded", u)
		}
		for _, secret := range []string{"Pr0xyPassw0rd", "typed-in-secret-key", "the-configured-key"} {
			if strings.Contains(err.Error(), secret) || strings.Contains(logged.String(), secret) {
				t.Errorf("Dial %q: %q shows in the error (%v) or the log (%s)", u, secret, err, logged.String())
			}
		}
	}
}

// TestAuthErrorFromAnEchoingGatewayHidesTheKey: a gateway's 403 page that echoes the request
// line does not bring the key into AuthError.Reason.
func TestAuthErrorFromAnEchoingGatewayHidesTheKey(t *testing.T) {
	const key = "abcdef-long-secret-value-XYZ"
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "<html>403 Forbidden: GET "+r.URL.String()+"</html>")
	}))
	defer gw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Dial(ctx, "ws"+strings.TrimPrefix(gw.URL, "http"), key)
	var ae *AuthError
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusForbidden {
		t.Fatalf("err = %v, want an AuthError with HTTP 403", err)
	}
	if strings.Contains(ae.Reason, key) || strings.Contains(err.Error(), key) {
		t.Fatalf("the key shows in the error: %v", err)
	}
	if !strings.Contains(ae.Reason, "403 Forbidden") {
		t.Errorf("reason %q lost the page's text", ae.Reason)
	}
}

// TestInvalidURL: a URL that cannot be dialled as given is ErrInvalidURL, not a lost
// connection (which code retries, forever), and the client does not retry it either.
func TestInvalidURL(t *testing.T) {
	for _, u := range []string{"localhost:8080", "ws//localhost:1", "wss//x", "", "ws://", "ws:/127.0.0.1:1", "127.0.0.1:1", "ws:// x"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		_, err := Dial(ctx, u, "k")
		cancel()
		if !errors.Is(err, ErrInvalidURL) || errors.Is(err, ErrConnectionLost) {
			t.Errorf("Dial(%q): %v; want ErrInvalidURL and not ErrConnectionLost", u, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Dial(%q) took %v: it retried", u, d)
		}
	}
}

// TestTimeoutErrorText: a call that times out says so once ("fluxiondb: cols: timeout (…)";
// it said "fluxiondb: cols: fluxiondb: timeout: …") and is still ErrTimeout and
// context.DeadlineExceeded.
func TestTimeoutErrorText(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := c.Collections(ctx)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want ErrTimeout and context.DeadlineExceeded", err)
	}
	if got := err.Error(); strings.Count(got, "fluxiondb:") != 1 || !strings.Contains(got, "timeout") {
		t.Fatalf("error text %q", got)
	}
}

// TestPlainURLToATLSPortSaysSo: ws:// to a server that serves TLS gives the server's answer and
// the fix (it said only "expected handshake response status code 101 but got 400").
func TestPlainURLToATLSPortSaysSo(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	srv := startServer(t, "--tls-cert="+certFile, "--tls-key="+keyFile)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = Dial(ctx, srv.url(), masterKey, WithReconnectPolicy(ReconnectPolicy{Disabled: true}))
	if err == nil || !strings.Contains(err.Error(), "use a wss:// URL") {
		t.Fatalf("err = %v, want the hint to use wss://", err)
	}
}
