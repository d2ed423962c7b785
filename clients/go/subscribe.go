package fluxiondb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"
)

// EventOp is the kind of change an Event reports.
type EventOp string

// The changes a subscription reports (docs/PROTOCOL.md §7), and OpReset,
// which the client adds.
const (
	// OpInsert: a record was inserted (or replaced: same document and TS).
	// TS and Data are set.
	OpInsert EventOp = "ins"
	// OpDeleteRecord: the record at TS was removed.
	OpDeleteRecord EventOp = "drec"
	// OpDeleteRange: the records in [FromTS, ToTS] were removed.
	OpDeleteRange EventOp = "drrng"
	// OpDeleteDocument: the document was removed from Col (a delete from
	// every collection sends one per collection that held it).
	OpDeleteDocument EventOp = "ddoc"
	// OpDeleteCollection: the collection was removed; Doc is "".
	OpDeleteCollection EventOp = "dcol"
	// OpReset: the subscription lost events (it fell behind the server's
	// history, or could not resume after a reconnect) and was subscribed
	// again with a snapshot, because of ResubscribeWithSnapshot. Records
	// holds the latest record of each selected document: replace whatever
	// state was built from earlier events with it. Live events follow.
	OpReset EventOp = "reset"
)

// Event is one change delivered by a Subscription. Which fields are set
// depends on Op.
type Event struct {
	Op     EventOp `json:"op"`
	Col    string  `json:"col"`
	Doc    string  `json:"doc"`
	TS     int64   `json:"ts"`
	Data   string  `json:"data"`
	FromTS int64   `json:"fromTs"`
	ToTS   int64   `json:"toTs"`

	// Cursor is set on the last event of each batch the server sends (and
	// on OpReset events): a subscription started with this cursor
	// (SubscribeQuery.Cursor) continues with the event after this one,
	// without a gap or a repeat. It is "" on other events. Cursors are only
	// valid on the server process that issued them.
	Cursor string `json:"-"`
	// Records is the snapshot carried by an OpReset event.
	Records map[string]Record `json:"-"`
}

// SubscribeQuery selects the changes a subscription delivers (message sub).
type SubscribeQuery struct {
	// Col is the collection (required).
	Col string
	// Doc limits the subscription to one document, or to the documents
	// whose names match a "/regex/flags" value. Empty: every document.
	Doc string
	// Where and Filter work as in LatestQuery, on inserted records' data.
	// Delete events are not filtered by them.
	Where  string
	Filter string
	// Snapshot asks for the latest record of each selected document at the
	// moment of subscribing (Subscription.Snapshot); events then start
	// right after it, without a gap or a duplicate.
	Snapshot bool
	// Interval, when positive, coalesces events: at most one per document
	// per interval, the latest (rounded up to milliseconds; at most 1h).
	Interval time.Duration
	// Cursor resumes from an Event.Cursor of an earlier subscription on the
	// same server process: every change after it is delivered, then live
	// events. It excludes Snapshot. A cursor the server no longer holds
	// fails with ErrCursorExpired (see ResubscribeWithSnapshot).
	Cursor string
}

// subParams is the sub payload.
type subParams struct {
	Col      string `json:"col"`
	Doc      string `json:"doc,omitempty"`
	Where    string `json:"where,omitempty"`
	Filter   string `json:"filter,omitempty"`
	Snapshot bool   `json:"snapshot,omitempty"`
	Cursor   string `json:"cursor,omitempty"`
	Interval int64  `json:"interval,omitempty"`
}

// subReply is the reply to sub.
type subReply struct {
	Sub     string            `json:"sub"`
	Cursor  string            `json:"cursor"`
	Records map[string]Record `json:"records"`
}

// pushFrame is an event or overflow frame.
type pushFrame struct {
	Sub    string  `json:"sub"`
	Cursor string  `json:"cursor"`
	Events []Event `json:"events"`
	Error  string  `json:"error"`
	Code   string  `json:"code"`
}

