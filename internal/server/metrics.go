package server

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/volandoo/fluxiondb/internal/protocol"
)

// metrics are the server's Prometheus metrics (docs/operations.md lists them). Per-type
// children are resolved once, so the request path only does atomic adds.
type metrics struct {
	reg *prometheus.Registry

	conns          prometheus.Gauge
	connsTotal     prometheus.Counter
	rejected       *prometheus.CounterVec // reason
	requests       [32]prometheus.Counter // by type, outcome ok
	errors         *prometheus.CounterVec // type, code
	latency        [32]prometheus.Observer
	inserted       prometheus.Counter
	slowConsumers  prometheus.Counter
	tooLarge       prometheus.Counter
	rateLimited    prometheus.Counter
	subs           prometheus.Gauge
	eventsSent     prometheus.Counter
	overflows      prometheus.Counter
	requestsByType *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.conns = prometheus.NewGauge(prometheus.GaugeOpts{Name: "fluxiondb_connections", Help: "Open WebSocket connections."})
	m.connsTotal = prometheus.NewCounter(prometheus.CounterOpts{Name: "fluxiondb_connections_total", Help: "WebSocket connections accepted."})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fluxiondb_connections_rejected_total", Help: "Connection attempts refused, by reason (auth, limit, shutdown)."}, []string{"reason"})
	m.requestsByType = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fluxiondb_requests_total", Help: "Requests answered, by type and outcome (ok or error)."}, []string{"type", "outcome"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fluxiondb_request_errors_total", Help: "Error replies, by type and error code."}, []string{"type", "code"})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "fluxiondb_request_duration_seconds", Help: "Time to handle a request, from decode to reply queued (durability wait excluded).",
		Buckets: []float64{0.00001, 0.00003, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3},
	}, []string{"type"})
	m.inserted = prometheus.NewCounter(prometheus.CounterOpts{Name: "fluxiondb_records_inserted_total", Help: "Records inserted (the ingest rate is its rate())."})
	m.slowConsumers = prometheus.NewCounter(prometheus.CounterOpts{Name: "fluxiondb_slow_consumers_total", Help: "Connections closed because they did not read their replies or events in time."})
	m.tooLarge = prometheus.NewCounter(prometheus.CounterOpts{Name: "fluxiondb_messages_too_large_total", Help: "Connections closed for a message over --max-message-size."})
	m.rateLimited = prometheus.NewCounter(prometheus.CounterOpts{Name: "fluxiondb_rate_limited_total", Help: "Requests refused by the per-key rate limit."})
	m.subs = prometheus.NewGauge(prometheus.GaugeOpts{Name: "fluxiondb_subscriptions", Help: "Live subscriptions."})
	m.eventsSent = prometheus.NewCounter(prometheus.CounterOpts{Name: "fluxiondb_subscription_events_total", Help: "Events delivered to subscribers."})
	m.overflows = prometheus.NewCounter(prometheus.CounterOpts{Name: "fluxiondb_subscription_overflows_total", Help: "Subscriptions ended because they fell behind the change history."})
	for _, c := range []prometheus.Collector{m.conns, m.connsTotal, m.rejected, m.requestsByType, m.errors, lat,
		m.inserted, m.slowConsumers, m.tooLarge, m.rateLimited, m.subs, m.eventsSent, m.overflows,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	for _, t := range protocol.Types() {
		m.requests[t&31] = m.requestsByType.WithLabelValues(t.String(), "ok")
		m.latency[t&31] = lat.WithLabelValues(t.String())
	}
	return m
}

// handler serves the metrics in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *metrics) connOpened()       { m.conns.Inc(); m.connsTotal.Inc() }
func (m *metrics) connClosed()       { m.conns.Dec() }
func (m *metrics) reject(why string) { m.rejected.WithLabelValues(why).Inc() }
func (m *metrics) slowConsumer()     { m.slowConsumers.Inc() }
func (m *metrics) messageTooLarge()  { m.tooLarge.Inc() }
func (m *metrics) insertedRecords(n int) {
	m.inserted.Add(float64(n))
}
func (m *metrics) subscribed(n int) { m.subs.Add(float64(n)) }
func (m *metrics) events(n int)     { m.eventsSent.Add(float64(n)) }
func (m *metrics) subOverflow()     { m.overflows.Inc() }

// request records a handled request: its latency, and an ok outcome (errors are counted by
// requestError, where the code is known).
func (m *metrics) request(t protocol.Type, d time.Duration, ok bool) {
	if c := m.requests[t&31]; c != nil {
		if ok {
			c.Inc()
		}
		m.latency[t&31].Observe(d.Seconds())
	}
}

// requestOK counts a request whose outcome was known only once its change was durable.
func (m *metrics) requestOK(t protocol.Type) {
	if c := m.requests[t&31]; c != nil {
		c.Inc()
	}
}

func (m *metrics) requestError(t protocol.Type, code protocol.Code) {
	m.requestsByType.WithLabelValues(t.String(), "error").Inc()
	m.errors.WithLabelValues(t.String(), string(code)).Inc()
	if code == protocol.CodeRateLimited {
		m.rateLimited.Inc()
	}
}

// registerDB exposes the database's contents as gauges, read at scrape time.
func (m *metrics) registerDB(s *Server) {
	stat := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	e := s.db.Engine
	stat("fluxiondb_records", "Records held.", func() float64 { return float64(e.Stats().Records) })
	stat("fluxiondb_documents", "Documents held.", func() float64 { return float64(e.Stats().Documents) })
	stat("fluxiondb_collections", "Collections held.", func() float64 { return float64(e.Stats().Collections) })
	stat("fluxiondb_kv_entries", "Key-value entries held.", func() float64 { return float64(e.Stats().KVEntries) })
	stat("fluxiondb_payload_bytes", "Bytes of record payloads held.", func() float64 { return float64(e.Stats().PayloadBytes) })
	h := s.db.Hub
	stat("fluxiondb_subscription_history_bytes", "Bytes of change history kept for subscriptions.", func() float64 { return float64(h.Stats().HistoryBytes) })
	// Only ever grows: a counter, so rate() works on it.
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "fluxiondb_subscription_history_evicted_events",
		Help: "Events evicted from the subscription history since start."}, func() float64 { return float64(h.Stats().Evicted) }))
}

// Register adds collectors (the database's gauges, the log's figures) to the registry.
func (s *Server) Register(cs ...prometheus.Collector) {
	for _, c := range cs {
		s.metrics.reg.MustRegister(c)
	}
}

// MetricsHandler serves /metrics; mount it on another listener for --metrics-addr.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler() }
