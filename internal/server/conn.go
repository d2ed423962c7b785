package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/volandoo/fluxiondb/internal/auth"
	"github.com/volandoo/fluxiondb/internal/engine"
	"github.com/volandoo/fluxiondb/internal/protocol"
)

// conn is one client connection. Three goroutines serve it:
//
//   - the read loop (serve, readLoop) reads each frame and parses it — for an insert, that
//     is the whole decode of its records. A large frame (a batch of inserts) it hands to the
//     handler and goes on to read and parse the next; a small one it answers itself when
//     nothing is ahead of it, since a hand-off would cost more than it saves;
//   - the handler (handleLoop) answers the frames handed to it, in order;
//   - the write loop (writeLoop) waits for each reply's commit to be durable and writes it.
//     The read loop writes a reply it made itself (writeDirect) when no reply is queued
//     ahead of it, no further request has already arrived, and its commit needs no disk
//     wait (none, or --fsync interval/never: db.QuickWait): a client that sends one request
//     at a time then costs one goroutine wake-up per round trip, not two or (through the
//     log's flusher) four.
//
// Requests are answered in the order they arrive and may be pipelined. Parsing the next
// batch while the handler applies the one before (or waits for the change lock) lets one
// connection use more than one core. Handing durability waits to the write loop lets
// handling go on to the next request, so a connection with several requests in flight
// shares fsyncs (group commit).
//
// The outbound queue is bounded. A client that stops reading fills it; queuing a reply then
// waits at most WriteTimeout for room and closes the connection with 1008 and a reason,
// so a stuck client never holds anyone else up.
type conn struct {
	srv   *Server
	ws    *websocket.Conn
	cork  *corkConn     // the socket under ws; the write loop batches bursts of replies with it
	rd    *bufio.Reader // the socket's read buffer: bytes there are requests already sent
	rdMu  sync.Mutex    // held by closeWith's handshake (which reads rd) and by the read loop's look at rd
	key   *auth.Entry
	ip    string
	name  string
	since time.Time
	log   *slog.Logger

	out       chan reply
	queued    atomic.Int64    // replies put on out and not yet written
	wmu       sync.Mutex      // held while a reply is written: by the write loop, or the read loop writing directly
	ctx       context.Context // ends when the connection is finished
	cancel    context.CancelFunc
	closeOnce sync.Once
	closed    chan struct{} // closed when the write loop has ended
	handshake chan struct{} // closed when closeWith's closing handshake (or drop) has ended

	// Handling state: used by the handler, or by the read loop while handing is 0.
	recs    []engine.Record // reused across requests
	handing atomic.Int64    // frames handed to the handler and not yet done with

	mu         sync.Mutex
	pending    int // requests read whose replies are not written yet
	idle       *sync.Cond
	closeCode  websocket.StatusCode
	closeCause string
	subs       map[string]*subscription // under mu

	spare      atomic.Pointer[[]byte] // a large reply buffer kept for the next reply
	nextSub    uint64                 // handling state (see recs)
	lastActive atomic.Int64           // unix nanoseconds of the last request read, or of the last reply written with none left
	closing    atomic.Bool            // closeWith or drop has been called
}

