package server

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// writeBufferSize is the socket write buffer of each connection. net/http hands a hijacked
// connection a 4 KiB writer, so a 7 KiB qdoc reply took three write syscalls; with 16 KiB
// most replies take one. It costs 16 KiB per connection (160 MiB at 10,000 connections).
const writeBufferSize = 16 << 10

// bigWriteBuffer gives the WebSocket library a larger write buffer than net/http's, over a
// corkConn the write loop can hold back. After Accept, cork is the connection's corkConn.
type bigWriteBuffer struct {
	http.ResponseWriter
	writeTimeout time.Duration // bounds every write to the socket (corkConn.timeout)
	cork         *corkConn
	rd           *bufio.Reader // what the library reads frames from
}

func (b *bigWriteBuffer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(b.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// The 101 response may still sit in net/http's writer: send it before replacing it.
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	b.cork = &corkConn{Conn: conn, timeout: b.writeTimeout}
	b.rd = brw.Reader
	return conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(b.cork, writeBufferSize)), nil
}

// corkLimit bounds what a corked connection holds back before it writes anyway.
const corkLimit = 256 << 10

// corkConn lets the write loop send a burst of replies in one write syscall. The WebSocket
// library flushes every message; while corked, those flushes land in held, and uncork writes
// them at once — pipelined clients get several replies per syscall. The write loop corks
// only while more replies are queued and uncorks before it waits for anything (a commit, the
// queue), so nothing — a reply, a ping, a close frame — is held longer than a burst.
//
// corkConn also bounds every write to the socket by timeout (--write-timeout) with a write
// deadline, so the write loop can hand the library a context without a deadline: a context
// per reply (its timer, and the library's AfterFunc on it) cost ~6% of the server's CPU
// under small pipelined reads (profile of fluxbench qdoc, 2 conns × 4 in flight).
//
// The deadline bounds a stall, not a reply's whole transfer: a large reply goes out in pieces
// of writeChunk, each given the full timeout, so a client that reads a 100 MB reply at its own
// pace keeps its connection, and one that stops reading loses it after the timeout.
//
// A write that fails (a timeout, say) may have sent part of a frame, so the stream can carry
// nothing more: every later write fails with the same error, and the connection is closed
// without a closing handshake (a close frame after half a frame would be garbage).
type corkConn struct {
	net.Conn
	timeout time.Duration // 0: no deadline
	mu      sync.Mutex
	corked  bool
	held    []byte
	err     error // the first write error; the stream is unusable after it

	// progress counts bytes handed to the socket; writing is set while a write is under way.
	// keepalive reads them: a connection whose replies are going out is alive even when its
	// ping cannot get past a large reply.
	progress atomic.Int64
	writing  atomic.Bool
}

// writeChunk is the most one write to the socket is given --write-timeout for.
const writeChunk = 256 << 10

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.corked && len(c.held)+len(p) <= corkLimit {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.writeLocked(p)
}

// writeLocked writes p to the socket in pieces of at most writeChunk, each under a fresh
// deadline. Caller holds mu.
func (c *corkConn) writeLocked(p []byte) (int, error) {
	c.writing.Store(true)
	defer c.writing.Store(false)
	n := 0
	for n < len(p) {
		c.arm()
		m, err := c.Conn.Write(p[n:min(len(p), n+writeChunk)])
		n += m
		c.progress.Add(int64(m))
		if err != nil {
			c.broken(err)
			return n, err
		}
	}
	return n, nil
}

// maxControlFrame is the most a control frame (a ping) takes on the wire.
const maxControlFrame = 2 + 125

// busySince reports whether a write is under way, or more went out since progress was from
// than the ping frame keepalive sent meanwhile.
func (c *corkConn) busySince(from int64) bool {
	return c.writing.Load() || c.progress.Load()-from > maxControlFrame
}

// broken records the first write error and closes the socket. Caller holds mu.
func (c *corkConn) broken(err error) {
	if c.err == nil {
		c.err = err
		c.Conn.Close()
	}
}

// arm sets the deadline for the write that follows.
func (c *corkConn) arm() {
	if c.timeout > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	}
}

// flushLocked writes what is held.
func (c *corkConn) flushLocked() error {
	if c.err != nil {
		return c.err
	}
	if len(c.held) == 0 {
		return nil
	}
	_, err := c.writeLocked(c.held)
	c.held = c.held[:0]
	if cap(c.held) > corkLimit {
		c.held = nil
	}
	return err
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what is held.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}
