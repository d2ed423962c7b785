package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const persistKey = "persist-master-key-7f3a"

// buildBinary builds the real server into a temp folder.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	bin := filepath.Join(t.TempDir(), "fluxiondb")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is one run of the real binary.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	log    *syncBuffer
	exited chan struct{}
	err    error // set when exited is closed
}

// startServer runs the binary on 127.0.0.1:0 with --data dir and waits until it serves
// (the `listening` line). If the process exits first, it returns it with addr "".
func startServer(t *testing.T, bin, dir string, env []string, args ...string) *proc {
	t.Helper()
	argv := append([]string{"--secret-key=" + persistKey, "--host=127.0.0.1", "--port=0", "--data=" + dir, "--ping-interval=0"}, args...)
	p := &proc{cmd: exec.Command(bin, argv...), log: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = append(append(os.Environ(), "FLUXIONDB_PORT="), env...)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.kill() })
	deadline := time.After(30 * time.Second)
	for {
		if m := listenRE.FindStringSubmatch(p.log.String()); m != nil {
			p.addr = m[1]
			return p
		}
		select {
		case <-p.exited:
			return p
		case <-deadline:
			t.Fatalf("server did not start in 30s:\n%s", p.log.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit 20s after SIGTERM:\n%s", p.log.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// client is a pipelining protocol client: send returns at once; replies are matched by id.
type client struct {
	ws      *websocket.Conn
	mu      sync.Mutex
	next    int
	waiting map[string]chan reply
	done    chan struct{}
}

type reply struct {
	raw map[string]json.RawMessage
	err error
}

func dial(t *testing.T, addr, key string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/?api-key="+key, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(64 << 20)
	if _, b, err := ws.Read(ctx); err != nil || !strings.Contains(string(b), `"ready"`) {
		t.Fatalf("ready frame %q: %v", b, err)
	}
	c := &client{ws: ws, waiting: map[string]chan reply{}, done: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(c.close)
	return c
}

func (c *client) close() {
	c.ws.CloseNow()
	<-c.done
}

func (c *client) readLoop() {
	defer close(c.done)
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			for id, ch := range c.waiting {
				ch <- reply{err: err}
				delete(c.waiting, id)
			}
			c.waiting = nil
			c.mu.Unlock()
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			continue
		}
		var id string
		_ = json.Unmarshal(m["id"], &id)
		c.mu.Lock()
		ch := c.waiting[id]
		delete(c.waiting, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- reply{raw: m}
		}
	}
}

// send sends one request; the reply (or the connection's end) arrives on the channel.
func (c *client) send(typ string, data any) <-chan reply {
	ch := make(chan reply, 1)
	inner, _ := json.Marshal(data)
	c.mu.Lock()
	if c.waiting == nil {
		c.mu.Unlock()
		ch <- reply{err: fmt.Errorf("connection closed")}
		return ch
	}
	c.next++
	id := strconv.Itoa(c.next)
	c.waiting[id] = ch
	c.mu.Unlock()
	frame, _ := json.Marshal(map[string]string{"id": id, "type": typ, "data": string(inner)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
		c.mu.Lock()
		if c.waiting != nil {
			delete(c.waiting, id)
		}
		c.mu.Unlock()
		select {
		case ch <- reply{err: err}:
		default:
		}
	}
	return ch
}

// call sends and waits; a transport failure or an error reply fails the test.
func (c *client) call(t *testing.T, typ string, data any) map[string]json.RawMessage {
	t.Helper()
	select {
	case r := <-c.send(typ, data):
		if r.err != nil {
			t.Fatalf("%s: %v", typ, r.err)
		}
		if e, ok := r.raw["error"]; ok {
			t.Fatalf("%s %v: error %s", typ, data, e)
		}
		return r.raw
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no reply in 20s", typ)
	}
	return nil
}

type rec struct {
	TS   int64  `json:"ts"`
	Data string `json:"data"`
}

// fullState reads the whole state over the protocol: every collection, document, record,
// KV entry and the key list.
func fullState(t *testing.T, c *client) string {
	t.Helper()
	var cols []string
	_ = json.Unmarshal(c.call(t, "cols", map[string]any{})["collections"], &cols)
	sort.Strings(cols)
	var b strings.Builder
	for _, col := range cols {
		fmt.Fprintf(&b, "collection %q\n", col)
		var latest map[string]rec
		_ = json.Unmarshal(c.call(t, "qry", map[string]any{"col": col, "ts": int64(math.MaxInt64)})["records"], &latest)
		docs := make([]string, 0, len(latest))
		for d := range latest {
			docs = append(docs, d)
		}
		sort.Strings(docs)
		for _, d := range docs {
			var rs []rec
			_ = json.Unmarshal(c.call(t, "qdoc", map[string]any{"col": col, "doc": d, "from": int64(math.MinInt64), "to": int64(math.MaxInt64)})["records"], &rs)
			fmt.Fprintf(&b, " doc %q %v\n", d, rs)
		}
		var vals map[string]string
		_ = json.Unmarshal(c.call(t, "gvals", map[string]any{"col": col})["values"], &vals)
		keys := make([]string, 0, len(vals))
		for k := range vals {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, " kv %q=%q\n", k, vals[k])
		}
	}
	fmt.Fprintf(&b, "keys %s\n", c.call(t, "keys", map[string]any{"action": "list"})["keys"])
	return b.String()
}

// TestPersistCrashCycles: concurrent writers pipeline batches of inserts, deletes and KV
// changes; the server is SIGKILLed at a random moment; after the restart every
// acknowledged write is there and every acknowledged delete stays deleted. Many cycles,
// rotating the fsync policies (a process crash must lose nothing under any of them).
func TestPersistCrashCycles(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	const writers, inFlight, batch = 2, 4, 100
	// What must hold after a restart. Only the owning writer touches an entry, and only
	// between cycles does the checker read them.
	present := map[recKey]string{} // acknowledged insert, no delete sent
	deleted := map[recKey]bool{}   // acknowledged delete
	kvPresent := map[string]string{}
	kvDeleted := map[string]bool{}
	var mu sync.Mutex
	nextTS := make([]int64, writers)
	policies := []string{"always", "interval", "never"}
	start := time.Now()
	cycles := 0
	var acked, ackedDeletes, snapshots int
	for cycles < 12 && time.Since(start) < 20*time.Second {
		policy := policies[cycles%len(policies)]
		// Small segments and frequent snapshots, so kills land during rolls and snapshots.
		env := []string{"FLUXIONDB_SNAPSHOT_BYTES=256KiB", "FLUXIONDB_SNAPSHOT_AGE=150ms", "FLUXIONDB_WAL_SEGMENT_BYTES=128KiB"}
		p := startServer(t, bin, dir, env, "--fsync="+policy)
		if p.addr == "" {
			t.Fatalf("cycle %d: the server did not start after a SIGKILL:\n%s", cycles, p.log.String())
		}
		// Check the state the previous cycles acknowledged.
		chk := dial(t, p.addr, persistKey)
		checkAcked(t, chk, cycles, present, deleted, kvPresent, kvDeleted)
		chk.close()

		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			c := dial(t, p.addr, persistKey)
			wg.Add(1)
			go func() {
				defer wg.Done()
				prefix := fmt.Sprintf("w%d-", w)
				type pending struct {
					ch     <-chan reply
					commit func() // records what must hold once acknowledged; runs under mu
				}
				var q []pending
				for i := 0; ; i++ {
					for len(q) < inFlight { // keep the pipe full
						i++
						switch {
						case i%7 == 6: // delete a few acknowledged records of this writer
							mu.Lock()
							var victims []recKey
							for k := range present {
								if strings.HasPrefix(k.doc, prefix) {
									victims = append(victims, k)
									delete(present, k) // either outcome is fine until acknowledged
									if len(victims) == 5 {
										break
									}
								}
							}
							mu.Unlock()
							if len(victims) == 0 {
								continue
							}
							items := make([]map[string]any, len(victims))
							for j, v := range victims {
								items[j] = map[string]any{"col": "crash", "doc": v.doc, "ts": v.ts}
							}
							q = append(q, pending{c.send("dmrec", items), func() {
								for _, v := range victims {
									deleted[v] = true
								}
								ackedDeletes += len(victims)
							}})
						case i%5 == 4: // KV: set one, sometimes remove an older one
							nextTS[w]++
							k, v := fmt.Sprintf("%sk%d", prefix, nextTS[w]), strconv.Itoa(rand.IntN(1e6))
							q = append(q, pending{c.send("sval", map[string]any{"col": "crash", "key": k, "value": v}), func() { kvPresent[k] = v }})
							mu.Lock()
							var old string
							for o := range kvPresent {
								if strings.HasPrefix(o, prefix) {
									old = o
									delete(kvPresent, o)
									break
								}
							}
							mu.Unlock()
							if old != "" {
								q = append(q, pending{c.send("rval", map[string]any{"col": "crash", "key": old}), func() { kvDeleted[old] = true }})
							}
						default:
							items := make([]map[string]any, batch)
							keys := make([]recKey, batch)
							for j := range items {
								nextTS[w]++
								k := recKey{fmt.Sprintf("%sd%d", prefix, j%10), nextTS[w]}
								keys[j] = k
								items[j] = map[string]any{"col": "crash", "doc": k.doc, "ts": k.ts, "data": fmt.Sprintf(`{"w":%d,"ts":%d}`, w, k.ts)}
							}
							q = append(q, pending{c.send("ins", items), func() {
								for j, k := range keys {
									present[k] = items[j]["data"].(string)
								}
								acked += len(keys)
							}})
						}
					}
					r := <-q[0].ch
					if r.err != nil {
						return // killed: unacknowledged requests prove nothing
					}
					if e, ok := r.raw["error"]; ok {
						t.Errorf("error reply: %s", e)
						return
					}
					mu.Lock()
					q[0].commit()
					mu.Unlock()
					q = q[1:]
				}
			}()
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		p.kill()
		snapshots += strings.Count(p.log.String(), "snapshot written")
		wg.Wait()
		cycles++
	}
	// A last start checks the final cycle's writes.
	p := startServer(t, bin, dir, nil)
	if p.addr == "" {
		t.Fatalf("the server did not start after the last SIGKILL:\n%s", p.log.String())
	}
	c := dial(t, p.addr, persistKey)
	checkAcked(t, c, cycles, present, deleted, kvPresent, kvDeleted)
	if code := p.stop(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM:\n%s", code, p.log.String())
	}
	t.Logf("%d SIGKILL cycles in %v: %d acknowledged inserts (%d still present), %d acknowledged record deletes, %d KV entries, %d snapshots",
		cycles, time.Since(start).Round(time.Millisecond), acked, len(present), ackedDeletes, len(kvPresent), snapshots)
	if acked == 0 || ackedDeletes == 0 || snapshots == 0 {
		t.Errorf("the test wrote too little to prove anything")
	}
}

// recKey names a record of the "crash" collection.
type recKey struct {
	doc string
	ts  int64
}

// checkAcked reads the "crash" collection and checks it against what was acknowledged:
// every acknowledged insert not deleted since is there with its data; every acknowledged
// delete stays deleted; the same for KV entries.
func checkAcked(t *testing.T, c *client, cycle int, present map[recKey]string, deleted map[recKey]bool, kvPresent map[string]string, kvDeleted map[string]bool) {
	t.Helper()
	docs := map[string]bool{}
	for k := range present {
		docs[k.doc] = true
	}
	for k := range deleted {
		docs[k.doc] = true
	}
	have := map[recKey]string{}
	for d := range docs {
		var rs []rec
		_ = json.Unmarshal(c.call(t, "qdoc", map[string]any{"col": "crash", "doc": d, "from": 0, "to": int64(math.MaxInt64)})["records"], &rs)
		for _, r := range rs {
			have[recKey{d, r.TS}] = r.Data
		}
	}
	lost := 0
	for k, v := range present {
		if got, ok := have[k]; !ok || got != v {
			if lost++; lost <= 5 {
				t.Errorf("cycle %d: acknowledged record %v = %q is %q (present %v)", cycle, k, v, got, ok)
			}
		}
	}
	back := 0
	for k := range deleted {
		if _, ok := have[k]; ok {
			if back++; back <= 5 {
				t.Errorf("cycle %d: acknowledged delete of %v came back", cycle, k)
			}
		}
	}
	var vals map[string]string
	_ = json.Unmarshal(c.call(t, "gvals", map[string]any{"col": "crash"})["values"], &vals)
	for k, v := range kvPresent {
		if vals[k] != v {
			t.Errorf("cycle %d: acknowledged KV %q = %q is %q", cycle, k, v, vals[k])
		}
	}
	for k := range kvDeleted {
		if _, ok := vals[k]; ok {
			t.Errorf("cycle %d: acknowledged KV delete of %q came back", cycle, k)
		}
	}
	if lost+back > 0 {
		t.Fatalf("cycle %d: %d acknowledged records lost, %d acknowledged deletes undone", cycle, lost, back)
	}
}

// TestFsyncWithoutDataWarns: --fsync without --data is accepted (old command lines) but said
// to do nothing, so it is not mistaken for a durability setting.
func TestFsyncWithoutDataWarns(t *testing.T) {
	bin := buildBinary(t)
	p := startServer(t, bin, "", nil, "--fsync=interval")
	if p.addr == "" {
		t.Fatalf("did not start:\n%s", p.log.String())
	}
	if !strings.Contains(p.log.String(), "--fsync has no effect without --data") {
		t.Fatalf("no warning for --fsync without --data:\n%s", p.log.String())
	}
	p.stop(t)
}
