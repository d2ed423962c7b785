package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Scenarios the tool knows.
const (
	ScenarioIngest = "ingest"
	ScenarioQry    = "qry"
	ScenarioQdoc   = "qdoc"
	ScenarioMixed  = "mixed"
	ScenarioFanout = "fanout"
)

// Config describes one run. Zero values are replaced by Defaults.
type Config struct {
	Scenario    string        `json:"scenario"`
	URL         string        `json:"-"`
	Key         string        `json:"-"`
	Conns       int           `json:"conns"`    // connections of the measured kind (readers in mixed, subscribers in fanout)
	Inflight    int           `json:"inflight"` // requests in flight per connection
	Batch       int           `json:"batch"`    // records per ins request
	Payload     int           `json:"payload"`  // payload bytes per record
	Docs        int           `json:"docs"`
	Collections int           `json:"collections"`
	Records     int64         `json:"records,omitempty"`  // ingest: records to send (0 = by Duration)
	Requests    int64         `json:"requests,omitempty"` // qry/qdoc: requests to send (0 = by Duration)
	Duration    time.Duration `json:"duration_ns,omitempty"`
	Depth       int           `json:"depth,omitempty"` // qry/qdoc/mixed: records preloaded per document
	K           int           `json:"k,omitempty"`     // qdoc: records per range
	Limit       int           `json:"limit,omitempty"` // qdoc: limit field (0 = none)
	Reverse     bool          `json:"reverse,omitempty"`
	Writers     int           `json:"writers,omitempty"` // mixed, fanout: ingest connections
	Subs        int           `json:"subs,omitempty"`    // fanout: subscriptions per subscriber connection
	Rate        float64       `json:"rate,omitempty"`    // fanout: records/s over all writers (0 = flat out)
	Prefix      string        `json:"prefix"`            // prepended to collection and document names
	TSBase      int64         `json:"ts_base"`

	PreloadConns    int           `json:"-"`
	PreloadInflight int           `json:"-"`
	Stall           time.Duration `json:"-"` // abort after this long without a reply
	Settle          time.Duration `json:"-"` // wait before the final memory sample
	PID             int           `json:"-"` // server PID for /proc figures (0 = unknown)
	Progress        io.Writer     `json:"-"`
	skipPreload     bool
}

// Defaults fills unset fields with the defaults of the scenario.
func (c *Config) Defaults() {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	switch c.Scenario {
	case ScenarioQry:
		def(&c.Conns, 1)
		def(&c.Inflight, 1)
		def(&c.Depth, 1)
	case ScenarioQdoc:
		def(&c.Conns, 2)
		def(&c.Inflight, 4)
		def(&c.Docs, 1000)
		def(&c.Depth, 1000)
	case ScenarioMixed:
		def(&c.Conns, 1)
		def(&c.Inflight, 4)
		def(&c.Writers, 1)
		def(&c.Docs, 1000)
		def(&c.Depth, 1000)
	case ScenarioFanout:
		def(&c.Conns, 100)
		def(&c.Inflight, 4)
		def(&c.Writers, 1)
		def(&c.Subs, 1)
		def(&c.Batch, 10)
		def(&c.Docs, 1000)
	default:
		def(&c.Conns, 2)
		def(&c.Inflight, 4)
	}
	def(&c.Batch, 1000)
	def(&c.Payload, 50)
	def(&c.Docs, 10000)
	def(&c.Collections, 1)
	def(&c.K, 100)
	def(&c.PreloadConns, 2)
	def(&c.PreloadInflight, 4)
	if c.Records == 0 && c.Requests == 0 && c.Duration == 0 {
		c.Duration = 5 * time.Second
	}
	if c.Stall == 0 {
		c.Stall = 10 * time.Second
	}
	if c.TSBase == 0 {
		c.TSBase = 1_700_000_000_000
	}
	if c.Prefix == "" {
		c.Prefix = "fb"
	}
}

// Result is everything a run measured.
type Result struct {
	Date     time.Time      `json:"date"`
	Target   string         `json:"target"` // "server", "noop" or a URL
	Config   Config         `json:"config"`
	Preload  *PhaseResult   `json:"preload,omitempty"`
	Measured *PhaseResult   `json:"measured"`
	Server   *ServerFigures `json:"server,omitempty"`
	ToolCPU  float64        `json:"tool_cpu_s"`
	Ceiling  *Result        `json:"ceiling,omitempty"`
	Fanout   *FanoutResult  `json:"fanout,omitempty"`
}