// keepalive pings the peer and enforces the idle timeout. A peer that does not answer a ping
// within the ping interval is gone (a dead network path leaves no other trace).
func (c *conn) keepalive() {
	every := c.srv.cfg.PingInterval
	if every <= 0 || (c.srv.cfg.IdleTimeout > 0 && c.srv.cfg.IdleTimeout < every) {
		every = c.srv.cfg.IdleTimeout
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if idle := c.srv.cfg.IdleTimeout; idle > 0 && time.Since(time.Unix(0, c.lastActive.Load())) >= idle {
			c.mu.Lock()
			// A subscriber waits for events, and a client whose reply is still being made or
			// sent waits for it: neither is idle.
			waiting := len(c.subs) > 0 || c.pending > 0
			c.mu.Unlock()
			if !waiting {
				c.closeWith(websocket.StatusNormalClosure, "idle timeout: no request for "+idle.String())
				return
			}
		}
		if c.srv.cfg.PingInterval > 0 {
			from := c.cork.progress.Load()
			ctx, cancel := context.WithTimeout(c.ctx, c.srv.cfg.PingInterval)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				if c.ctx.Err() != nil {
					return
				}
				c.mu.Lock()
				waiting := c.pending > 0
				c.mu.Unlock()
				if waiting || c.cork.busySince(from) {
					// The ping waited behind a reply or event still going out, which the
					// client is reading, or its pong waits behind a request this
					// connection is still answering (the read loop answers small ones
					// itself, and reads nothing meanwhile): the client is there. One that
					// stops reading is cut by the write deadline instead.
					continue
				}
				c.drop(websocket.StatusGoingAway, "ping timeout: the client did not answer")
				return
			}
		}
	}
}

func (c *conn) serve() {
	defer c.finish()
	go c.writeLoop()
	if c.srv.cfg.PingInterval > 0 || c.srv.cfg.IdleTimeout > 0 {
		go c.keepalive()
	}
	// The ready frame goes first (PROTOCOL.md §1); v2 clients wait for it.
	ready := getBuf()
	*ready = append((*ready)[:0], protocol.Ready...)
	c.queued.Add(1)
	c.out <- reply{buf: ready, push: true}

	work := make(chan *frame, pipelineDepth-1)
	free := make(chan *frame, pipelineDepth)
	for range pipelineDepth {
		f := &frame{}
		f.req.FastInsert = &f.ins // ins records are read from the escaped data string in one pass
		free <- f
	}
	handled := make(chan struct{})
	go c.handleLoop(work, free, handled)
	err := c.readLoop(work, free, handled)
	close(work)
	<-handled // every frame read is handled before the connection ends
	if err != nil {
		c.readEnded(err)
	}
}

// pipelineDepth is how many requests of one connection may be between the read loop and
// the end of their handling: one being handled, the rest parsed and waiting.
const pipelineDepth = 3

// handOffBytes is the frame size from which the read loop hands a request to the handler
// rather than handling it itself when nothing is ahead of it. A hand-off costs a goroutine
// switch or two (~1–2 µs of CPU); it pays when handling takes far longer, as for a batch
// of inserts, whose decode of the next frame then overlaps with its apply. Small requests
// (queries, KV, single inserts) are handled in the read loop unless they must wait their
// turn behind a handed-off one.
const handOffBytes = 16 << 10

// frame is one request on its way from the read loop to its handling.
type frame struct {
	buf    []byte
	req    protocol.Request
	ins    protocol.Insert
	binary bool            // a binary frame: answered with an error
	perr   *protocol.Error // the envelope did not parse
	start  time.Time       // when it was read: its handling time counts from here
	more   bool            // more request bytes were already buffered when it was read
}

// keepFrameBytes bounds the buffer a frame keeps for the next request: a connection that
// once sent a 16 MiB batch does not pin three such buffers for the rest of its life.
const keepFrameBytes = 1 << 20

// release drops the frame's buffer if it grew past keepFrameBytes.
func (f *frame) release() {
	if cap(f.buf) > keepFrameBytes {
		f.buf = nil
	}
}