// decodePush decodes an event or overflow frame.
func decodePush(frame []byte) (pushFrame, error) {
	var f pushFrame
	if err := json.Unmarshal(frame, &f); err != nil {
		return f, fmt.Errorf("%w: undecodable subscription frame: %w", ErrProtocol, err)
	}
	return f, nil
}

// DefaultSubscriptionBuffer is the default number of events a subscription
// holds for its reader (WithSubscriptionBuffer).
const DefaultSubscriptionBuffer = 16384

// SubscribeOption configures one subscription; pass options to Subscribe.
type SubscribeOption func(*subOptions)

type subOptions struct {
	buffer int
	resnap bool
}

// WithSubscriptionBuffer sets how many received events a subscription
// holds while its reader is busy (default DefaultSubscriptionBuffer), not
// counting the one already on its way to the reader through Events. The
// connection's read loop never waits for a subscriber: when events arrive
// and the buffer cannot take them, the subscription ends with
// ErrSlowSubscriber (after delivering what it holds). A batch that
// arrives while the buffer is empty is always taken, however large.
func WithSubscriptionBuffer(n int) SubscribeOption {
	return func(o *subOptions) {
		if n > 0 {
			o.buffer = n
		}
	}
}

// ResubscribeWithSnapshot makes a subscription that loses events survive:
// when it cannot resume after a reconnect (cursor expired, e.g. the server
// restarted) or falls behind the server's history (overflow), the client
// subscribes again with a snapshot and delivers an OpReset event carrying
// it, then live events. Without this option the subscription ends with
// ErrSubscriptionLost instead.
func ResubscribeWithSnapshot() SubscribeOption { return func(o *subOptions) { o.resnap = true } }

// Subscription is a live subscription: the changes its query selects, in
// the order the server applied them per document, on Events (or All).
//
// It survives reconnects: after the client reconnects it resumes from the
// last event received, so no event is lost or repeated. It ends when its
// context is done, on Close, when the client is closed, or with an error
// that Err reports: ErrSubscriptionLost (events are gone), ErrSlowSubscriber
// (the reader fell behind), an error matching ErrUnauthenticated (the API
// key was revoked), ErrConnectionLost (the client stopped reconnecting).
// Events received before an error are delivered first; then the channel is
// closed.
type Subscription struct {
	c      *Client
	params subParams // without Snapshot and Cursor
	opts   subOptions
	ctx    context.Context

	out       chan Event
	wake      chan struct{} // buffered 1: the queue or the state changed
	stop      chan struct{} // closed on a hard stop: deliver nothing more
	done      chan struct{} // closed when out is closed
	unsubDone chan struct{} // closed when the server-side subscription is dealt with

	mu          sync.Mutex
	queue       []Event // received, not yet taken by the pump
	cursor      string  // cursor of the last event received: the resume point
	delivered   string  // cursor of the last event handed to the reader
	snapshot    map[string]Record
	sess        *session // the session the server-side subscription lives on
	serverID    string   // its id there; "" when the server has none
	established bool     // the first sub reply has been received
	finished    bool     // no more events will be queued
	hard        bool     // stop closed
	err         error
	unsubErr    error
}

