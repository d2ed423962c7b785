package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestFanoutGenFrame decodes a generated batch the way a server would (the
// envelope, then its data string, then each record's payload) and checks the
// stamp and the payload size.
func TestFanoutGenFrame(t *testing.T) {
	for _, size := range []int{0, 24, 50, 200} {
		g := newFanoutGen(docRefs("fb", 3, 1), size, 1000, 4, 6, 0)
		before := stampBase + nanotime()
		var frames [][]byte
		for {
			f, n, ok := g.next(nil, []byte("0.1"))
			if !ok {
				break
			}
			frames = append(frames, f)
			if n != 4 && n != 2 {
				t.Fatalf("batch of %d", n)
			}
		}
		if len(frames) != 2 {
			t.Fatalf("%d frames for 6 records in batches of 4", len(frames))
		}
		k := 0
		for _, f := range frames {
			var env struct{ ID, Type, Data string }
			if err := json.Unmarshal(f, &env); err != nil || env.Type != "ins" || env.ID != "0.1" {
				t.Fatalf("envelope %v: %s", err, f)
			}
			var recs []struct {
				Col, Doc, Data string
				TS             int64
			}
			if err := json.Unmarshal([]byte(env.Data), &recs); err != nil {
				t.Fatalf("data %v: %s", err, env.Data)
			}
			for _, r := range recs {
				if r.Col != "fbc0" || r.Doc != DocName("fb", k%3) || r.TS != 1000+int64(k/3) {
					t.Errorf("record %d: %+v", k, r)
				}
				var p struct {
					FBT int64  `json:"fbt"`
					Pad string `json:"pad"`
				}
				if err := json.Unmarshal([]byte(r.Data), &p); err != nil || p.FBT < before || p.FBT > stampBase+nanotime() {
					t.Errorf("payload %q: %v (stamp not in [%d, now])", r.Data, err, before)
				}
				if size >= 50 && len(r.Data) != size {
					t.Errorf("payload %d bytes, want %d", len(r.Data), size)
				}
				k++
			}
		}
	}
}

func TestScanEvents(t *testing.T) {
	// The server's layout (internal/server/subscribe.go), with a document name
	// that looks like an event inside a string, an unstamped record, a
	// delete, and two stamps 1 ms and 3 ms old at now = 10 ms.
	now := int64(10_000_000)
	s1, s2 := int64(stampBase+9_000_000), int64(stampBase+7_000_000)
	frame := `{"type":"event","sub":"s1","cursor":"ab-9","events":[` +
		`{"op":"ins","col":"c","doc":"{\"op\":\"x\"}","ts":1,"data":"{\"fbt\":` + itoa(s1) + `,\"pad\":\"x\"}"},` +
		`{"op":"ins","col":"c","doc":"d","ts":2,"data":"{\"fbt\":` + itoa(s1) + `}"},` +
		`{"op":"ins","col":"c","doc":"d","ts":3,"data":"{\"t\":1}"},` +
		`{"op":"drec","col":"c","doc":"d","ts":3},` +
		`{"op":"ins","col":"c","doc":"d","ts":4,"data":"{\"fbt\":` + itoa(s2) + `}"}]}`
	var h Histogram
	ev, st := scanEvents([]byte(frame), now, &h)
	if ev != 5 || st != 3 {
		t.Fatalf("scanEvents = %d events, %d stamped; want 5, 3", ev, st)
	}
	if h.Count() != 3 || h.Min() != 1_000_000 || h.Max() != 3_000_000 {
		t.Fatalf("histogram: %d values in [%d, %d]", h.Count(), h.Min(), h.Max())
	}
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }

func FuzzScanEvents(f *testing.F) {
	f.Add([]byte(`{"type":"event","sub":"s1","cursor":"x-1","events":[{"op":"ins","col":"c","doc":"d","ts":1,"data":"{\"fbt\":1000000000000123}"}]}`))
	f.Add([]byte(`{"type":"event","events":[{"op":"dcol","col":"c"},{\"fbt\":99999999999999999999999}`))
	f.Add([]byte(`{\"fbt\":`))
	f.Add([]byte(`{"type":"overflow","sub":"s1","code":"cursor_expired"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Histogram
		ev, st := scanEvents(b, nanotime(), &h)
		if ev+st > bytes.Count(b, []byte("{")) || h.Count() != uint64(st) {
			t.Fatalf("events %d, stamped %d, recorded %d, braces %d", ev, st, h.Count(), bytes.Count(b, []byte("{")))
		}
		var sc subConn
		sc.handle(b, nanotime()) // any frame: counted somewhere, never a panic
		if sc.frames.Load()+sc.overflows.Load()+sc.other.Load() == 0 {
			t.Fatal("frame not counted")
		}
	})
}

func TestFanoutAgainstNoop(t *testing.T) {
	ctx := context.Background()
	// Paced: 1 s at 3000 records/s over 2 writers, 5 connections × 2 subscriptions.
	res, err := RunCeiling(ctx, Config{Scenario: ScenarioFanout, Duration: time.Second, Conns: 5, Subs: 2, Writers: 2, Rate: 3000, Docs: 50})
	if err != nil {
		t.Fatal(err)
	}
	f := res.Fanout
	if f == nil || !f.Complete() || f.Expected != f.Inserted*10 || f.Subscribers != 5 || f.SubsPerConn != 2 {
		t.Fatalf("fanout %+v", f)
	}
	// The writers never exceed the rate, and keep close to it (they catch up after a hiccup
	// of < 100 ms; the lower bound leaves room for a machine busy with other tests).
	if f.Inserted < 600 || f.Inserted > 3100 {
		t.Errorf("inserted %d records in 1 s at 3000/s", f.Inserted)
	}
	if f.LatencyMs.P50 <= 0 || f.LatencyMs.Max < f.LatencyMs.P99 || f.hist.Count() != uint64(f.Expected) {
		t.Errorf("latency %+v over %d samples", f.LatencyMs, f.hist.Count())
	}
	if f.EventsPerS <= 0 || f.PerConnMin > f.PerConnMedian || f.PerConnMedian > f.PerConnMax {
		t.Errorf("rates %+v", f)
	}
	var out bytes.Buffer
	WriteTable(&out, res)
	if !strings.Contains(out.String(), "per conn min/med/max") || strings.Contains(out.String(), "warning") {
		t.Errorf("table:\n%s", out.String())
	}

	// Flat out, bounded by a record count.
	res, err = RunCeiling(ctx, Config{Scenario: ScenarioFanout, Records: 5000, Batch: 100, Conns: 3, Rate: 0})
	if err != nil {
		t.Fatal(err)
	}
	if f := res.Fanout; f.Inserted != 5000 || f.Events != 15000 || !f.Complete() {
		t.Fatalf("flat out: %+v", f)
	}
}

// pushServer answers sub with subReply (ID replaced by the request id) and
// ins with {"id":…}; after each reply it sends push(type), when not empty.
func pushServer(t *testing.T, subReply string, push func(typ string) string) string {
	return scriptServer(t, func(id, typ string) []string {
		out := `{"id":"` + id + `"}`
		if typ == "sub" {
			out = strings.ReplaceAll(subReply, "ID", id)
		}
		return []string{out, push(typ)}
	})
}

func TestFanoutOverflowCounted(t *testing.T) {
	const overflow = `{"type":"overflow","sub":"s1","cursor":"0","error":"fell behind","code":"cursor_expired"}`
	// Every subscription is ended by an overflow signal right after its reply:
	// counted, and the drain does not wait for events that cannot come.
	url := pushServer(t, `{"id":"ID","sub":"s1","cursor":"0"}`, func(typ string) string {
		if typ == "sub" {
			return overflow
		}
		return ""
	})
	start := time.Now()
	res, err := Run(context.Background(), Config{Scenario: ScenarioFanout, URL: url, Key: "k", Records: 20, Conns: 3})
	if err != nil {
		t.Fatal(err)
	}
	f := res.Fanout
	if f.Inserted != 20 || f.Events != 0 || f.Overflows != 3 || f.Complete() || !strings.Contains(f.FirstOther, "cursor_expired") {
		t.Fatalf("fanout %+v", f)
	}
	if d := time.Since(start); d > fanoutQuiet {
		t.Errorf("drain waited %s after every subscription overflowed", d)
	}
	var out bytes.Buffer
	WriteTable(&out, res)
	if !strings.Contains(out.String(), "3 overflow signals") {
		t.Errorf("table:\n%s", out.String())
	}

	// No event and no signal: the drain gives up after fanoutQuiet and the
	// shortfall is reported.
	url = pushServer(t, `{"id":"ID","sub":"s1","cursor":"0"}`, func(string) string { return "" })
	start = time.Now()
	res, err = Run(context.Background(), Config{Scenario: ScenarioFanout, URL: url, Key: "k", Records: 20, Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < fanoutQuiet || d > fanoutQuiet+3*time.Second {
		t.Errorf("drain took %s, want about %s", d, fanoutQuiet)
	}
	out.Reset()
	WriteTable(&out, res)
	if !strings.Contains(out.String(), "warning: subscribers received 0 events, expected 20") {
		t.Errorf("table:\n%s", out.String())
	}

	var sc subConn
	sc.handle([]byte(`{"sub":"s2","type":"overflow"}`), 0)
	sc.handle([]byte(`{"sub":"s2","type":"event","events":[{"op":"dcol","col":"c"}]}`), 0)
	if sc.overflows.Load() != 1 || sc.events.Load() != 1 || sc.frames.Load() != 1 {
		t.Fatalf("fields in another order: overflows %d, events %d, frames %d", sc.overflows.Load(), sc.events.Load(), sc.frames.Load())
	}
}

func TestFanoutSubRefused(t *testing.T) {
	url := pushServer(t, `{"id":"ID","error":"unknown message type \"sub\"","code":"bad_request"}`, func(string) string { return "" })
	_, err := Run(context.Background(), Config{Scenario: ScenarioFanout, URL: url, Key: "k", Records: 20, Conns: 2})
	if err == nil || !strings.Contains(err.Error(), `sub refused: unknown message type "sub" (bad_request)`) {
		t.Fatalf("got %v", err)
	}
	_, err = Run(context.Background(), Config{Scenario: ScenarioFanout, URL: url, Key: "k", Collections: 2, Docs: 10})
	if err != errFanoutCollections {
		t.Fatalf("two collections: %v", err)
	}
}

func TestHistogramRecordN(t *testing.T) {
	var a, b Histogram
	for range 5 {
		a.Record(1234)
	}
	a.Record(7)
	b.RecordN(1234, 5)
	b.RecordN(99, 0)
	b.RecordN(7, 1)
	if a != b {
		t.Fatalf("RecordN differs from Record: n %d/%d min %d/%d max %d/%d", a.n, b.n, a.min, b.min, a.max, b.max)
	}
}
