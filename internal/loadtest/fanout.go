package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Fan-out (docs/PROTOCOL.md §7): subscriber connections subscribe to the
// collection before the writers start, so every record inserted in the
// measured phase must reach every subscription exactly once. Each record's
// payload starts with {"fbt":<stamp>}, the writer's monotonic clock at send
// time, and the receivers — in the same process, on the same clock — take
// now − stamp as the delivery latency.

// stampBase keeps every stamp 16 digits long (the payload size stays fixed)
// and never a number with a leading zero.
const stampBase = 1_000_000_000_000_000

// fanoutGen writes batches like ingestGen, with the send stamp in each
// record's payload and, when rate-limited, at a target rate.
type fanoutGen struct {
	prefixes  [][]byte // per document: escaped `{"col":…,"doc":…,"ts":`
	mid       []byte   // escaped `,"data":"{\"fbt\":`
	tail      []byte   // escaped `,\"pad\":\"xx\"}"}` and ','
	tsBase    int64
	batch     int
	doc       int
	round     int64
	tsDigits  []byte
	stamp     []byte
	remaining int64

	interval int64 // ns between batches; 0 = flat out
	due      int64
	timer    *time.Timer
}

// fanoutPayloadRest is what follows the stamp in a record's payload so that
// the whole payload is size bytes (or as short as it gets: {"fbt":N}).
func fanoutPayloadRest(size int) []byte {
	const fixed = len(`{"fbt":`) + 16 + len(`,"pad":"`) + len(`"}`)
	if size <= fixed {
		return []byte(`}`)
	}
	rest := []byte(`,"pad":"`)
	for range size - fixed {
		rest = append(rest, 'x')
	}
	return append(rest, `"}`...)
}

func newFanoutGen(docs []docRef, payloadSize int, tsBase int64, batch int, records int64, rate float64) *fanoutGen {
	g := &fanoutGen{tsBase: tsBase, batch: batch, remaining: records}
	if rate > 0 {
		g.interval = max(1, int64(float64(batch)/rate*1e9))
	}
	var inner []byte
	for _, d := range docs {
		inner = append(inner[:0], `{"col":`...)
		inner = appendJSONString(inner, []byte(d.col))
		inner = append(inner, `,"doc":`...)
		inner = appendJSONString(inner, []byte(d.doc))
		inner = append(inner, `,"ts":`...)
		g.prefixes = append(g.prefixes, appendEscaped(nil, inner))
	}
	// The payload is JSON text inside the record's data string, inside the
	// envelope's data string: escaped once for the record, once more here.
	inner = append(inner[:0], `,"data":"`...)
	inner = appendEscaped(inner, []byte(`{"fbt":`))
	g.mid = appendEscaped(nil, inner)
	inner = appendEscaped(inner[:0], fanoutPayloadRest(payloadSize))
	inner = append(inner, `"}`...)
	g.tail = append(appendEscaped(nil, inner), ',')
	g.tsDigits = strconv.AppendInt(nil, tsBase, 10)
	return g
}

func (g *fanoutGen) kind() Kind { return KindIns }

// paced reports whether the generator sends at a target rate.
func (g *fanoutGen) paced() bool { return g.interval > 0 }

// wait blocks until the next batch is due. A writer that fell behind (the
// server did not take the batches) catches up by at most 100 ms worth, so a
// stall is not followed by a burst that measures only the burst.
func (g *fanoutGen) wait(ctx context.Context) error {
	if g.interval == 0 {
		return nil
	}
	now := nanotime()
	if g.due == 0 || now-g.due > int64(100*time.Millisecond) {
		g.due = now
	}
	if d := g.due - now; d > 0 {
		if g.timer == nil {
			g.timer = time.NewTimer(time.Duration(d))
		} else {
			g.timer.Reset(time.Duration(d))
		}
		select {
		case <-g.timer.C:
		case <-ctx.Done():
			g.timer.Stop()
			return context.Cause(ctx)
		}
	}
	g.due += g.interval
	return nil
}