// Subscribe starts a live subscription (message sub). ctx bounds the
// subscription's whole life, not just the request: when ctx is done the
// subscription ends (Err then reports ctx's error). The sub request itself
// is also bounded by the request timeout when ctx has no deadline.
//
// With q.Snapshot, Snapshot returns the latest record of each selected
// document as of the subscription, and Events starts right after it.
//
//	sub, err := c.Subscribe(ctx, fluxiondb.SubscribeQuery{Col: "sensors", Snapshot: true})
//	if err != nil { … }
//	defer sub.Close()
//	for ev, err := range sub.All() {
//		if err != nil { … } // why it ended
//		…
//	}
func (c *Client) Subscribe(ctx context.Context, q SubscribeQuery, opts ...SubscribeOption) (*Subscription, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	o := subOptions{buffer: DefaultSubscriptionBuffer}
	for _, opt := range opts {
		opt(&o)
	}
	if ctx.Err() != nil {
		return nil, ctxError(ctx, typeSubscribe, "")
	}
	ms := q.Interval.Milliseconds()
	if q.Interval > 0 && q.Interval%time.Millisecond != 0 {
		ms++
	}
	sub := &Subscription{
		c:         c,
		params:    subParams{Col: q.Col, Doc: q.Doc, Where: q.Where, Filter: q.Filter, Interval: ms},
		opts:      o,
		ctx:       ctx,
		out:       make(chan Event),
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		unsubDone: make(chan struct{}),
	}

	// Registering under c.mu orders this against Close: either Close sees
	// the subscription and ends it, or Subscribe sees the client closed.
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.wg.Add(1)
	c.subsMu.Lock()
	if c.subs == nil {
		c.subs = make(map[*Subscription]struct{})
	}
	c.subs[sub] = struct{}{}
	c.subsMu.Unlock()
	c.mu.Unlock()
	go sub.pump()

	rctx := ctx
	if _, ok := ctx.Deadline(); !ok && c.opts.requestTimeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, c.opts.requestTimeout)
		defer cancel()
	}
	if err := sub.start(rctx, q); err != nil {
		// If the reply came after all, the server's subscription is ended
		// (here, or by attach when it comes later).
		sub.finish(err, true, true)
		<-sub.done
		return nil, err
	}
	return sub, nil
}

// start makes the first sub request.
func (sub *Subscription) start(ctx context.Context, q SubscribeQuery) error {
	s, err := sub.c.getSession(ctx)
	if err != nil {
		return err
	}
	p := sub.params
	p.Snapshot, p.Cursor = q.Snapshot, q.Cursor
	mode := subInitial
	if q.Snapshot {
		mode = subInitialSnapshot
	}
	err = sub.request(ctx, s, p, mode)
	if errors.Is(err, ErrCursorExpired) && q.Cursor != "" && sub.opts.resnap {
		p.Cursor, p.Snapshot = "", true
		err = sub.request(ctx, s, p, subReset)
	}
	return err
}

// subMode says what a sub reply means for the subscription.
type subMode int

const (
	subInitial         subMode = iota // first subscription
	subInitialSnapshot                // first, with snapshot: keep the records
	subResume                         // after a reconnect, from the cursor
	subReset                          // again with snapshot after losing events: queue an OpReset
)

// request sends one sub request on s and waits for its reply. If ctx ends
// first the request stays registered: when its reply comes, attach finds
// the subscription finished and unsubscribes it on the server.
func (sub *Subscription) request(ctx context.Context, s *session, p subParams, mode subMode) error {
	cl, err := sub.send(ctx, s, p, mode)
	if err != nil {
		return err
	}
	return sub.wait(ctx, cl)
}

func (sub *Subscription) send(ctx context.Context, s *session, p subParams, mode subMode) (*call, error) {
	payload, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("fluxiondb: encode sub request: %w", err)
	}
	return s.sendHook(ctx, typeSubscribe, quoteData(payload), func(frame []byte) error { return sub.attach(s, frame, mode) })
}

func (sub *Subscription) wait(ctx context.Context, cl *call) error {
	select {
	case r := <-cl.ch:
		return r.err
	case <-ctx.Done():
		return ctxError(ctx, typeSubscribe, cl.id)
	case <-sub.stop:
		return ErrClosed
	}
}

