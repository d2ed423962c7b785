package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/volandoo/fluxiondb/internal/db"
	"github.com/volandoo/fluxiondb/internal/server"
)

// scrape returns the value of one metric line (name with labels, as printed) from /metrics.
func scrape(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		t.Fatalf("metric %s not found in:\n%s", series, firstLines(body, 40))
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

func TestMetricsAfterKnownTraffic(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{MetricsOnMainPort: true})
	c := dialSub(t, s.addr, subKey)
	c.ok("ins", []any{rec("a", 1, "xx"), rec("a", 2, "yyy"), rec("b", 1, "z")})
	c.ok("sval", map[string]any{"col": "c", "key": "k", "value": "v"})
	c.ok("qry", map[string]any{"col": "c", "ts": 10})
	c.ok("qry", map[string]any{"col": "c", "ts": 10})
	c.call("qdoc", map[string]any{"col": "c"}) // error: doc missing
	c.call("nope", map[string]any{})

	for series, want := range map[string]float64{
		`fluxiondb_connections`:                                              1,
		`fluxiondb_records`:                                                  3,
		`fluxiondb_documents`:                                                2,
		`fluxiondb_collections`:                                              1,
		`fluxiondb_kv_entries`:                                               1,
		`fluxiondb_payload_bytes`:                                            6,
		`fluxiondb_records_inserted_total`:                                   3,
		`fluxiondb_requests_total{outcome="ok",type="qry"}`:                  2,
		`fluxiondb_requests_total{outcome="ok",type="ins"}`:                  1,
		`fluxiondb_requests_total{outcome="error",type="qdoc"}`:              1,
		`fluxiondb_request_errors_total{code="bad_request",type="qdoc"}`:     1,
		`fluxiondb_request_errors_total{code="unknown_type",type="unknown"}`: 1,
		`fluxiondb_request_duration_seconds_count{type="qry"}`:               2,
		`fluxiondb_connections_total`:                                        1,
		`fluxiondb_subscriptions`:                                            0,
		`fluxiondb_subscription_events_total`:                                0,
		`fluxiondb_request_duration_seconds_bucket{type="ins",le="+Inf"}`:    1,
		`fluxiondb_request_duration_seconds_count{type="sval"}`:              1,
		`fluxiondb_requests_total{outcome="ok",type="sval"}`:                 1,
		`fluxiondb_request_duration_seconds_count{type="qdoc"}`:              1,
		`fluxiondb_requests_total{outcome="error",type="unknown"}`:           1,
	} {
		if got := scrape(t, s.addr, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	// Subscription figures follow subscriptions.
	c.ok("sub", map[string]any{"col": "c"})
	c.ok("ins", []any{rec("a", 3, "w")})
	c.next(5 * time.Second)
	if got := scrape(t, s.addr, "fluxiondb_subscriptions"); got != 1 {
		t.Errorf("fluxiondb_subscriptions = %v, want 1", got)
	}
	if got := scrape(t, s.addr, "fluxiondb_subscription_events_total"); got != 1 {
		t.Errorf("fluxiondb_subscription_events_total = %v, want 1", got)
	}
}

func TestMaxConnectionsLimit(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{MaxConnections: 2, MetricsOnMainPort: true})
	dialSub(t, s.addr, subKey)
	dialSub(t, s.addr, subKey)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws://"+s.addr+"/?api-key="+subKey, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third connection: err %v resp %v, want 503", err, resp)
	}
	if got := scrape(t, s.addr, `fluxiondb_connections_rejected_total{reason="limit"}`); got != 1 {
		t.Fatalf("rejected{limit} = %v", got)
	}
}

