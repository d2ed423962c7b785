package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/volandoo/fluxiondb/internal/auth"
	"github.com/volandoo/fluxiondb/internal/db"
	"github.com/volandoo/fluxiondb/internal/engine"
	"github.com/volandoo/fluxiondb/internal/server"
	"github.com/volandoo/fluxiondb/internal/wal"
)

// Connection-level behaviour: pipelining, concurrency, exact timestamps and payloads, the
// frame size limit and graceful shutdown.

func TestPipelined1000(t *testing.T) {
	s := startServer(t, server.Config{})
	c := s.dial(t, masterKey)
	const n = 1000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "p" + strconv.Itoa(i)
	}
	errc := make(chan error, 1)
	go func() {
		// Writes from one goroutine while the test reads: a client that pipelines.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i, id := range ids {
			var f []byte
			if i%2 == 0 {
				f = envelope(id, "ins", fmt.Sprintf(`[{"col":"p","doc":"d","ts":%d,"data":"v%d"}]`, i+1, i))
			} else {
				// A read of what the previous request wrote: requests are handled in order.
				f = envelope(id, "qdoc", fmt.Sprintf(`{"col":"p","doc":"d","from":%d,"to":%d}`, i, i))
			}
			if err := c.ws.Write(ctx, websocket.MessageText, f); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i, id := range ids {
		r := c.readReply(id)
		if r.isErr() {
			t.Fatalf("request %d: %s", i, r.raw)
		}
		if i%2 == 1 {
			want := fmt.Sprintf(`{"id":%q,"records":[{"ts":%d,"data":"v%d"}]}`, id, i, i-1)
			if string(r.raw) != want {
				t.Fatalf("request %d: %s, want %s", i, r.raw, want)
			}
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	recs := c.ok("qdoc", `{"col":"p","doc":"d","to":100000}`).fields["records"].([]any)
	if len(recs) != n/2 {
		t.Errorf("stored %d records, want %d", len(recs), n/2)
	}
}

// TestRepliesKeepOrderBehindADurabilityWait: a read's reply, which the read loop writes
// itself when nothing is queued ahead of it, never overtakes an insert's reply still waiting
// in the write loop for its fsync. Each read is sent a moment after its insert, so the read
// loop finds the read alone in its buffer (the case where it may write directly) while the
// insert's fsync is under way.
func TestRepliesKeepOrderBehindADurabilityWait(t *testing.T) {
	s := startSubServer(t, db.Config{Dir: t.TempDir(), Fsync: wal.SyncAlways}, server.Config{})
	c := tryDial(t, "ws://"+s.addr+"/?api-key="+subKey, nil)
	c.readFrame() // ready
	const n = 100
	for i := range n {
		ins := c.send("ins", fmt.Sprintf(`[{"col":"o","doc":"d","ts":%d,"data":"v"}]`, i+1))
		time.Sleep(200 * time.Microsecond)
		read := c.send("qdoc", fmt.Sprintf(`{"col":"o","doc":"d","from":%d,"to":%d}`, i+1, i+1))
		if r := c.readReply(ins); r.isErr() {
			t.Fatalf("insert %d: %s", i, r.raw)
		}
		want := fmt.Sprintf(`{"id":%q,"records":[{"ts":%d,"data":"v"}]}`, read, i+1)
		if r := c.readReply(read); string(r.raw) != want {
			t.Fatalf("read %d: %s, want %s", i, r.raw, want)
		}
	}
}

// TestDirectReplyIsLogged: under --fsync=interval the read loop writes an insert's reply
// itself (QuickWait), and only once the change is in the log file: the reply means a crash
// of the process cannot lose it. The flush interval is an hour, so nothing but the reply's
// own wait writes the log.
func TestDirectReplyIsLogged(t *testing.T) {
	dir := t.TempDir()
	s := startSubServer(t, db.Config{Dir: dir, Fsync: wal.SyncInterval, FlushInterval: time.Hour}, server.Config{})
	c := tryDial(t, "ws://"+s.addr+"/?api-key="+subKey, nil)
	c.readFrame() // ready
	for i := range 3 {
		marker := fmt.Sprintf("marker-%d-%d", i, time.Now().UnixNano())
		if r := c.do("ins", fmt.Sprintf(`[{"col":"l","doc":"d","ts":%d,"data":%q}]`, i+1, marker)); r.isErr() {
			t.Fatalf("insert: %s", r.raw)
		}
		var found bool
		err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			found = found || bytes.Contains(b, []byte(marker))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			t.Fatalf("insert %d acknowledged before it was in the log", i)
		}
	}
}

// TestPipelinedLargeAndSmall mixes frames the read loop hands to the handler (batches over
// 16 KiB, a large binary frame, a large malformed one) with small ones it answers itself,
// all pipelined on one connection: every reply comes in order, and a small read right
// behind a large batch sees the whole batch — a small frame is never answered before the
// large ones ahead of it are done.
func TestPipelinedLargeAndSmall(t *testing.T) {
	s := startServer(t, server.Config{})
	c := s.dial(t, masterKey)
	const rounds, batch = 40, 400 // a 400-record batch is a ~30 KiB frame
	type sent struct {
		id   string
		kind string // "ins", "last", "bin", "bad", "small"
		want int    // for "last": the ts of the batch's last record
	}
	var plan []sent
	var frames [][]byte
	binary := map[int]bool{}
	for r := range rounds {
		var recs strings.Builder
		recs.WriteByte('[')
		for j := range batch {
			if j > 0 {
				recs.WriteByte(',')
			}
			fmt.Fprintf(&recs, `{"col":"big","doc":"d","ts":%d,"data":"%s"}`, r*batch+j+1, strings.Repeat("x", 40))
		}
		recs.WriteByte(']')
		id := fmt.Sprintf("b%d", r)
		plan = append(plan, sent{id: id, kind: "ins"})
		frames = append(frames, envelope(id, "ins", recs.String()))
		id = fmt.Sprintf("c%d", r)
		last := (r + 1) * batch // the batch's last record: applied last
		plan = append(plan, sent{id: id, kind: "last", want: last})
		frames = append(frames, envelope(id, "qdoc", fmt.Sprintf(`{"col":"big","doc":"d","from":%d,"to":%d}`, last, last)))
		switch r % 4 {
		case 1: // large binary: handed off, answered with an error in its turn
			binary[len(frames)] = true
			plan = append(plan, sent{kind: "bin"})
			frames = append(frames, make([]byte, 20<<10))
		case 2: // large and malformed: handed off, answered with an error in its turn
			id = fmt.Sprintf("m%d", r)
			plan = append(plan, sent{id: id, kind: "bad"})
			frames = append(frames, []byte(`{"id":"`+id+`","type":"ins","data":"[`+strings.Repeat(" ", 20<<10)+`"}`))
		case 3: // small write answered by the read loop
			id = fmt.Sprintf("s%d", r)
			plan = append(plan, sent{id: id, kind: "small"})
			frames = append(frames, envelope(id, "sval", fmt.Sprintf(`{"col":"big","key":"k","value":"%d"}`, r)))
		}
	}
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for i, f := range frames {
			typ := websocket.MessageText
			if binary[i] {
				typ = websocket.MessageBinary
			}
			if err := c.ws.Write(ctx, typ, f); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i, p := range plan {
		raw := c.readFrame()
		r := decodeReply(t, raw)
		if p.kind == "bin" {
			if !r.isErr() {
				t.Fatalf("reply %d to a binary frame: %s, want an error", i, raw)
			}
			continue
		}
		if id, _ := r.fields["id"].(string); id != p.id {
			t.Fatalf("reply %d has id %q, want %q (out of order): %s", i, id, p.id, raw)
		}
		switch p.kind {
		case "bad":
			if !r.isErr() {
				t.Fatalf("reply %d to a malformed frame: %s, want an error", i, raw)
			}
		case "last":
			if recs, _ := r.fields["records"].([]any); len(recs) != 1 {
				t.Fatalf("read %s right behind its batch did not see the batch's last record (ts %d): %s", p.id, p.want, raw)
			}
		default:
			if r.isErr() {
				t.Fatalf("reply %d: %s", i, raw)
			}
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	s := startServer(t, server.Config{})
	const conns, batches, perBatch = 4, 25, 20
	clients := make([]*client, conns)
	for i := range clients {
		clients[i] = s.dial(t, masterKey)
	}
	var wg sync.WaitGroup
	errs := make(chan string, conns)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// Each connection writes its own document and a shared one, in two collections,
			// pipelining all batches before reading the replies.
			for b := 0; b < batches; b++ {
				var sb strings.Builder
				sb.WriteByte('[')
				for r := 0; r < perBatch; r++ {
					if r > 0 {
						sb.WriteByte(',')
					}
					ts := b*perBatch + r + 1
					col := "shared"
					if r%2 == 1 {
						col = "other"
					}
					fmt.Fprintf(&sb, `{"col":%q,"doc":"w%d","ts":%d,"data":"c%d-%d"},{"col":"shared","doc":"all","ts":%d,"data":"x"}`,
						col, i, ts, i, ts, ts*conns+i)
				}
				sb.WriteByte(']')
				if err := c.ws.Write(ctx, websocket.MessageText, envelope(fmt.Sprintf("w%d-%d", i, b), "ins", sb.String())); err != nil {
					errs <- err.Error()
					return
				}
			}
			for b := 0; b < batches; b++ {
				_, raw, err := c.ws.Read(ctx)
				if err != nil {
					errs <- err.Error()
					return
				}
				var r struct{ ID, Error string }
				if err := json.Unmarshal(raw, &r); err != nil || r.Error != "" || r.ID != fmt.Sprintf("w%d-%d", i, b) {
					errs <- fmt.Sprintf("conn %d batch %d: %s", i, b, raw)
					return
				}
			}
		}()
	}
	// Meanwhile a reader queries.
	reader := s.dial(t, masterKey)
	for k := 0; k < 20; k++ {
		reader.ok("qry", `{"col":"shared","ts":9223372036854775807}`)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	c := clients[0]
	for i := 0; i < conns; i++ {
		n := 0
		for _, col := range []string{"shared", "other"} {
			n += len(c.ok("qdoc", fmt.Sprintf(`{"col":%q,"doc":"w%d","to":100000}`, col, i)).fields["records"].([]any))
		}
		if n != batches*perBatch {
			t.Errorf("writer %d: %d records stored, want %d", i, n, batches*perBatch)
		}
	}
	all := c.ok("qdoc", `{"col":"shared","doc":"all","to":100000}`).fields["records"].([]any)
	if len(all) != conns*batches*perBatch {
		t.Errorf("shared document: %d records, want %d", len(all), conns*batches*perBatch)
	}
}

func TestTimestampExtremes(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		tss := []int64{math.MinInt64, math.MinInt64 + 1, -1 << 53, -1, 0, 1, 1<<53 - 1, 1 << 53, 1<<53 + 1, 1<<53 + 2, math.MaxInt64 - 1, math.MaxInt64}
		var sb strings.Builder
		sb.WriteByte('[')
		for i := len(tss) - 1; i >= 0; i-- { // newest first: out of order on purpose
			if i != len(tss)-1 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"$col":"x","$doc":"d","ts":%d,"data":"%d"}`, tss[i], tss[i])
		}
		sb.WriteByte(']')
		c.expect("ins", g.p(sb.String()), `{}`)

		var want strings.Builder
		want.WriteString(`{"records":[`)
		for i, ts := range tss {
			if i > 0 {
				want.WriteByte(',')
			}
			fmt.Fprintf(&want, `{"ts":%d,"data":"%d"}`, ts, ts)
		}
		want.WriteString(`]}`)
		all := g.p(`{"$col":"x","$doc":"d","from":-9223372036854775808,"to":9223372036854775807}`)
		r := c.expect("qdoc", all, want.String())
		// Integers on the wire are exact decimal text (no exponent, no rounding).
		for _, ts := range tss {
			if !strings.Contains(string(r.raw), `"ts":`+strconv.FormatInt(ts, 10)+`,`) {
				t.Errorf("reply lacks exact ts %d: %s", ts, r.raw)
			}
		}
		c.expect("qry", g.p(`{"$col":"x","ts":9223372036854775807}`), `{"records":{"d":{"ts":9223372036854775807,"data":"9223372036854775807"}}}`)
		c.expect("qry", g.p(`{"$col":"x","ts":9007199254740993}`), `{"records":{"d":{"ts":9007199254740993,"data":"9007199254740993"}}}`)
		c.expect("qry", g.p(`{"$col":"x","ts":9223372036854775806,"from":9223372036854775807}`), `{"records":{}}`)
		c.expect("qdoc", g.p(`{"$col":"x","$doc":"d","from":9007199254740993,"to":9007199254740993}`),
			`{"records":[{"ts":9007199254740993,"data":"9007199254740993"}]}`)
		// drec of 2^53+1 removes exactly it, not its float64 neighbours.
		c.expect("drec", g.p(`{"$col":"x","$doc":"d","ts":9007199254740993}`), `{}`)
		c.expect("qdoc", g.p(`{"$col":"x","$doc":"d","from":9007199254740991,"to":9007199254740994}`),
			`{"records":[{"ts":9007199254740991,"data":"9007199254740991"},{"ts":9007199254740992,"data":"9007199254740992"},{"ts":9007199254740994,"data":"9007199254740994"}]}`)
		c.expect("drrng", g.p(`{"$col":"x","$doc":"d","fromTs":9223372036854775807,"toTs":9223372036854775807}`), `{}`)
		c.expect("qry", g.p(`{"$col":"x","ts":9223372036854775807}`), `{"records":{"d":{"ts":9223372036854775806,"data":"9223372036854775806"}}}`)
	})
}

// payloads that must come back byte-exact.
var payloads = []string{
	"plain",
	`{"temp":21.5,"tags":["a","b"],"nested":{"q":"\"quoted\""}}`,
	"héllo wörld — ñ 中文 العربية",
	"emoji 😀👍🏽🇫🇷 and ZWJ 👩‍👩‍👧",
	`quotes " and 'single' and \"escaped\"`,
	`back\slash \\ double \\\ triple \n literal`,
	"new\nline\r\ncrlf\ttab",
	"control \x00 \x01 \x07 \x1b \x1f \x7f end",
	"\u2028 line sep \u2029 para sep \ufeff bom",
	"</script><b>&amp;</b>",
	"",
	strings.Repeat("long payload ", 2000),
}

func TestPayloadsByteExact(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		recs := make([]map[string]any, len(payloads))
		for i, p := range payloads {
			recs[i] = map[string]any{g.col: "bytes", g.doc: "d", "ts": i + 1, "data": p}
		}
		c.ok("ins", mustJSON(recs))
		r := c.ok("qdoc", g.p(`{"$col":"bytes","$doc":"d","to":1000}`))
		got := r.fields["records"].([]any)
		if len(got) != len(payloads) {
			t.Fatalf("got %d records, want %d", len(got), len(payloads))
		}
		for i, x := range got {
			if d := x.(map[string]any)["data"]; d != payloads[i] {
				t.Errorf("record %d data = %q, want %q", i+1, d, payloads[i])
			}
		}
		// Names and KV values with the same characters.
		for i, p := range payloads[:10] {
			name := "n" + strconv.Itoa(i) + p
			c.ok("ins", mustJSON([]map[string]any{{g.col: name, g.doc: name, "ts": 1, "data": p}}))
			lr := c.ok("qry", mustJSON(map[string]any{g.col: name, "ts": 1})).fields["records"].(map[string]any)
			if rec, ok := lr[name].(map[string]any); !ok || rec["data"] != p {
				t.Errorf("qry on names %q: %v", name, lr)
			}
			c.ok("sval", mustJSON(map[string]any{g.col: "kv", "key": name, "value": "v" + p}))
			if v := c.ok("gval", mustJSON(map[string]any{g.col: "kv", "key": name})).fields["value"]; v != "v"+p {
				t.Errorf("gval %q = %q, want %q", name, v, "v"+p)
			}
		}
	})
}

func TestMaxMessageSize(t *testing.T) {
	const limit = 4096
	s := startServer(t, server.Config{MaxMessageSize: limit})
	c := s.dial(t, masterKey)
	// A frame just under the limit is served.
	pad := strings.Repeat("x", limit-200)
	c.ok("ins", `[{"col":"c","doc":"d","ts":1,"data":"`+pad+`"}]`)
	// One over it closes the connection with 1009.
	c.send("ins", `[{"col":"c","doc":"d","ts":2,"data":"`+pad+strings.Repeat("y", 400)+`"}]`)
	c.expectClose(websocket.StatusMessageTooBig, "")
	// Nothing of it was stored; the server still serves others.
	d := s.dial(t, masterKey)
	d.expect("qdoc", `{"col":"c","doc":"d","from":2,"to":2}`, `{"records":[]}`)
}

func TestGracefulShutdown(t *testing.T) {
	s := startServer(t, server.Config{})
	c := s.dial(t, masterKey)
	idle := s.dial(t, masterKey)
	const n = 200
	// Send n requests without reading any reply yet.
	for i := 0; i < n; i++ {
		c.send("ins", fmt.Sprintf(`[{"col":"g","doc":"d","ts":%d,"data":"x"}]`, i+1))
	}
	// Wait until the server has handled all of them (their replies may still be queued).
	deadline := time.Now().Add(5 * time.Second)
	for {
		cnt := 0
		s.DB.Engine.Range("g", "d", engine.RangeQuery{From: 0, To: math.MaxInt64}, func(int64, []byte) { cnt++ })
		if cnt == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server stored %d of %d records", cnt, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.stop()
	}()
	frames := c.expectClose(websocket.StatusGoingAway, "")
	if len(frames) != n {
		t.Errorf("got %d replies before the close, want %d", len(frames), n)
	}
	for i, f := range frames {
		r := decodeReply(t, f)
		if r.isErr() {
			t.Errorf("reply %d: %s", i, f)
		}
	}
	idle.expectClose(websocket.StatusGoingAway, "")
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not finish")
	}
	// No new connections after shutdown.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if ws, _, err := websocket.Dial(ctx, s.url("api-key="+masterKey), nil); err == nil {
		_ = ws.CloseNow()
		t.Error("dial after shutdown succeeded")
	}
}

