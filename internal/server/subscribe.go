package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/volandoo/fluxiondb/internal/db"
	"github.com/volandoo/fluxiondb/internal/engine"
	"github.com/volandoo/fluxiondb/internal/protocol"
	"github.com/volandoo/fluxiondb/internal/pubsub"
)

// Live subscriptions (docs/PROTOCOL.md, "sub"). Each subscription has one goroutine, its
// pump, that reads the shared change history (internal/pubsub) from its cursor, keeps the
// events it selects, and queues them as event frames on the connection's outbound queue.
//
// Snapshot-then-live: the `sub` reply is built while changes are paused (db.Paused): it holds
// the latest record of each selected document and the cursor of the last change, and the pump
// starts right after that cursor — so there is neither a gap nor a duplicate.

// epoch tells cursors of this server process from those of another: a cursor is
// "<epoch>-<seq>" and only resumes on the process that issued it.
var epoch = func() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

func formatCursor(seq uint64) string { return epoch + "-" + strconv.FormatUint(seq, 10) }

// parseCursor reads a cursor. ok is false for text that is not a cursor at all (a typo: a
// bad request), mine false for a cursor of another server process (expired).
func parseCursor(s string) (seq uint64, mine, ok bool) {
	e, n, ok := strings.Cut(s, "-")
	if !ok || len(e) != len(epoch) {
		return 0, false, false
	}
	if _, err := hex.DecodeString(e); err != nil {
		return 0, false, false
	}
	seq, err := strconv.ParseUint(n, 10, 64)
	if err != nil {
		return 0, false, false
	}
	return seq, e == epoch, true
}

type subscription struct {
	id       string
	c        *conn
	col      string
	doc      protocol.Pattern
	keep     func([]byte) bool
	interval time.Duration
	cursor   uint64
	ctx      context.Context
	cancel   context.CancelFunc
	// pushMu is held while a frame is queued (push), so that unsub, having cancelled, can wait
	// for a push under way before it replies: the reply then follows every event.
	pushMu sync.Mutex
}

const (
	maxSubsPerConn = 256
	frameSoftLimit = 64 << 10 // event frames close at the first batch boundary past this size
	readBatches    = 256
)

var errCursorExpired = &protocol.Error{Code: protocol.CodeCursorExpired,
	Text: "cursor expired: the changes since it are no longer kept (or it belongs to another server process); subscribe again with snapshot"}

