package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// connSpec is one connection of a phase.
type connSpec struct {
	gen      generator
	inflight int
}

// phaseOpts say where and how a phase runs.
type phaseOpts struct {
	name     string
	url, key string
	duration time.Duration // 0 = until the generators are done
	stall    time.Duration // abort when no reply arrives for this long
	progress io.Writer     // nil = quiet
	extra    func() string // appended to each progress line
}

// KindResult is the outcome of one request kind in one phase.
type KindResult struct {
	Kind           Kind    `json:"kind"`
	Conns          int     `json:"conns"`
	Inflight       int     `json:"inflight"`
	Requests       int64   `json:"requests"`
	Errors         int64   `json:"errors"`
	Records        int64   `json:"records"`
	Mismatched     int64   `json:"mismatched_replies,omitempty"`
	Unmatched      int64   `json:"unmatched_replies,omitempty"`
	ElapsedSec     float64 `json:"elapsed_s"`
	RecordsPerS    float64 `json:"records_per_s"`
	ReqPerS        float64 `json:"requests_per_s"`
	LatencyMs      Latency `json:"latency_ms"`
	FirstError     string  `json:"first_error,omitempty"`
	FirstUnmatched string  `json:"first_unmatched,omitempty"`

	hist Histogram
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// PhaseResult is the outcome of one phase.
type PhaseResult struct {
	Name       string       `json:"name"`
	ElapsedSec float64      `json:"elapsed_s"`
	Kinds      []KindResult `json:"kinds"`
}

// Kind returns the result for kind k, or nil.
func (p *PhaseResult) Kind(k Kind) *KindResult {
	for i := range p.Kinds {
		if p.Kinds[i].Kind == k {
			return &p.Kinds[i]
		}
	}
	return nil
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// runPhase dials every connection, then runs them all at once.
func runPhase(ctx context.Context, o phaseOpts, specs []connSpec) (*PhaseResult, error) {
	conns := make([]*pipeConn, 0, len(specs))
	defer func() {
		for _, c := range conns {
			c.ws.closeNow()
		}
	}()
	for i, sp := range specs {
		ws, err := Dial(ctx, o.url, o.key, fmt.Sprintf("fluxbench-%s-%d", o.name, i))
		if err != nil {
			return nil, err
		}
		conns = append(conns, newPipeConn(ws, sp.gen, sp.inflight))
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var deadline time.Time
	start := nanotime()
	if o.duration > 0 {
		deadline = time.Now().Add(o.duration)
	}
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { errs[i] = c.run(ctx, deadline) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	watch(ctx, cancel, o, conns, start, done)
	<-done
	end := nanotime()

	res := &PhaseResult{Name: o.name, ElapsedSec: float64(end-start) / 1e9}
	for _, c := range conns {
		st := c.st
		kr := res.Kind(st.kind)
		if kr == nil {
			res.Kinds = append(res.Kinds, KindResult{Kind: st.kind, Inflight: c.inflight})
			kr = &res.Kinds[len(res.Kinds)-1]
		}
		kr.Conns++
		kr.Requests += st.ok.Load()
		kr.Errors += st.errs.Load()
		kr.Records += st.records.Load()
		kr.Mismatched += st.mismatch.Load()
		kr.Unmatched += st.unmatched.Load()
		kr.ElapsedSec = max(kr.ElapsedSec, float64(st.lastReply.Load()-start)/1e9)
		kr.hist.Merge(&st.hist)
		if kr.FirstError == "" {
			kr.FirstError = st.firstErr
		}
		if kr.FirstUnmatched == "" {
			kr.FirstUnmatched = st.firstUnmatch
		}
	}
	for i := range res.Kinds {
		kr := &res.Kinds[i]
		if kr.ElapsedSec > 0 {
			kr.RecordsPerS = float64(kr.Records) / kr.ElapsedSec
			kr.ReqPerS = float64(kr.Requests+kr.Errors) / kr.ElapsedSec
		}
		h := &kr.hist
		kr.LatencyMs = Latency{P50: ms(h.Quantile(.5)), P90: ms(h.Quantile(.9)), P99: ms(h.Quantile(.99)), Max: ms(h.Max()), Mean: h.Mean() / 1e6}
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("phase %s: %w", o.name, err)
	}
	for _, kr := range res.Kinds {
		if kr.Requests == 0 && kr.Errors > 0 {
			return res, fmt.Errorf("phase %s: all %d %s requests failed; first error: %s", o.name, kr.Errors, kr.Kind, kr.FirstError)
		}
	}
	return res, nil
}

// watch prints progress every second, aborts the phase when nothing arrives
// for o.stall, and aborts early when every reply so far is an error.
func watch(ctx context.Context, cancel context.CancelCauseFunc, o phaseOpts, conns []*pipeConn, start int64, done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	type sums struct{ sent, ok, errs, recs, unmatched int64 }
	prev := map[Kind]sums{}
	var lastTotal int64
	lastChange := time.Now()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cur := map[Kind]sums{}
		var kinds []Kind
		var total, outstanding int64
		for _, c := range conns {
			s, ok := cur[c.st.kind]
			if !ok {
				kinds = append(kinds, c.st.kind)
			}
			s.sent += c.st.sent.Load()
			s.ok += c.st.ok.Load()
			s.errs += c.st.errs.Load()
			s.recs += c.st.records.Load()
			s.unmatched += c.st.unmatched.Load()
			cur[c.st.kind] = s
		}
		line := fmt.Sprintf("[%s %5.1fs]", o.name, float64(nanotime()-start)/1e9)
		for _, k := range kinds {
			s, p := cur[k], prev[k]
			line += fmt.Sprintf("  %s %s rec/s %s req/s err %d", k, human(float64(s.recs-p.recs)), human(float64(s.ok+s.errs-p.ok-p.errs)), s.errs)
			total += s.ok + s.errs + s.unmatched
			outstanding += s.sent - s.ok - s.errs
			if s.ok == 0 && s.errs >= 100 {
				var first string
				for _, c := range conns {
					if c.st.kind == k && first == "" {
						c.st.mu.Lock()
						first = c.st.firstErr
						c.st.mu.Unlock()
					}
				}
				cancel(fmt.Errorf("every %s request fails (%d so far); first error: %s", k, s.errs, first))
				return
			}
		}
		prev = cur
		if o.extra != nil {
			line += o.extra()
		}
		if o.progress != nil {
			fmt.Fprintln(o.progress, line)
		}
		if total != lastTotal {
			lastTotal, lastChange = total, time.Now()
		} else if outstanding > 0 && o.stall > 0 && time.Since(lastChange) > o.stall {
			cancel(fmt.Errorf("no reply for %s with %d requests outstanding", o.stall, outstanding))
			return
		}
	}
}

// human formats a rate compactly: 1234567 → "1.23M".
func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}
