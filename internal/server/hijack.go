package server

import (
	"bufio"
	"net"
	"net/http"
	"sync"
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
	cork *corkConn
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
	b.cork = &corkConn{Conn: conn}
	return conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(b.cork, writeBufferSize)), nil
}

// corkLimit bounds what a corked connection holds back before it writes anyway.
const corkLimit = 256 << 10

// corkConn lets the write loop send a burst of replies in one write syscall. The WebSocket
// library flushes every message; while corked, those flushes land in held, and uncork writes
// them at once — pipelined clients get several replies per syscall. The write loop corks
// only while more replies are queued and uncorks before it waits for anything (a commit, the
// queue), so nothing — a reply, a ping, a close frame — is held longer than a burst.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	held   []byte
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked && len(c.held)+len(p) <= corkLimit {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	if err := c.flushLocked(0); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// flushLocked writes what is held; a positive timeout bounds the write (the library's own
// writes are bounded by its contexts, which close the connection).
func (c *corkConn) flushLocked(timeout time.Duration) error {
	if len(c.held) == 0 {
		return nil
	}
	if timeout > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(timeout))
		defer c.Conn.SetWriteDeadline(time.Time{})
	}
	_, err := c.Conn.Write(c.held)
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

// uncork writes what is held, within timeout.
func (c *corkConn) uncork(timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked(timeout)
}