// subscribe serves `sub`.
func (c *conn) subscribe(r *protocol.Request, b []byte) ([]byte, func(), *protocol.Error) {
	q, e := protocol.DecodeSub(r.Data)
	if e != nil {
		return b, nil, e
	}
	c.mu.Lock()
	n := len(c.subs)
	c.mu.Unlock()
	if n >= maxSubsPerConn {
		return b, nil, &protocol.Error{Code: protocol.CodeTooLarge, Text: "too many subscriptions on this connection (limit " + strconv.Itoa(maxSubsPerConn) + ")"}
	}
	c.nextSub++
	s := &subscription{
		id: "s" + strconv.FormatUint(c.nextSub, 10), c: c, col: q.Collection, doc: q.Doc,
		keep:     protocol.Predicate(q.Where, q.Filter),
		interval: time.Duration(q.IntervalMS) * time.Millisecond,
	}
	var resume uint64
	if q.Cursor != "" {
		seq, mine, ok := parseCursor(q.Cursor)
		if !ok {
			shown := q.Cursor
			if len(shown) > 64 {
				shown = shown[:64] + "…"
			}
			return b, nil, protocol.Errorf("cursor %s is not a cursor: pass the \"cursor\" of a sub reply or an event frame as it came", strconv.Quote(shown))
		}
		if !mine {
			return b, nil, errCursorExpired
		}
		resume = seq
	}
	d := c.srv.db
	var err error
	tooBig, maxReply := false, c.srv.cfg.MaxReplySize
	b = protocol.AppendReplyStart(b, r.ID)
	d.Paused(func(seq uint64) {
		if q.Cursor != "" {
			s.cursor = resume
		} else {
			s.cursor = seq
		}
		if err = d.Hub.Subscribe(s.cursor); err != nil {
			return
		}
		b = append(b, `,"sub":`...)
		b = protocol.AppendString(b, s.id)
		b = append(b, `,"cursor":`...)
		b = protocol.AppendString(b, formatCursor(s.cursor))
		if q.Snapshot {
			b = append(b, `,"records":{`...)
			lq := engine.LatestQuery{TS: 1<<63 - 1, Keep: s.keep}
			if q.Doc.IsRegex() {
				lq.DocMatch = q.Doc.MatchName
			} else {
				lq.Doc = q.Doc.Literal
			}
			first := true
			d.Engine.Latest(q.Collection, lq, func(doc string, ts int64, data []byte) {
				if tooBig {
					return
				}
				if !first {
					b = append(b, ',')
				}
				first = false
				b = protocol.AppendString(b, doc)
				b = append(b, ':')
				b = protocol.AppendRecord(b, ts, data)
				tooBig = int64(len(b)) > maxReply
			})
			b = append(b, '}')
		}
	})
	if err != nil {
		return b, nil, errCursorExpired
	}
	if tooBig {
		d.Hub.Unsubscribe()
		return b[:0], nil, &protocol.Error{Code: protocol.CodeTooLarge, Text: "the snapshot would be larger than " +
			sizeText(maxReply) + " (--max-reply-size): subscribe to fewer documents, or without snapshot and read them with qry"}
	}
	b = append(b, '}')
	s.ctx, s.cancel = context.WithCancel(c.ctx)
	c.mu.Lock()
	if c.subs == nil {
		c.subs = make(map[string]*subscription)
	}
	c.subs[s.id] = s
	c.mu.Unlock()
	c.srv.metrics.subscribed(1)
	// The pump starts once the reply is queued, so the reply precedes every event.
	return b, func() { go s.pump() }, nil
}

// unsubscribe serves `unsub`.
func (c *conn) unsubscribe(r *protocol.Request, b []byte) ([]byte, *protocol.Error) {
	id, e := protocol.DecodeUnsub(r.Data)
	if e != nil {
		return b, e
	}
	c.mu.Lock()
	s := c.subs[id]
	delete(c.subs, id)
	c.mu.Unlock()
	if s == nil {
		return b, &protocol.Error{Code: protocol.CodeNotFound, Text: "subscription " + strconv.Quote(id) + " not found on this connection"}
	}
	s.cancel() // first: a push waiting for room in the queue gives up on it
	// Wait for a push under way: its frame goes ahead of this reply; later ones see the cancel.
	s.pushMu.Lock()
	//lint:ignore SA2001 the empty critical section is the wait
	s.pushMu.Unlock()
	return append(protocol.AppendReplyStart(b, r.ID), `,"status":"ok"}`...), nil
}