// TestMaxConnectionsConcurrentUpgrades: upgrades racing each other cannot pass the limit
// together (the check used to count only connections already registered).
func TestMaxConnectionsConcurrentUpgrades(t *testing.T) {
	const limit, tries = 3, 24
	s := startSubServer(t, db.Config{}, server.Config{MaxConnections: limit})
	for round := range 5 {
		var mu sync.Mutex
		var open []*websocket.Conn
		var wg sync.WaitGroup
		start := make(chan struct{})
		// Refused upgrades leave keep-alive HTTP connections in the client's pool: a
		// transport of the round's own closes them afterwards (goleak).
		tr := &http.Transport{}
		hc := &http.Client{Transport: tr}
		for range tries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				<-start
				ws, _, err := websocket.Dial(ctx, "ws://"+s.addr+"/?api-key="+subKey, &websocket.DialOptions{HTTPClient: hc})
				if err == nil {
					mu.Lock()
					open = append(open, ws)
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(open) > limit || len(open) == 0 {
			t.Errorf("round %d: %d of %d concurrent upgrades accepted, limit %d", round, len(open), tries, limit)
		}
		for _, ws := range open {
			ws.Close(websocket.StatusNormalClosure, "")
		}
		tr.CloseIdleConnections()
		for deadline := time.Now().Add(5 * time.Second); s.srv.Len() > 0 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestRateLimit(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{RateLimit: 5, MetricsOnMainPort: true})
	c := dialSub(t, s.addr, subKey)
	limited := 0
	for i := 0; i < 20; i++ {
		if m := c.call("cols", map[string]any{}); m["code"] == "rate_limited" {
			limited++
		}
	}
	if limited < 10 {
		t.Fatalf("only %d of 20 immediate requests were rate limited at 5/s", limited)
	}
	if got := scrape(t, s.addr, "fluxiondb_rate_limited_total"); got != float64(limited) {
		t.Fatalf("fluxiondb_rate_limited_total = %v, want %d", got, limited)
	}
	time.Sleep(300 * time.Millisecond) // tokens come back
	c.ok("cols", map[string]any{})
}

func TestSlowConsumerIsClosed(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{OutboundQueue: 4, WriteTimeout: 300 * time.Millisecond, MetricsOnMainPort: true})
	w := dialSub(t, s.addr, subKey)
	big := strings.Repeat("x", 60000)
	var batch []any
	for i := int64(1); i <= 20; i++ {
		batch = append(batch, rec("a", i, big))
	}
	w.ok("ins", batch)

	// A raw client that sends many big queries and never reads.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+s.addr+"/?api-key="+subKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	q := `{"id":"q","type":"qdoc","data":"{\"col\":\"c\",\"doc\":\"a\",\"to\":100}"}`
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && scrape(t, s.addr, "fluxiondb_slow_consumers_total") == 0 {
		wctx, wcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_ = ws.Write(wctx, websocket.MessageText, []byte(q))
		wcancel()
	}
	if got := scrape(t, s.addr, "fluxiondb_slow_consumers_total"); got < 1 {
		t.Fatalf("slow consumer not detected")
	}
	// Everyone else is unaffected.
	w.ok("cols", map[string]any{})
}

func TestMessageTooLargeIsClosedWith1009(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{MaxMessageSize: 1024, MetricsOnMainPort: true})
	c := dialSub(t, s.addr, subKey)
	frame := `{"id":"x","type":"ins","data":"` + strings.Repeat("a", 2000) + `"}`
	_ = c.ws.Write(context.Background(), websocket.MessageText, []byte(frame))
	select {
	case err := <-c.closed:
		if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
			t.Fatalf("close: %v, want 1009", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not closed")
	}
	// The library sends the 1009 close before the read loop sees the error and counts it.
	got := 0.0
	for deadline := time.Now().Add(5 * time.Second); got != 1 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		got = scrape(t, s.addr, "fluxiondb_messages_too_large_total")
	}
	if got != 1 {
		t.Fatalf("fluxiondb_messages_too_large_total = %v", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{IdleTimeout: 200 * time.Millisecond})
	c := dialSub(t, s.addr, subKey)
	sub := dialSub(t, s.addr, subKey)
	sub.ok("sub", map[string]any{"col": "c"})
	select {
	case err := <-c.closed:
		if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
			t.Fatalf("idle close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("idle connection not closed")
	}
	select {
	case err := <-sub.closed:
		t.Fatalf("subscriber closed as idle: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestConnectionLogsNeverHoldTheKey(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := startSubServer(t, db.Config{}, server.Config{Logger: log, SlowRequest: time.Nanosecond})
	m := dialSub(t, s.addr, subKey)
	const scoped = "scoped-secret-key-42"
	m.ok("keys", map[string]any{"action": "add", "key": scoped, "scope": "read_write"})
	c := dialSub(t, s.addr, scoped)
	c.ok("cols", map[string]any{})
	c.ws.Close(websocket.StatusNormalClosure, "")
	m.ok("keys", map[string]any{"action": "remove", "key": scoped})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	websocket.Dial(ctx, "ws://"+s.addr+"/?api-key=wrong-secret-77", nil)
	time.Sleep(100 * time.Millisecond)
	out := logs.String()
	if !strings.Contains(out, "connection opened") || !strings.Contains(out, "connection closed") || !strings.Contains(out, "slow request") {
		t.Fatalf("expected connection and slow-request lines, got:\n%s", out)
	}
	for _, secret := range []string{subKey, scoped, "wrong-secret-77"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log holds the secret %q:\n%s", secret, out)
		}
	}
}

func TestMaxBatchRecordsLimit(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{MaxBatchRecords: 3, MetricsOnMainPort: true})
	c := dialSub(t, s.addr, subKey)
	m := c.call("ins", []any{rec("a", 1, "x"), rec("a", 2, "x"), rec("a", 3, "x"), rec("a", 4, "x")})
	if m["code"] != "too_large" || !strings.Contains(m["error"].(string), "--max-batch-records") {
		t.Fatalf("4-record batch over a limit of 3: %v", m)
	}
	if got := scrape(t, s.addr, `fluxiondb_request_errors_total{code="too_large",type="ins"}`); got != 1 {
		t.Fatalf("too_large errors = %v", got)
	}
	if got := scrape(t, s.addr, "fluxiondb_records"); got != 0 {
		t.Fatalf("a rejected batch stored %v records", got)
	}
	c.ok("ins", []any{rec("a", 1, "x"), rec("a", 2, "x"), rec("a", 3, "x")}) // at the limit: fine
}

// rawUpgrade opens a TCP connection and completes a WebSocket handshake by hand, so the
// test controls exactly what the "client" reads and answers.
func rawUpgrade(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	fmt.Fprintf(nc, "GET /?api-key=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", subKey, addr)
	br := bufio.NewReader(nc)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, "101") {
		t.Fatalf("upgrade: %q %v", status, err)
	}
	return nc
}

func TestPingTimeoutClosesADeadPeer(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{PingInterval: 100 * time.Millisecond})
	rawUpgrade(t, s.addr) // never answers the pings
	deadline := time.Now().Add(5 * time.Second)
	// The 101 reaches the client a moment before the server counts the connection: wait for
	// it to be counted, then for it to go.
	for s.srv.Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s.srv.Len() == 0 {
		t.Fatal("the upgraded connection was never counted")
	}
	for s.srv.Len() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.srv.Len(); n != 0 {
		t.Fatalf("%d connections still open after unanswered pings", n)
	}
	// A live client answers pings (its read loop does) and stays.
	c := dialSub(t, s.addr, subKey)
	time.Sleep(400 * time.Millisecond)
	c.ok("cols", map[string]any{})
}

