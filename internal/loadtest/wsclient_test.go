package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// echoServer is a coder/websocket server: an independent implementation to
// check the load client's framing against.
func echoServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("api-key") != "k" {
			http.Error(w, "Unknown API key", http.StatusUnauthorized)
			return
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(-1)
		ctx := context.Background()
		for {
			typ, msg, err := ws.Read(ctx)
			if err != nil {
				return
			}
			switch string(msg) {
			case "ping":
				go func() {
					res := "pong ok"
					if err := ws.Ping(ctx); err != nil {
						res = err.Error()
					}
					ws.Write(ctx, websocket.MessageText, []byte(res))
				}()
			case "close":
				ws.Close(4000, "bye")
				return
			case "frag":
				wr, _ := ws.Writer(ctx, websocket.MessageText)
				wr.Write([]byte("ab"))
				wr.Write([]byte("cd"))
				wr.Write([]byte("ef"))
				wr.Close()
			default:
				ws.Write(ctx, typ, msg)
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/?api-key=k"
}

func dialTest(t *testing.T, url string) *wsConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialWS(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.closeNow() })
	return c
}

func sendText(t *testing.T, c *wsConn, s string) {
	t.Helper()
	buf := append(make([]byte, wsHeaderRoom), s...)
	if err := c.writeText(buf); err != nil {
		t.Fatal(err)
	}
}

func TestWSClientEchoesEverySize(t *testing.T) {
	c := dialTest(t, echoServer(t))
	var got []byte
	for _, n := range []int{1, 125, 126, 127, 65535, 65536, 300_001} {
		want := bytes.Repeat([]byte("0123456789abcdef\"\\"), n/18+1)[:n]
		sendText(t, c, string(want))
		var op byte
		var err error
		op, got, err = c.readMessage(got)
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if op != opText || !bytes.Equal(got, want) {
			t.Fatalf("size %d: echo differs (op %d, %d bytes)", n, op, len(got))
		}
	}
}

func TestWSClientPingFragmentsAndClose(t *testing.T) {
	c := dialTest(t, echoServer(t))
	sendText(t, c, "ping")
	if _, msg, err := c.readMessage(nil); err != nil || string(msg) != "pong ok" {
		t.Fatalf("after server ping: %q %v", msg, err)
	}
	sendText(t, c, "frag")
	if _, msg, err := c.readMessage(nil); err != nil || string(msg) != "abcdef" {
		t.Fatalf("fragmented message: %q %v", msg, err)
	}
	sendText(t, c, "close")
	_, _, err := c.readMessage(nil)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "bye" {
		t.Fatalf("close: %v", err)
	}
}

func TestWSClientRefusedUpgrade(t *testing.T) {
	url := strings.Replace(echoServer(t), "api-key=k", "api-key=wrong", 1)
	_, err := dialWS(context.Background(), url)
	var he *HandshakeError
	if !errors.As(err, &he) || he.Status != 401 || he.Body != "Unknown API key" {
		t.Fatalf("got %v", err)
	}
}

func TestMaskBytesMatchesNaive(t *testing.T) {
	key := uint32(0xa1b2c3d4)
	for n := 0; n < 100; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		want := bytes.Clone(b)
		k := []byte{0xd4, 0xc3, 0xb2, 0xa1}
		for i := range want {
			want[i] ^= k[i%4]
		}
		maskBytes(b, key)
		if !bytes.Equal(b, want) {
			t.Fatalf("n=%d: mask differs", n)
		}
	}
}

// discardConn is a net.Conn whose writes vanish, for feeding readMessage.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) SetReadDeadline(time.Time) error  { return nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }
func (discardConn) Close() error                     { return nil }

func FuzzReadMessage(f *testing.F) {
	f.Add([]byte{0x81, 0x02, 'h', 'i'})
	f.Add([]byte{0x01, 0x01, 'a', 0x89, 0x00, 0x80, 0x01, 'b'})
	f.Add([]byte{0x88, 0x05, 0x03, 0xe8, 'b', 'y', 'e'})
	f.Add([]byte{0x81, 0x7e, 0x00, 0x03, 'a', 'b', 'c'})
	f.Add([]byte{0x81, 0x7f, 0xff, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0x81, 0x82, 1, 2, 3, 4, 'a' ^ 1, 'b' ^ 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &wsConn{nc: discardConn{}, br: bufio.NewReader(bytes.NewReader(b)), mask: 1, limit: 1 << 20}
		for range 4 {
			if _, _, err := c.readMessage(nil); err != nil {
				return
			}
		}
	})
}

// TestNoopServerSpeaksToCoderWebsocket checks the server side of the framing
// (unmasked frames, hijacked handshake) against an independent client.
func TestNoopServerSpeaksToCoderWebsocket(t *testing.T) {
	ns, err := StartNoop([]byte(`{"d0":{"ts":1,"data":"x"}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, ns.URL+"/?api-key=x", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(-1)
	if _, msg, err := ws.Read(ctx); err != nil || string(msg) != string(readyFrame) {
		t.Fatalf("ready: %s %v", msg, err)
	}
	big := AppendFrame(nil, "q\"1", "qry", bytes.Repeat([]byte("x"), 70_000))
	for _, tc := range []struct{ in, want string }{
		{string(AppendFrame(nil, "1.1", "ins", []byte(`[]`))), `{"id":"1.1"}`},
		{`{"type":"qdoc","id":"2.2","data":"{}"}`, `{"id":"2.2","records":[]}`},
		{string(big), `{"id":"q\"1","records":{"d0":{"ts":1,"data":"x"}}}`},
	} {
		if err := ws.Write(ctx, websocket.MessageText, []byte(tc.in)); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := ws.Read(ctx); err != nil || string(msg) != tc.want {
			t.Fatalf("reply %s %v, want %s", msg, err, tc.want)
		}
	}
	if err := ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Logf("close: %v", err)
	}
}
