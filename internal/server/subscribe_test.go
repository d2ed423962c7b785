package server_test

// Subscription tests live in the external test package so that their small harness cannot
// collide with the protocol conformance harness of package server.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/volandoo/fluxiondb/internal/db"
	"github.com/volandoo/fluxiondb/internal/server"
)

const subKey = "sub-master-key"

type subServer struct {
	addr string
	srv  *server.Server
	db   *db.DB
}

func startSubServer(t *testing.T, cfg db.Config, scfg server.Config) *subServer {
	t.Helper()
	cfg.MasterKey = subKey
	d, err := db.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(d, scfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		srv.Shutdown(ctx)
		d.Close()
	})
	return &subServer{addr: ln.Addr().String(), srv: srv, db: d}
}

// subClient is a minimal pipelining client: replies by id, pushed frames on a channel.
type subClient struct {
	t       *testing.T
	ws      *websocket.Conn
	mu      sync.Mutex
	waiters map[string]chan map[string]any
	pushed  chan map[string]any
	closed  chan error
	n       int
}

func dialSub(t *testing.T, addr, key string) *subClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/?api-key="+key, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(64 << 20)
	c := &subClient{t: t, ws: ws, waiters: map[string]chan map[string]any{},
		pushed: make(chan map[string]any, 100000), closed: make(chan error, 1)}
	go c.readLoop()
	t.Cleanup(func() { ws.CloseNow() })
	if f := c.next(5 * time.Second); f["type"] != "ready" {
		t.Fatalf("first frame %v, want the ready frame", f)
	}
	return c
}

func (c *subClient) readLoop() {
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.closed <- err
			return
		}
		var m map[string]any
		d := json.NewDecoder(strings.NewReader(string(b)))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			c.closed <- fmt.Errorf("bad frame %q: %v", b, err)
			return
		}
		if id, ok := m["id"].(string); ok {
			c.mu.Lock()
			w := c.waiters[id]
			delete(c.waiters, id)
			c.mu.Unlock()
			if w != nil {
				w <- m
			}
			continue
		}
		c.pushed <- m
	}
}

func (c *subClient) call(typ string, data any) map[string]any {
	c.t.Helper()
	payload, _ := json.Marshal(data)
	c.mu.Lock()
	c.n++
	id := "r" + strconv.Itoa(c.n)
	w := make(chan map[string]any, 1)
	c.waiters[id] = w
	c.mu.Unlock()
	frame, _ := json.Marshal(map[string]string{"id": id, "type": typ, "data": string(payload)})
	if err := c.ws.Write(context.Background(), websocket.MessageText, frame); err != nil {
		c.t.Fatal(err)
	}
	select {
	case m := <-w:
		return m
	case err := <-c.closed:
		c.t.Fatalf("connection closed waiting for %s: %v", typ, err)
	case <-time.After(10 * time.Second):
		c.t.Fatalf("no reply to %s", typ)
	}
	return nil
}

func (c *subClient) ok(typ string, data any) map[string]any {
	c.t.Helper()
	m := c.call(typ, data)
	if e, ok := m["error"]; ok {
		c.t.Fatalf("%s %v: error %v", typ, data, e)
	}
	return m
}

// next returns the next pushed frame.
func (c *subClient) next(timeout time.Duration) map[string]any {
	c.t.Helper()
	select {
	case m := <-c.pushed:
		return m
	case <-time.After(timeout):
		c.t.Fatalf("no pushed frame within %v", timeout)
	}
	return nil
}

func (c *subClient) quiet(d time.Duration) {
	c.t.Helper()
	select {
	case m := <-c.pushed:
		c.t.Fatalf("unexpected frame %v", m)
	case <-time.After(d):
	}
}

func rec(doc string, ts int64, data string) map[string]any {
	return map[string]any{"col": "c", "doc": doc, "ts": ts, "data": data}
}

type ev struct {
	Op, Col, Doc, Data string
	TS                 int64
}

func events(t *testing.T, frame map[string]any) []ev {
	t.Helper()
	if frame["type"] != "event" {
		t.Fatalf("frame type %v, want event: %v", frame["type"], frame)
	}
	var out []ev
	for _, x := range frame["events"].([]any) {
		m := x.(map[string]any)
		e := ev{Op: m["op"].(string), Col: m["col"].(string)}
		if d, ok := m["doc"].(string); ok {
			e.Doc = d
		}
		if d, ok := m["data"].(string); ok {
			e.Data = d
		}
		if n, ok := m["ts"].(json.Number); ok {
			e.TS, _ = n.Int64()
		}
		out = append(out, e)
	}
	return out
}