func TestHandshakeTimeout(t *testing.T) {
	d, err := db.Open(db.Config{MasterKey: subKey})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	srv := server.New(d, server.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// cmd/fluxiondb sets --handshake-timeout as the HTTP server's ReadHeaderTimeout.
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 200 * time.Millisecond}
	go hs.Serve(ln)
	defer hs.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprint(nc, "GET /?api-key=") // and nothing more
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(nc)
	if err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("closed after %v", waited)
	}
}

func TestMaxReplySize(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{MaxReplySize: 4 << 10, MetricsOnMainPort: true})
	c := dialSub(t, s.addr, subKey)
	var batch []any
	for i := int64(1); i <= 100; i++ {
		batch = append(batch, rec("a", i, strings.Repeat("x", 100)))
		batch = append(batch, rec("d"+strconv.FormatInt(i, 10), 1, strings.Repeat("y", 100)))
	}
	c.ok("ins", batch)
	for _, q := range []struct {
		typ  string
		data any
	}{
		{"qdoc", map[string]any{"col": "c", "doc": "a", "to": 1000}},
		{"qry", map[string]any{"col": "c", "ts": 1000}},
	} {
		m := c.call(q.typ, q.data)
		if m["code"] != "too_large" || !strings.Contains(m["error"].(string), "larger than 4 KiB (--max-reply-size)") {
			t.Fatalf("%s over the reply limit: %v", q.typ, m)
		}
	}
	// A narrower request fits, and the connection is still fine.
	m := c.ok("qdoc", map[string]any{"col": "c", "doc": "a", "to": 1000, "limit": 10})
	if n := len(m["records"].([]any)); n != 10 {
		t.Fatalf("limited qdoc: %d records", n)
	}
	if got := scrape(t, s.addr, `fluxiondb_request_errors_total{code="too_large",type="qdoc"}`); got != 1 {
		t.Fatalf("too_large qdoc errors = %v", got)
	}
}

