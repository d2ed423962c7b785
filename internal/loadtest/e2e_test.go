package loadtest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestIngestAndQdocAgainstNoop(t *testing.T) {
	ctx := context.Background()
	res, err := RunCeiling(ctx, Config{Scenario: ScenarioIngest, Records: 25_500, Docs: 100, Batch: 1000, Conns: 2, Inflight: 4})
	if err != nil {
		t.Fatal(err)
	}
	k := res.Measured.Kind(KindIns)
	// 25500 records over 2 connections: 12750 each, 13 requests each.
	if k == nil || k.Records != 25_500 || k.Requests != 26 || k.Errors != 0 || k.Conns != 2 || k.Unmatched != 0 {
		t.Fatalf("ingest result %+v", k)
	}
	if k.hist.Count() != 26 || k.LatencyMs.P50 <= 0 || k.LatencyMs.Max < k.LatencyMs.P99 {
		t.Errorf("latency %+v over %d samples", k.LatencyMs, k.hist.Count())
	}

	res, err = RunCeiling(ctx, Config{Scenario: ScenarioQdoc, Requests: 501, Docs: 10, Depth: 200, K: 100, Limit: 20, Reverse: true})
	if err != nil {
		t.Fatal(err)
	}
	k = res.Measured.Kind(KindQdoc)
	if k == nil || k.Requests != 501 || k.Records != 501*20 || k.Mismatched != 0 || k.Errors != 0 {
		t.Fatalf("qdoc result %+v", k)
	}
}

func TestQryAndMixedAgainstNoop(t *testing.T) {
	ctx := context.Background()
	res, err := RunCeiling(ctx, Config{Scenario: ScenarioQry, Requests: 20, Docs: 300})
	if err != nil {
		t.Fatal(err)
	}
	if k := res.Measured.Kind(KindQry); k == nil || k.Requests != 20 || k.Records != 20*300 || k.Mismatched != 0 {
		t.Fatalf("qry result %+v", k)
	}
	res, err = RunCeiling(ctx, Config{Scenario: ScenarioMixed, Duration: 300 * time.Millisecond, Docs: 20, Depth: 100, Batch: 100})
	if err != nil {
		t.Fatal(err)
	}
	w, r := res.Measured.Kind(KindIns), res.Measured.Kind(KindQdoc)
	if w == nil || r == nil || w.Requests == 0 || r.Requests == 0 || w.Records != 100*w.Requests {
		t.Fatalf("mixed result %+v / %+v", w, r)
	}
}