// readLoop reads and parses frames until the connection ends (or the handler stops) and
// returns the read error, nil when the connection was closed from this side.
func (c *conn) readLoop(work chan<- *frame, free chan *frame, handled <-chan struct{}) error {
	for {
		// Every way a connection ends closes its socket (closeWith, drop, server shutdown),
		// which ends this read; a context here would cost an AfterFunc per message.
		typ, r, err := c.ws.Reader(context.Background())
		if err != nil {
			return err
		}
		c.addPending(1) // before the check below: Shutdown's waitIdle then sees it or it is skipped
		if c.closing.Load() || c.srv.shutting.Load() {
			// Closing, or shutting down: a reply could only follow the close frame, which is
			// not allowed, so the request is not handled either — not applied — and its
			// caller sees the close. Requests read before the shutdown began are answered.
			c.addPending(-1)
			if _, err := io.Copy(io.Discard, r); err != nil {
				return err
			}
			continue
		}
		c.lastActive.Store(time.Now().UnixNano())
		var f *frame
		select {
		case f = <-free:
		case <-handled: // the handler gave up (a client that does not read); the close is on its way
			return nil
		}
		f.buf, err = readAll(r, f.buf[:0])
		if err != nil {
			return err
		}
		f.start = time.Now()
		f.more = c.moreBuffered()
		f.binary = typ != websocket.MessageText
		f.perr = nil
		if !f.binary {
			f.perr = protocol.ParseEnvelope(f.buf, &f.req)
			// Invalid UTF-8 would be stored as sent but shown as U+FFFD: two names shown alike,
			// a listed name that does not reach what it lists. Refused whole (~3 µs per
			// 100 KB of ASCII), with the id when it could be read.
			if f.perr == nil && !utf8.Valid(f.buf) {
				f.perr = protocol.ErrInvalidUTF8
			}
		}
		if len(f.buf) < handOffBytes && c.handing.Load() == 0 {
			// Nothing ahead of it: answer it here, in order by construction.
			queued := c.serve1(f, !f.more)
			f.release()
			free <- f
			if !queued {
				return nil
			}
			continue
		}
		c.handing.Add(1)
		select {
		case work <- f:
		case <-handled:
			return nil
		}
	}
}

// moreBuffered reports whether bytes of a further request are already in the socket's read
// buffer. The library reads that buffer outside our read loop only in the closing handshake
// (ws.Close, under rdMu); while one runs the answer is true, which sends replies the usual way.
func (c *conn) moreBuffered() bool {
	if c.rd == nil || !c.rdMu.TryLock() {
		return true
	}
	defer c.rdMu.Unlock()
	return c.rd.Buffered() > 0
}

// handleLoop handles the frames handed to it, in order. When a reply cannot be queued (the
// client does not read; the connection is being closed) it stops, and the read loop, seeing
// handled closed, stops too.
func (c *conn) handleLoop(work <-chan *frame, free chan<- *frame, handled chan<- struct{}) {
	defer close(handled)
	for f := range work {
		queued := c.serve1(f, false)
		f.release()
		free <- f
		c.handing.Add(-1) // after f is done with: the read loop may now answer frames itself
		if !queued {
			return
		}
	}
}

// serve1 answers one frame: handles it, queues the reply (or, when direct, may write it
// itself: writeDirect) and starts what the reply starts. It reports whether the reply was
// queued or written. f may be reused once it returns (names in a subscription and records
// until applied are views of its bytes).
func (c *conn) serve1(f *frame, direct bool) bool {
	var rep reply
	if f.binary {
		// Refused, but answered with its id when that can be read (a Node client that sent
		// a Buffer): its caller gets the error instead of waiting for a reply.
		_ = protocol.ParseEnvelope(f.buf, &f.req)
		if !c.allow() {
			rep = c.rateLimited(&f.req)
		} else {
			b := getBuf()
			*b = protocol.AppendError((*b)[:0], f.req.ID, protocol.ErrBinaryFrame)
			c.srv.metrics.requestError(protocol.TypeUnknown, protocol.ErrBinaryFrame.Code)
			rep = reply{buf: b}
		}
	} else {
		rep = c.request(f)
	}
	written, ok := false, true
	if direct && (rep.commit == 0 || c.srv.db.QuickWait()) {
		written, ok = c.writeDirect(rep)
	}
	if !written {
		ok = c.enqueue(rep)
	}
	if rep.start != nil {
		// Also when the reply could not be sent (the connection is ending): what the request
		// started owns what it took (a subscription's pump releases it), and stops at once.
		rep.start()
	}
	return ok
}

