package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// recorder is a net.Conn that records every Write call.
type recorder struct {
	net.Conn
	writes [][]byte
}

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (r *recorder) SetWriteDeadline(time.Time) error { return nil }

func TestCorkHoldsABurstAndKeepsOrder(t *testing.T) {
	rec := &recorder{}
	c := &corkConn{Conn: rec}
	c.Write([]byte("a")) // not corked: straight through
	c.cork()
	c.Write([]byte("b"))
	c.Write([]byte("c"))
	if len(rec.writes) != 1 {
		t.Fatalf("corked writes reached the socket: %q", rec.writes)
	}
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	if len(rec.writes) != 2 || string(rec.writes[1]) != "bc" {
		t.Fatalf("uncork wrote %q, want one write of \"bc\"", rec.writes)
	}
	if err := c.uncork(); err != nil || len(rec.writes) != 2 {
		t.Fatalf("an empty uncork wrote: %q %v", rec.writes, err)
	}
	// Past the limit, what is held goes first, then the new bytes: order is kept.
	c.cork()
	c.Write([]byte("d"))
	big := bytes.Repeat([]byte("x"), corkLimit)
	c.Write(big)
	if len(rec.writes) != 4 || string(rec.writes[2]) != "d" || len(rec.writes[3]) != corkLimit {
		t.Fatalf("over the limit: %d writes", len(rec.writes))
	}
	c.uncork()
}

func TestCorkOverARealSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(s)
		got <- b
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := &corkConn{Conn: nc}
	c.cork()
	for _, s := range []string{"one ", "two ", "three"} {
		c.Write([]byte(s))
	}
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if b := <-got; string(b) != "one two three" {
		t.Fatalf("peer read %q", b)
	}
}

// A peer that stops reading cannot hold a write forever: every write to the socket, direct
// or a corked burst, carries the connection's write deadline.
func TestCorkWritesHaveADeadline(t *testing.T) {
	for _, corked := range []bool{false, true} {
		a, b := net.Pipe() // unbuffered: a write blocks until the peer reads
		c := &corkConn{Conn: a, timeout: 50 * time.Millisecond}
		start := time.Now()
		var err error
		if corked {
			c.cork()
			if _, err = c.Write([]byte("held")); err != nil {
				t.Fatalf("a corked write failed: %v", err)
			}
			err = c.uncork()
		} else {
			_, err = c.Write([]byte("direct"))
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("corked=%v: write to a peer that does not read returned %v, want a timeout", corked, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("corked=%v: the write took %v", corked, d)
		}
		// The stream may end inside a frame now: nothing more may be written to it.
		go io.Copy(io.Discard, b)
		if _, err2 := c.Write([]byte("more")); err2 == nil {
			t.Fatalf("corked=%v: a write after a failed one succeeded", corked)
		}
		a.Close()
		b.Close()
	}
}
