package server

import (
	"bufio"
	"net"
	"net/http"
)

// writeBufferSize is the socket write buffer of each connection. net/http hands a hijacked
// connection a 4 KiB writer, so a 7 KiB qdoc reply took three write syscalls; with 16 KiB
// most replies take one. It costs 16 KiB per connection (160 MiB at 10,000 connections).
const writeBufferSize = 16 << 10

// bigWriteBuffer gives the WebSocket library a larger write buffer than net/http's.
type bigWriteBuffer struct{ http.ResponseWriter }

func (b bigWriteBuffer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(b.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// The 101 response may still sit in net/http's writer: send it before replacing it.
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(conn, writeBufferSize)), nil
}