// TestBinaryFrameCounted: the error reply to a binary frame is counted like any other.
func TestBinaryFrameCounted(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{MetricsOnMainPort: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+s.addr+"/?api-key="+subKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, _, err := ws.Read(ctx); err != nil { // ready
		t.Fatal(err)
	}
	if err := ws.Write(ctx, websocket.MessageBinary, []byte(`{"id":"b","type":"cols","data":"{}"}`)); err != nil {
		t.Fatal(err)
	}
	if _, rep, err := ws.Read(ctx); err != nil || !strings.Contains(string(rep), "binary frames are not supported") {
		t.Fatalf("reply %q, %v", rep, err)
	}
	if got := scrape(t, s.addr, `fluxiondb_request_errors_total{code="bad_request",type="unknown"}`); got != 1 {
		t.Fatalf("request_errors_total for the binary frame = %v, want 1", got)
	}
}

// TestUnmaskedFrameClosesWith1002: a client frame without a mask breaks the framing rules
// (RFC 6455 §5.1); the connection ends with 1002 and a reason, not a silent TCP close.
func TestUnmaskedFrameClosesWith1002(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{})
	nc := rawUpgrade(t, s.addr)
	msg := `{"id":"a","type":"cols","data":"{}"}`
	if _, err := nc.Write(append([]byte{0x81, byte(len(msg))}, msg...)); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := nc.Read(buf)
		got = append(got, buf[:n]...)
		// A close frame from the server: 0x88, payload length, then the status code.
		if i := bytes.IndexByte(got, 0x88); i >= 0 && len(got) >= i+4 {
			if code := int(got[i+2])<<8 | int(got[i+3]); code != 1002 {
				t.Fatalf("close code %d, want 1002 (frame % x)", code, got[i:])
			}
			if reason := string(got[i+4 : i+2+int(got[i+1])]); !strings.Contains(reason, "unmasked") {
				t.Fatalf("close reason %q does not name the problem", reason)
			}
			return
		}
		if err != nil {
			t.Fatalf("connection ended without a close frame (%v); read % x", err, got)
		}
	}
}

// TestMetricTypes: what only grows is a counter (rate() and counter resets need the type).
func TestMetricTypes(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{MetricsOnMainPort: true})
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		"# TYPE fluxiondb_subscription_history_evicted_events counter",
		"# TYPE fluxiondb_slow_consumers_total counter",
		"# TYPE fluxiondb_subscription_history_bytes gauge",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestMetricsElsewhere: with /metrics on its own address (--metrics-addr), the main port