// pump delivers the subscription's events until it is cancelled or falls behind.
func (s *subscription) pump() {
	d := s.c.srv.db
	defer func() {
		d.Hub.Unsubscribe()
		s.c.srv.metrics.subscribed(-1)
		s.c.mu.Lock()
		if s.c.subs[s.id] == s {
			delete(s.c.subs, s.id)
		}
		s.c.mu.Unlock()
	}()
	var (
		batches []*pubsub.Batch
		pending []pubsub.Event // coalescing: the latest event per document
		index   = map[string]int{}
		flushAt time.Time
		timer   *time.Timer
	)
	for {
		var wake <-chan struct{}
		var err error
		batches, wake, err = d.Hub.Read(s.cursor, readBatches, batches[:0])
		if errors.Is(err, pubsub.ErrFellBehind) {
			s.overflow()
			return
		}
		if len(batches) > 0 && !s.durable(batches) {
			return
		}
		if len(batches) > 0 {
			if s.interval == 0 {
				if !s.send(batches) {
					return
				}
				continue
			}
			for _, bt := range batches {
				for i := range bt.Events {
					if ev := &bt.Events[i]; s.selects(ev) {
						pending = coalesce(pending, index, ev)
					}
				}
				s.cursor = bt.Seq
			}
			if flushAt.IsZero() {
				flushAt = time.Now().Add(s.interval)
			}
			continue
		}
		// Nothing new: flush coalesced events when due, else wait.
		var due <-chan time.Time
		if len(pending) > 0 {
			wait := time.Until(flushAt)
			if wait <= 0 {
				if !s.push(s.encode(pending)) {
					return
				}
				pending, flushAt = pending[:0], time.Time{}
				clear(index)
				continue
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			due = timer.C
		}
		select {
		case <-wake:
		case <-due:
		case <-s.ctx.Done():
			return
		}
	}
}

// durable waits until the changes of batches are as durable as a reply to their writer says
// (fsynced under --fsync=always, handed to the OS otherwise): a subscriber must not hear of
// a change that a crash could still take back. It shares the writers' fsync (group commit).
// While the disk is in trouble it waits for it to recover. It reports false when the
// subscription ended meanwhile.
func (s *subscription) durable(batches []*pubsub.Batch) bool {
	var commit uint64
	for _, b := range batches {
		commit = max(commit, b.Commit)
	}
	if commit == 0 {
		return true // in memory
	}
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		if s.c.srv.wait(s.ctx, db.Commit(commit)) == nil {
			return true
		}
		select {
		case <-s.ctx.Done():
			return false
		case <-time.After(delay):
		}
	}
}

// coalesce adds ev, an event the subscription selected, to pending, which holds the latest
// event per document in the order their documents first appeared, and index, which maps a
// document to its slot. Every selected event is of the subscription's collection, so the
// document name is the key. A dcol supersedes every pending event and opens a new window
// after it: events of a document never come out in another order than their changes were
// applied.
func coalesce(pending []pubsub.Event, index map[string]int, ev *pubsub.Event) []pubsub.Event {
	if ev.Op == pubsub.OpDeleteCollection {
		clear(index)
		return append(pending[:0], *ev)
	}
	if j, ok := index[ev.Doc]; ok {
		pending[j] = *ev
		return pending
	}
	index[ev.Doc] = len(pending)
	return append(pending, *ev)
}

// selects reports whether the subscription wants ev.
func (s *subscription) selects(ev *pubsub.Event) bool {
	// Every event names its collection (a ddoc from every collection is published once per
	// collection that held the document: db.DeleteDoc).
	if ev.Collection != s.col {
		return false
	}
	if ev.Op == pubsub.OpDeleteCollection {
		return true
	}
	if !s.doc.Empty() && !s.doc.MatchName(ev.Doc) {
		return false
	}
	if ev.Op == pubsub.OpInsert && s.keep != nil {
		return s.keep(ev.Data)
	}
	return true
}

// send encodes the selected events of batches into frames (closed at batch boundaries past
// frameSoftLimit) and queues them. A batch the subscription takes whole is copied from the
// batch's shared encoding.
func (s *subscription) send(batches []*pubsub.Batch) bool {
	var p *[]byte
	n := 0 // events in the frame being built
	for i, bt := range batches {
		matched := 0
		for j := range bt.Events {
			if s.selects(&bt.Events[j]) {
				matched++
			}
		}
		s.cursor = bt.Seq
		if matched > 0 {
			if p == nil {
				p = s.frameStart()
			}
			b := *p
			if n > 0 {
				b = append(b, ',')
			}
			if matched == len(bt.Events) {
				b = append(b, bt.Encoded(encodeEvents)...)
			} else {
				first := true
				for j := range bt.Events {
					if ev := &bt.Events[j]; s.selects(ev) {
						if !first {
							b = append(b, ',')
						}
						first = false
						b = appendEvent(b, ev)
					}
				}
			}
			*p = b
			n += matched
		}
		if p != nil && (i == len(batches)-1 || len(*p) > frameSoftLimit) {
			if !s.push(s.frameEnd(p, n)) {
				return false
			}
			p, n = nil, 0
		}
	}
	return true
}

