package fluxiondb

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// nextEvent returns the subscription's next event, failing the test if none
// comes within 10s or the subscription ends.
func nextEvent(t *testing.T, sub *Subscription) Event {
	t.Helper()
	select {
	case ev, ok := <-sub.Events():
		if !ok {
			t.Fatalf("subscription ended: %v", sub.Err())
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return Event{}
}

// waitEnd drains the subscription until its channel is closed and returns
// the events drained.
func waitEnd(t *testing.T, sub *Subscription) []Event {
	t.Helper()
	var evs []Event
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		case <-timeout:
			t.Fatalf("subscription did not end within 10s (%d events)", len(evs))
		}
	}
}

func evString(ev Event) string {
	switch ev.Op {
	case OpInsert:
		return fmt.Sprintf("ins %s/%s %d %s", ev.Col, ev.Doc, ev.TS, ev.Data)
	case OpDeleteRecord:
		return fmt.Sprintf("drec %s/%s %d", ev.Col, ev.Doc, ev.TS)
	case OpDeleteRange:
		return fmt.Sprintf("drrng %s/%s %d-%d", ev.Col, ev.Doc, ev.FromTS, ev.ToTS)
	case OpDeleteDocument:
		return fmt.Sprintf("ddoc %s/%s", ev.Col, ev.Doc)
	case OpDeleteCollection:
		return fmt.Sprintf("dcol %s", ev.Col)
	case OpReset:
		return fmt.Sprintf("reset %s %d records", ev.Col, len(ev.Records))
	}
	return fmt.Sprintf("%s %+v", ev.Op, ev)
}

// serverSubscriptions reads the server's live subscription count from its
// metrics endpoint.
func serverSubscriptions(t *testing.T, srv *testServer) int {
	t.Helper()
	resp, err := http.Get("http://" + srv.addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "fluxiondb_subscriptions "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", sc.Text(), err)
			}
			return int(n)
		}
	}
	t.Fatalf("no fluxiondb_subscriptions metric")
	return 0
}

func waitServerSubscriptions(t *testing.T, srv *testServer, want int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d server-side subscriptions", want), func() bool { return serverSubscriptions(t, srv) == want })
}

// dropConnection closes the client's socket without a close handshake, as
// a network failure would, and returns the dead session.
func dropConnection(t *testing.T, c *Client) *session {
	t.Helper()
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil {
		t.Fatal("no session to drop")
	}
	_ = s.ws.CloseNow()
	return s
}

func waitReconnected(t *testing.T, c *Client, old *session) {
	t.Helper()
	waitFor(t, "reconnect", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.sess != nil && c.sess != old
	})
}

