package fluxiondb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// BatchWriter groups records into large ins requests for high-rate ingest.
// Write queues records; a background goroutine sends a batch when it holds
// BatchSize records or BatchBytes of names and data, or FlushInterval after
// its first record, whichever comes first. Up to MaxInFlight batches are pipelined on the connection
// while earlier ones await their replies; batches are written in the order
// their records were queued, and the server applies them in that order.
//
// Back-pressure: when the queue is full, Write blocks until there is room
// (or its context ends), so a producer cannot outrun the server without
// bound.
//
// Errors: a batch that fails is reported to the error handler (if set, see
// WithErrorHandler) with its records, and is returned by the next Flush or
// Close. A failed batch is not retried: whether a batch lost with the
// connection was applied is unknown, and the handler decides.
//
// A BatchWriter is safe for concurrent use. Close it before closing its
// Client.
type BatchWriter struct {
	c *Client
	o batchOptions

	in       chan InsertRecord
	flushReq chan chan error
	closing  chan struct{}
	done     chan struct{}
	inflight chan struct{}
	waiters  sync.WaitGroup

	// closeMu orders Write against Close (and against the Client's close):
	// Writes hold it shared while they queue, so once closed is set under it
	// no record can slip into the queue after the final drain.
	closeMu     sync.RWMutex
	closed      bool // Writes fail with ErrClosed
	closeCalled bool // Close has run: later calls return nil

	errMu   sync.Mutex
	errs    []error
	dropped int

	// queued is the bytes of names and data in the queue (in); Write waits while it is over
	// the queue's byte bound, and room wakes it when run takes records off.
	queued atomic.Int64
	room   chan struct{}
}

// recordBytes is what a record counts for in WithBatchBytes and the queue's byte bound: its
// bytes in the request frame, names and data escaped twice as an ins request carries them
// (a quote takes 4 bytes there, a control character up to 7), plus its field names. Counting
// the bytes as given let a batch of quote-heavy records pass the server's size limit.
func recordBytes(r *InsertRecord) int {
	return recordFrameOverhead + nestedLen(r.Col) + nestedLen(r.Doc) + nestedLen(r.Data)
}

// recordFrameOverhead is what a record adds to a frame beside its names and data.
const recordFrameOverhead = len(`{\"ts\":-9223372036854775808,\"doc\":\"\",\"data\":\"\",\"col\":\"\"},`)

// nestedLen is the length of s as appendStringLiteral writes it nested, without the quotes.
func nestedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			n += 3 // \\\"
		case c == '\n' || c == '\r' || c == '\t':
			n += 2 // \\n
		case c < 0x20:
			n += 6 // \\u00XX
		}
	}
	if !utf8.ValidString(s) {
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				n += 6 // one byte becomes \\ufffd
			}
			i += size
		}
	}
	return n
}

// Caps on what a BatchWriter allocates up front, whatever WithBatchSize and WithBufferSize
// ask: a batch's slice grows as records come, and the queue holds at most maxQueueRecords.
const (
	maxBatchPrealloc = 1024
	maxQueueRecords  = 1 << 20
)

type batchOptions struct {
	size        int
	bytes       int
	interval    time.Duration
	buffer      int
	maxInFlight int
	onError     func(err error, records []InsertRecord)
}

// BatchOption configures a BatchWriter.
type BatchOption func(*batchOptions)

// WithBatchSize sets the number of records per ins request (default 1000).
func WithBatchSize(n int) BatchOption {
	return func(o *batchOptions) {
		if n > 0 {
			o.size = n
		}
	}
}

// WithBatchBytes sets the most bytes a batch's records take in its request frame
// (names and data as the frame carries them, escaped twice: a quote counts 4
// bytes, a control character up to 7) before it is sent, whatever its record
// count (default 4 MiB). A server refuses a frame over its --max-message-size
// (16 MiB by default) by closing the connection, which fails every request in
// flight on it. A single record larger than this goes out in a batch of its own.
func WithBatchBytes(n int) BatchOption {
	return func(o *batchOptions) {
		if n > 0 {
			o.bytes = n
		}
	}
}

// WithFlushInterval sets the longest a queued record waits before its batch
// is sent (default 50ms).
func WithFlushInterval(d time.Duration) BatchOption {
	return func(o *batchOptions) {
		if d > 0 {
			o.interval = d
		}
	}
}