// request handles one parsed text frame.
func (c *conn) request(f *frame) reply {
	r := &f.req
	// Every frame counts against the key's rate, malformed ones too: each costs a reply.
	if !c.allow() {
		return c.rateLimited(r)
	}
	if e := f.perr; e != nil {
		b := getBuf()
		*b = protocol.AppendError((*b)[:0], r.ID, e)
		c.srv.metrics.requestError(r.Type, e.Code)
		return reply{buf: b}
	}
	if c.key.Revoked() {
		// The key was removed between frames; the close is on its way.
		b := getBuf()
		*b = protocol.AppendError((*b)[:0], r.ID, protocol.ErrPermissionDenied)
		return reply{buf: b}
	}
	rep := c.handle(r)
	d := time.Since(f.start)
	// A change's outcome is counted once it is durable (settle): until then it may still fail.
	c.srv.metrics.request(r.Type, d, !rep.failed && rep.commit == 0)
	if c.srv.cfg.SlowRequest > 0 && d >= c.srv.cfg.SlowRequest {
		c.log.Warn("slow request", "type", r.Type.String(), "duration", d, "reply_bytes", len(*rep.buf))
	}
	return rep
}

// rateLimited is the reply to a frame over its key's --rate-limit.
func (c *conn) rateLimited(r *protocol.Request) reply {
	b := getBuf()
	e := &protocol.Error{Code: protocol.CodeRateLimited, Text: "rate limit exceeded for this API key (--rate-limit); slow down and retry"}
	*b = protocol.AppendError((*b)[:0], r.ID, e)
	c.srv.metrics.requestError(r.Type, e.Code)
	return reply{buf: b, failed: true}
}

// enqueue hands a reply to the write loop, waiting at most WriteTimeout for room.
func (c *conn) enqueue(rep reply) bool {
	return c.queue(rep, c.ctx.Done(), "slow consumer: replies were not read in time")
}

// queue puts rep on the outbound queue, waiting at most WriteTimeout for room (or until
// done). A connection whose queue stays full that long is not reading: it is closed with
// 1008 and reason, so it holds up no one else. The buffer is released when not queued.
func (c *conn) queue(rep reply, done <-chan struct{}, reason string) bool {
	c.queued.Add(1)
	select {
	case c.out <- rep:
		return true
	default:
	}
	t := time.NewTimer(c.srv.cfg.WriteTimeout)
	defer t.Stop()
	select {
	case c.out <- rep:
		return true
	case <-done:
	case <-t.C:
		c.srv.metrics.slowConsumer()
		c.closeWith(websocket.StatusPolicyViolation, reason)
	}
	c.queued.Add(-1)
	putBuf(rep.buf)
	return false
}

// writeDirect writes rep to the socket itself, after its commit (if any) is done — the
// caller checked that this takes no disk wait (QuickWait) — when no reply is queued or being
// written. That keeps replies in order: queued counts replies from the moment they are queued
// until the write loop has written them, and is read under wmu, which the write loop holds
// while it writes. It reports whether it took the reply (false: queue it) and whether the
// write succeeded. A write that gets stuck (a client that stopped reading) is bounded by the
// socket's write deadline, as in the write loop.
//
// The read loop calls it only when no further request was already in the socket's read
// buffer: a pipelining client is better served by the write loop, which writes a burst of
// replies in one syscall (corkConn) while the read loop goes on reading.
func (c *conn) writeDirect(rep reply) (written, ok bool) {
	if c.queued.Load() != 0 || !c.wmu.TryLock() {
		return false, false
	}
	if c.queued.Load() != 0 {
		c.wmu.Unlock()
		return false, false
	}
	if rep.commit != 0 {
		c.settle(&rep)
	}
	err := c.ws.Write(context.Background(), websocket.MessageText, *rep.buf)
	c.release(rep.buf)
	c.wmu.Unlock()
	if err != nil {
		c.writeFailed(err)
		return true, false
	}
	if !rep.push {
		c.addPending(-1)
	}
	return true, true
}