// encodeEvents encodes events as the comma-separated members of an "events" array.
func encodeEvents(evs []pubsub.Event) []byte {
	var b []byte
	for i := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEvent(b, &evs[i])
	}
	return b
}

// frameStart begins `{"type":"event","sub":…,"events":[`; frameEnd closes it with the
// cursor of the last change the frame covers.
func (s *subscription) frameStart() *[]byte {
	p := getBuf()
	b := append((*p)[:0], `{"type":"event","sub":`...)
	b = protocol.AppendString(b, s.id)
	*p = append(b, `,"events":[`...)
	return p
}

func (s *subscription) frameEnd(p *[]byte, events int) *[]byte {
	b := append(*p, `],"cursor":`...)
	b = protocol.AppendString(b, formatCursor(s.cursor))
	*p = append(b, '}')
	s.c.srv.metrics.events(events)
	return p
}

// encode builds one frame holding evs (the coalescing path).
func (s *subscription) encode(evs []pubsub.Event) *[]byte {
	p := s.frameStart()
	b := *p
	for i := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEvent(b, &evs[i])
	}
	*p = b
	return s.frameEnd(p, len(evs))
}

// appendEvent appends one event object.
func appendEvent(b []byte, ev *pubsub.Event) []byte {
	b = append(b, `{"op":"`...)
	b = append(b, ev.Op.String()...)
	b = append(b, `","col":`...)
	b = protocol.AppendString(b, ev.Collection)
	if ev.Op != pubsub.OpDeleteCollection {
		b = append(b, `,"doc":`...)
		b = protocol.AppendString(b, ev.Doc)
	}
	switch ev.Op {
	case pubsub.OpInsert:
		b = append(b, `,"ts":`...)
		b = strconv.AppendInt(b, ev.TS, 10)
		b = append(b, `,"data":`...)
		b = protocol.AppendBytes(b, ev.Data)
	case pubsub.OpDeleteRecord:
		b = append(b, `,"ts":`...)
		b = strconv.AppendInt(b, ev.TS, 10)
	case pubsub.OpDeleteRange:
		b = append(b, `,"fromTs":`...)
		b = strconv.AppendInt(b, ev.TS, 10)
		b = append(b, `,"toTs":`...)
		b = strconv.AppendInt(b, ev.ToTS, 10)
	}
	return append(b, '}')
}

// overflow tells the client its subscription fell behind the kept history, and ends it.
func (s *subscription) overflow() {
	p := getBuf()
	b := append((*p)[:0], `{"type":"overflow","sub":`...)
	b = protocol.AppendString(b, s.id)
	b = append(b, `,"cursor":`...)
	b = protocol.AppendString(b, formatCursor(s.cursor))
	b = append(b, `,"error":"subscription fell behind the server's change history and was ended; subscribe again with snapshot","code":"cursor_expired"}`...)
	*p = b
	s.c.srv.metrics.subOverflow()
	s.push(p)
}

// push queues a frame like a reply (conn.queue); a subscriber that does not read its
// events in time is closed as a slow consumer. Nothing is queued once the subscription or
// its connection is ending, nor after its API key was removed: the 1008 close that follows
// a removal is written by another goroutine, and changes made after the removal must not
// reach the key's connection meanwhile.
func (s *subscription) push(p *[]byte) bool {
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	if s.ctx.Err() != nil || s.c.closing.Load() || s.c.key.Revoked() {
		putBuf(p)
		return false
	}
	return s.c.queue(reply{buf: p, push: true}, s.ctx.Done(), "slow consumer: subscription events were not read in time")
}