func (g *fanoutGen) next(dst, id []byte) ([]byte, int, bool) {
	n := g.batch
	if g.remaining >= 0 {
		if g.remaining == 0 {
			return dst, 0, false
		}
		n = int(min(int64(n), g.remaining))
		g.remaining -= int64(n)
	}
	g.stamp = strconv.AppendInt(g.stamp[:0], stampBase+nanotime(), 10)
	dst = frameHead(dst, id)
	dst = append(dst, `ins","data":"[`...)
	for range n {
		dst = append(dst, g.prefixes[g.doc]...)
		dst = append(dst, g.tsDigits...)
		dst = append(dst, g.mid...)
		dst = append(dst, g.stamp...)
		dst = append(dst, g.tail...)
		if g.doc++; g.doc == len(g.prefixes) {
			g.doc = 0
			g.round++
			g.tsDigits = strconv.AppendInt(g.tsDigits[:0], g.tsBase+g.round, 10)
		}
	}
	dst = dst[:len(dst)-1]
	dst = append(dst, `]"}`...)
	return dst, n, true
}

// pacer is a generator with a send rate: the pipelined writer waits for its
// turn before building each frame and sends it alone, so the stamp inside is
// the send time and not the time a coalesced neighbour was built.
type pacer interface {
	paced() bool
	wait(ctx context.Context) error
}

var (
	eventPrefix    = []byte(`{"type":"event"`)
	overflowPrefix = []byte(`{"type":"overflow"`)
	opKey          = []byte(`"op":"`)
	stampKey       = []byte(`\"fbt\":`)
)

// scanEvents counts the events of an event frame and records the delivery
// latency of each stamped one in h. It walks the '{' bytes only: every event
// object starts with {"op":" and a stamped payload with {\"fbt\": — the first
// cannot occur inside a JSON string (its quotes would be escaped) and the
// second only inside one, so neither is confused with the other or with
// document names. Runs of one stamp (a batch) are recorded in one step.
func scanEvents(b []byte, now int64, h *Histogram) (events, stamped int) {
	var run int64 = -1
	var runN uint64
	for {
		i := bytes.IndexByte(b, '{')
		if i < 0 {
			break
		}
		b = b[i+1:]
		switch {
		case bytes.HasPrefix(b, opKey):
			events++
		case bytes.HasPrefix(b, stampKey):
			v, n := leadingDigits(b[len(stampKey):])
			if n == 0 || v < stampBase {
				continue
			}
			stamped++
			lat := now - (v - stampBase)
			if lat != run {
				h.RecordN(run, runN)
				run, runN = lat, 0
			}
			runN++
		}
	}
	if runN > 0 {
		h.RecordN(run, runN)
	}
	return events, stamped
}

// leadingDigits parses the decimal digits at the start of b (at most 18, so
// the value fits in an int64) and says how many it read.
func leadingDigits(b []byte) (int64, int) {
	var v int64
	n := 0
	for n < len(b) && n < 18 && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	return v, n
}

// frameType returns the "type" of a pushed frame (slow path, for frames that
// do not start the way the server writes them).
func frameType(b []byte) string {
	var f struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(b, &f) != nil {
		return ""
	}
	return f.Type
}

// subConn is one subscriber connection and its counters. The atomics are
// read live by the progress line; hist belongs to the reader until it exits.
type subConn struct {
	ws        *wsConn
	subs      int
	events    atomic.Int64
	stamped   atomic.Int64
	frames    atomic.Int64
	overflows atomic.Int64
	other     atomic.Int64 // frames that are neither events nor overflow signals
	lastEvent atomic.Int64
	hist      Histogram

	mu         sync.Mutex
	firstOther string

	started bool // the reader runs (it closes done when it exits)
	done    chan struct{}
	readErr error
	closing atomic.Bool
}

func (s *subConn) noteOther(b []byte) {
	s.other.Add(1)
	s.mu.Lock()
	if s.firstOther == "" {
		s.firstOther = truncate(string(b), 200)
	}
	s.mu.Unlock()
}

func (s *subConn) readLoop() {
	defer close(s.done)
	buf := make([]byte, 0, 64<<10)
	for {
		var err error
		_, buf, err = s.ws.readMessage(buf)
		if err != nil {
			if !s.closing.Load() {
				s.readErr = err
			}
			return
		}
		s.handle(buf, nanotime())
	}
}

