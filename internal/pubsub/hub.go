// Package pubsub keeps the recent history of changes for live subscriptions.
//
// Every state change gets a sequence number from internal/db. While anyone subscribes (and
// for a retention window after the last subscription ended, so a client can resume after a
// reconnect), the change is recorded in a bounded in-memory history: one Batch per change,
// its payload bytes copied once. Subscribers do not get per-subscriber queues: each reads
// the shared history from its own cursor, like a consumer of a log, filters and sends.
// A subscriber that falls so far behind that its cursor has been evicted gets ErrFellBehind
// and an explicit signal — never a silent gap.
//
// Publishing is cheap and never blocks on subscribers: it appends to the history and wakes
// the readers.
package pubsub

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Op is the kind of change an event reports.
type Op uint8

const (
	OpInsert           Op = iota + 1 // one record stored (or replaced)
	OpDeleteDoc                      // a document removed; Collection "" = from every collection
	OpDeleteCollection               // a collection removed
	OpDeleteRecord                   // one record removed
	OpDeleteRange                    // a document's records with TS <= ts <= ToTS removed
)

// String is the event's wire name, the request type that causes it.
func (o Op) String() string {
	switch o {
	case OpInsert:
		return "ins"
	case OpDeleteDoc:
		return "ddoc"
	case OpDeleteCollection:
		return "dcol"
	case OpDeleteRecord:
		return "drec"
	case OpDeleteRange:
		return "drrng"
	}
	return "unknown"
}

// Event is one change to one document (or collection).
type Event struct {
	Op              Op
	Collection, Doc string
	TS, ToTS        int64
	Data            []byte
}

// Batch is the events of one change, which all share its sequence number.
type Batch struct {
	Seq    uint64
	Commit uint64 // the change's position in the write-ahead log (0: none, in memory); see PublishAt
	Events []Event
	size   int64

	encoded atomic.Pointer[[]byte]
}

// Encoded returns enc(b.Events), computing it once: every subscriber that selects the whole
// batch sends the same bytes, so fan-out to many subscribers encodes each change once.
func (b *Batch) Encoded(enc func([]Event) []byte) []byte {
	if p := b.encoded.Load(); p != nil {
		return *p
	}
	v := enc(b.Events)
	b.encoded.CompareAndSwap(nil, &v)
	return *b.encoded.Load()
}

// ErrFellBehind means the requested history has been evicted (or was never recorded).
var ErrFellBehind = errors.New("the history needed to resume is no longer kept")

// Hub is the history plus the wake-up signal. Safe for concurrent use.
type Hub struct {
	budget    int64         // bytes of history kept
	retention time.Duration // recording continues this long after the last subscription ends

	mu            sync.Mutex
	batches       []*Batch // ascending Seq
	head          int      // index of the oldest retained batch in batches
	bytes         int64
	recording     bool
	recordedFrom  uint64 // recording has been continuous since this seq
	lastSeq       uint64 // seq of the newest change published (recorded or not)
	subs          int
	lastActive    time.Time
	wake          chan struct{} // closed and replaced on every recorded publish
	now           func() time.Time
	evictedEvents uint64
}

// New creates a hub keeping at most budget bytes of history, recording while subscriptions
// exist and for retention after the last one ended.
func New(budget int64, retention time.Duration) *Hub {
	return &Hub{budget: budget, retention: retention, wake: make(chan struct{}), now: time.Now}
}

// eventOverhead approximates the memory of one Event besides its payload.
const eventOverhead = 64

func (h *Hub) activeLocked() bool {
	if h.subs > 0 {
		return true
	}
	return h.recording && h.now().Sub(h.lastActive) < h.retention
}

// Publish records the change seq. Callers publish every change in ascending seq order
// (internal/db holds its change mutex). build is called only while recording, so nobody pays
// for events when nobody subscribes; it may return nil for a change that no subscriber sees
// (API keys). Event data is copied.
func (h *Hub) Publish(seq uint64, build func() []Event) { h.PublishAt(seq, 0, build) }

