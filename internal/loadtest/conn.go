package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// epoch anchors nanotime on the monotonic clock.
var epoch = time.Now()

func nanotime() int64 { return int64(time.Since(epoch)) }

// Dial connects to a FluxionDB-compatible server and waits for the ready frame
// (PROTOCOL.md §1). The key is added as the api-key query parameter unless the
// URL already carries one; name, when set, labels the connection.
func Dial(ctx context.Context, rawURL, key, name string) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse url %q: %w", rawURL, err)
	}
	q := u.Query()
	if q.Get("api-key") == "" && key != "" {
		q.Set("api-key", key)
	}
	if name != "" {
		q.Set("name", name)
	}
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, err := dialWS(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u.Redacted(), err)
	}
	ws.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := ws.readMessage(nil)
	if err != nil {
		ws.closeNow()
		return nil, fmt.Errorf("wait for ready frame: %w", err)
	}
	ws.nc.SetReadDeadline(time.Time{})
	var ready struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(msg, &ready) != nil || ready.Type != "ready" {
		ws.closeNow()
		return nil, fmt.Errorf("first frame is not the ready frame: %s", truncate(string(msg), 200))
	}
	return ws, nil
}

// connStats are the counters of one connection. The atomics are read live by
// the progress printer; hist belongs to the reader goroutine until it exits.
type connStats struct {
	kind      Kind
	sent      atomic.Int64
	ok        atomic.Int64
	errs      atomic.Int64
	records   atomic.Int64
	mismatch  atomic.Int64
	unmatched atomic.Int64
	lastReply atomic.Int64 // nanotime of the last matched reply

	hist Histogram

	mu           sync.Mutex
	firstErr     string
	firstUnmatch string
}

func (s *connStats) noteErr(p *string, msg string) {
	s.mu.Lock()
	if *p == "" {
		*p = msg
	}
	s.mu.Unlock()
}

// slot is one request in flight. The writer stores records and start before
// seq; the reader loads seq first, so a matching seq guarantees it sees them.
type slot struct {
	seq     atomic.Uint64 // 0 = free
	start   atomic.Int64
	records atomic.Int64
}

// pipeConn pipelines the requests of one generator over one connection.
type pipeConn struct {
	ws       *wsConn
	gen      generator
	inflight int
	slots    []slot
	free     chan int
	st       *connStats
	pacer    pacer // non-nil: send at the generator's rate, one frame per write

	// Request building, owned by the sending loop.
	bufs [][]byte // per slot: its current request frame (reused)
	id   []byte
	seq  uint64 // sequence number of the last request sent

	readDone chan struct{}
	readErr  error
	closing  atomic.Bool
}

func newPipeConn(ws *wsConn, gen generator, inflight int) *pipeConn {
	c := &pipeConn{
		ws:       ws,
		gen:      gen,
		inflight: inflight,
		slots:    make([]slot, inflight),
		free:     make(chan int, inflight),
		bufs:     make([][]byte, inflight),
		st:       &connStats{kind: gen.kind()},
		readDone: make(chan struct{}),
	}
	for i := range inflight {
		c.free <- i
	}
	if p, ok := gen.(pacer); ok && p.paced() {
		c.pacer = p
	}
	return c
}

// run sends until the generator is done or the deadline passes, waits for
// every outstanding reply, then closes the connection.
func (c *pipeConn) run(ctx context.Context, deadline time.Time) error {
	// A write blocked on a server that stopped reading must end with the phase.
	stop := context.AfterFunc(ctx, func() { c.ws.closeNow() })
	defer stop()
	var err error
	if c.pacer == nil {
		err = c.runClosedLoop(ctx, deadline)
	} else {
		go c.readLoop()
		err = c.runPaced(ctx, deadline)
	}
	c.closing.Store(true)
	if err != nil {
		c.ws.closeNow()
	} else {
		c.ws.close(1000, "done")
	}
	if c.pacer != nil {
		<-c.readDone
	} else if err == nil {
		// No reader goroutine: read to the end of the close handshake (the server's close
		// frame or its hang-up).
		c.ws.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			if _, _, rerr := c.ws.readMessage(nil); rerr != nil {
				break
			}
		}
	}
	c.ws.closeNow()
	return err
}

// coalesceMax bounds the bytes of small requests sent in one write.
const coalesceMax = 64 << 10

// arm builds slot s's next request, records it in the slot and returns the encoded frame;
// ok is false when the generator is done.
func (c *pipeConn) arm(s int) (frame []byte, ok bool) {
	c.id = appendID(c.id[:0], s, c.seq+1)
	raw, recs, ok := c.gen.next(append(c.bufs[s][:0], make([]byte, wsHeaderRoom)...), c.id)
	if !ok {
		return nil, false
	}
	c.bufs[s] = raw
	c.seq++
	sl := &c.slots[s]
	sl.records.Store(int64(recs))
	sl.start.Store(nanotime())
	sl.seq.Store(c.seq)
	c.st.sent.Add(1)
	return c.ws.encodeFrame(opText, raw), true
}