// ServerFigures are read from /proc/PID of the server.
type ServerFigures struct {
	PID            int     `json:"pid"`
	RSSBefore      int64   `json:"rss_before_bytes"`
	RSSAfter       int64   `json:"rss_after_bytes"`
	HWM            int64   `json:"hwm_bytes"`
	RecordsStored  int64   `json:"records_stored"`
	BytesPerRecord float64 `json:"bytes_per_record_beyond_payload"`
	CPU            float64 `json:"cpu_s"` // measured phase only
}

// Run runs cfg.Scenario against cfg.URL.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.Defaults()
	writing := max(cfg.Conns, cfg.PreloadConns, cfg.Writers)
	if cfg.Scenario == ScenarioFanout {
		writing = cfg.Writers
		if cfg.Collections != 1 {
			return nil, errFanoutCollections
		}
	}
	if cfg.Docs < writing {
		return nil, fmt.Errorf("-docs (%d) must be at least the number of writing connections", cfg.Docs)
	}
	if cfg.Collections > cfg.Docs {
		return nil, fmt.Errorf("-collections (%d) must not exceed -docs (%d)", cfg.Collections, cfg.Docs)
	}
	res := &Result{Date: time.Now().UTC(), Target: cfg.URL, Config: cfg}
	var before Mem
	if cfg.PID > 0 {
		var err error
		if before, err = ReadMem(cfg.PID); err != nil {
			return nil, err
		}
	}
	payload := MakePayload(cfg.Payload)
	refs := docRefs(cfg.Prefix, cfg.Docs, cfg.Collections)
	o := phaseOpts{url: cfg.URL, key: cfg.Key, stall: cfg.Stall, progress: cfg.Progress}

	var stored int64
	switch cfg.Scenario {
	case ScenarioQry, ScenarioQdoc, ScenarioMixed:
		if cfg.skipPreload {
			break
		}
		po := o
		po.name = "preload"
		specs := ingestSpecs(refs, payload, cfg.TSBase, cfg.Batch, cfg.PreloadConns, cfg.PreloadInflight, int64(cfg.Depth), -1)
		pr, err := runPhase(ctx, po, specs)
		res.Preload = pr
		if err != nil {
			return res, err
		}
		want := int64(cfg.Docs) * int64(cfg.Depth)
		if kr := pr.Kind(KindIns); kr == nil || kr.Errors > 0 || kr.Records != want {
			var got KindResult
			if kr != nil {
				got = *kr
			}
			return res, fmt.Errorf("preload: stored %d of %d records, %d errors (first: %s)", got.Records, want, got.Errors, got.FirstError)
		}
		stored = int64(cfg.Docs) * int64(cfg.Depth)
	case ScenarioIngest:
	case ScenarioFanout:
	default:
		return nil, fmt.Errorf("unknown scenario %q (ingest, qry, qdoc, mixed, fanout)", cfg.Scenario)
	}

	o.name = "measure"
	o.duration = cfg.Duration
	var specs []connSpec
	switch cfg.Scenario {
	case ScenarioIngest:
		specs = ingestSpecs(refs, payload, cfg.TSBase, cfg.Batch, cfg.Conns, cfg.Inflight, 0, cfg.Records)
	case ScenarioQry:
		for i := range cfg.Conns {
			specs = append(specs, connSpec{newQryGen(cfg.Prefix, cfg.Collections, cfg.Docs, share(cfg.Requests, cfg.Conns, i)), cfg.Inflight})
		}
	case ScenarioQdoc:
		specs = qdocSpecs(cfg, refs, cfg.Conns)
	case ScenarioMixed:
		if cfg.Duration == 0 {
			return nil, errors.New("mixed needs -duration")
		}
		specs = ingestSpecs(refs, payload, cfg.TSBase+int64(cfg.Depth), cfg.Batch, cfg.Writers, cfg.Inflight, 0, -1)
		specs = append(specs, qdocSpecs(cfg, refs, cfg.Conns)...)
	case ScenarioFanout:
		specs = fanoutSpecs(cfg, refs)
	}
	var fan *fanout
	if cfg.Scenario == ScenarioFanout {
		// Subscribed before the writers start: every record of the phase must reach every subscription.
		var err error
		if fan, err = startFanout(ctx, cfg.URL, cfg.Key, ColName(cfg.Prefix, 0), cfg.Conns, cfg.Subs); err != nil {
			return nil, fmt.Errorf("fanout: %w", err)
		}
		o.extra = fan.progress
	}
	cpu0, tool0 := serverCPU(cfg.PID), ToolCPU()
	start := nanotime()
	mr, err := runPhase(ctx, o, specs)
	res.Measured = mr
	if fan != nil {
		if mr != nil && err == nil {
			fan.drain(ctx, mr.Kind(KindIns).Records, fanoutQuiet)
		}
		fan.close()
		if mr != nil {
			res.Fanout = fan.result(mr.Kind(KindIns), start)
		}
	}
	res.ToolCPU = (ToolCPU() - tool0).Seconds()
	if err != nil {
		return res, err
	}
	if kr := mr.Kind(KindIns); kr != nil {
		stored += kr.Records
	}
	if cfg.PID > 0 {
		sf := &ServerFigures{PID: cfg.PID, RSSBefore: before.RSS, RecordsStored: stored, CPU: (serverCPU(cfg.PID) - cpu0).Seconds()}
		if cfg.Settle > 0 {
			time.Sleep(cfg.Settle)
		}
		after, err := ReadMem(cfg.PID)
		if err != nil {
			return res, err
		}
		sf.RSSAfter, sf.HWM = after.RSS, after.HWM
		if stored > 0 {
			sf.BytesPerRecord = float64(sf.RSSAfter-sf.RSSBefore)/float64(stored) - float64(cfg.Payload)
		}
		res.Server = sf
	}
	return res, nil
}