// PublishAt is Publish for a change logged at commit in the write-ahead log: readers of its
// batch wait for that position to be durable before they deliver it (a subscriber must not
// hear of a change a crash could still take back).
func (h *Hub) PublishAt(seq, commit uint64, build func() []Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastSeq = seq
	if !h.activeLocked() {
		if h.recording {
			h.recording = false
			h.dropAllLocked()
		}
		return
	}
	if !h.recording {
		h.recording = true
		h.recordedFrom = seq
	}
	if build == nil {
		return
	}
	events := build()
	if len(events) == 0 {
		return
	}
	b := &Batch{Seq: seq, Commit: commit, Events: events}
	// Copy every payload and document name into one buffer the batch owns: the caller's
	// bytes and names may be views of a request buffer that is about to be reused. The
	// buffer is never written again, so strings over it are immutable.
	n := 0
	for i := range events {
		n += len(events[i].Data) + len(events[i].Doc)
	}
	buf := make([]byte, 0, n)
	for i := range events {
		e := &events[i]
		start := len(buf)
		buf = append(buf, e.Data...)
		e.Data = buf[start:len(buf):len(buf)]
		if e.Doc != "" {
			start = len(buf)
			buf = append(buf, e.Doc...)
			e.Doc = unsafe.String(&buf[start], len(e.Doc))
		}
	}
	b.size = int64(n + eventOverhead*len(events))
	h.batches = append(h.batches, b)
	h.bytes += b.size
	for h.bytes > h.budget && h.head < len(h.batches)-1 {
		old := h.batches[h.head]
		h.batches[h.head] = nil
		h.head++
		h.bytes -= old.size
		h.evictedEvents += uint64(len(old.Events))
		h.recordedFrom = old.Seq + 1
	}
	if h.head > 1024 && h.head > len(h.batches)/2 { // compact the slice now and then
		h.batches = append(h.batches[:0:0], h.batches[h.head:]...)
		h.head = 0
	}
	close(h.wake)
	h.wake = make(chan struct{})
}

func (h *Hub) dropAllLocked() {
	clear(h.batches)
	h.batches, h.head, h.bytes = h.batches[:0], 0, 0
}

// Subscribe registers a subscriber that wants every change after cursor. It must be called
// with the change order held when cursor is the current sequence (snapshot-then-live), or
// with an older cursor to resume. It fails with ErrFellBehind when history after cursor is
// incomplete.
func (h *Hub) Subscribe(cursor uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cursor < h.lastSeq {
		if !h.recording || cursor+1 < h.recordedFrom {
			return ErrFellBehind
		}
	}
	if cursor > h.lastSeq {
		return ErrFellBehind // a cursor from the future: another server or a restart
	}
	if !h.recording {
		h.recording = true
		h.recordedFrom = h.lastSeq + 1
	}
	h.subs++
	return nil
}

// Unsubscribe ends a subscription; recording goes on for the retention window.
func (h *Hub) Unsubscribe() {
	h.mu.Lock()
	h.subs--
	h.lastActive = h.now()
	h.mu.Unlock()
}

// LastSeq returns the sequence number of the newest change published.
func (h *Hub) LastSeq() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastSeq
}

// Read appends to dst the recorded batches after cursor, at most max of them. It returns a
// channel closed at the next publish, to wait on when nothing was read. When history after
// cursor has been evicted it returns ErrFellBehind.
func (h *Hub) Read(cursor uint64, max int, dst []*Batch) ([]*Batch, <-chan struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cursor+1 < h.recordedFrom && cursor < h.lastSeq {
		return dst, nil, ErrFellBehind
	}
	live := h.batches[h.head:]
	// Binary search for the first batch with Seq > cursor.
	lo, hi := 0, len(live)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if live[m].Seq <= cursor {
			lo = m + 1
		} else {
			hi = m
		}
	}
	end := min(len(live), lo+max)
	return append(dst, live[lo:end]...), h.wake, nil
}

// Stats are figures for metrics.
type Stats struct {
	Subscriptions int
	HistoryBytes  int64
	Batches       int
	Evicted       uint64
}

// Stats returns current figures.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Stats{Subscriptions: h.subs, HistoryBytes: h.bytes, Batches: len(h.batches) - h.head, Evicted: h.evictedEvents}
}