// runPaced sends one request per write at the generator's rate while readLoop, on its own
// goroutine, takes the replies and hands the slots back.
func (c *pipeConn) runPaced(ctx context.Context, deadline time.Time) error {
	held := 0
	for {
		var s int
		select {
		case s = <-c.free:
		case <-c.readDone:
			return c.readFailure()
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if err := c.pacer.wait(ctx); err != nil {
			return err
		}
		var frame []byte
		ok := deadline.IsZero() || !time.Now().After(deadline)
		if ok {
			frame, ok = c.arm(s)
		}
		if !ok {
			held++
			break
		}
		if err := c.ws.writeRaw(frame); err != nil {
			if cerr := context.Cause(ctx); cerr != nil {
				return cerr
			}
			return fmt.Errorf("send request: %w", err)
		}
	}
	for held < c.inflight {
		select {
		case <-c.free:
			held++
		case <-c.readDone:
			return c.readFailure()
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// runClosedLoop drives a connection that sends as fast as replies come back, on one
// goroutine: each reply read frees its slot, and once the replies already received are
// handled, the freed slots' next requests go out, small ones coalesced into one write.
// Requests are sent without reading in between; with at most -inflight requests out and
// small replies (ins) or small requests (qry, qdoc) neither side's buffers can fill up. With a reader goroutine
// handing slots to a writer goroutine the tool spent a third of its CPU waking goroutines,
// CPU the server under test, on the same machine, then did not get.
func (c *pipeConn) runClosedLoop(ctx context.Context, deadline time.Time) error {
	free := make([]int, 0, c.inflight)
	for i := range c.inflight {
		free = append(free, i)
	}
	var batch, msg []byte
	outstanding, done := 0, false
	for {
		// Send the next request of every free slot: small ones coalesced into one write,
		// large ones (ingest batches) one write each, never waiting for a reply first.
		for len(free) > 0 && !done {
			batch = batch[:0]
			var alone []byte // a large request, sent from its own buffer without a copy
			for len(free) > 0 && !done && len(batch) < coalesceMax {
				if !deadline.IsZero() && time.Now().After(deadline) {
					done = true
					break
				}
				frame, ok := c.arm(free[len(free)-1])
				if !ok {
					done = true
					break
				}
				free = free[:len(free)-1]
				outstanding++
				if len(batch) == 0 && len(frame) >= coalesceMax {
					alone = frame
					break
				}
				batch = append(batch, frame...)
			}
			out := batch
			if alone != nil {
				out = alone
			}
			if len(out) > 0 {
				if err := c.ws.writeRaw(out); err != nil {
					if cerr := context.Cause(ctx); cerr != nil {
						return cerr
					}
					return fmt.Errorf("send request: %w", err)
				}
			}
		}
		if outstanding == 0 { // every slot free after the sending above: the generator is done
			return nil
		}
		// Handle every reply already received before sending again.
		for {
			var err error
			_, msg, err = c.ws.readMessage(msg)
			if err != nil {
				if cerr := context.Cause(ctx); cerr != nil {
					return cerr
				}
				c.readErr = err
				return c.readFailure()
			}
			if s, ok := c.match(msg, nanotime()); ok {
				free = append(free, s)
				outstanding--
			}
			if c.ws.br.Buffered() == 0 || outstanding == 0 {
				break
			}
		}
	}
}

func (c *pipeConn) readFailure() error {
	if c.readErr == nil {
		return errors.New("connection closed")
	}
	var ce *CloseError
	if errors.As(c.readErr, &ce) {
		return fmt.Errorf("server closed the connection: %d %q", ce.Code, ce.Reason)
	}
	return fmt.Errorf("read reply: %w", c.readErr)
}

func (c *pipeConn) readLoop() {
	defer close(c.readDone)
	buf := make([]byte, 0, 64<<10)
	for {
		var err error
		_, buf, err = c.ws.readMessage(buf)
		if err != nil {
			if !c.closing.Load() {
				c.readErr = err
			}
			return
		}
		if s, ok := c.match(buf, nanotime()); ok {
			c.free <- s
		}
	}
}

// match records the reply b in the statistics and returns the slot it frees; ok is false
// for a reply that answers no request in flight (counted as unmatched).
func (c *pipeConn) match(b []byte, now int64) (slot int, ok bool) {
	st := c.st
	info, err := parseReply(b)
	s, seq, ok := 0, uint64(0), false
	if err == nil {
		s, seq, ok = parseID(info.id)
	}
	if !ok || s >= len(c.slots) || c.slots[s].seq.Load() != seq {
		st.unmatched.Add(1)
		st.noteErr(&st.firstUnmatch, truncate(string(b), 200))
		return 0, false
	}
	sl := &c.slots[s]
	st.hist.Record(now - sl.start.Load())
	if info.isErr {
		st.errs.Add(1)
		st.noteErr(&st.firstErr, replyError(b))
	} else {
		want := sl.records.Load()
		if st.kind == KindIns {
			st.records.Add(want)
		} else {
			n := int64(countRecords(b))
			st.records.Add(n)
			if want >= 0 && n != want {
				st.mismatch.Add(1)
			}
		}
		st.ok.Add(1)
	}
	st.lastReply.Store(now)
	sl.seq.Store(0)
	return s, true
}