// TestShutdownLeavesUnansweredRequestsUnapplied: a client that sends without pause always
// has requests on the wire when the server closes its connection. A request the server reads
// after its close frame went out can get no reply, so it must not be applied either: every
// record stored afterwards was acknowledged (its caller saw the connection close, not "ok").
func TestShutdownLeavesUnansweredRequestsUnapplied(t *testing.T) {
	for round := range 3 {
		s := startServer(t, server.Config{})
		c := s.dial(t, masterKey)
		stopSending := make(chan struct{})
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			for ts := 1; ; ts++ {
				select {
				case <-stopSending:
					return
				default:
				}
				frame := envelope("s"+strconv.Itoa(ts), "ins", fmt.Sprintf(`[{"col":"u","doc":"d","ts":%d,"data":"x"}]`, ts))
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := c.ws.Write(ctx, websocket.MessageText, frame)
				cancel()
				if err != nil {
					return
				}
			}
		}()
		acked := map[int64]bool{}
		stopped := make(chan struct{})
		for {
			b, err := c.tryRead(10 * time.Second)
			if err != nil {
				if websocket.CloseStatus(err) != websocket.StatusGoingAway {
					t.Fatalf("round %d: read ended with %v; want the 1001 close", round, err)
				}
				break
			}
			r := decodeReply(t, b)
			id, _ := r.fields["id"].(string)
			ts, perr := strconv.ParseInt(strings.TrimPrefix(id, "s"), 10, 64)
			if r.isErr() || perr != nil {
				t.Fatalf("round %d: unexpected reply %s", round, b)
			}
			acked[ts] = true
			if len(acked) == 500 {
				go func() { defer close(stopped); s.stop() }()
			}
		}
		close(stopSending)
		<-sent
		<-stopped
		var stored, unacked int
		s.DB.Engine.Range("u", "d", engine.RangeQuery{From: 0, To: math.MaxInt64}, func(ts int64, _ []byte) {
			stored++
			if !acked[ts] {
				unacked++
			}
		})
		if unacked > 0 {
			t.Fatalf("round %d: %d of %d stored records were never acknowledged (%d acknowledged)", round, unacked, stored, len(acked))
		}
	}
}

