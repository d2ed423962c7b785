package loadtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The load connections use this minimal RFC 6455 client instead of
// github.com/coder/websocket's: that library masks client frames through a
// 4 KiB bufio.Writer, so a 148 KB batch of 1000 records costs ~37 write
// syscalls; here the frame is masked in place in the request buffer and sent
// with one write. On this 2-core machine the tool shares the CPU with the
// server, so every microsecond it spends is taken from the figure. The no-op
// server and the tests use coder/websocket, which checks this client against
// an independent implementation.

// wsHeaderRoom is the space a request buffer reserves before the payload for
// the largest client frame header (2 + 8 length + 4 mask key bytes).
const wsHeaderRoom = 14

const (
	opCont  = 0x0
	opText  = 0x1
	opBin   = 0x2
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xa
)

// CloseError is a close frame received from the server.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("closed by server: %d %q", e.Code, e.Reason) }

// HandshakeError is an upgrade the server refused.
type HandshakeError struct {
	Status int
	Body   string
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("upgrade refused: HTTP %d %q", e.Status, e.Body)
}

// wsConn is one client WebSocket connection. One goroutine writes requests
// (writeText), one reads (readMessage); control replies share the write lock.
type wsConn struct {
	nc   net.Conn
	br   *bufio.Reader
	wmu  sync.Mutex
	mask uint64 // xorshift state for mask keys
	ctrl []byte
	once sync.Once
	// limit is the largest message accepted (0 = 1 GiB): a qry over many
	// documents is large, but a corrupt length must not allocate the world.
	limit int
	// server marks the no-op server's side: its frames go out unmasked.
	server bool
}

// dialWS performs the opening handshake on ws://host/path?query.
func dialWS(ctx context.Context, rawURL string) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "http" {
		return nil, fmt.Errorf("unsupported scheme %q (the load tool speaks ws:// only)", u.Scheme)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var keyRaw [16]byte
	rand.Read(keyRaw[:])
	key := base64.StdEncoding.EncodeToString(keyRaw[:])
	path := u.RequestURI()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key +
		"\r\nUser-Agent: fluxbench\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("read upgrade response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		nc.Close()
		return nil, &HandshakeError{Status: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	if resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key) {
		nc.Close()
		return nil, errors.New("upgrade response has a wrong Sec-WebSocket-Accept")
	}
	nc.SetDeadline(time.Time{})
	c := &wsConn{nc: nc, br: br, mask: binary.LittleEndian.Uint64(keyRaw[:8]) | 1}
	return c, nil
}

// acceptKey is the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func acceptKey(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// acceptWS completes a server-side upgrade by hijacking the HTTP connection.
// Only the no-op server uses it, so that the tool's ceiling is not lowered by
// a general-purpose server library's per-message costs.
func acceptWS(w http.ResponseWriter, r *http.Request) (*wsConn, error) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || key == "" {
		http.Error(w, "WebSocket upgrade required", http.StatusUpgradeRequired)
		return nil, errors.New("not a websocket upgrade")
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, errors.New("connection cannot be hijacked")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, err
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptKey(key) + "\r\n\r\n"
	if _, err := io.WriteString(nc, resp); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return &wsConn{nc: nc, br: bufio.NewReaderSize(brw.Reader, 64<<10), server: true}, nil
}

func (c *wsConn) nextMask() uint32 {
	x := c.mask
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	c.mask = x
	return uint32(x)
}

// writeText sends buf[wsHeaderRoom:] as one masked text frame. The payload is
// masked in place, so buf must be rebuilt before it is sent again.
func (c *wsConn) writeText(buf []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeFrameLocked(opText, buf)
}

func (c *wsConn) writeFrameLocked(op byte, buf []byte) error {
	_, err := c.nc.Write(c.encodeFrame(op, buf))
	return err
}

// writeRaw sends frames already encoded by encodeFrame, in one write: the
// pipelined writer coalesces small requests so a syscall carries several.
func (c *wsConn) writeRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(b)
	return err
}

// encodeFrame writes the frame header into the room before buf's payload,
// masks the payload (client side) and returns header and payload.
func (c *wsConn) encodeFrame(op byte, buf []byte) []byte {
	payload := buf[wsHeaderRoom:]
	n := len(payload)
	var hlen int
	switch {
	case n < 126:
		hlen = 2
	case n <= 0xffff:
		hlen = 4
	default:
		hlen = 10
	}
	maskBit := byte(0x80)
	if c.server {
		maskBit = 0
	} else {
		hlen += 4
	}
	h := buf[wsHeaderRoom-hlen : wsHeaderRoom]
	h[0] = 0x80 | op
	switch {
	case n < 126:
		h[1] = maskBit | byte(n)
	case n <= 0xffff:
		h[1] = maskBit | 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
	default:
		h[1] = maskBit | 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
	}
	if !c.server {
		key := c.nextMask()
		binary.LittleEndian.PutUint32(h[hlen-4:], key)
		maskBytes(payload, key)
	}
	return buf[wsHeaderRoom-hlen:]
}

