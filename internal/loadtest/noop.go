package loadtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
)

// readyFrame is the first frame of every connection (PROTOCOL.md §1).
var readyFrame = []byte(`{"message":"Authentication successful","type":"ready"}`)

// NoopServer speaks the protocol's envelope and nothing else: it sends the
// ready frame, answers ins (and any unknown type) with {"id":…} and qry/qdoc
// with a canned records value. Measuring the tool against it gives the tool's
// own ceiling. It runs in-process, so its CPU is counted as the tool's.
//
// For the fan-out ceiling it also accepts sub (any data: every subscription
// gets every insert) and echoes each ins batch as one event frame to every
// subscription. Like the real server, each subscribed connection has a writer
// goroutine fed by a queue; when a queue is full the insert waits (where the
// real server would signal an overflow), which a ceiling run never provokes.
type NoopServer struct {
	// URL is ws://127.0.0.1:PORT.
	URL string

	ln      net.Listener
	srv     *http.Server
	qry     []byte
	qdoc    []byte
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[*wsConn]struct{}
	subs    map[*wsConn]*noopSubs
	cursor  uint64 // event frames sent, under mu
	closing bool
}

// StartNoop listens on 127.0.0.1:0. qryRecords and qdocRecords are the JSON
// values replied as "records" (nil = {} and []).
func StartNoop(qryRecords, qdocRecords []byte) (*NoopServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("noop server listen: %w", err)
	}
	if qryRecords == nil {
		qryRecords = []byte(`{}`)
	}
	if qdocRecords == nil {
		qdocRecords = []byte(`[]`)
	}
	s := &NoopServer{URL: "ws://" + ln.Addr().String(), ln: ln, qry: qryRecords, qdoc: qdocRecords, conns: map[*wsConn]struct{}{}, subs: map[*wsConn]*noopSubs{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve)}
	s.wg.Go(func() { s.srv.Serve(ln) })
	return s, nil
}

// CannedRecords builds canned reply values: a qry result of docs documents and
// a qdoc result of k records, each with a payload of the given size.
func CannedRecords(docs, k int, payload []byte) (qry, qdoc []byte) {
	rec := func(dst []byte, ts int64) []byte {
		dst = append(dst, `{"ts":`...)
		dst = fmt.Appendf(dst, "%d", ts)
		dst = append(dst, `,"data":`...)
		dst = appendJSONString(dst, payload)
		return append(dst, '}')
	}
	qry = append(qry, '{')
	for d := range docs {
		if d > 0 {
			qry = append(qry, ',')
		}
		qry = appendJSONString(qry, []byte(DocName("", d)))
		qry = append(qry, ':')
		qry = rec(qry, 1_700_000_000_000+int64(d))
	}
	qry = append(qry, '}')
	qdoc = append(qdoc, '[')
	for i := range k {
		if i > 0 {
			qdoc = append(qdoc, ',')
		}
		qdoc = rec(qdoc, 1_700_000_000_000+int64(i))
	}
	qdoc = append(qdoc, ']')
	return qry, qdoc
}

// Close stops the server and every connection, and waits for them.
func (s *NoopServer) Close() error {
	s.mu.Lock()
	s.closing = true
	for c := range s.conns {
		c.closeNow()
	}
	s.mu.Unlock()
	err := s.srv.Close()
	s.wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (s *NoopServer) serve(w http.ResponseWriter, r *http.Request) {
	ws, err := acceptWS(w, r)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ws.closeNow()
		return
	}
	s.conns[ws] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	var writers sync.WaitGroup
	defer func() {
		s.mu.Lock()
		delete(s.conns, ws)
		if ns := s.subs[ws]; ns != nil {
			close(ns.done)
			delete(s.subs, ws)
		}
		s.mu.Unlock()
		ws.closeNow()
		writers.Wait()
		s.wg.Done()
	}()
	out := make([]byte, 0, 64<<10)
	out = append(append(out, make([]byte, wsHeaderRoom)...), readyFrame...)
	if ws.writeText(out) != nil {
		return
	}
	buf := make([]byte, 0, 64<<10)
	var pending []byte // replies not yet written
	for {
		buf = buf[:0]
		_, buf, err = ws.readMessage(buf)
		if err != nil {
			return
		}
		id, typ := envelopeIDType(buf)
		out = append(out[:0], make([]byte, wsHeaderRoom)...)
		out = append(out, `{"id":`...)
		out = appendJSONString(out, id)
		switch string(typ) {
		case "qry":
			out = append(out, `,"records":`...)
			out = append(out, s.qry...)
		case "qdoc":
			out = append(out, `,"records":`...)
			out = append(out, s.qdoc...)
		case "sub":
			s.mu.Lock()
			ns := s.subs[ws]
			if ns == nil {
				ns = &noopSubs{q: make(chan []byte, 1024), done: make(chan struct{})}
				s.subs[ws] = ns
				writers.Go(func() { ns.write(ws) })
			}
			ns.n++
			n := ns.n
			s.mu.Unlock()
			out = append(out, `,"sub":"s`...)
			out = strconv.AppendInt(out, int64(n), 10)
			out = append(out, `","cursor":"0"`...)
		case "ins":
			s.publish(ws, buf)
		}
		out = append(out, '}')
		// Replies to requests already buffered go out in one write, as a
		// server answering pipelined requests should.
		pending = append(pending, ws.encodeFrame(opText, out)...)
		if ws.br.Buffered() == 0 || len(pending) >= coalesceMax {
			if ws.writeRaw(pending) != nil {
				return
			}
			pending = pending[:0]
		}
	}
}