// answers a scrape with 404 and says where to look, not with the WebSocket hint (426).
func TestMetricsElsewhere(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{})
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "--metrics-addr") {
		t.Fatalf("GET /metrics = %d %q, want 404 naming --metrics-addr", resp.StatusCode, body)
	}
}

// Every frame counts against its key's rate, not only well-formed requests: unknown types,
// broken JSON and binary frames each cost a reply, and a key could flood the server with them.
func TestRateLimitCountsEveryFrame(t *testing.T) {
	for _, f := range []struct {
		name string
		typ  websocket.MessageType
		body string
	}{
		{"unknown type", websocket.MessageText, `{"id":"u","type":"nosuch","data":"{}"}`},
		{"broken JSON", websocket.MessageText, `{"id":"m","type":"cols","data":`},
		{"binary frame", websocket.MessageBinary, `{"id":"b","type":"cols","data":"{}"}`},
	} {
		t.Run(f.name, func(t *testing.T) {
			s := startServer(t, server.Config{RateLimit: 5})
			c := s.dial(t, masterKey)
			limited := 0
			for range 20 {
				if err := c.ws.Write(context.Background(), f.typ, []byte(f.body)); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(c.readFrame()), `"rate_limited"`) {
					limited++
				}
			}
			if limited < 10 {
				t.Fatalf("only %d of 20 immediate frames were rate limited at 5/s", limited)
			}
		})
	}
}

// Every reply is held to --max-reply-size: KV listings, collection lists and single values
// were not (a gvals of gigabytes went out whole), though a client sized for the limit counts
// on it.
func TestMaxReplySizeHoldsForEveryReply(t *testing.T) {
	s := startServer(t, server.Config{MaxReplySize: 10000})
	c := s.dial(t, masterKey)
	big := strings.Repeat("v", 4000)
	for _, k := range []string{"a", "b", "c"} {
		c.ok("sval", fmt.Sprintf(`{"col":"kv","key":"%s","value":"%s"}`, k, big))
	}
	c.ok("sval", `{"col":"small","key":"k","value":"x"}`)
	const text = "the reply would be larger than 10000 bytes (--max-reply-size)"
	c.failWith("gvals", `{"col":"kv"}`, text, "too_large")
	c.failWith("gvalues", `{"col":"kv","key":"/./"}`, text, "too_large")
	c.ok("gvals", `{"col":"small"}`)
	c.ok("gval", `{"col":"kv","key":"a"}`)
	c.ok("ins", fmt.Sprintf(`[{"col":"%s","doc":"d","ts":1,"data":"x"}]`, strings.Repeat("n", 11000)))
	c.failWith("cols", `{}`, text, "too_large")
}

// A change that could not be made durable is answered `unavailable` and counted so, for the
// documented alert on request_errors_total{code="unavailable"}; it was counted as ok, since
// requests were counted before their wait for the disk.
func TestNotDurableIsCountedAsUnavailable(t *testing.T) {
	s := startSubServer(t, db.Config{Dir: t.TempDir()}, server.Config{MetricsOnMainPort: true})
	c := dialSub(t, s.addr, subKey)
	const ok, unavailable = `fluxiondb_requests_total{outcome="ok",type="ins"}`, `fluxiondb_request_errors_total{code="unavailable",type="ins"}`
	c.ok("ins", []any{rec("a", 1, "x")})
	if got := scrape(t, s.addr, ok); got != 1 {
		t.Fatalf("%s = %v after one durable insert, want 1", ok, got)
	}
	server.SetWait(s.srv, func(context.Context, db.Commit) error { return errors.New("fsync: input/output error") })
	for i := 2; i <= 4; i++ {
		if m := c.call("ins", []any{rec("a", int64(i), "x")}); m["code"] != "unavailable" {
			t.Fatalf("insert %d: %v, want an unavailable error", i, m)
		}
	}
	if got := scrape(t, s.addr, ok); got != 1 {
		t.Errorf("%s = %v, want still 1", ok, got)
	}
	if got := scrape(t, s.addr, unavailable); got != 3 {
		t.Errorf("%s = %v, want 3", unavailable, got)
	}
}