func (s *subConn) handle(b []byte, now int64) {
	typ := ""
	switch {
	case bytes.HasPrefix(b, eventPrefix):
		typ = "event"
	case bytes.HasPrefix(b, overflowPrefix):
		typ = "overflow"
	default:
		typ = frameType(b)
	}
	switch typ {
	case "event":
		n, st := scanEvents(b, now, &s.hist)
		s.frames.Add(1)
		s.stamped.Add(int64(st))
		s.events.Add(int64(n))
		s.lastEvent.Store(now)
	case "overflow":
		s.overflows.Add(1)
		s.noteOther(b)
	default:
		s.noteOther(b)
	}
}

// fanout is the subscriber side of a fan-out run.
type fanout struct {
	conns []*subConn
	prev  int64 // events at the last progress line
}

// FanoutResult is what the subscribers of a fan-out run received.
type FanoutResult struct {
	Subscribers    int     `json:"subscriber_conns"`
	SubsPerConn    int     `json:"subs_per_conn"`
	Inserted       int64   `json:"records_inserted"`
	InsertPerS     float64 `json:"insert_records_per_s"`
	Expected       int64   `json:"events_expected"` // inserted × subscriptions
	Events         int64   `json:"events"`
	Stamped        int64   `json:"events_stamped"`
	Frames         int64   `json:"frames"`
	ElapsedSec     float64 `json:"elapsed_s"` // writers' start to the last event received
	EventsPerS     float64 `json:"events_per_s"`
	PerConnMin     float64 `json:"per_conn_events_per_s_min"`
	PerConnMedian  float64 `json:"per_conn_events_per_s_median"`
	PerConnMax     float64 `json:"per_conn_events_per_s_max"`
	LatencyMs      Latency `json:"delivery_latency_ms"`
	Overflows      int64   `json:"overflow_frames"`
	Other          int64   `json:"other_frames,omitempty"`
	FirstOther     string  `json:"first_other_frame,omitempty"`
	ConnsLost      int     `json:"conns_lost,omitempty"` // subscriber connections the server closed
	FirstConnError string  `json:"first_conn_error,omitempty"`

	hist Histogram
}

// subFrame builds the sub request of subscription j on collection col.
func subFrame(j int, col string) []byte {
	data := appendJSONString([]byte(`{"col":`), []byte(col))
	data = append(data, '}')
	return AppendFrame(make([]byte, wsHeaderRoom), "sub."+strconv.Itoa(j), "sub", data)
}

// startFanout dials the subscriber connections, subscribes each subs times to
// col and waits for every reply, then starts the readers.
func startFanout(ctx context.Context, url, key, col string, conns, subs int) (*fanout, error) {
	f := &fanout{}
	ok := false
	defer func() {
		if !ok {
			f.close()
		}
	}()
	for i := range conns {
		ws, err := Dial(ctx, url, key, fmt.Sprintf("fluxbench-sub-%d", i))
		if err != nil {
			return nil, err
		}
		sc := &subConn{ws: ws, subs: subs, done: make(chan struct{})}
		f.conns = append(f.conns, sc)
		// Masked frames are masked in place: build them afresh per connection.
		var out []byte
		for j := range subs {
			out = append(out, ws.encodeFrame(opText, subFrame(j, col))...)
		}
		if err := ws.writeRaw(out); err != nil {
			return nil, fmt.Errorf("send sub: %w", err)
		}
	}
	for i, sc := range f.conns {
		sc.ws.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		var buf []byte
		for got := 0; got < subs; {
			var err error
			_, buf, err = sc.ws.readMessage(buf)
			if err != nil {
				return nil, fmt.Errorf("subscriber %d: wait for the sub reply: %w", i, err)
			}
			info, err := parseReply(buf)
			if err != nil {
				// A pushed frame before every reply is in: count it like the reader would.
				sc.handle(buf, nanotime())
				continue
			}
			if info.isErr {
				return nil, fmt.Errorf("subscriber %d: sub refused: %s", i, replyError(buf))
			}
			if !bytes.Contains(buf, []byte(`"sub":"`)) {
				return nil, fmt.Errorf("subscriber %d: sub reply without a subscription id: %s", i, truncate(string(buf), 200))
			}
			got++
		}
		sc.ws.nc.SetReadDeadline(time.Time{})
	}
	for _, sc := range f.conns {
		sc.started = true
		go sc.readLoop()
	}
	ok = true
	return f, nil
}