func TestSubscribeLiveOrderAndFilters(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{})
	w := dialSub(t, s.addr, subKey)
	r := dialSub(t, s.addr, subKey)

	all := r.ok("sub", map[string]any{"col": "c"})
	only := r.ok("sub", map[string]any{"col": "c", "doc": "/^dev-[12]$/", "where": "hot", "filter": "ignore"})
	if all["sub"] == only["sub"] || all["cursor"] == nil {
		t.Fatalf("bad sub replies %v %v", all, only)
	}
	w.ok("ins", []any{rec("dev-1", 1, "hot"), rec("dev-2", 2, "cold"), rec("dev-3", 3, "hot"), rec("dev-1", 4, "hot ignore")})
	w.ok("ins", []any{map[string]any{"collection": "other", "key": "dev-1", "ts": 5, "data": "hot"}})
	w.ok("drec", map[string]any{"col": "c", "doc": "dev-1", "ts": 1})

	got := map[any][]ev{}
	for len(got[all["sub"]]) < 5 || len(got[only["sub"]]) < 2 {
		f := r.next(5 * time.Second)
		got[f["sub"]] = append(got[f["sub"]], events(t, f)...)
	}
	wantAll := []ev{{"ins", "c", "dev-1", "hot", 1}, {"ins", "c", "dev-2", "cold", 2}, {"ins", "c", "dev-3", "hot", 3}, {"ins", "c", "dev-1", "hot ignore", 4}, {"drec", "c", "dev-1", "", 1}}
	if fmt.Sprint(got[all["sub"]]) != fmt.Sprint(wantAll) {
		t.Fatalf("all: got %v\nwant %v", got[all["sub"]], wantAll)
	}
	wantOnly := []ev{{"ins", "c", "dev-1", "hot", 1}, {"drec", "c", "dev-1", "", 1}}
	if fmt.Sprint(got[only["sub"]]) != fmt.Sprint(wantOnly) {
		t.Fatalf("filtered: got %v\nwant %v", got[only["sub"]], wantOnly)
	}

	r.ok("unsub", map[string]any{"sub": all["sub"]})
	if m := r.call("unsub", map[string]any{"sub": all["sub"]}); m["code"] != "not_found" {
		t.Fatalf("second unsub: %v", m)
	}
	w.ok("ins", []any{rec("dev-9", 9, "x")})
	r.quiet(200 * time.Millisecond)
}

// TestSubscribeSnapshotThenLive checks there is neither a gap nor a duplicate between the
// snapshot in the sub reply and the live events, while inserts run concurrently.
func TestSubscribeSnapshotThenLive(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{})
	w := dialSub(t, s.addr, subKey)
	r := dialSub(t, s.addr, subKey)
	const docs, perDoc = 20, 200
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ts := int64(1); ts <= perDoc; ts++ {
			batch := make([]any, 0, docs)
			for d := 0; d < docs; d++ {
				batch = append(batch, rec("d"+strconv.Itoa(d), ts, strconv.FormatInt(ts, 10)))
			}
			w.ok("ins", batch)
		}
	}()
	time.Sleep(5 * time.Millisecond)
	sub := r.ok("sub", map[string]any{"col": "c", "snapshot": true})
	last := map[string]int64{}
	for doc, v := range sub["records"].(map[string]any) {
		n, _ := v.(map[string]any)["ts"].(json.Number).Int64()
		last[doc] = n
	}
	wg.Wait()
	for {
		done := len(last) == docs
		for _, ts := range last {
			done = done && ts == perDoc
		}
		if done {
			break
		}
		for _, e := range events(t, r.next(5*time.Second)) {
			if prev, ok := last[e.Doc]; ok && e.TS != prev+1 {
				t.Fatalf("doc %s: event ts %d after %d (gap or duplicate)", e.Doc, e.TS, prev)
			} else if !ok && e.TS != 1 {
				t.Fatalf("doc %s: first event ts %d, not in snapshot", e.Doc, e.TS)
			}
			last[e.Doc] = e.TS
		}
	}
}