// writeLoop writes queued replies in order, each after its commit is durable.
func (c *conn) writeLoop() {
	defer close(c.closed)
	// Whatever a burst left held (a close frame written meanwhile, say) goes out on the way.
	defer c.cork.uncork()
	for {
		var rep reply
		select {
		case rep = <-c.out:
		case <-c.ctx.Done():
			return
		}
		if rep.commit != 0 {
			// Never hold earlier replies while waiting for the disk.
			if err := c.cork.uncork(); err != nil {
				c.writeFailed(err)
				return
			}
			c.settle(&rep)
		}
		c.wmu.Lock()
		if len(c.out) > 0 {
			c.cork.cork() // more replies follow: let them leave in one write
		}
		// No deadline on the context: the socket's write deadline (corkConn) bounds the write.
		err := c.ws.Write(context.Background(), websocket.MessageText, *rep.buf)
		c.release(rep.buf)
		if err == nil && len(c.out) == 0 {
			err = c.cork.uncork()
		}
		c.queued.Add(-1)
		c.wmu.Unlock()
		if err != nil {
			c.writeFailed(err)
			return
		}
		if !rep.push {
			c.addPending(-1)
		}
	}
}

// writeFailed ends a connection whose reply could not be written: a client that does not
// read (unless the connection was being closed anyway).
func (c *conn) writeFailed(err error) {
	// A write that ran into its deadline is a client that did not read, even when the read
	// loop saw the socket end first and ended the connection: count and log it all the same.
	if c.closing.Load() || (c.ctx.Err() != nil && !errors.Is(err, os.ErrDeadlineExceeded)) {
		return
	}
	c.log.Info("closing a client that does not read its replies", "err", err)
	c.srv.metrics.slowConsumer()
	// The write that timed out may have left half a frame on the socket: no close frame can
	// follow it, so the client sees the socket end (1006), as docs/PROTOCOL.md §7 says.
	c.drop(websocket.StatusPolicyViolation, "slow consumer: a reply could not be written in time; "+
		"closed without a close frame (the socket was stuck mid-frame)")
}

func (c *conn) addPending(n int) {
	c.mu.Lock()
	c.pending += n
	if c.pending == 0 {
		c.idle.Broadcast()
		// The idle clock starts when the last reply has gone out: a client that waited long
		// for a large one is not idle the moment it has it.
		c.lastActive.Store(time.Now().UnixNano())
	}
	c.mu.Unlock()
}

// waitIdle waits until no request is being handled and no reply is queued, or until the
// deadline. Used by graceful shutdown to answer what is in flight before closing.
func (c *conn) waitIdle(deadline time.Time) {
	stop := time.AfterFunc(time.Until(deadline), func() {
		c.mu.Lock()
		c.idle.Broadcast()
		c.mu.Unlock()
	})
	defer stop.Stop()
	c.mu.Lock()
	for c.pending > 0 && time.Now().Before(deadline) && c.ctx.Err() == nil {
		c.idle.Wait()
	}
	c.mu.Unlock()
}

// closeWith closes the connection with a status and reason, once.
func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	c.closing.Store(true)
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closeCode, c.closeCause = code, reason
		c.mu.Unlock()
		go func() {
			// Close performs the closing handshake (bounded by the library at 5 s);
			// it makes the read loop return.
			c.rdMu.Lock() // Close reads the peer's close frame from rd (moreBuffered)
			_ = c.ws.Close(code, reason)
			c.rdMu.Unlock()
			c.cancel()
			close(c.handshake)
		}()
	})
}

// drop ends a connection whose peer is gone (it stopped answering pings) without a closing
// handshake: waiting for a dead peer's close frame would only keep it registered.
func (c *conn) drop(code websocket.StatusCode, reason string) {
	c.closing.Store(true)
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closeCode, c.closeCause = code, reason
		c.mu.Unlock()
		_ = c.ws.CloseNow()
		c.cancel()
		close(c.handshake)
	})
}