// RunCeiling runs cfg against an in-process NoopServer (no preload: the noop
// server stores nothing) and returns the tool's own figures.
func RunCeiling(ctx context.Context, cfg Config) (*Result, error) {
	cfg.Defaults()
	cfg.PID = 0
	cfg.skipPreload = true
	k := min(cfg.K, cfg.Depth)
	if cfg.Limit > 0 {
		k = min(k, cfg.Limit)
	}
	qry, qdoc := CannedRecords((cfg.Docs+cfg.Collections-1)/cfg.Collections, k, MakePayload(cfg.Payload))
	ns, err := StartNoop(qry, qdoc)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	cfg.URL = ns.URL
	res, err := Run(ctx, cfg)
	if res != nil {
		res.Target = "noop"
	}
	return res, err
}

func serverCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	d, _ := ReadCPU(pid)
	return d
}

// share splits total over n parts; part i gets its share. total < 0 stays
// unlimited, total 0 means unlimited (the run is bounded by duration).
func share(total int64, n, i int) int64 {
	if total <= 0 {
		return -1
	}
	s := total / int64(n)
	if int64(i) < total%int64(n) {
		s++
	}
	return s
}

// ingestSpecs gives connection i the documents d with d % conns == i, so
// each document is written by one connection only and its timestamps rise.
// perDoc > 0 writes exactly perDoc records to every document (preload);
// otherwise total records are shared (<= 0: unlimited).
func ingestSpecs(refs []docRef, payload []byte, tsBase int64, batch, conns, inflight int, perDoc, total int64) []connSpec {
	specs := make([]connSpec, 0, conns)
	for i := range conns {
		var own []docRef
		for d := i; d < len(refs); d += conns {
			own = append(own, refs[d])
		}
		n := share(total, conns, i)
		if perDoc > 0 {
			n = perDoc * int64(len(own))
		}
		specs = append(specs, connSpec{newIngestGen(own, payload, tsBase, batch, n), inflight})
	}
	return specs
}

// fanoutQuiet is how long the subscribers may receive nothing, after the
// writers stopped, before the missing events are given up as lost.
const fanoutQuiet = 2 * time.Second

// fanoutSpecs shares the documents and the rate over the writers.
func fanoutSpecs(cfg Config, refs []docRef) []connSpec {
	specs := make([]connSpec, 0, cfg.Writers)
	for i := range cfg.Writers {
		var own []docRef
		for d := i; d < len(refs); d += cfg.Writers {
			own = append(own, refs[d])
		}
		g := newFanoutGen(own, cfg.Payload, cfg.TSBase, cfg.Batch, share(cfg.Records, cfg.Writers, i), cfg.Rate/float64(cfg.Writers))
		specs = append(specs, connSpec{g, cfg.Inflight})
	}
	return specs
}

func qdocSpecs(cfg Config, refs []docRef, conns int) []connSpec {
	specs := make([]connSpec, 0, conns)
	for i := range conns {
		g := newQdocGen(refs, cfg.TSBase, int64(cfg.Depth), int64(cfg.K), int64(cfg.Limit), cfg.Reverse, uint64(i+1), share(cfg.Requests, conns, i))
		specs = append(specs, connSpec{g, cfg.Inflight})
	}
	return specs
}