// A client that stops reading cannot stall anyone else: its connection is cut off, others
// are served meanwhile.
func TestSlowConsumer(t *testing.T) {
	s := startServer(t, server.Config{OutboundQueue: 4, WriteTimeout: 200 * time.Millisecond})
	stuck := s.dial(t, masterKey)
	big := strings.Repeat("z", 256<<10)
	stuck.ok("ins", `[{"col":"big","doc":"d","ts":1,"data":"`+big+`"}]`)
	// 128 replies of 256 KiB = 32 MiB: far more than socket buffers and the queue hold.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		for i := 0; i < 128; i++ {
			if stuck.ws.Write(ctx, websocket.MessageText, envelope("s"+strconv.Itoa(i), "qdoc", `{"col":"big","doc":"d","to":5}`)) != nil {
				return
			}
		}
	}()
	other := s.dial(t, masterKey)
	for i := 0; i < 20; i++ {
		start := time.Now()
		other.ok("ins", fmt.Sprintf(`[{"col":"o","doc":"d","ts":%d,"data":"x"}]`, i+1))
		if d := time.Since(start); d > time.Second {
			t.Errorf("request %d of another connection took %v while one client is stuck", i, d)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Srv.Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the stuck connection was not closed: %d connections open", s.Srv.Len())
		}
		time.Sleep(20 * time.Millisecond)
	}
	other.ok("cols", "{}")
	_ = stuck.ws.CloseNow()
}