// scriptServer is a scripted WebSocket peer: after the ready frame it answers every request
// with the frames answer(id, type) returns (empty strings are skipped).
func scriptServer(t *testing.T, answer func(id, typ string) []string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(-1)
		ctx := r.Context()
		ws.Write(ctx, websocket.MessageText, readyFrame)
		for {
			_, msg, err := ws.Read(ctx)
			if err != nil {
				return
			}
			id, typ := envelopeIDType(msg)
			for _, out := range answer(string(id), string(typ)) {
				if out != "" {
					ws.Write(ctx, websocket.MessageText, []byte(out))
				}
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// replyServer answers every request with reply(id) after the ready frame.
func replyServer(t *testing.T, reply func(id string) string) string {
	return scriptServer(t, func(id, _ string) []string { return []string{reply(id)} })
}

func TestAllErrorsAbort(t *testing.T) {
	url := replyServer(t, func(id string) string {
		return `{"id":"` + id + `","error":"permission denied","code":"permission_denied"}`
	})
	_, err := Run(context.Background(), Config{Scenario: ScenarioIngest, URL: url, Key: "k", Records: 5000, Docs: 10})
	if err == nil || !strings.Contains(err.Error(), "all 6 ins requests failed") || !strings.Contains(err.Error(), "permission denied (permission_denied)") {
		t.Fatalf("got %v", err)
	}
}

func TestSomeErrorsCounted(t *testing.T) {
	n := 0
	url := replyServer(t, func(id string) string {
		n++ // one connection: the handler is sequential
		if n%2 == 0 {
			return `{"id":"` + id + `","error":"data.ts must be a positive integer","code":"bad_request"}`
		}
		return `{"id":"` + id + `"}`
	})
	res, err := Run(context.Background(), Config{Scenario: ScenarioIngest, URL: url, Key: "k", Records: 10_000, Docs: 10, Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	k := res.Measured.Kind(KindIns)
	if k.Requests != 5 || k.Errors != 5 || k.Records != 5000 || !strings.Contains(k.FirstError, "data.ts") {
		t.Fatalf("result %+v", k)
	}
}

func TestStallAborts(t *testing.T) {
	url := replyServer(t, func(string) string { return "" })
	start := time.Now()
	_, err := Run(context.Background(), Config{Scenario: ScenarioIngest, URL: url, Key: "k", Records: 1000, Docs: 10, Stall: 500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "no reply for") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("stall detection took %s", d)
	}
}

func TestStartServerMeasuresProcess(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLUXBENCH_FAKE_SERVER", "1")
	p, err := StartServer(context.Background(), []string{exe, "--data=x"}, "key", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Tail(), `"--secret-key=key" "--host=127.0.0.1" "--port=0" "--data=x"`) {
		t.Errorf("server arguments: %s", p.Tail())
	}
	res, err := Run(context.Background(), Config{Scenario: ScenarioIngest, URL: p.URL(), Key: "key", Records: 3000, Docs: 10, PID: p.PID})
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Server; s == nil || s.RSSBefore <= 0 || s.RSSAfter <= 0 || s.HWM < s.RSSAfter || s.RecordsStored != 3000 || s.CPU < 0 {
		t.Fatalf("server figures %+v", res.Server)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func TestStartServerReportsEarlyExit(t *testing.T) {
	script := t.TempDir() + "/server.sh"
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'level=ERROR msg=\"--data is not supported yet\"' >&2\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := StartServer(context.Background(), []string{script}, "k", nil)
	if err == nil || !strings.Contains(err.Error(), "--data is not supported yet") {
		t.Fatalf("got %v", err)
	}
}

func TestProcFigures(t *testing.T) {
	m, err := ReadMem(os.Getpid())
	if err != nil || m.RSS <= 0 || m.HWM < m.RSS {
		t.Fatalf("ReadMem: %+v %v", m, err)
	}
	if _, err := ReadCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	d, err := parseStatCPU([]byte("42 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20"))
	if err != nil || d != 4*time.Second {
		t.Fatalf("parseStatCPU = %s %v, want 4s", d, err)
	}
	if _, err := parseStatCPU([]byte("42 (x) S 1")); err == nil {
		t.Fatal("short stat accepted")
	}
}

func FuzzParseStatCPU(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, b []byte) { parseStatCPU(b) })
}

// TestClosedLoopKeepsEveryRequestInFlight: a peer that answers only once -inflight requests
// are waiting (as a server with group commit answers a burst at once) must still see the
// whole run, with large ins requests too: the tool never waits for a reply while it has a
// free slot. (An earlier version sent one large request per write and then waited.)
func TestClosedLoopKeepsEveryRequestInFlight(t *testing.T) {
	const inflight = 4
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := acceptWS(w, r)
		if err != nil {
			return
		}
		defer ws.closeNow()
		out := append(make([]byte, wsHeaderRoom), readyFrame...)
		if ws.writeText(out) != nil {
			return
		}
		var ids [][]byte
		for {
			ws.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			_, msg, err := ws.readMessage(nil)
			if err == nil {
				id, _ := envelopeIDType(msg)
				ids = append(ids, append([]byte(nil), id...))
				if len(ids) < inflight {
					continue
				}
			} else if len(ids) == 0 {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue // a pause in the tool's sending (a busy machine): nothing is waiting
				}
				return // the tool is done (or gone)
			}
			// inflight requests wait (or, at the very end, the last few): answer them all.
			for _, id := range ids {
				out = append(out[:wsHeaderRoom], `{"id":`...)
				out = append(appendJSONString(out, id), '}')
				if ws.writeText(out) != nil {
					return
				}
			}
			ids = ids[:0]
		}
	}))
	defer srv.Close()
	start := time.Now()
	res, err := Run(context.Background(), Config{Scenario: ScenarioIngest, URL: "ws" + strings.TrimPrefix(srv.URL, "http"),
		Records: 40_000, Docs: 100, Batch: 1000, Payload: 50, Conns: 1, Inflight: inflight})
	if err != nil {
		t.Fatal(err)
	}
	k := res.Measured.Kind(KindIns)
	if k == nil || k.Requests != 40 || k.Records != 40_000 || k.Errors != 0 {
		t.Fatalf("ingest result %+v", k)
	}
	// Each stall (a reply waited for while a slot was free) costs the peer's 300 ms
	// read timeout; 40 requests in bursts of 4 need none.
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the run took %v: the tool waited for replies with requests to send", d)
	}
}
