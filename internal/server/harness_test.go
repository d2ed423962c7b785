package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/volandoo/fluxiondb/internal/db"
	"github.com/volandoo/fluxiondb/internal/server"
)

// The integration tests drive the real server over real WebSockets on 127.0.0.1:0 and check
// what PROTOCOL.md promises, not what the code happens to do. Every test starts its own
// server, so state never leaks between tests.

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const masterKey = "master-secret"

// testServer is one in-process server: the same db.Open + server.New + http.Server that
// cmd/fluxiondb wires together.
type testServer struct {
	DB   *db.DB
	Srv  *server.Server
	Addr string
	hs   *http.Server
	stop func()
}

func startServer(t testing.TB, cfg server.Config) *testServer {
	t.Helper()
	d, err := db.Open(db.Config{MasterKey: masterKey})
	if err != nil {
		t.Fatalf("db.Open: %v", err)
	}
	srv := server.New(d, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = hs.Serve(ln)
	}()
	s := &testServer{DB: d, Srv: srv, Addr: ln.Addr().String(), hs: hs}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		srv.Shutdown(ctx)
		<-served
		_ = d.Close()
	}
	t.Cleanup(s.stop)
	return s
}

// url returns the WebSocket URL with a raw (already encoded) query string.
func (s *testServer) url(rawQuery string) string {
	u := "ws://" + s.Addr + "/"
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	return u
}

// dial connects with ?api-key=key (query-escaped) and checks the ready frame.
func (s *testServer) dial(t testing.TB, key string) *client {
	t.Helper()
	return s.dialURL(t, s.url("api-key="+url.QueryEscape(key)), nil)
}

// dialURL connects to u with optional headers; it requires the upgrade to succeed and the
// first frame to be exactly the ready frame (PROTOCOL.md §1).
func (s *testServer) dialURL(t testing.TB, u string, h http.Header) *client {
	t.Helper()
	c := tryDial(t, u, h)
	frame := c.readFrame()
	if want := `{"message":"Authentication successful","type":"ready"}`; string(frame) != want {
		t.Fatalf("first frame = %s, want exactly %s", frame, want)
	}
	return c
}

func tryDial(t testing.TB, u string, h http.Header) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", u, err, status)
	}
	ws.SetReadLimit(64 << 20)
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return c
}

// dialRefused dials and expects the upgrade to be refused with HTTP 401 and the given body.
func (s *testServer) dialRefused(t testing.TB, u string, h http.Header, wantBody string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		_ = ws.CloseNow()
		t.Fatalf("dial %s succeeded, want HTTP 401 %q", u, wantBody)
	}
	if resp == nil {
		t.Fatalf("dial %s: %v, and no HTTP response (want 401 %q)", u, err, wantBody)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("dial %s: HTTP %d, want 401", u, resp.StatusCode)
	}
	var body bytes.Buffer
	if resp.Body != nil {
		_, _ = body.ReadFrom(resp.Body)
	}
	// The body is exactly the text, as the official v2 server sends it.
	if got := body.String(); got != wantBody {
		t.Errorf("dial %s: 401 body %q, want %q", u, body.String(), wantBody)
	}
}

// client is a minimal protocol client for tests: it sends envelopes with a double-encoded
// data payload and reads replies in order.
type client struct {
	t  testing.TB
	ws *websocket.Conn
}

// ids numbers requests across all clients; replies are matched by id.
var ids atomic.Int64

func (c *client) nextID() string {
	return "r" + strconv.FormatInt(ids.Add(1), 10)
}

// on returns the same connection reporting failures to t (for subtests).
func (c *client) on(t testing.TB) *client {
	return &client{t: t, ws: c.ws}
}

// envelope builds a request frame; payload is the JSON text of data, sent double-encoded.
func envelope(id, typ, payload string) []byte {
	b, err := json.Marshal(map[string]string{"id": id, "type": typ, "data": payload})
	if err != nil {
		panic(err)
	}
	return b
}

// send writes one request and returns its id.
func (c *client) send(typ, payload string) string {
	c.t.Helper()
	id := c.nextID()
	c.sendFrame(envelope(id, typ, payload))
	return id
}

func (c *client) sendFrame(frame []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) readFrame() []byte {
	c.t.Helper()
	b, err := c.tryRead(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return b
}

func (c *client) tryRead(d time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageText {
		return nil, fmt.Errorf("reply is a %v frame, want text", typ)
	}
	return b, nil
}

// reply is a decoded reply: numbers stay json.Number so integers compare exactly.
type reply struct {
	raw    []byte
	fields map[string]any
}

func decodeReply(t testing.TB, raw []byte) reply {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("reply is not a JSON object: %v: %s", err, raw)
	}
	if dec.More() {
		t.Fatalf("reply has trailing data: %s", raw)
	}
	return reply{raw: raw, fields: m}
}

// errText returns the "error" field, or "" when the reply is not an error.
func (r reply) errText() string {
	s, _ := r.fields["error"].(string)
	return s
}

func (r reply) isErr() bool { _, ok := r.fields["error"]; return ok }

// readReply reads the next frame and requires it to answer id.
func (c *client) readReply(id string) reply {
	c.t.Helper()
	r := decodeReply(c.t, c.readFrame())
	if got, _ := r.fields["id"].(string); got != id {
		c.t.Fatalf("reply id = %v, want %q: %s", r.fields["id"], id, r.raw)
	}
	return r
}

// do sends one request and returns its reply.
func (c *client) do(typ, payload string) reply {
	c.t.Helper()
	return c.readReply(c.send(typ, payload))
}