// A client that reads a large reply at its own steady pace keeps its connection: the write
// deadline bounds a stall, not the whole transfer; a ping that cannot get past the reply is
// not a missing pong; and a client waiting for its reply is not idle. Each of the three cut
// the connection mid-frame.
func TestSlowReaderOfALargeReplyKeepsItsConnection(t *testing.T) {
	s := startServer(t, server.Config{
		WriteTimeout: 250 * time.Millisecond,
		PingInterval: 200 * time.Millisecond,
		IdleTimeout:  600 * time.Millisecond,
	})
	writer := s.dial(t, masterKey)
	const records, size = 16, 1 << 20
	for i := 1; i <= records; i++ {
		writer.ok("ins", fmt.Sprintf(`[{"col":"big","doc":"d","ts":%d,"data":"%s"}]`, i, strings.Repeat("z", size)))
	}

	// A small receive buffer, so the reply cannot sit in the kernel while nobody reads.
	dialer := &net.Dialer{}
	transport := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(32 << 10)
		}
		return conn, err
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.url("api-key="+masterKey), &websocket.DialOptions{HTTPClient: &http.Client{Transport: transport}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(64 << 20)
	if _, _, err := ws.Read(ctx); err != nil { // the ready frame
		t.Fatal(err)
	}
	if err := ws.Write(ctx, websocket.MessageText, envelope("q", "qdoc", `{"col":"big","doc":"d","to":100}`)); err != nil {
		t.Fatal(err)
	}
	_, r, err := ws.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The first 10 MiB at ~8 MB/s (over a second: several times each of the three periods),
	// the rest at once, so that what the kernel still holds when the server is done is read
	// well within the idle timeout.
	start := time.Now()
	var got int64
	for {
		n, err := io.CopyN(io.Discard, r, 64<<10)
		got += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes in %v: %v", got, time.Since(start).Round(time.Millisecond), err)
		}
		if got < 10<<20 {
			time.Sleep(8 * time.Millisecond)
		}
	}
	if got < records*size {
		t.Fatalf("reply of %d bytes, want over %d", got, records*size)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("the reply took %v: the test did not read slowly enough to check anything", d)
	}
	if err := ws.Write(ctx, websocket.MessageText, envelope("c", "cols", "{}")); err != nil {
		t.Fatalf("the connection did not survive the reply: %v", err)
	}
	if _, b, err := ws.Read(ctx); err != nil || !strings.Contains(string(b), `"big"`) {
		t.Fatalf("next reply: %s, %v", b, err)
	}
}