// attach runs in the read loop on a successful sub reply, before the next
// frame: it binds the server's subscription id to sub, so that the first
// event frame, which the server sends after this reply, finds it.
func (sub *Subscription) attach(s *session, frame []byte, mode subMode) error {
	var r subReply
	if err := json.Unmarshal(frame, &r); err != nil || r.Sub == "" {
		if r.Sub != "" {
			sub.c.unsubAsync(s, r.Sub, nil)
		}
		return fmt.Errorf("%w: sub reply without a subscription id: %.200s", ErrProtocol, frame)
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.finished || (sub.sess == s && sub.serverID != "") {
		// Nobody wants it (the caller gave up, or it is a duplicate).
		sub.c.unsubAsync(s, r.Sub, nil)
		return nil
	}
	sub.sess, sub.serverID, sub.cursor, sub.established = s, r.Sub, r.Cursor, true
	if r.Records == nil {
		r.Records = map[string]Record{}
	}
	switch mode {
	case subInitial:
		sub.delivered = r.Cursor
	case subInitialSnapshot:
		sub.delivered = r.Cursor
		sub.snapshot = r.Records
	case subReset:
		sub.queue = append(sub.queue, Event{Op: OpReset, Col: sub.params.Col, Cursor: r.Cursor, Records: r.Records})
		sub.signal()
	}
	s.mu.Lock()
	if s.subs == nil {
		s.subs = make(map[string]*Subscription)
	}
	s.subs[r.Sub] = sub
	s.mu.Unlock()
	return nil
}

func (sub *Subscription) signal() {
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// eventFramePrefix starts the event frames of our server (subscribe.go in
// internal/server writes them so).
var eventFramePrefix = []byte(`{"type":"event","sub":`)

// push handles a frame the server sent for subscription id (read loop):
// typ is pushEvent or pushOverflow, f the decoded frame or err why not.
func (s *session) push(typ, id string, f pushFrame, err error) {
	s.mu.Lock()
	sub := s.subs[id]
	if typ == pushOverflow {
		delete(s.subs, id) // the server has ended it
	}
	s.mu.Unlock()
	if sub == nil {
		// Ended here; the server has not processed the unsub yet.
		s.c.log.Debug("fluxiondb: frame for an unknown subscription", "type", typ, "sub", id)
		return
	}
	if err != nil {
		sub.finish(err, false, true)
		return
	}
	if typ == pushOverflow {
		sub.overflow(s, id, f)
		return
	}
	sub.deliver(s, id, f)
}

// deliver queues the events of one frame, or ends the subscription when
// its reader is too far behind.
func (sub *Subscription) deliver(s *session, id string, f pushFrame) {
	sub.mu.Lock()
	if sub.finished || sub.sess != s || sub.serverID != id {
		sub.mu.Unlock()
		return
	}
	if len(f.Events) == 0 {
		sub.cursor = f.Cursor
		sub.mu.Unlock()
		return
	}
	if n := len(sub.queue); n > 0 && n+len(f.Events) > sub.opts.buffer {
		sub.mu.Unlock()
		sub.finish(fmt.Errorf("%w: %d events waiting to be read, buffer %d (WithSubscriptionBuffer)", ErrSlowSubscriber, n, sub.opts.buffer), false, true)
		return
	}
	f.Events[len(f.Events)-1].Cursor = f.Cursor
	sub.queue = append(sub.queue, f.Events...)
	sub.cursor = f.Cursor
	sub.mu.Unlock()
	sub.signal()
}

// overflow handles the server ending the subscription because it fell
// behind the change history.
func (sub *Subscription) overflow(s *session, id string, f pushFrame) {
	sub.mu.Lock()
	if sub.finished || sub.sess != s || sub.serverID != id {
		sub.mu.Unlock()
		return
	}
	sub.serverID = ""
	sub.mu.Unlock()
	code := f.Code
	if code == "" {
		code = CodeCursorExpired
	}
	cause := &ServerError{Code: code, Message: f.Error, Type: pushOverflow}
	if !sub.opts.resnap {
		sub.finish(fmt.Errorf("%w: %w", ErrSubscriptionLost, cause), false, false)
		return
	}
	// The read loop cannot wait for a reply: subscribe again from a
	// goroutine. The read loop is counted in wg, so Add is safe here.
	sub.c.wg.Add(1)
	go func() {
		defer sub.c.wg.Done()
		p := sub.params
		p.Snapshot = true
		sub.handleErr(s, sub.request(sub.c.bgCtx, s, p, subReset), cause)
	}()
}

// handleErr deals with a failed resume or re-snapshot on session s.
// cause is why a re-snapshot was made, if one was.
func (sub *Subscription) handleErr(s *session, err error, cause error) {
	switch {
	case err == nil:
	case errors.Is(err, ErrConnectionLost), errors.Is(err, ErrClosed), sub.c.bgCtx.Err() != nil:
		// The next session resumes it, or the client is closing.
	case errors.Is(err, ErrCursorExpired) && cause == nil && sub.opts.resnap:
		p := sub.params
		p.Snapshot = true
		sub.handleErr(s, sub.request(sub.c.bgCtx, s, p, subReset), err)
	case errors.Is(err, ErrCursorExpired):
		sub.finish(fmt.Errorf("%w: cannot resume after reconnecting: %w", ErrSubscriptionLost, err), false, false)
	case cause != nil:
		sub.finish(fmt.Errorf("%w: %w; subscribing again with snapshot failed: %w", ErrSubscriptionLost, cause, err), false, false)
	default:
		sub.finish(fmt.Errorf("fluxiondb: resubscribe after reconnecting: %w", err), false, false)
	}
}

// resubscribe resumes every established subscription on the new session s
// from its last cursor. The requests are pipelined.
func (c *Client) resubscribe(s *session) {
	defer c.wg.Done()
	c.subsMu.Lock()
	subs := make([]*Subscription, 0, len(c.subs))
	for sub := range c.subs {
		subs = append(subs, sub)
	}
	c.subsMu.Unlock()
	type sent struct {
		sub *Subscription
		cl  *call
	}
	var calls []sent
	for _, sub := range subs {
		sub.mu.Lock()
		need := sub.established && !sub.finished && sub.sess != s
		p := sub.params
		p.Cursor = sub.cursor
		sub.mu.Unlock()
		if !need {
			continue
		}
		cl, err := sub.send(c.bgCtx, s, p, subResume)
		if err != nil {
			break // the session died (the next one resumes) or the client is closing
		}
		calls = append(calls, sent{sub, cl})
	}
	for _, sc := range calls {
		sc.sub.handleErr(s, sc.sub.wait(c.bgCtx, sc.cl), nil)
	}
	if len(calls) > 0 {
		c.log.Info("fluxiondb: subscriptions resumed", "count", len(calls))
	}
}

// finish ends the subscription with err (nil: closed by its owner). A
// hard end drops undelivered events and closes Events at once; otherwise
// the reader gets what was received first. unsub says whether the
// server-side subscription is still running and must be ended.
func (sub *Subscription) finish(err error, hard, unsub bool) {
	c := sub.c
	sub.mu.Lock()
	if hard && !sub.hard {
		sub.hard = true
		close(sub.stop)
	}
	if sub.finished {
		sub.mu.Unlock()
		return
	}
	sub.finished, sub.err = true, err
	sess, id := sub.sess, sub.serverID
	sub.serverID = ""
	if unsub && sess != nil && id != "" {
		// The pump is still running (it ends only once finished), so the
		// WaitGroup counter is above zero.
		c.unsubAsync(sess, id, sub)
	} else {
		close(sub.unsubDone)
	}
	sub.mu.Unlock()
	sub.signal()

	c.subsMu.Lock()
	delete(c.subs, sub)
	c.subsMu.Unlock()
	if sess != nil && id != "" {
		sess.mu.Lock()
		if sess.subs[id] == sub {
			delete(sess.subs, id)
		}
		sess.mu.Unlock()
	}
}

// unsubWait caps how long an unsub waits for the server's reply (Subscription.Close waits
// for it).
const unsubWait = time.Second

// unsubAsync ends server subscription id on session s from a goroutine
// (callers may be the read loop, which cannot wait for a reply). When sub
// is not nil, its unsubErr and unsubDone report the result. Callers make
// sure the WaitGroup counter is above zero.
func (c *Client) unsubAsync(s *session, id string, sub *Subscription) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		// The subscription has ended on this side already; the server's word is waited for
		// briefly, so Close never hangs on a server that stopped answering (the unsub still
		// takes effect if the server reads it later).
		timeout := c.opts.requestTimeout
		if timeout <= 0 || timeout > unsubWait {
			timeout = unsubWait
		}
		ctx, cancel := context.WithTimeout(c.bgCtx, timeout)
		defer cancel()
		payload, _ := json.Marshal(struct {
			Sub string `json:"sub"`
		}{id})
		cl, err := s.send(ctx, typeUnsubscribe, quoteData(payload))
		if err == nil {
			err = cl.wait(ctx, nil)
		}
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrClosed) || c.bgCtx.Err() != nil {
			// Already gone on the server: ended by it, or with the connection.
			err = nil
		}
		if err != nil {
			c.log.Warn("fluxiondb: unsub failed", "sub", id, "err", err)
		}
		if sub != nil {
			sub.mu.Lock()
			sub.unsubErr = err
			sub.mu.Unlock()
			close(sub.unsubDone)
		}
	}()
}

