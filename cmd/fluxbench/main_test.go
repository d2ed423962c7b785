package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/volandoo/fluxiondb/internal/db"
	"github.com/volandoo/fluxiondb/internal/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},                                     // no scenario
		{"ingest"},                             // no target
		{"ingest", "-noop", "-url", "ws://x"},  // two targets
		{"ingest", "-url", "ws://127.0.0.1:1"}, // no key
		{"ingest", "-noop", "-bogus"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %s)", args, code, errb.String())
		}
	}
}

func TestNoopJSON(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"qdoc", "-noop", "-q", "-json", "-requests", "40", "-docs", "5", "-depth", "50", "-k", "10"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res struct {
		Target   string
		Measured struct {
			Kinds []struct {
				Kind     string
				Requests int64
				Records  int64
			}
		}
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	if res.Target != "noop" || len(res.Measured.Kinds) != 1 || res.Measured.Kinds[0].Requests != 40 || res.Measured.Kinds[0].Records != 400 {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(errb.String(), "summary: qdoc qdoc") {
		t.Errorf("no summary line on stderr:\n%s", errb.String())
	}
}

// TestFanoutRealServer runs the fanout scenario against the real server,
// in-process (the same db.Open + server.New that cmd/fluxiondb wires): every
// record inserted must reach every subscription exactly once, with no
// overflow.
func TestFanoutRealServer(t *testing.T) {
	const key = "fanout-master"
	d, err := db.Open(db.Config{MasterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(d, server.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() { defer close(served); _ = hs.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		srv.Shutdown(ctx)
		<-served
		_ = d.Close()
	}()

	var out, errb bytes.Buffer
	args := []string{"fanout", "-url", "ws://" + ln.Addr().String(), "-key", key, "-q", "-json",
		"-duration", "2s", "-conns", "5", "-subs", "2", "-writers", "2", "-rate", "5000"}
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res struct {
		Fanout struct {
			Subscribers int     `json:"subscriber_conns"`
			Inserted    int64   `json:"records_inserted"`
			InsertPerS  float64 `json:"insert_records_per_s"`
			Expected    int64   `json:"events_expected"`
			Events      int64   `json:"events"`
			Stamped     int64   `json:"events_stamped"`
			Overflows   int64   `json:"overflow_frames"`
			Other       int64   `json:"other_frames"`
			ConnsLost   int     `json:"conns_lost"`
			Latency     struct {
				P50, P99, Max float64
			} `json:"delivery_latency_ms"`
		}
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	f := res.Fanout
	t.Logf("%+v", f)
	// 2 s at 5000 records/s: about 10000 records (half that under -race);
	// far fewer means the writers stalled.
	if f.Subscribers != 5 || f.Inserted < 1000 || f.Expected != f.Inserted*5*2 {
		t.Fatalf("fanout %+v", f)
	}
	if f.Events != f.Expected || f.Stamped != f.Expected || f.Overflows != 0 || f.Other != 0 || f.ConnsLost != 0 {
		t.Fatalf("received %d events (%d stamped), want %d = %d records × 10 subscriptions; overflow %d, other %d, lost %d",
			f.Events, f.Stamped, f.Expected, f.Inserted, f.Overflows, f.Other, f.ConnsLost)
	}
	if f.Latency.P50 <= 0 || f.Latency.Max < f.Latency.P99 {
		t.Errorf("delivery latency %+v", f.Latency)
	}
	if !strings.Contains(errb.String(), "summary: fanout") {
		t.Errorf("no summary line on stderr:\n%s", errb.String())
	}
}