// TestSubscribeSnapshotReplyLimit: a snapshot is a reply like qry's, bound by
// --max-reply-size; a refused one leaves no subscription behind.
func TestSubscribeSnapshotReplyLimit(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{MaxReplySize: 2 << 10})
	w := dialSub(t, s.addr, subKey)
	r := dialSub(t, s.addr, subKey)
	var batch []any
	for i := range 50 {
		batch = append(batch, rec(fmt.Sprintf("d%02d", i), 1, strings.Repeat("p", 200)))
	}
	w.ok("ins", batch)
	if m := r.call("qry", map[string]any{"col": "c", "ts": 10}); m["code"] != "too_large" {
		t.Fatalf("qry over the limit: %v", m)
	}
	m := r.call("sub", map[string]any{"col": "c", "snapshot": true})
	if m["code"] != "too_large" || !strings.Contains(m["error"].(string), "larger than 2 KiB (--max-reply-size)") {
		t.Fatalf("sub with a snapshot over the limit: %v", m)
	}
	// Nothing was left behind: a narrower subscription works, and its events are the only
	// ones that arrive.
	r.ok("sub", map[string]any{"col": "c", "doc": "d00", "snapshot": true})
	w.ok("ins", []any{rec("d00", 2, "two")})
	if got := events(t, r.next(5*time.Second)); len(got) != 1 || got[0].TS != 2 {
		t.Fatalf("events after the refused sub: %v", got)
	}
}

// TestSubscribeNoOpDeletes: a delete that removes nothing is no change, so no event.
func TestSubscribeNoOpDeletes(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{})
	w := dialSub(t, s.addr, subKey)
	r := dialSub(t, s.addr, subKey)
	w.ok("ins", []any{rec("a", 5, "five")})
	w.ok("sval", map[string]any{"col": "kvonly", "key": "k", "value": "v"})
	r.ok("sub", map[string]any{"col": "c"})
	r.ok("sub", map[string]any{"col": "kvonly"})
	r.ok("sub", map[string]any{"col": "never"})
	w.ok("ddoc", map[string]any{"col": "c", "doc": "missing"})
	w.ok("ddoc", map[string]any{"doc": "missing"})
	w.ok("drec", map[string]any{"col": "c", "doc": "a", "ts": 4})
	w.ok("dmrec", []any{map[string]any{"col": "c", "doc": "a", "ts": 6}, map[string]any{"col": "never", "doc": "a", "ts": 5}})
	w.ok("drrng", map[string]any{"col": "c", "doc": "a", "fromTs": 6, "toTs": 100})
	w.ok("dcol", map[string]any{"col": "never"})
	w.ok("dcol", map[string]any{"col": "kvonly"}) // KV entries only: subscribers never saw them
	// Then real changes: the first frame must be theirs.
	w.ok("dmrec", []any{map[string]any{"col": "c", "doc": "a", "ts": 6}, map[string]any{"col": "c", "doc": "a", "ts": 5}})
	w.ok("ins", []any{rec("a", 7, "seven")})
	var got []ev
	for len(got) < 2 {
		got = append(got, events(t, r.next(5*time.Second))...)
	}
	want := []ev{{"drec", "c", "a", "", 5}, {"ins", "c", "a", "seven", 7}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events: got %v want %v", got, want)
	}
}

func TestSubscribeResumeAfterReconnect(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{})
	w := dialSub(t, s.addr, subKey)
	r := dialSub(t, s.addr, subKey)
	sub := r.ok("sub", map[string]any{"col": "c"})
	w.ok("ins", []any{rec("a", 1, "one"), rec("b", 1, "bee")})
	f := r.next(5 * time.Second)
	if n := len(events(t, f)); n != 2 {
		t.Fatalf("first frame has %d events, want the batch's 2", n)
	}
	cursor := f["cursor"].(string)
	r.ws.CloseNow()

	w.ok("ins", []any{rec("a", 2, "two")})
	w.ok("ddoc", map[string]any{"col": "c", "doc": "b"})
	w.ok("ins", []any{rec("a", 3, "three")})

	r2 := dialSub(t, s.addr, subKey)
	r2.ok("sub", map[string]any{"col": "c", "cursor": cursor})
	var got []ev
	for len(got) < 3 {
		got = append(got, events(t, r2.next(5*time.Second))...)
	}
	want := []ev{{"ins", "c", "a", "two", 2}, {"ddoc", "c", "b", "", 0}, {"ins", "c", "a", "three", 3}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("resumed: got %v want %v", got, want)
	}
	_ = sub
	if m := r2.call("sub", map[string]any{"col": "c", "cursor": "deadbeef-1"}); m["code"] != "cursor_expired" {
		t.Fatalf("foreign cursor: %v", m)
	}
}