// maskBytes XORs b with the 4-byte mask key (little-endian order of the key
// bytes as sent), eight bytes at a time.
func maskBytes(b []byte, key uint32) {
	k8 := uint64(key) | uint64(key)<<32
	i := 0
	for ; i+32 <= len(b); i += 32 {
		w := b[i : i+32 : i+32]
		binary.LittleEndian.PutUint64(w[0:], binary.LittleEndian.Uint64(w[0:])^k8)
		binary.LittleEndian.PutUint64(w[8:], binary.LittleEndian.Uint64(w[8:])^k8)
		binary.LittleEndian.PutUint64(w[16:], binary.LittleEndian.Uint64(w[16:])^k8)
		binary.LittleEndian.PutUint64(w[24:], binary.LittleEndian.Uint64(w[24:])^k8)
	}
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k8)
	}
	for j := 0; i < len(b); i, j = i+1, j+1 {
		b[i] ^= byte(key >> (8 * (j & 3)))
	}
}

// readMessage reads the next data message into dst (reusing its capacity),
// answering pings on the way. A close frame is answered and returned as a
// *CloseError.
func (c *wsConn) readMessage(dst []byte) (byte, []byte, error) {
	dst = dst[:0]
	var op byte
	started := false
	var hdr [14]byte
	for {
		if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
			return 0, dst, err
		}
		fin := hdr[0]&0x80 != 0
		fop := hdr[0] & 0x0f
		masked := hdr[1]&0x80 != 0
		n := uint64(hdr[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
				return 0, dst, err
			}
			n = uint64(binary.BigEndian.Uint16(hdr[:2]))
		case 127:
			if _, err := io.ReadFull(c.br, hdr[:8]); err != nil {
				return 0, dst, err
			}
			n = binary.BigEndian.Uint64(hdr[:8])
		}
		limit := c.limit
		if limit == 0 {
			limit = 1 << 30
		}
		if n > uint64(limit-len(dst)) {
			return 0, dst, fmt.Errorf("message over the tool's limit of %d bytes", limit)
		}
		var key uint32
		if masked {
			if _, err := io.ReadFull(c.br, hdr[:4]); err != nil {
				return 0, dst, err
			}
			key = binary.LittleEndian.Uint32(hdr[:4])
		}
		if fop >= opClose {
			if n > 125 {
				return 0, dst, errors.New("control frame too long")
			}
			c.ctrl = append(c.ctrl[:0], make([]byte, wsHeaderRoom+int(n))...)
			p := c.ctrl[wsHeaderRoom:]
			if _, err := io.ReadFull(c.br, p); err != nil {
				return 0, dst, err
			}
			if masked {
				maskBytes(p, key)
			}
			switch fop {
			case opPing:
				c.wmu.Lock()
				err := c.writeFrameLocked(opPong, c.ctrl)
				c.wmu.Unlock()
				if err != nil {
					return 0, dst, err
				}
			case opClose:
				ce := &CloseError{Code: 1005}
				if len(p) >= 2 {
					ce.Code = int(binary.BigEndian.Uint16(p))
					ce.Reason = string(p[2:])
				}
				c.sendClose(1000, "")
				return 0, dst, ce
			}
			continue
		}
		if fop == opCont {
			if !started {
				return 0, dst, errors.New("continuation frame without a message")
			}
		} else {
			if started {
				return 0, dst, errors.New("new message inside a fragmented one")
			}
			if fop != opText && fop != opBin {
				return 0, dst, fmt.Errorf("unknown opcode %d", fop)
			}
			op, started = fop, true
		}
		off := len(dst)
		dst = grow(dst, int(n))
		if _, err := io.ReadFull(c.br, dst[off:]); err != nil {
			return 0, dst, err
		}
		if masked {
			maskBytes(dst[off:], key)
		}
		if fin {
			return op, dst, nil
		}
	}
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), max(2*cap(b), len(b)+n))
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// sendClose writes a close frame once.
func (c *wsConn) sendClose(code int, reason string) {
	c.once.Do(func() {
		buf := make([]byte, wsHeaderRoom+2, wsHeaderRoom+2+len(reason))
		binary.BigEndian.PutUint16(buf[wsHeaderRoom:], uint16(code))
		buf = append(buf, reason...)
		c.wmu.Lock()
		c.nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
		c.writeFrameLocked(opClose, buf)
		c.wmu.Unlock()
	})
}

// close starts the closing handshake; the reader sees the server's close
// frame (or EOF) and the caller then calls closeNow.
func (c *wsConn) close(code int, reason string) {
	c.sendClose(code, reason)
	c.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
}

// closeNow drops the TCP connection.
func (c *wsConn) closeNow() error { return c.nc.Close() }