// endSubscriptions ends every live subscription with err.
func (c *Client) endSubscriptions(err error, hard bool) {
	c.subsMu.Lock()
	subs := make([]*Subscription, 0, len(c.subs))
	for sub := range c.subs {
		subs = append(subs, sub)
	}
	c.subsMu.Unlock()
	for _, sub := range subs {
		sub.finish(err, hard, false)
	}
}

// pump hands queued events to the reader, one goroutine per subscription,
// so that a reader that is slow or gone never blocks the read loop.
func (sub *Subscription) pump() {
	defer sub.c.wg.Done()
	defer close(sub.done)
	defer close(sub.out)
	for {
		sub.mu.Lock()
		batch := sub.queue
		sub.queue = nil
		finished, hard := sub.finished, sub.hard
		sub.mu.Unlock()
		if hard {
			return
		}
		if len(batch) == 0 {
			if finished {
				return
			}
			select {
			case <-sub.wake:
			case <-sub.stop:
			case <-sub.ctx.Done():
				sub.finish(ctxError(sub.ctx, "subscription", ""), true, true)
			}
			continue
		}
		for i := range batch {
			select {
			case sub.out <- batch[i]:
				if cur := batch[i].Cursor; cur != "" {
					sub.mu.Lock()
					sub.delivered = cur
					sub.mu.Unlock()
				}
			case <-sub.stop:
				return
			case <-sub.ctx.Done():
				sub.finish(ctxError(sub.ctx, "subscription", ""), true, true)
				return
			}
		}
	}
}