// The "connection closed" line says how a client ended it: its close code and reason, or 1006
// when it left without a close frame. Both were logged as code 0 with no reason, like an
// abrupt drop.
func TestClientCloseIsLogged(t *testing.T) {
	var logs syncBuffer
	s := startServer(t, server.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := s.dial(t, masterKey)
	if err := c.ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	raw := tryDial(t, s.url("api-key="+masterKey), nil)
	raw.readFrame()
	_ = raw.ws.CloseNow() // no close frame
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(logs.String(), "connection closed") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	text := logs.String()
	if !strings.Contains(text, `close_code=1000 close_reason="closed by the client: bye"`) {
		t.Errorf("no close line with the client's code and reason:\n%s", text)
	}
	if !strings.Contains(text, `close_code=1006 close_reason="the client went away without a close frame"`) {
		t.Errorf("no close line for a client that left without a close frame:\n%s", text)
	}
}

// Key changes leave an audit trail in the log: which key (its id, never the secret), the
// scope, and who asked (the connection's attributes). Nothing was logged.
func TestKeyChangesAreLogged(t *testing.T) {
	var logs syncBuffer
	s := startServer(t, server.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := s.dial(t, masterKey)
	const secret = "audit-trail-secret-key"
	c.ok("keys", `{"action":"add","key":"`+secret+`","scope":"readonly"}`)
	c.ok("keys", `{"action":"remove","key":"`+secret+`"}`)
	id := auth.HashKey(secret).ID()
	text := logs.String()
	for _, want := range []string{
		`msg="API key added or re-scoped"`, "added_key_id=" + id, "scope=readonly",
		`msg="API key removed"`, "removed_key_id=" + id, "key_id=master",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %s:\n%s", want, text)
		}
	}
	if strings.Contains(text, secret) {
		t.Errorf("the log shows the key's secret:\n%s", text)
	}
}