// TestSubscribeOrderPerDocument: concurrent writers, one per document;
// every event arrives once, in order per document.
func TestSubscribeOrderPerDocument(t *testing.T) {
	srv := startServer(t)
	w := newTestClient(t, srv)
	c := newTestClient(t, srv)
	ctx := testCtx(t)
	sub, err := c.Subscribe(ctx, SubscribeQuery{Col: "o"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	const docs, perDoc = 4, 200
	var wg sync.WaitGroup
	for d := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			doc := "d" + strconv.Itoa(d)
			for ts := int64(1); ts <= perDoc; {
				var batch []InsertRecord
				for n := 1 + int(ts)%5; n > 0 && ts <= perDoc; n-- {
					batch = append(batch, InsertRecord{Col: "o", Doc: doc, TS: ts, Data: doc + ":" + strconv.FormatInt(ts, 10)})
					ts++
				}
				if err := w.Insert(ctx, batch...); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	last := map[string]int64{}
	for range docs * perDoc {
		ev := nextEvent(t, sub)
		if ev.Op != OpInsert || ev.Col != "o" || ev.TS != last[ev.Doc]+1 || ev.Data != ev.Doc+":"+strconv.FormatInt(ev.TS, 10) {
			t.Fatalf("event %s after ts %d of %s", evString(ev), last[ev.Doc], ev.Doc)
		}
		last[ev.Doc] = ev.TS
	}
	wg.Wait()
	if sub.Cursor() == "" {
		t.Fatal("no cursor after events")
	}
}

// TestSubscribeSnapshotThenLive: a snapshot taken while inserts continue is
// followed by exactly the records after it.
func TestSubscribeSnapshotThenLive(t *testing.T) {
	srv := startServer(t)
	w := newTestClient(t, srv)
	c := newTestClient(t, srv)
	ctx := testCtx(t)

	const n = 300
	var inserted atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ts := int64(1); ts <= n; ts++ {
			if err := w.Insert(ctx,
				InsertRecord{Col: "s", Doc: "a", TS: ts, Data: "a" + strconv.FormatInt(ts, 10)},
				InsertRecord{Col: "s", Doc: "b", TS: ts, Data: "b" + strconv.FormatInt(ts, 10)},
			); err != nil {
				t.Error(err)
				return
			}
			inserted.Store(ts)
		}
	}()
	waitFor(t, "some inserts", func() bool { return inserted.Load() >= 50 })
	sub, err := c.Subscribe(ctx, SubscribeQuery{Col: "s", Snapshot: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	snap := sub.Snapshot()
	if len(snap) != 2 {
		t.Fatalf("snapshot = %v; want documents a and b", snap)
	}
	last := map[string]int64{}
	for doc, r := range snap {
		if r.Data != doc+strconv.FormatInt(r.TS, 10) || r.TS < 50 {
			t.Fatalf("snapshot %s = %+v", doc, r)
		}
		last[doc] = r.TS
	}
	for last["a"] < n || last["b"] < n {
		ev := nextEvent(t, sub)
		if ev.Op != OpInsert || ev.TS != last[ev.Doc]+1 {
			t.Fatalf("after snapshot: %s, previous ts of %s = %d (gap or duplicate)", evString(ev), ev.Doc, last[ev.Doc])
		}
		last[ev.Doc] = ev.TS
	}
	<-done
	// Nothing more: no duplicate at the end either.
	select {
	case ev := <-sub.Events():
		t.Fatalf("extra event %s", evString(ev))
	case <-time.After(100 * time.Millisecond):
	}
}

// TestSubscribeFilters: document (exact and regex), where and filter
// select inserts; deletes are delivered to every subscription whose
// documents they touch.
func TestSubscribeFilters(t *testing.T) {
	srv := startServer(t)
	w := newTestClient(t, srv)
	c := newTestClient(t, srv)
	ctx := testCtx(t)

	queries := map[string]SubscribeQuery{
		"all":    {Col: "f"},
		"exact":  {Col: "f", Doc: "dev-1"},
		"regex":  {Col: "f", Doc: "/^dev-[12]$/"},
		"where":  {Col: "f", Where: "alarm"},
		"filter": {Col: "f", Filter: "/debug/"},
		"other":  {Col: "other"},
	}
	subs := map[string]*Subscription{}
	for name, q := range queries {
		sub, err := c.Subscribe(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer sub.Close()
		subs[name] = sub
	}
	steps := []func() error{
		func() error {
			return w.Insert(ctx,
				InsertRecord{Col: "f", Doc: "dev-1", TS: 1, Data: "ok"},
				InsertRecord{Col: "f", Doc: "dev-2", TS: 1, Data: "alarm"},
				InsertRecord{Col: "f", Doc: "dev-3", TS: 1, Data: "debug alarm"},
				InsertRecord{Col: "f", Doc: "dev-1", TS: 2, Data: "debug"},
			)
		},
		func() error { return w.RemoveRecord(ctx, RecordRef{Col: "f", Doc: "dev-1", TS: 1}) },
		func() error { return w.RemoveRange(ctx, "f", "dev-2", 1, 10) },
		func() error { return w.RemoveDocument(ctx, "f", "dev-3") },
		func() error { return w.RemoveDocument(ctx, "", "dev-1") },
		func() error { return w.RemoveCollection(ctx, "f") },
		func() error { return w.Insert(ctx, InsertRecord{Col: "f", Doc: "dev-1", TS: 3, Data: "alarm end"}) },
		func() error { return w.Insert(ctx, InsertRecord{Col: "other", Doc: "x", TS: 1, Data: "end"}) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	// The dcol finds f already empty (its last documents went just before): no change, no event.
	// The ddoc without a collection names the one that held dev-1.
	deletes := []string{"drec f/dev-1 1", "drrng f/dev-2 1-10", "ddoc f/dev-3", "ddoc f/dev-1"}
	want := map[string][]string{
		"all": append([]string{"ins f/dev-1 1 ok", "ins f/dev-2 1 alarm", "ins f/dev-3 1 debug alarm", "ins f/dev-1 2 debug"},
			append(deletes, "ins f/dev-1 3 alarm end")...),
		"exact": {"ins f/dev-1 1 ok", "ins f/dev-1 2 debug", "drec f/dev-1 1", "ddoc f/dev-1", "ins f/dev-1 3 alarm end"},
		"regex": {"ins f/dev-1 1 ok", "ins f/dev-2 1 alarm", "ins f/dev-1 2 debug", "drec f/dev-1 1", "drrng f/dev-2 1-10", "ddoc f/dev-1", "ins f/dev-1 3 alarm end"},
		"where": append([]string{"ins f/dev-2 1 alarm", "ins f/dev-3 1 debug alarm"},
			append(deletes, "ins f/dev-1 3 alarm end")...),
		"filter": append([]string{"ins f/dev-1 1 ok", "ins f/dev-2 1 alarm"},
			append(deletes, "ins f/dev-1 3 alarm end")...),
		// dev-1 was never in other: its subscriber hears nothing of the ddoc.
		"other": {"ins other/x 1 end"},
	}
	for name, sub := range subs {
		var got []string
		for len(got) < len(want[name]) {
			got = append(got, evString(nextEvent(t, sub)))
		}
		if !slices.Equal(got, want[name]) {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want[name])
		}
	}
}

// TestSubscribeInterval: coalescing delivers fewer events, ending with the
// latest record of each document.
func TestSubscribeInterval(t *testing.T) {
	srv := startServer(t)
	w := newTestClient(t, srv)
	c := newTestClient(t, srv)
	ctx := testCtx(t)
	sub, err := c.Subscribe(ctx, SubscribeQuery{Col: "i", Interval: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for ts := int64(1); ts <= 30; ts++ {
		if err := w.Insert(ctx, InsertRecord{Col: "i", Doc: "a", TS: ts, Data: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for {
		ev := nextEvent(t, sub)
		n++
		if ev.TS == 30 {
			break
		}
	}
	if n >= 30 {
		t.Fatalf("coalescing delivered %d events for 30 inserts", n)
	}
}

// TestSubscribeResumeAfterDrop: when the client's socket drops, the client
// reconnects and resumes each subscription from its last cursor: the
// events inserted meanwhile arrive exactly once, in order.
func TestSubscribeResumeAfterDrop(t *testing.T) {
	srv := startServer(t)
	w := newTestClient(t, srv)
	// A reconnect delay of 100-200ms leaves time for inserts while the
	// subscriber is away.
	c := newTestClient(t, srv, WithReconnectPolicy(ReconnectPolicy{MinDelay: 200 * time.Millisecond, MaxDelay: 200 * time.Millisecond}))
	ctx := testCtx(t)
	subAll, err := c.Subscribe(ctx, SubscribeQuery{Col: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer subAll.Close()
	subB, err := c.Subscribe(ctx, SubscribeQuery{Col: "r", Doc: "b", Where: "even"})
	if err != nil {
		t.Fatal(err)
	}
	defer subB.Close()

	const n = 400
	var inserted atomic.Int64
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for ts := int64(1); ts <= n; ts++ {
			data := "odd"
			if ts%2 == 0 {
				data = "even"
			}
			if err := w.Insert(ctx, InsertRecord{Col: "r", Doc: "a", TS: ts, Data: data}, InsertRecord{Col: "r", Doc: "b", TS: ts, Data: data}); err != nil {
				t.Error(err)
				return
			}
			inserted.Store(ts)
			time.Sleep(time.Millisecond)
		}
	}()

	last := map[string]int64{}
	var lastB int64
	readAll := func(upTo int64) {
		for last["a"] < upTo || last["b"] < upTo {
			ev := nextEvent(t, subAll)
			if ev.TS != last[ev.Doc]+1 {
				t.Fatalf("%s after ts %d: gap or duplicate", evString(ev), last[ev.Doc])
			}
			last[ev.Doc] = ev.TS
		}
	}
	for _, at := range []int64{50, 150} {
		readAll(at)
		old := dropConnection(t, c)
		before := inserted.Load()
		waitReconnected(t, c, old)
		if during := inserted.Load() - before; during <= 0 {
			t.Fatalf("no inserts while disconnected; the test proves nothing")
		}
	}
	readAll(n)
	<-writerDone
	for lastB < n {
		ev := nextEvent(t, subB)
		if ev.Doc != "b" || ev.TS != lastB+2 || ev.Data != "even" {
			t.Fatalf("filtered subscription: %s after ts %d", evString(ev), lastB)
		}
		lastB = ev.TS
	}
	// After the resumes, exactly two subscriptions live on the server.
	waitServerSubscriptions(t, srv, 2)
}

// TestSubscribeCursorExpiredAfterRestart: cursors belong to one server
// process. After a restart the resume fails: the subscription ends with
// ErrSubscriptionLost, or, with ResubscribeWithSnapshot, starts over with
// an OpReset event carrying the snapshot.
func TestSubscribeCursorExpiredAfterRestart(t *testing.T) {
	srv := startServer(t, "--data="+t.TempDir())
	w := newTestClient(t, srv, fastReconnect)
	c := newTestClient(t, srv, fastReconnect)
	ctx := testCtx(t)
	plain, err := c.Subscribe(ctx, SubscribeQuery{Col: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	resnap, err := c.Subscribe(ctx, SubscribeQuery{Col: "x"}, ResubscribeWithSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	defer resnap.Close()
	if err := w.Insert(ctx, InsertRecord{Col: "x", Doc: "a", TS: 1, Data: "one"}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, plain); ev.TS != 1 {
		t.Fatalf("plain: %s", evString(ev))
	}
	if ev := nextEvent(t, resnap); ev.TS != 1 {
		t.Fatalf("resnap: %s", evString(ev))
	}
	oldCursor := plain.Cursor()

	srv.kill()
	srv.restart()

	if evs := waitEnd(t, plain); len(evs) != 0 {
		t.Fatalf("plain: unexpected events %v", evs)
	}
	if err := plain.Err(); !errors.Is(err, ErrSubscriptionLost) || !errors.Is(err, ErrCursorExpired) {
		t.Fatalf("plain.Err() = %v; want ErrSubscriptionLost and ErrCursorExpired", err)
	}
	ev := nextEvent(t, resnap)
	if ev.Op != OpReset || ev.Cursor == "" || !mapsEqual(ev.Records, map[string]Record{"a": {TS: 1, Data: "one"}}) {
		t.Fatalf("resnap after restart: %+v; want a reset with the recovered record", ev)
	}
	if err := w.Insert(ctx, InsertRecord{Col: "x", Doc: "a", TS: 2, Data: "two"}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, resnap); ev.Op != OpInsert || ev.TS != 2 {
		t.Fatalf("resnap live after reset: %s", evString(ev))
	}

	// A cursor from the old process, given by the user, is refused too...
	if _, err := c.Subscribe(ctx, SubscribeQuery{Col: "x", Cursor: oldCursor}); !errors.Is(err, ErrCursorExpired) {
		t.Fatalf("Subscribe with an old cursor: %v; want ErrCursorExpired", err)
	}
	// ...or, with ResubscribeWithSnapshot, replaced by a reset.
	sub, err := c.Subscribe(ctx, SubscribeQuery{Col: "x", Cursor: oldCursor}, ResubscribeWithSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if ev := nextEvent(t, sub); ev.Op != OpReset || ev.Records["a"].TS != 2 {
		t.Fatalf("old cursor with ResubscribeWithSnapshot: %+v", ev)
	}
	// A current cursor resumes: events after it are delivered.
	cur := resnap.Cursor()
	if err := w.Insert(ctx, InsertRecord{Col: "x", Doc: "a", TS: 3, Data: "three"}); err != nil {
		t.Fatal(err)
	}
	resumed, err := c.Subscribe(ctx, SubscribeQuery{Col: "x", Cursor: cur})
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Close()
	if ev := nextEvent(t, resumed); ev.TS != 3 {
		t.Fatalf("resume from a cursor: %s", evString(ev))
	}
}

// TestSubscribeSlowSubscriber: a reader that does not keep up loses its
// subscription with ErrSlowSubscriber after the events received so far;
// the connection and the server are unaffected.
func TestSubscribeSlowSubscriber(t *testing.T) {
	srv := startServer(t)
	w := newTestClient(t, srv)
	c := newTestClient(t, srv)
	ctx := testCtx(t)
	sub, err := c.Subscribe(ctx, SubscribeQuery{Col: "slow"}, WithSubscriptionBuffer(8))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for ts := int64(1); ts <= 100; ts++ {
		if err := w.Insert(ctx, InsertRecord{Col: "slow", Doc: "a", TS: ts, Data: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	waitServerSubscriptions(t, srv, 0) // the client unsubscribed
	evs := waitEnd(t, sub)
	if len(evs) == 0 || len(evs) >= 100 {
		t.Fatalf("delivered %d events; want a prefix", len(evs))
	}
	for i, ev := range evs {
		if ev.TS != int64(i+1) {
			t.Fatalf("event %d: %s; want the first events in order", i, evString(ev))
		}
	}
	if err := sub.Err(); !errors.Is(err, ErrSlowSubscriber) {
		t.Fatalf("Err() = %v; want ErrSlowSubscriber", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("Close after the end: %v", err)
	}
	if _, err := c.Collections(ctx); err != nil {
		t.Fatalf("connection after a slow subscriber: %v", err)
	}
}

// TestSubscribeCloseCancel: Close and context cancellation end the
// subscription on both sides; Close of the client ends them all.
func TestSubscribeCloseCancel(t *testing.T) {
	srv := startServer(t)
	c := newTestClient(t, srv)
	ctx := testCtx(t)

	sub, err := c.Subscribe(ctx, SubscribeQuery{Col: "cc"})
	if err != nil {
		t.Fatal(err)
	}
	waitServerSubscriptions(t, srv, 1)
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, ok := <-sub.Events(); ok {
		t.Fatal("event after Close")
	}
	if err := sub.Err(); err != nil {
		t.Fatalf("Err after Close = %v; want nil", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	waitServerSubscriptions(t, srv, 0)

	cctx, cancel := context.WithCancel(ctx)
	sub, err = c.Subscribe(cctx, SubscribeQuery{Col: "cc"})
	if err != nil {
		t.Fatal(err)
	}
	waitServerSubscriptions(t, srv, 1)
	cancel()
	waitEnd(t, sub)
	if err := sub.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err after cancel = %v; want context.Canceled", err)
	}
	waitServerSubscriptions(t, srv, 0)
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(cctx, SubscribeQuery{Col: "cc"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe with a cancelled context: %v", err)
	}

	// Bad queries are refused by the server.
	if _, err := c.Subscribe(ctx, SubscribeQuery{}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("Subscribe without a collection: %v; want ErrInvalidRequest", err)
	}
	if _, err := c.Subscribe(ctx, SubscribeQuery{Col: "cc", Snapshot: true, Cursor: "x-1"}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("Subscribe with snapshot and cursor: %v; want ErrInvalidRequest", err)
	}

	// Closing the client ends every subscription with ErrClosed.
	a, err := c.Subscribe(ctx, SubscribeQuery{Col: "cc"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Subscribe(ctx, SubscribeQuery{Col: "cc", Doc: "/x/"})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	for _, sub := range []*Subscription{a, b} {
		waitEnd(t, sub)
		if err := sub.Err(); !errors.Is(err, ErrClosed) {
			t.Fatalf("Err after client Close = %v; want ErrClosed", err)
		}
		_ = sub.Close()
	}
	if _, err := c.Subscribe(ctx, SubscribeQuery{Col: "cc"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe on a closed client: %v", err)
	}
	waitServerSubscriptions(t, srv, 0)
}

// TestSubscribeScopeAndRevocation: a readonly key may subscribe; revoking
// it ends the subscription with an error matching ErrUnauthenticated,
// reported by the iterator form.
func TestSubscribeScopeAndRevocation(t *testing.T) {
	srv := startServer(t)
	m := newTestClient(t, srv)
	ctx := testCtx(t)
	if _, err := m.CreateAPIKey(ctx, "reader-key-0001", ScopeReadOnly); err != nil {
		t.Fatal(err)
	}
	r := newKeyClient(t, srv, "reader-key-0001", fastReconnect)
	sub, err := r.Subscribe(ctx, SubscribeQuery{Col: "sc"})
	if err != nil {
		t.Fatalf("readonly Subscribe: %v", err)
	}
	defer sub.Close()
	if err := m.Insert(ctx, InsertRecord{Col: "sc", Doc: "a", TS: 1, Data: "x"}); err != nil {
		t.Fatal(err)
	}
	var got []int64
	var endErr error
	for ev, err := range sub.All() {
		if err != nil {
			endErr = err
			break
		}
		got = append(got, ev.TS)
		if err := m.RevokeAPIKey(ctx, "reader-key-0001"); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, []int64{1}) || !errors.Is(endErr, ErrUnauthenticated) {
		t.Fatalf("events %v, end %v; want [1] and ErrUnauthenticated", got, endErr)
	}
}

// fakeServer is a scripted WebSocket server for frames the real server
// cannot be made to send on demand (overflow needs a tiny history).
type fakeServer struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []map[string]any // decoded request data, by arrival
	// onSub returns the frames to send for the n-th (0-based) sub request;
	// "ID" in them is replaced by the request id.
	onSub func(n int) []string
}

func newFakeServer(t *testing.T, onSub func(n int) []string) *fakeServer {
	f := &fakeServer{t: t, onSub: onSub}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx := r.Context()
		if ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ready","message":"Authentication successful"}`)) != nil {
			return
		}
		subs := 0
		for {
			_, frame, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var req struct{ ID, Type, Data string }
			if err := json.Unmarshal(frame, &req); err != nil {
				return
			}
			var data map[string]any
			_ = json.Unmarshal([]byte(req.Data), &data)
			data["type"] = req.Type
			f.mu.Lock()
			f.reqs = append(f.reqs, data)
			f.mu.Unlock()
			var out []string
			switch req.Type {
			case "sub":
				out = f.onSub(subs)
				subs++
			default:
				out = []string{`{"id":"ID","status":"ok"}`}
			}
			for _, o := range out {
				if ws.Write(ctx, websocket.MessageText, []byte(strings.Replace(o, `"ID"`, strconv.Quote(req.ID), 1))) != nil {
					return
				}
			}
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) url() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") }

func (f *fakeServer) requests() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

const (
	fakeEvent1   = `{"type":"event","sub":"s1","cursor":"e-2","events":[{"op":"ins","col":"c","doc":"a","ts":1,"data":"x"}]}`
	fakeOverflow = `{"type":"overflow","sub":"s1","cursor":"e-2","error":"fell behind","code":"cursor_expired"}`
)

// TestSubscribeOverflow: an overflow frame ends the subscription with
// ErrSubscriptionLost after the events before it; with
// ResubscribeWithSnapshot the client subscribes again with a snapshot and
// delivers an OpReset before the live events.
func TestSubscribeOverflow(t *testing.T) {
	ctx := testCtx(t)
	t.Run("lost", func(t *testing.T) {
		f := newFakeServer(t, func(int) []string {
			return []string{`{"id":"ID","sub":"s1","cursor":"e-1"}`, fakeEvent1, fakeOverflow}
		})
		c, err := Dial(ctx, f.url(), "k")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sub, err := c.Subscribe(ctx, SubscribeQuery{Col: "c"})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		evs := waitEnd(t, sub)
		if len(evs) != 1 || evs[0].TS != 1 || evs[0].Cursor != "e-2" {
			t.Fatalf("events before the overflow: %+v", evs)
		}
		if err := sub.Err(); !errors.Is(err, ErrSubscriptionLost) || !errors.Is(err, ErrCursorExpired) || !strings.Contains(err.Error(), "fell behind") ||
			!strings.Contains(err.Error(), "server ended the subscription") {
			t.Fatalf("Err() = %v; want ErrSubscriptionLost with the server's text", err)
		}
		if sub.Cursor() != "e-2" {
			t.Fatalf("Cursor() = %q", sub.Cursor())
		}
	})
	t.Run("resnapshot", func(t *testing.T) {
		f := newFakeServer(t, func(n int) []string {
			if n == 0 {
				return []string{`{"id":"ID","sub":"s1","cursor":"e-1"}`, fakeEvent1, fakeOverflow}
			}
			return []string{`{"id":"ID","sub":"s2","cursor":"e-9","records":{"a":{"ts":5,"data":"y"}}}`,
				`{"type":"event","sub":"s1","cursor":"e-3","events":[{"op":"ins","col":"c","doc":"a","ts":99,"data":"stale"}]}`,
				`{"type":"event","sub":"s2","cursor":"e-10","events":[{"op":"drec","col":"c","doc":"a","ts":5},{"op":"ins","col":"c","doc":"a","ts":6,"data":"z"}]}`}
		})
		c, err := Dial(ctx, f.url(), "k")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sub, err := c.Subscribe(ctx, SubscribeQuery{Col: "c", Where: "w"}, ResubscribeWithSnapshot())
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		var got []string
		for range 4 {
			ev := nextEvent(t, sub)
			got = append(got, fmt.Sprintf("%s %s", evString(ev), ev.Cursor))
			if ev.Op == OpReset && !mapsEqual(ev.Records, map[string]Record{"a": {TS: 5, Data: "y"}}) {
				t.Fatalf("reset records %v", ev.Records)
			}
		}
		want := []string{"ins c/a 1 x e-2", "reset c 1 records e-9", "drec c/a 5 ", "ins c/a 6 z e-10"}
		if !slices.Equal(got, want) {
			t.Fatalf("got  %q\nwant %q", got, want)
		}
		reqs := f.requests()
		if len(reqs) != 2 || reqs[1]["snapshot"] != true || reqs[1]["cursor"] != nil || reqs[1]["where"] != "w" {
			t.Fatalf("requests %v; want the second sub with snapshot, the same query, no cursor", reqs)
		}
	})
	t.Run("bad frame", func(t *testing.T) {
		f := newFakeServer(t, func(int) []string {
			return []string{`{"id":"ID","sub":"s1","cursor":"e-1"}`, `{"type":"event","sub":"s1","cursor":"e-2","events":"nope"}`}
		})
		c, err := Dial(ctx, f.url(), "k")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sub, err := c.Subscribe(ctx, SubscribeQuery{Col: "c"})
		if err != nil {
			t.Fatal(err)
		}
		waitEnd(t, sub)
		if err := sub.Err(); !errors.Is(err, ErrProtocol) {
			t.Fatalf("Err() = %v; want ErrProtocol", err)
		}
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
		reqs := f.requests()
		if len(reqs) != 2 || reqs[1]["type"] != "unsub" || reqs[1]["sub"] != "s1" {
			t.Fatalf("requests %v; want an unsub of s1", reqs)
		}
	})
}

// FuzzDecodePush: event and overflow frames from the network never panic
// the decoder, and a decoded frame's events keep their fields.
func FuzzDecodePush(f *testing.F) {
	for _, s := range []string{
		fakeEvent1, fakeOverflow,
		`{"type":"event","sub":"s1","cursor":"c","events":[{"op":"drrng","col":"c","doc":"d","fromTs":-9223372036854775808,"toTs":9223372036854775807},{"op":"dcol","col":"c"}]}`,
		`{"type":"event","events":[{"ts":1.5}]}`, `{"events":null}`, `{"events":[null]}`, `[]`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		p, err := decodePush(frame)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not match ErrProtocol", err)
			}
			return
		}
		b, err := json.Marshal(p.Events)
		if err != nil {
			t.Fatal(err)
		}
		var again []Event
		if err := json.Unmarshal(b, &again); err != nil || len(again) != len(p.Events) {
			t.Fatalf("events do not round-trip: %v", err)
		}
	})
}

// TestSubscribeEndsWhenReconnectingStops: with reconnection disabled, or
// once the reconnect loop gives up, nothing can resume a subscription: it
// ends with ErrConnectionLost instead of waiting forever.
func TestSubscribeEndsWhenReconnectingStops(t *testing.T) {
	srv := startServer(t)
	ctx := testCtx(t)
	disabled := newTestClient(t, srv, WithReconnectPolicy(ReconnectPolicy{Disabled: true}))
	giveUp := newTestClient(t, srv, WithConnectTimeout(time.Second),
		WithReconnectPolicy(ReconnectPolicy{MinDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond, MaxAttempts: 2}))
	a, err := disabled.Subscribe(ctx, SubscribeQuery{Col: "g"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := giveUp.Subscribe(ctx, SubscribeQuery{Col: "g"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv.kill()
	for name, sub := range map[string]*Subscription{"disabled": a, "gave up": b} {
		waitEnd(t, sub)
		if err := sub.Err(); !errors.Is(err, ErrConnectionLost) {
			t.Fatalf("%s: Err() = %v; want ErrConnectionLost", name, err)
		}
	}
}