// Events returns the channel of events. It is closed when the subscription
// ends; Err then says why. Events of one document come in the order the
// server applied the changes.
func (sub *Subscription) Events() <-chan Event { return sub.out }

// All returns an iterator over the events. When the subscription ends with
// an error, the last pair carries it (with a zero Event). Leaving the loop
// early does not end the subscription: Close does.
func (sub *Subscription) All() iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for ev := range sub.out {
			if !yield(ev, nil) {
				return
			}
		}
		if err := sub.Err(); err != nil {
			yield(Event{}, err)
		}
	}
}

// Snapshot returns the latest record of each selected document at the
// moment of subscribing, keyed by document, when SubscribeQuery.Snapshot
// was set; nil otherwise.
func (sub *Subscription) Snapshot() map[string]Record {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.snapshot
}

// Err reports why the subscription ended: nil while it runs and after
// Close; ctx's error (wrapped) when its context ended; otherwise an error
// matching ErrSubscriptionLost, ErrSlowSubscriber, ErrUnauthenticated,
// ErrConnectionLost, ErrClosed (the client was closed) or a server error.
func (sub *Subscription) Err() error {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.err
}

// Cursor returns the cursor of the last event handed to the reader that
// carried one (or of the subscription's start): resuming from it
// (SubscribeQuery.Cursor) repeats at most the events after it, never skips
// one.
func (sub *Subscription) Cursor() string {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.delivered
}

// Close ends the subscription: Events is closed at once (undelivered
// events are dropped) and the server is told to stop (message unsub). It
// returns when both are done, waiting at most a second for the server's
// reply; the error is that of the unsub request, if the server refused it
// or did not answer in that time (ErrTimeout). Calling Close again does
// nothing.
func (sub *Subscription) Close() error {
	sub.finish(nil, true, true)
	<-sub.done
	<-sub.unsubDone
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.unsubErr
}