func TestSubscribeOverflowIsSignalled(t *testing.T) {
	// A tiny history: a subscriber that does not read falls out of it.
	s := startSubServer(t, db.Config{SubHistoryBytes: 4 << 10}, server.Config{})
	w := dialSub(t, s.addr, subKey)
	r := dialSub(t, s.addr, subKey)
	sub := r.ok("sub", map[string]any{"col": "c"})
	cursor := sub["cursor"].(string)
	r.ws.CloseNow() // gone; its cursor will be evicted
	big := strings.Repeat("x", 1000)
	for i := int64(1); i <= 50; i++ {
		w.ok("ins", []any{rec("a", i, big)})
	}
	r2 := dialSub(t, s.addr, subKey)
	if m := r2.call("sub", map[string]any{"col": "c", "cursor": cursor}); m["code"] != "cursor_expired" {
		t.Fatalf("resume from evicted cursor: %v", m)
	}
}

func TestSubscribeCoalesce(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{})
	w := dialSub(t, s.addr, subKey)
	r := dialSub(t, s.addr, subKey)
	r.ok("sub", map[string]any{"col": "c", "interval": 200})
	for i := int64(1); i <= 20; i++ {
		w.ok("ins", []any{rec("a", i, strconv.FormatInt(i, 10)), rec("b", i, "b")})
	}
	var got []ev
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		got = append(got, events(t, r.next(3*time.Second))...)
		if len(got) > 0 && got[len(got)-1].TS == 20 && len(got) >= 2 {
			last := map[string]int64{}
			for _, e := range got {
				last[e.Doc] = e.TS
			}
			if last["a"] == 20 && last["b"] == 20 {
				break
			}
		}
	}
	if len(got) >= 40 {
		t.Fatalf("coalescing delivered %d events for 40 inserts", len(got))
	}
}

// TestSubscribeCoalesceKeepsDocumentOrder: coalescing never moves an event of a document
// behind a later one that concerns it: a dcol, or a ddoc of every collection (empty col),
// applied before a new insert must come out before it.
func TestSubscribeCoalesceKeepsDocumentOrder(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{})
	w := dialSub(t, s.addr, subKey)
	r := dialSub(t, s.addr, subKey)
	r.ok("sub", map[string]any{"col": "c", "interval": 300})
	w.ok("ins", []any{rec("a", 2, "x"), rec("b", 2, "x")})
	w.ok("dcol", map[string]any{"col": "c"})
	w.ok("ins", []any{rec("a", 3, "y")})
	w.ok("ins", []any{rec("b", 4, "x")})
	w.ok("ddoc", map[string]any{"col": "", "doc": "b"})
	w.ok("ins", []any{rec("b", 5, "z")})
	w.ok("ins", []any{rec("end", 1, "")})
	// Apply the events in order to a mirror of the latest record per document: it must end
	// as the collection is.
	mirror := map[string]int64{}
	for mirror["end"] != 1 {
		for _, e := range events(t, r.next(5*time.Second)) {
			switch e.Op {
			case "ins":
				mirror[e.Doc] = e.TS
			case "ddoc":
				delete(mirror, e.Doc)
			case "dcol":
				clear(mirror)
			}
		}
	}
	if want := map[string]int64{"a": 3, "b": 5, "end": 1}; !maps.Equal(mirror, want) {
		t.Fatalf("mirror built from coalesced events = %v, want %v", mirror, want)
	}
}