func (c *conn) readEnded(err error) {
	// How the client ended it, for the "connection closed" line (a close by the server has
	// set its own code and reason by then): its close frame, or none (1006, as RFC 6455
	// names a connection closed without one).
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		c.noteClose(ce.Code, "closed by the client: "+ce.Reason)
	case !c.closing.Load() && c.ctx.Err() == nil:
		c.noteClose(websocket.StatusAbnormalClosure, "the client went away without a close frame")
	}
	switch {
	case websocket.CloseStatus(err) == websocket.StatusMessageTooBig,
		errors.Is(err, websocket.ErrMessageTooBig):
		c.srv.metrics.messageTooLarge()
		c.closeWith(websocket.StatusMessageTooBig, "message too big: over --max-message-size")
	case websocket.CloseStatus(err) != -1, errors.Is(err, io.EOF), c.ctx.Err() != nil:
		// The peer closed, or we did.
	case isNetworkError(err):
		c.log.Debug("read failed", "err", err)
	default:
		// The library rejected the peer's framing. For most violations it has sent 1002
		// itself (then this is a no-op); for an unmasked client frame it only returns the
		// error, and the peer would see a bare TCP close.
		c.log.Debug("protocol violation", "err", err)
		c.closeWith(websocket.StatusProtocolError, closeReason("protocol error: "+err.Error()))
	}
}

// noteClose records how the connection ended unless the server's own close did already.
func (c *conn) noteClose(code websocket.StatusCode, cause string) {
	c.mu.Lock()
	if c.closeCode == 0 {
		c.closeCode, c.closeCause = code, cause
	}
	c.mu.Unlock()
}

// isNetworkError reports whether a read failed in the network (reset, timeout, closed
// socket) rather than on what the peer sent.
func isNetworkError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF)
}

// closeReason cuts a close reason to the 123 bytes a close frame has room for, on a rune
// boundary.
func closeReason(s string) string {
	const max = 123
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

func (c *conn) finish() {
	c.cancel()
	<-c.closed
	if c.closing.Load() {
		// A closeWith may have started its handshake goroutine without it having run yet:
		// CloseNow first would drop the socket before the close frame is written.
		// The library bounds the handshake (5 s to write, 5 s to wait).
		<-c.handshake
	}
	_ = c.ws.CloseNow()
	// Drain replies the write loop did not send.
	for {
		select {
		case rep := <-c.out:
			putBuf(rep.buf)
		default:
			c.srv.conns.remove(c)
			c.mu.Lock()
			code, cause := c.closeCode, c.closeCause
			c.pending = 0
			c.idle.Broadcast()
			c.mu.Unlock()
			c.log.Info("connection closed", "duration", time.Since(c.since).Round(time.Millisecond), "close_code", int(code), "close_reason", cause)
			return
		}
	}
}

// readAll reads a whole message into buf, growing it as needed.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// spareMin is the size from which a written reply's buffer is kept by its connection rather
// than returned to the shared pool: sync.Pool is emptied at every garbage collection, so a
// client repeating a 1 MiB query would otherwise regrow its buffer (and make garbage that
// brings the next collection closer) on every request.
const spareMin = 64 << 10

// release gives a written reply's buffer back: large ones to the connection's spare slot.
func (c *conn) release(b *[]byte) {
	if cap(*b) >= spareMin && cap(*b) <= 16<<20 {
		*b = (*b)[:0] // before publishing it: the read loop may take it at once
		if c.spare.CompareAndSwap(nil, b) {
			return
		}
	}
	putBuf(b)
}

// replyBuf returns the connection's spare buffer if it has one, else a pooled one.
func (c *conn) replyBuf() *[]byte {
	if b := c.spare.Swap(nil); b != nil {
		return b
	}
	return getBuf()
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

// putBuf returns a buffer to the pool unless it grew very large. Query replies of a few
// megabytes (qry over 10,000 documents is about 1 MiB) are kept so the next one does not
// regrow from 4 KiB; sync.Pool drops idle buffers at garbage collection, so nothing is
// pinned for good.
func putBuf(b *[]byte) {
	if cap(*b) > 16<<20 {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}