// progress is the fan-out part of the once-a-second progress line.
func (f *fanout) progress() string {
	var ev, ov int64
	for _, sc := range f.conns {
		ev += sc.events.Load()
		ov += sc.overflows.Load()
	}
	d := ev - f.prev
	f.prev = ev
	return fmt.Sprintf("  events %s/s overflow %d", human(float64(d)), ov)
}

// drain waits until every subscription received the inserted records, lost
// its subscription to an overflow or its connection, or until nothing has
// arrived for quiet.
func (f *fanout) drain(ctx context.Context, inserted int64, quiet time.Duration) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var last int64 = -1
	lastChange := time.Now()
	for {
		var total int64
		complete := true
		for _, sc := range f.conns {
			ev := sc.events.Load()
			total += ev
			select {
			case <-sc.done:
				continue
			default:
			}
			if ev < inserted*int64(sc.subs) && sc.overflows.Load() == 0 {
				complete = false
			}
		}
		if complete {
			return
		}
		if total != last {
			last, lastChange = total, time.Now()
		} else if time.Since(lastChange) > quiet {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// close ends every subscriber connection and waits for its reader; a server
// that does not answer the close handshake is cut off after 3 s.
func (f *fanout) close() {
	for _, sc := range f.conns {
		sc.closing.Store(true)
		sc.ws.close(1000, "done")
	}
	t := time.AfterFunc(3*time.Second, func() {
		for _, sc := range f.conns {
			sc.ws.closeNow()
		}
	})
	for _, sc := range f.conns {
		if sc.started {
			<-sc.done
		}
		sc.ws.closeNow()
	}
	t.Stop()
}

// result sums the subscribers' counters; start is the writers' start time.
func (f *fanout) result(ins *KindResult, start int64) *FanoutResult {
	r := &FanoutResult{Subscribers: len(f.conns)}
	if ins != nil {
		r.Inserted, r.InsertPerS = ins.Records, ins.RecordsPerS
	}
	var last int64
	per := make([]int64, 0, len(f.conns))
	for _, sc := range f.conns {
		r.SubsPerConn = sc.subs
		r.Expected += r.Inserted * int64(sc.subs)
		ev := sc.events.Load()
		per = append(per, ev)
		r.Events += ev
		r.Stamped += sc.stamped.Load()
		r.Frames += sc.frames.Load()
		r.Overflows += sc.overflows.Load()
		r.Other += sc.other.Load()
		last = max(last, sc.lastEvent.Load())
		r.hist.Merge(&sc.hist)
		if r.FirstOther == "" {
			r.FirstOther = sc.firstOther
		}
		if sc.readErr != nil {
			r.ConnsLost++
			if r.FirstConnError == "" {
				r.FirstConnError = sc.readErr.Error()
			}
		}
	}
	if last > start {
		r.ElapsedSec = float64(last-start) / 1e9
		r.EventsPerS = float64(r.Events) / r.ElapsedSec
		slices.Sort(per)
		rate := func(n int64) float64 { return float64(n) / r.ElapsedSec }
		r.PerConnMin, r.PerConnMax = rate(per[0]), rate(per[len(per)-1])
		r.PerConnMedian = rate(per[len(per)/2])
	}
	h := &r.hist
	r.LatencyMs = Latency{P50: ms(h.Quantile(.5)), P90: ms(h.Quantile(.9)), P99: ms(h.Quantile(.99)), Max: ms(h.Max()), Mean: h.Mean() / 1e6}
	return r
}

// Complete reports whether every subscription received every inserted record
// exactly once, with no overflow.
func (r *FanoutResult) Complete() bool {
	return r.Events == r.Expected && r.Stamped == r.Expected && r.Overflows == 0 && r.ConnsLost == 0
}

var errFanoutCollections = errors.New("fanout subscribes to one collection: use -collections 1")