// WithBufferSize sets how many records may be queued before Write blocks
// (default 8 batches, at most 65,536 records). Whatever the count, Write also
// blocks while the queue holds 8 × WithBatchBytes of names and data (32 MiB by
// default), so large records through a server outage do not pile up in memory.
func WithBufferSize(n int) BatchOption {
	return func(o *batchOptions) {
		if n > 0 {
			o.buffer = n
		}
	}
}

// WithMaxInFlight sets how many batches may await their replies at once
// (default 4).
func WithMaxInFlight(n int) BatchOption {
	return func(o *batchOptions) {
		if n > 0 {
			o.maxInFlight = n
		}
	}
}

// WithErrorHandler sets a function called with each failed batch. Calls are
// serialized; the handler must not call the BatchWriter's Flush or Close.
func WithErrorHandler(f func(err error, records []InsertRecord)) BatchOption {
	return func(o *batchOptions) { o.onError = f }
}

// maxKeptErrors bounds the errors a BatchWriter keeps between flushes.
const maxKeptErrors = 16

// NewBatchWriter starts a BatchWriter that sends through c.
func (c *Client) NewBatchWriter(opts ...BatchOption) *BatchWriter {
	o := batchOptions{size: 1000, bytes: 4 << 20, interval: 50 * time.Millisecond, maxInFlight: 4}
	for _, opt := range opts {
		opt(&o)
	}
	if o.buffer == 0 {
		o.buffer = 8 * min(o.size, 1<<13) // 8 batches, at most 65,536 records (no overflow)
	}
	o.buffer = min(o.buffer, maxQueueRecords)
	b := &BatchWriter{
		c:        c,
		o:        o,
		room:     make(chan struct{}, 1),
		in:       make(chan InsertRecord, o.buffer),
		flushReq: make(chan chan error),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
		inflight: make(chan struct{}, o.maxInFlight),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		close(b.done)
		return b
	}
	c.wg.Add(1)
	go b.run()
	return b
}

// Write queues records. It blocks while the queue is full; it fails with
// ErrClosed after Close (or after the Client closed), and with the context's
// error when ctx ends first (records queued before that stay queued). Records
// naming a collection or document that is not valid UTF-8 are refused, none
// of the call's records queued, with ErrInvalidRequest.
func (b *BatchWriter) Write(ctx context.Context, records ...InsertRecord) error {
	b.closeMu.RLock()
	defer b.closeMu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	for i := range records {
		// Refused here, whole, rather than failing the batch it would have joined.
		if err := checkNames("batch write", records[i].Col, records[i].Doc); err != nil {
			return err
		}
	}
	for _, r := range records {
		select {
		case <-b.done: // checked first: a select picks among ready cases at random
			return ErrClosed
		default:
		}
		// The queue is bounded in bytes too (8 batches' WithBatchBytes): large records
		// through an outage held memory by the record count alone (8000 × 64 KiB = 500 MiB).
		// An empty queue takes any record.
		for q := b.queued.Load(); q > 0 && q+int64(recordBytes(&r)) > 8*int64(b.o.bytes); q = b.queued.Load() {
			select {
			case <-b.room:
			case <-b.done:
				return ErrClosed
			case <-ctx.Done():
				return ctxError(ctx, "batch write", "")
			}
		}
		b.queued.Add(int64(recordBytes(&r)))
		select {
		case b.in <- r:
		case <-b.done:
			b.queued.Add(-int64(recordBytes(&r)))
			return ErrClosed
		case <-ctx.Done():
			b.queued.Add(-int64(recordBytes(&r)))
			return ctxError(ctx, "batch write", "")
		}
	}
	return nil
}

// Flush sends every queued record, waits for all batches in flight and
// returns the errors of batches that failed since the last Flush (joined),
// or nil.
func (b *BatchWriter) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case b.flushReq <- reply:
	case <-b.done:
		return b.takeErrors()
	case <-ctx.Done():
		return ctxError(ctx, "batch flush", "")
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctxError(ctx, "batch flush", "")
	}
}

// Close flushes, stops the BatchWriter and returns the errors not yet
// returned by Flush. Later calls return nil. If ctx ends first, Close
// returns its error and the flush goes on in the background.
func (b *BatchWriter) Close(ctx context.Context) error {
	b.closeMu.Lock()
	if b.closeCalled {
		b.closeMu.Unlock()
		return nil
	}
	b.closeCalled, b.closed = true, true
	close(b.closing)
	b.closeMu.Unlock()
	select {
	case <-b.done:
		return b.takeErrors()
	case <-ctx.Done():
		return ctxError(ctx, "batch close", "")
	}
}

