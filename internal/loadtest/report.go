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
	if c.Scenario != ScenarioIngest {
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
	if res.Measured != nil {
		s += kinds(res.Measured)
	}
	if c := res.Ceiling; c != nil && c.Measured != nil {
		s += " | ceiling" + kinds(c.Measured)
	}
	if sv := res.Server; sv != nil {
		s += fmt.Sprintf(" | server cpu %.2f s, rss %s", sv.CPU, mib(sv.RSSAfter))
		if sv.RecordsStored >= minRecordsForMem {
			s += fmt.Sprintf(", %.1f B/record beyond payload", sv.BytesPerRecord)
		}
	}
	return s + fmt.Sprintf(" | tool cpu %.2f s", res.ToolCPU)
}