func TestSubscribeScopeAndRevocation(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{})
	m := dialSub(t, s.addr, subKey)
	m.ok("keys", map[string]any{"action": "add", "key": "reader-key-0001", "scope": "readonly"})
	r := dialSub(t, s.addr, "reader-key-0001")
	r.ok("sub", map[string]any{"col": "c"})
	m.ok("ins", []any{rec("a", 1, "x")})
	r.next(5 * time.Second)
	m.ok("keys", map[string]any{"action": "remove", "key": "reader-key-0001"})
	select {
	case err := <-r.closed:
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("revoked: close %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("revoked connection not closed")
	}
	if got := s.db.Hub.Stats().Subscriptions; got != 0 {
		// The pump ends with the connection; give it a moment.
		time.Sleep(100 * time.Millisecond)
		if got = s.db.Hub.Stats().Subscriptions; got != 0 {
			t.Fatalf("%d subscriptions left after revocation", got)
		}
	}
}

func TestSubscribeValidation(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{})
	c := dialSub(t, s.addr, subKey)
	for _, data := range []any{
		map[string]any{},
		map[string]any{"col": ""},
		map[string]any{"col": "c", "interval": -1},
		map[string]any{"col": "c", "snapshot": "yes"},
		map[string]any{"col": "c", "snapshot": true, "cursor": "x-1"},
		// Not cursors at all (a typo is not an expired cursor: no snapshot would help).
		map[string]any{"col": "c", "cursor": "garbage"},
		map[string]any{"col": "c", "cursor": "deadbeef--1"},
		map[string]any{"col": "c", "cursor": "zzzzzzzz-1"},
	} {
		if m := c.call("sub", data); m["error"] == nil || m["code"] != "bad_request" {
			t.Errorf("sub %v: %v", data, m)
		}
	}
	c.ok("cols", map[string]any{}) // still usable
}

// TestSubscribeOverflowSignalledLive: a subscriber that stops reading while the history it
// needs is evicted gets an explicit overflow frame after the events it did get, with no gap
// before it.
func TestSubscribeOverflowSignalledLive(t *testing.T) {
	s := startSubServer(t, db.Config{SubHistoryBytes: 64 << 10}, server.Config{OutboundQueue: 2, WriteTimeout: 30 * time.Second})
	w := dialSub(t, s.addr, subKey)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+s.addr+"/?api-key="+subKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(64 << 20)
	read := func() map[string]any {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var m map[string]any
		d := json.NewDecoder(strings.NewReader(string(b)))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	read() // ready
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"id":"s","type":"sub","data":"{\"col\":\"c\"}"}`)); err != nil {
		t.Fatal(err)
	}
	if m := read(); m["sub"] == nil {
		t.Fatalf("sub reply %v", m)
	}
	// Not reading now: socket buffers and the outbound queue fill, the pump waits, and the
	// 64 KiB history moves on without it.
	big := strings.Repeat("x", 4000)
	for i := int64(1); i <= 3000; i++ {
		w.ok("ins", []any{rec("a", i, big)})
	}
	var last int64
	for {
		m := read()
		if m["type"] == "overflow" {
			if m["code"] != "cursor_expired" || m["cursor"] == nil {
				t.Fatalf("overflow frame %v", m)
			}
			break
		}
		for _, e := range events(t, m) {
			if e.TS != last+1 {
				t.Fatalf("gap before the overflow: ts %d after %d", e.TS, last)
			}
			last = e.TS
		}
	}
	if last >= 3000 {
		t.Fatalf("every event arrived (%d); the history never overflowed", last)
	}
	// The connection itself stays usable.
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"id":"c","type":"cols","data":"{}"}`)); err != nil {
		t.Fatal(err)
	}
	if m := read(); m["id"] != "c" {
		t.Fatalf("after overflow: %v", m)
	}
}

// TestRequestsBesideLiveEvents: one connection both receives a subscription's events (queued
// by its pump) and sends requests one at a time (whose replies the read loop may write
// itself): every reply is right and every event arrives once, in order, while a second
// connection inserts — the two writers of the socket take turns (conn.wmu, conn.queued).
func TestRequestsBesideLiveEvents(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{})
	c := dialSub(t, s.addr, subKey)
	w := dialSub(t, s.addr, subKey)
	c.ok("sub", map[string]any{"col": "c"})
	const n = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int64(1); i <= n; i++ {
			w.ok("ins", []any{rec("e", i, "v"+strconv.FormatInt(i, 10))})
		}
	}()
	for i := 0; i < n; i++ {
		m := c.ok("gval", map[string]any{"col": "k", "key": "missing"})
		if v, ok := m["value"].(string); !ok || v != "" {
			t.Fatalf("gval reply %v, want an empty value", m)
		}
	}
	<-done
	next := int64(1)
	for next <= n {
		for _, e := range events(t, c.next(5*time.Second)) {
			if e.Op != "ins" || e.TS != next || e.Data != "v"+strconv.FormatInt(next, 10) {
				t.Fatalf("event %+v, want ts %d", e, next)
			}
			next++
		}
	}
	c.quiet(50 * time.Millisecond)
}