func (b *BatchWriter) run() {
	defer b.c.wg.Done()
	defer close(b.done)
	batch := make([]InsertRecord, 0, min(b.o.size, maxBatchPrealloc))
	batchBytes := 0 // names and data in batch (WithBatchBytes)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	flush := func() {
		b.send(batch)
		batch, batchBytes = make([]InsertRecord, 0, min(b.o.size, maxBatchPrealloc)), 0
	}
	add := func(r InsertRecord) {
		n := recordBytes(&r)
		b.queued.Add(-int64(n))
		select {
		case b.room <- struct{}{}: // a Write waiting for room rechecks
		default:
		}
		if len(batch) > 0 && batchBytes+n > b.o.bytes {
			flush()
		}
		if len(batch) == 0 {
			timer.Reset(b.o.interval)
		}
		batch = append(batch, r)
		batchBytes += n
		if len(batch) >= b.o.size || batchBytes >= b.o.bytes {
			flush()
		}
	}
	// drain moves everything queued so far into batches and sends them.
	drain := func() {
		for {
			select {
			case r := <-b.in:
				add(r)
				continue
			default:
			}
			break
		}
		if len(batch) > 0 {
			flush()
		}
		b.waiters.Wait()
	}

	for {
		select {
		case r := <-b.in:
			add(r)
		case <-timer.C:
			if len(batch) > 0 {
				flush()
			}
		case reply := <-b.flushReq:
			drain()
			reply <- b.takeErrors()
		case <-b.closing:
			drain()
			return
		case <-b.c.bgCtx.Done():
			// The Client closed under us: what is queued can not be sent. Stop Writes
			// first, as Close does, so that none queues a record after the last look at
			// the queue: a Write holds closeMu shared while it queues, and one blocked on
			// a full queue gets room from the loop below while the lock is awaited.
			stopped := make(chan struct{})
			go func() {
				b.closeMu.Lock()
				b.closed = true
				b.closeMu.Unlock()
				close(stopped)
			}()
			for waiting := true; waiting; {
				select {
				case r := <-b.in:
					batch = append(batch, r)
				case <-stopped:
					waiting = false
				}
			}
			for len(b.in) > 0 {
				batch = append(batch, <-b.in)
			}
			if len(batch) > 0 {
				b.fail(fmt.Errorf("fluxiondb: batch of %d records not sent: %w", len(batch), ErrClosed), batch)
			}
			b.waiters.Wait()
			return
		}
	}
}

// send writes one batch in order, from the run goroutine, and hands the
// wait for its reply to a goroutine. Blocking on the in-flight limit here
// is what stalls the queue and so Write.
func (b *BatchWriter) send(batch []InsertRecord) {
	b.inflight <- struct{}{}
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	inline := b.c.inlineOK(ctx)
	if t := b.c.opts.requestTimeout; t > 0 {
		ctx, cancel = context.WithTimeout(ctx, t)
	}
	release := func() { cancel(); <-b.inflight }
	data := appendInsertData(nil, batch)
	s, err := b.c.getSession(ctx)
	var cl *call
	if err == nil {
		cl, err = s.sendOn(ctx, typeInsert, data, nil, inline)
	}
	if err != nil {
		release()
		b.fail(fmt.Errorf("fluxiondb: batch of %d records: %w", len(batch), err), batch)
		return
	}
	b.waiters.Add(1)
	go func() {
		defer b.waiters.Done()
		defer release()
		if err := cl.wait(ctx, nil); err != nil {
			b.fail(fmt.Errorf("fluxiondb: batch of %d records: %w", len(batch), err), batch)
		}
	}()
}

func (b *BatchWriter) fail(err error, batch []InsertRecord) {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	if len(b.errs) < maxKeptErrors {
		b.errs = append(b.errs, err)
	} else {
		b.dropped++
	}
	if b.o.onError != nil {
		b.o.onError(err, batch)
	}
}

func (b *BatchWriter) takeErrors() error {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	errs := b.errs
	if b.dropped > 0 {
		errs = append(errs, fmt.Errorf("fluxiondb: and %d more failed batches", b.dropped))
	}
	b.errs, b.dropped = nil, 0
	return errors.Join(errs...)
}
