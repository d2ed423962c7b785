package server

import (
	"sync/atomic"
	"time"

	"github.com/volandoo/fluxiondb/internal/protocol"
)

// metrics counts what the server does. The counters are plain atomics on the hot path; the
// Prometheus exposition reads them (see Collector in prometheus.go once it lands).
type metrics struct {
	conns, connsTotal, authFailures, slowConsumers, tooLarge_ atomic.Int64
	recordsInserted, subs, eventsSent, overflows              atomic.Int64
	requests                                                  [32]atomic.Int64
	errors                                                    [32]atomic.Int64
	nanos                                                     [32]atomic.Int64
}

func newMetrics() *metrics { return &metrics{} }

func (m *metrics) connOpened()    { m.conns.Add(1); m.connsTotal.Add(1) }
func (m *metrics) connClosed()    { m.conns.Add(-1) }
func (m *metrics) authFailure()   { m.authFailures.Add(1) }
func (m *metrics) slowConsumer()  { m.slowConsumers.Add(1) }
func (m *metrics) tooLarge()      { m.tooLarge_.Add(1) }
func (m *metrics) inserted(n int) { m.recordsInserted.Add(int64(n)) }
func (m *metrics) request(t protocol.Type, d time.Duration) {
	m.requests[t&31].Add(1)
	m.nanos[t&31].Add(int64(d))
}
func (m *metrics) subscribed(n int)                              { m.subs.Add(int64(n)) }
func (m *metrics) events(n int)                                  { m.eventsSent.Add(int64(n)) }
func (m *metrics) subOverflow()                                  { m.overflows.Add(1) }
func (m *metrics) requestError(t protocol.Type, _ protocol.Code) { m.errors[t&31].Add(1) }