// ok sends a request that must succeed and returns its reply.
func (c *client) ok(typ, payload string) reply {
	c.t.Helper()
	r := c.do(typ, payload)
	if r.isErr() {
		c.t.Fatalf("%s %s: unexpected error reply %s", typ, payload, r.raw)
	}
	return r
}

// fail sends a request that must be rejected with an error reply and returns the reply.
func (c *client) fail(typ, payload string) reply {
	c.t.Helper()
	r := c.do(typ, payload)
	if !r.isErr() {
		c.t.Fatalf("%s %s: got success %s, want an error reply", typ, payload, r.raw)
	}
	if code, ok := r.fields["code"]; ok {
		if _, isStr := code.(string); !isStr {
			c.t.Errorf("error code is %T, want string: %s", code, r.raw)
		}
	}
	return r
}

// failWith requires an error reply with exactly this text (and code, when code != "").
func (c *client) failWith(typ, payload, text, code string) reply {
	c.t.Helper()
	r := c.fail(typ, payload)
	if r.errText() != text {
		c.t.Errorf("%s %s: error %q, want %q", typ, payload, r.errText(), text)
	}
	if code != "" && r.fields["code"] != code {
		c.t.Errorf("%s %s: code %v, want %q", typ, payload, r.fields["code"], code)
	}
	return r
}

// expect sends a request and compares its whole reply (without "id") to want, a JSON object.
func (c *client) expect(typ, payload, want string) reply {
	c.t.Helper()
	r := c.do(typ, payload)
	got := make(map[string]any, len(r.fields))
	for k, v := range r.fields {
		if k != "id" {
			got[k] = v
		}
	}
	w := decodeReply(c.t, []byte(want)).fields
	if !reflect.DeepEqual(got, w) {
		c.t.Errorf("%s %s:\n got  %s\n want %s", typ, payload, r.raw, want)
	}
	return r
}

// expectClose reads until the connection ends and requires the close code (and reason when
// non-empty). Replies that arrive before the close are returned.
func (c *client) expectClose(code websocket.StatusCode, reason string) [][]byte {
	c.t.Helper()
	var frames [][]byte
	for {
		b, err := c.tryRead(10 * time.Second)
		if err == nil {
			frames = append(frames, b)
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("connection ended with %v, want close %d %q", err, code, reason)
		}
		if ce.Code != code {
			c.t.Errorf("close code %d (%q), want %d", ce.Code, ce.Reason, code)
		}
		if reason != "" && ce.Reason != reason {
			c.t.Errorf("close reason %q, want %q", ce.Reason, reason)
		}
		return frames
	}
}

// addKey creates a scoped key through the protocol (master connection).
func addKey(t testing.TB, master *client, key, scope string) {
	t.Helper()
	master.ok("keys", mustJSON(map[string]string{"action": "add", "key": key, "scope": scope}))
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// dump describes the whole visible state (collections, KV entries, every record of every
// document) in a canonical text, so tests can assert that a rejected request changed nothing.
func dump(t testing.TB, c *client) string {
	t.Helper()
	cols := stringList(t, c.ok("cols", "{}").fields["collections"])
	sort.Strings(cols)
	var b strings.Builder
	for _, col := range cols {
		fmt.Fprintf(&b, "collection %q\n", col)
		vals := c.ok("gvals", mustJSON(map[string]string{"col": col})).fields["values"].(map[string]any)
		keys := make([]string, 0, len(vals))
		for k := range vals {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "  kv %q=%q\n", k, vals[k])
		}
		latest := c.ok("qry", `{"col":`+quoteJSON(col)+`,"ts":9223372036854775807}`).fields["records"].(map[string]any)
		docs := make([]string, 0, len(latest))
		for d := range latest {
			docs = append(docs, d)
		}
		sort.Strings(docs)
		for _, d := range docs {
			recs := c.ok("qdoc", `{"col":`+quoteJSON(col)+`,"doc":`+quoteJSON(d)+`,"from":-9223372036854775808,"to":9223372036854775807}`).fields["records"].([]any)
			fmt.Fprintf(&b, "  doc %q:", d)
			for _, r := range recs {
				m := r.(map[string]any)
				fmt.Fprintf(&b, " %v=%q", m["ts"], m["data"])
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func quoteJSON(s string) string { return mustJSON(s) }

func stringList(t testing.TB, v any) []string {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("%v (%T) is not an array", v, v)
	}
	out := make([]string, len(arr))
	for i, x := range arr {
		s, ok := x.(string)
		if !ok {
			t.Fatalf("element %d of %v is %T, want string", i, v, x)
		}
		out[i] = s
	}
	return out
}

// gen is one generation of field names (PROTOCOL.md §3): v1 collection/key, v2 col/doc.
type gen struct{ name, col, doc string }

var gens = []gen{{"v1", "collection", "key"}, {"v2", "col", "doc"}}

// p fills a payload template: $col and $doc become this generation's field names.
func (g gen) p(tmpl string) string {
	return strings.NewReplacer("$col", g.col, "$doc", g.doc).Replace(tmpl)
}

// forGens runs f once per name generation, each on a fresh server with a master connection.
func forGens(t *testing.T, f func(t *testing.T, g gen, s *testServer, c *client)) {
	for _, g := range gens {
		t.Run(g.name, func(t *testing.T) {
			s := startServer(t, server.Config{})
			f(t, g, s, s.dial(t, masterKey))
		})
	}
}