// TestSubscriptionReleasedWhenItsReplyCannotBeSent: a sub whose reply could not be queued (a
// client that never reads is cut off) is released: the hub does not keep it — and with it
// every change, up to --sub-history, for the life of the process.
func TestSubscriptionReleasedWhenItsReplyCannotBeSent(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{OutboundQueue: 2, WriteTimeout: 300 * time.Millisecond, MetricsOnMainPort: true})
	m := dialSub(t, s.addr, subKey)
	big := strings.Repeat("x", 10000)
	var recs []any
	for i := range 200 {
		recs = append(recs, rec(fmt.Sprintf("d%d", i), 1, big))
	}
	m.ok("ins", recs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+s.addr+"/?api-key="+subKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	for i := range 60 { // 60 snapshots of 2 MB each, never read
		frame := fmt.Sprintf(`{"id":"s%d","type":"sub","data":"{\"col\":\"c\",\"snapshot\":true}"}`, i)
		if err := ws.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
			break // cut off already
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for scrape(t, s.addr, "fluxiondb_connections") != 1 { // until only m is left
		if time.Now().After(deadline) {
			t.Fatal("the client that does not read was not cut off")
		}
		time.Sleep(50 * time.Millisecond)
	}
	deadline = time.Now().Add(5 * time.Second)
	for s.db.Hub.Stats().Subscriptions != 0 || scrape(t, s.addr, "fluxiondb_subscriptions") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscriptions still held after the client was cut off", s.db.Hub.Stats().Subscriptions)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRevokedKeyGetsNoLaterEvents: once its API key is removed, a connection gets no event
// for changes made after the removal, though its 1008 close is written a moment later.
func TestRevokedKeyGetsNoLaterEvents(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{})
	m := dialSub(t, s.addr, subKey)
	for round := range 60 {
		key, col := fmt.Sprintf("revoked-key-%04d", round), fmt.Sprintf("r%d", round)
		m.ok("keys", map[string]any{"action": "add", "key": key, "scope": "readonly"})
		r := dialSub(t, s.addr, key)
		r.ok("sub", map[string]any{"col": col})
		// Pipelined on one connection, so the inserts are applied after the removal.
		frames := []string{fmt.Sprintf(`{"id":"x%d-0","type":"keys","data":"{\"action\":\"remove\",\"key\":\"%s\"}"}`, round, key)}
		for i := 1; i <= 3; i++ {
			frames = append(frames, fmt.Sprintf(`{"id":"x%d-%d","type":"ins","data":"[{\"col\":\"%s\",\"doc\":\"d\",\"ts\":%d,\"data\":\"after\"}]"}`, round, i, col, i))
		}
		for _, f := range frames {
			if err := m.ws.Write(context.Background(), websocket.MessageText, []byte(f)); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case err := <-r.closed:
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("round %d: revoked connection ended with %v", round, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: revoked connection not closed", round)
		}
		for len(r.pushed) > 0 {
			if f := <-r.pushed; f["type"] == "event" {
				t.Fatalf("round %d: the revoked connection got %v", round, f)
			}
		}
	}
}

// TestNoEventsAfterUnsubReply: the unsub reply follows every event of the subscription.
func TestNoEventsAfterUnsubReply(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{})
	w := dialSub(t, s.addr, subKey)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a writer that never pauses
		defer close(done)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f := fmt.Sprintf(`{"id":"w%d","type":"ins","data":"[{\"col\":\"c\",\"doc\":\"d%d\",\"ts\":%d,\"data\":\"x\"}]"}`, i, i%7, i)
			if w.ws.Write(context.Background(), websocket.MessageText, []byte(f)) != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	c := dialSub(t, s.addr, subKey)
	ended := map[string]bool{}
	for range 300 {
		id, _ := c.ok("sub", map[string]any{"col": "c"})["sub"].(string)
		c.ok("unsub", map[string]any{"sub": id})
		ended[id] = true
		for len(c.pushed) > 0 { // frames read before the reply are in the channel already
			f := <-c.pushed
			if sub, _ := f["sub"].(string); sub != id && ended[sub] {
				t.Fatalf("an event of %s came after its unsub reply: %v", sub, f)
			}
		}
	}
}

// TestSubscribeEventsShowWhatWasStored: within one batch the later entry for a (document, ts)
// wins; events report only it, so a `where` subscription is not told of a value that was
// never stored, and a plain one does not see the record twice.
func TestSubscribeEventsShowWhatWasStored(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{})
	w := dialSub(t, s.addr, subKey)
	r := dialSub(t, s.addr, subKey)
	hot := r.ok("sub", map[string]any{"col": "c", "where": "hot"})["sub"]
	all := r.ok("sub", map[string]any{"col": "c"})["sub"]
	w.ok("ins", []any{rec("d", 7, "hot"), rec("e", 1, "x"), rec("d", 7, "cold")})
	w.ok("ins", []any{rec("d", 8, "cold"), rec("d", 8, "hot")})
	got := map[any][]ev{}
	for len(got[all]) < 3 || len(got[hot]) < 1 {
		f := r.next(5 * time.Second)
		got[f["sub"]] = append(got[f["sub"]], events(t, f)...)
	}
	if want := []ev{{"ins", "c", "d", "hot", 8}}; fmt.Sprint(got[hot]) != fmt.Sprint(want) {
		t.Errorf("where hot: got %v, want %v", got[hot], want)
	}
	if want := []ev{{"ins", "c", "e", "x", 1}, {"ins", "c", "d", "cold", 7}, {"ins", "c", "d", "hot", 8}}; fmt.Sprint(got[all]) != fmt.Sprint(want) {
		t.Errorf("all: got %v, want %v", got[all], want)
	}
	r.quiet(200 * time.Millisecond)
}

