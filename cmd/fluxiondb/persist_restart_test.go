package main

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/volandoo/fluxiondb/internal/db"
	"github.com/volandoo/fluxiondb/internal/server"
)

// TestPersistRestartEquivalence: the full state read over the protocol — collections,
// records, KV entries, scoped keys — is identical before and after a restart, both from
// the log alone and from a snapshot plus the log; keys work after the restart; no file in
// the data folder holds a secret.
func TestPersistRestartEquivalence(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	secrets := []string{"scoped-one-secret-H7d2k", "scoped-two-secret-Q9z4m", "scoped-three-secret-R2x8p"}
	env := []string{"FLUXIONDB_SNAPSHOT_AGE=200ms"}

	p := startServer(t, bin, dir, env)
	c := dial(t, p.addr, persistKey)
	ins := func(col, doc string, ts int64, data string) map[string]any {
		return map[string]any{"col": col, "doc": doc, "ts": ts, "data": data}
	}
	c.call(t, "ins", []map[string]any{
		ins("a", "d1", 1, `{"x":1}`), ins("a", "d1", 2, "two"), ins("a", "d2", math.MaxInt64, "max"),
		ins("a", "d2", 9007199254740993, "2^53+1"), ins("b/é", "ü", 5, "unicode \u00e9\u4e2d"), ins("c", "gone", 1, "x"),
		ins("a", "d3", 1, "r1"), ins("a", "d3", 2, "r2"), ins("a", "d3", 3, "r3"), ins("a", "d3", 4, "r4"),
	})
	c.call(t, "sval", map[string]any{"col": "a", "key": "k1", "value": "v1"})
	c.call(t, "sval", map[string]any{"col": "kvonly", "key": "k", "value": "v"})
	c.call(t, "keys", map[string]any{"action": "add", "key": secrets[0], "scope": "readonly"})
	c.call(t, "keys", map[string]any{"action": "add", "key": secrets[1], "scope": "read_write"})
	c.call(t, "ddoc", map[string]any{"col": "c", "doc": "gone"})
	// Wait for a background snapshot, then change more so the state is snapshot + log.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.log.String(), "snapshot written"); {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot:\n%s", p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.call(t, "drec", map[string]any{"col": "a", "doc": "d1", "ts": 1})
	c.call(t, "drrng", map[string]any{"col": "a", "doc": "d3", "fromTs": 2, "toTs": 3})
	// Same-length replaces: the first copies the block the snapshot exported, the second may
	// overwrite the copy in place.
	c.call(t, "ins", []map[string]any{ins("a", "d3", 4, "R4")})
	c.call(t, "ins", []map[string]any{ins("a", "d3", 4, "S4")})
	c.call(t, "rval", map[string]any{"col": "a", "key": "k1"})
	c.call(t, "sval", map[string]any{"col": "a", "key": "k2", "value": "v2"})
	c.call(t, "keys", map[string]any{"action": "add", "key": secrets[1], "scope": "read_write_delete"})
	c.call(t, "keys", map[string]any{"action": "add", "key": secrets[2], "scope": "readonly"})
	c.call(t, "keys", map[string]any{"action": "remove", "key": secrets[0]})
	c.call(t, "ins", []map[string]any{ins("tmp", "x", 1, "x")})
	c.call(t, "dcol", map[string]any{"col": "tmp"})
	before := fullState(t, c)
	// A backup taken while the server runs (every change above is acknowledged) starts
	// with the same state; its folder is checked below, after the restarts.
	backup := filepath.Join(t.TempDir(), "backup")
	if out, err := exec.Command(bin, "backup", "--data", dir, backup).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "backup done") {
		t.Fatalf("backup of a running server: %v\n%s", err, out)
	}
	c.close()
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.log.String())
	}
	for _, want := range []string{`"d1" [{2 two}]`, `"d3" [{1 r1} {4 S4}]`, `"k2"="v2"`, `collection "kvonly"`} {
		if !strings.Contains(before, want) {
			t.Fatalf("state before restart lacks %s:\n%s", want, before)
		}
	}
	for _, gone := range []string{`"gone"`, `"k1"`, `"tmp"`} {
		if strings.Contains(before, gone) {
			t.Fatalf("state before restart has %s:\n%s", gone, before)
		}
	}

	for round := 0; round < 2; round++ {
		p = startServer(t, bin, dir, nil)
		if p.addr == "" {
			t.Fatalf("restart %d failed:\n%s", round, p.log.String())
		}
		c = dial(t, p.addr, persistKey)
		if after := fullState(t, c); after != before {
			t.Fatalf("restart %d: state differs\nbefore\n%s\nafter\n%s", round, before, after)
		}
		c.close()
		// Scoped keys work with their new scope; the removed one does not.
		k2 := dial(t, p.addr, secrets[1])
		k2.call(t, "ddoc", map[string]any{"col": "nothing", "doc": "nothing"}) // needs delete scope
		k2.close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, resp, err := websocket.Dial(ctx, "ws://"+p.addr+"/?api-key="+secrets[0], nil)
		cancel()
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the removed key connects after a restart: %v", err)
		}
		if code := p.stop(t); code != 0 {
			t.Fatalf("exit %d after SIGTERM", code)
		}
	}
	assertNoSecrets(t, dir, append(secrets, persistKey))

	p = startServer(t, bin, backup, nil)
	if p.addr == "" {
		t.Fatalf("the backup does not start:\n%s", p.log.String())
	}
	c = dial(t, p.addr, persistKey)
	if after := fullState(t, c); after != before {
		t.Fatalf("backup: state differs\nbefore\n%s\nafter\n%s", before, after)
	}
	c.close()
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	assertNoSecrets(t, backup, append(secrets, persistKey))
}

// assertNoSecrets fails if any file under dir contains one of the secrets.
func assertNoSecrets(t *testing.T, dir string, secrets []string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s contains the secret %q", path, s)
			}
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("walk %s: %v (%d files)", dir, err, n)
	}
}

// TestStartGate: while the data folder is recovered the port answers /healthz 200,
// /readyz and upgrades 503 "starting: recovering data"; then it serves.
func TestStartGate(t *testing.T) {
	g := &startGate{}
	hs := httptest.NewServer(g)
	defer hs.Close()
	get := func(path string, upgrade bool) (int, string) {
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		if upgrade {
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Connection", "Upgrade")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz", false); code != 200 {
		t.Errorf("/healthz while starting: %d", code)
	}
	if code, body := get("/readyz", false); code != 503 || !strings.Contains(body, "starting: recovering data") {
		t.Errorf("/readyz while starting: %d %q", code, body)
	}
	if code, body := get("/?api-key=x", true); code != 503 || !strings.Contains(body, "starting: recovering data") {
		t.Errorf("upgrade while starting: %d %q", code, body)
	}
	d, err := db.Open(db.Config{MasterKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	srv := server.New(d, server.Config{})
	g.open(srv)
	if code, _ := get("/readyz", false); code != 200 {
		t.Errorf("/readyz once open: %d", code)
	}
	srv.Shutdown(context.Background())
}
