package loadtest

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteTable prints a human summary of res (and of its ceiling run, when
// present, as extra rows so each figure has the tool's limit beside it).
func WriteTable(w io.Writer, res *Result) {
	c := res.Config
	fmt.Fprintf(w, "fluxbench %s against %s, %s\n", c.Scenario, res.Target, res.Date.Format(time.RFC3339))
	fmt.Fprintf(w, "config: batch %d, payload %d B, docs %d, collections %d", c.Batch, c.Payload, c.Docs, c.Collections)
	if c.Scenario == ScenarioFanout {
		rate := "flat out"
		if c.Rate > 0 {
			rate = fmt.Sprintf("%.0f records/s", c.Rate)
		}
		fmt.Fprintf(w, ", writers %d at %s, subscribers %d×%d", c.Writers, rate, c.Conns, c.Subs)
	} else if c.Scenario != ScenarioIngest {
		fmt.Fprintf(w, ", depth %d", c.Depth)
	}
	if c.Scenario == ScenarioQdoc || c.Scenario == ScenarioMixed {
		fmt.Fprintf(w, ", k %d, limit %d, reverse %v", c.K, c.Limit, c.Reverse)
	}
	if c.Records > 0 {
		fmt.Fprintf(w, ", records %d", c.Records)
	}
	if c.Requests > 0 {
		fmt.Fprintf(w, ", requests %d", c.Requests)
	}
	if c.Duration > 0 {
		fmt.Fprintf(w, ", duration %s", c.Duration)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tkind\tconns×inflight\trequests\terrors\trecords\telapsed s\trecords/s\trequests/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\t")
	rows := func(label string, p *PhaseResult) {
		if p == nil {
			return
		}
		for _, k := range p.Kinds {
			fmt.Fprintf(tw, "%s\t%s\t%d×%d\t%d\t%d\t%d\t%.2f\t%.0f\t%.0f\t%.3f\t%.3f\t%.3f\t%.3f\t\n",
				label, k.Kind, k.Conns, k.Inflight, k.Requests, k.Errors, k.Records, k.ElapsedSec,
				k.RecordsPerS, k.ReqPerS, k.LatencyMs.P50, k.LatencyMs.P90, k.LatencyMs.P99, k.LatencyMs.Max)
		}
	}
	rows("preload", res.Preload)
	rows("measure", res.Measured)
	if res.Ceiling != nil {
		rows("ceiling", res.Ceiling.Measured)
	}
	tw.Flush()
	writeFanout(w, res)
	if res.Measured != nil {
		for _, k := range res.Measured.Kinds {
			if k.Errors > 0 {
				fmt.Fprintf(w, "errors: %d %s replies were errors; first: %s\n", k.Errors, k.Kind, k.FirstError)
			}
			if k.Mismatched > 0 {
				fmt.Fprintf(w, "warning: %d %s replies had a record count other than expected\n", k.Mismatched, k.Kind)
			}
			if k.Unmatched > 0 {
				fmt.Fprintf(w, "warning: %d replies matched no request; first: %s\n", k.Unmatched, k.FirstUnmatched)
			}
		}
	}
	if s := res.Server; s != nil {
		fmt.Fprintf(w, "server: pid %d, cpu %.2f s in the measured phase; rss %s → %s (peak %s)",
			s.PID, s.CPU, mib(s.RSSBefore), mib(s.RSSAfter), mib(s.HWM))
		if s.RecordsStored >= minRecordsForMem {
			fmt.Fprintf(w, "; %d records stored: %.1f B/record beyond the %d B payload", s.RecordsStored, s.BytesPerRecord, c.Payload)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "tool: cpu %.2f s in the measured phase", res.ToolCPU)
	if res.Ceiling != nil {
		fmt.Fprintf(w, " (ceiling run: %.2f s, tool and noop server together)", res.Ceiling.ToolCPU)
	}
	fmt.Fprintln(w)
}

// writeFanout prints what the subscribers received, with the ceiling's row.
func writeFanout(w io.Writer, res *Result) {
	if res.Fanout == nil {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fanout\tsubs\tinserted\tinsert rec/s\tevents\texpected\tevents/s\tper conn min/med/max\tp50 ms\tp90 ms\tp99 ms\tmax ms\toverflow\t")
	row := func(label string, f *FanoutResult) {
		fmt.Fprintf(tw, "%s\t%d×%d\t%d\t%.0f\t%d\t%d\t%.0f\t%s/%s/%s\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t\n",
			label, f.Subscribers, f.SubsPerConn, f.Inserted, f.InsertPerS, f.Events, f.Expected, f.EventsPerS,
			human(f.PerConnMin), human(f.PerConnMedian), human(f.PerConnMax),
			f.LatencyMs.P50, f.LatencyMs.P90, f.LatencyMs.P99, f.LatencyMs.Max, f.Overflows)
	}
	row("measure", res.Fanout)
	if c := res.Ceiling; c != nil && c.Fanout != nil {
		row("ceiling", c.Fanout)
	}
	tw.Flush()
	f := res.Fanout
	if f.Events != f.Expected && f.Overflows == 0 && f.ConnsLost == 0 {
		fmt.Fprintf(w, "warning: subscribers received %d events, expected %d (records inserted × subscriptions)\n", f.Events, f.Expected)
	}
	if f.Other > 0 {
		fmt.Fprintf(w, "warning: %d pushed frames were not events (%d overflow signals); first: %s\n", f.Other, f.Overflows, f.FirstOther)
	}
	if f.ConnsLost > 0 {
		fmt.Fprintf(w, "warning: the server closed %d subscriber connections; first: %s\n", f.ConnsLost, f.FirstConnError)
	}
}

// minRecordsForMem is the fewest records for which bytes per record are
// printed: below it the server's fixed overhead dominates the difference.
const minRecordsForMem = 100_000

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// Summary returns one line with the headline figures, for scripts.
func Summary(res *Result) string {
	s := "summary: " + res.Config.Scenario
	kinds := func(p *PhaseResult) string {
		var out string
		for _, k := range p.Kinds {
			out += fmt.Sprintf(" %s %s rec/s %s req/s p50 %.3f ms p99 %.3f ms", k.Kind, human(k.RecordsPerS), human(k.ReqPerS), k.LatencyMs.P50, k.LatencyMs.P99)
			if k.Errors > 0 {
				out += fmt.Sprintf(" (%d errors)", k.Errors)
			}
		}
		return out
	}
	fan := func(f *FanoutResult) string {
		if f == nil {
			return ""
		}
		return fmt.Sprintf(" events %s/s to %d×%d subs, delivery p50 %.3f ms p99 %.3f ms, overflow %d, %d/%d events",
			human(f.EventsPerS), f.Subscribers, f.SubsPerConn, f.LatencyMs.P50, f.LatencyMs.P99, f.Overflows, f.Events, f.Expected)
	}
	if res.Measured != nil {
		s += kinds(res.Measured) + fan(res.Fanout)
	}
	if c := res.Ceiling; c != nil && c.Measured != nil {
		s += " | ceiling" + kinds(c.Measured) + fan(c.Fanout)
	}
	if sv := res.Server; sv != nil {
		s += fmt.Sprintf(" | server cpu %.2f s, rss %s", sv.CPU, mib(sv.RSSAfter))
		if sv.RecordsStored >= minRecordsForMem {
			s += fmt.Sprintf(", %.1f B/record beyond payload", sv.BytesPerRecord)
		}
	}
	return s + fmt.Sprintf(" | tool cpu %.2f s", res.ToolCPU)
}