// publish sends the records of an ins request as one event frame to every
// subscription. The records are decoded with encoding/json: the noop server's
// cost is counted as the tool's, but per batch it is far below the fan-out's.
func (s *NoopServer) publish(from *wsConn, frame []byte) {
	type target struct {
		*noopSubs
		subs int
	}
	s.mu.Lock()
	if len(s.subs) == 0 {
		s.mu.Unlock()
		return
	}
	targets := make([]target, 0, len(s.subs))
	most := 0
	for _, ns := range s.subs {
		targets = append(targets, target{ns, ns.n})
		most = max(most, ns.n)
	}
	s.cursor++
	cursor := s.cursor
	s.mu.Unlock()

	var env struct {
		Data string `json:"data"`
	}
	var recs []struct {
		Col  string      `json:"col"`
		Doc  string      `json:"doc"`
		TS   json.Number `json:"ts"`
		Data string      `json:"data"`
	}
	if json.Unmarshal(frame, &env) != nil || json.Unmarshal([]byte(env.Data), &recs) != nil {
		return
	}
	body := []byte(`,"cursor":"`)
	body = strconv.AppendUint(body, cursor, 10)
	body = append(body, `","events":[`...)
	for i, r := range recs {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"op":"ins","col":`...)
		body = appendJSONString(body, []byte(r.Col))
		body = append(body, `,"doc":`...)
		body = appendJSONString(body, []byte(r.Doc))
		body = append(body, `,"ts":`...)
		body = append(body, r.TS...)
		body = append(body, `,"data":`...)
		body = appendJSONString(body, []byte(r.Data))
		body = append(body, '}')
	}
	body = append(body, "]}"...)
	for j := 1; j <= most; j++ {
		// Each frame is shared by the subscribers' writers: a fresh buffer.
		out := make([]byte, wsHeaderRoom, wsHeaderRoom+32+len(body))
		out = append(out, `{"type":"event","sub":"s`...)
		out = strconv.AppendInt(out, int64(j), 10)
		out = append(out, '"')
		out = append(out, body...)
		// Server frames are not masked: encoding only fills the header room.
		enc := from.encodeFrame(opText, out)
		for _, t := range targets {
			if t.subs >= j {
				select {
				case t.q <- enc:
				case <-t.done:
				}
			}
		}
	}
}

// noopSubs are the subscriptions of one connection and its event writer.
type noopSubs struct {
	n    int           // subscriptions, under NoopServer.mu
	q    chan []byte   // encoded event frames
	done chan struct{} // closed when the connection's serve loop ends
}

// write sends queued frames, those already waiting together in one write.
func (ns *noopSubs) write(ws *wsConn) {
	var batch []byte
	broken := false
	for {
		select {
		case f := <-ns.q:
			batch = append(batch[:0], f...)
		more:
			for len(batch) < coalesceMax {
				select {
				case f := <-ns.q:
					batch = append(batch, f...)
				default:
					break more
				}
			}
			if !broken && ws.writeRaw(batch) != nil {
				broken = true // keep draining: inserts must not wait for a dead subscriber
			}
		case <-ns.done:
			return
		}
	}
}

var typeKey = []byte(`"type":"`)

// envelopeIDType reads id and type from a request frame: fast when the frame
// starts with the id as the tool writes it, by decoding otherwise.
func envelopeIDType(b []byte) (id, typ []byte) {
	if bytes.HasPrefix(b, replyIDPrefix) {
		rest := b[len(replyIDPrefix):]
		end := bytes.IndexByte(rest, '"')
		if end >= 0 && bytes.IndexByte(rest[:end], '\\') < 0 {
			id = rest[:end]
			rest = rest[end:]
			if i := bytes.Index(rest, typeKey); i >= 0 {
				t := rest[i+len(typeKey):]
				if j := bytes.IndexByte(t, '"'); j >= 0 {
					return id, t[:j]
				}
			}
		}
	}
	var env struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	json.Unmarshal(b, &env)
	return []byte(env.ID), []byte(env.Type)
}