// TestSubscribeDeleteDocEverywhere: a ddoc without col sends one event per collection that
// held the document, naming it; subscribers of the other collections hear nothing.
func TestSubscribeDeleteDocEverywhere(t *testing.T) {
	s := startSubServer(t, db.Config{}, server.Config{})
	w := dialSub(t, s.addr, subKey)
	r := dialSub(t, s.addr, subKey)
	held := r.ok("sub", map[string]any{"col": "held"})["sub"]
	r.ok("sub", map[string]any{"col": "other"})
	w.ok("ins", []any{map[string]any{"col": "held", "doc": "d", "ts": 1, "data": "x"}, map[string]any{"col": "other", "doc": "e", "ts": 1, "data": "y"}})
	for range 2 { // the two inserts
		r.next(5 * time.Second)
	}
	w.ok("ddoc", map[string]any{"doc": "d"})
	f := r.next(5 * time.Second)
	if f["sub"] != held || fmt.Sprint(events(t, f)) != fmt.Sprint([]ev{{"ddoc", "held", "d", "", 0}}) {
		t.Fatalf("ddoc without col: got %v, want one ddoc of collection held on %v", f, held)
	}
	r.quiet(200 * time.Millisecond) // nothing for the subscriber of other
}

// TestEventsWaitForDurability: with a data folder, a subscriber hears of a change only once
// it is as durable as its writer's reply says; events went out as soon as the change was
// applied, so a crash could take back a change subscribers had been told of.
func TestEventsWaitForDurability(t *testing.T) {
	s := startSubServer(t, db.Config{Dir: t.TempDir()}, server.Config{})
	r := dialSub(t, s.addr, subKey)
	r.ok("sub", map[string]any{"col": "c"})
	gate := make(chan struct{})
	server.SetWait(s.srv, func(ctx context.Context, c db.Commit) error {
		select {
		case <-gate:
			return s.db.Wait(ctx, c)
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	w := dialSub(t, s.addr, subKey)
	replied := make(chan map[string]any, 1)
	go func() { replied <- w.call("ins", []any{rec("d", 1, "x")}) }()
	r.quiet(300 * time.Millisecond) // applied, not yet durable: no event
	close(gate)
	f := r.next(5 * time.Second)
	if got := events(t, f); len(got) != 1 || got[0].Doc != "d" {
		t.Fatalf("event after durability: %v", f)
	}
	if m := <-replied; m["error"] != nil {
		t.Fatalf("insert: %v", m)
	}
}
