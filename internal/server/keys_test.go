package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/volandoo/fluxiondb/internal/server"
)

// Scopes, `keys` management, re-scoping and revocation of open connections, and the
// handshake (PROTOCOL.md §1 and §3 "keys").

// scopeCase is one message with a valid payload and the scope it needs.
type scopeCase struct {
	typ, payload string
	need         int // 1 read, 2 write, 3 delete
}

var scopeCases = []scopeCase{
	{"qry", `{"col":"c","ts":100}`, 1},
	{"cols", `{}`, 1},
	{"qdoc", `{"col":"c","doc":"d","to":100}`, 1},
	{"gval", `{"col":"c","key":"k"}`, 1},
	{"gvalues", `{"col":"c","key":"/k/"}`, 1},
	{"gvals", `{"col":"c"}`, 1},
	{"gkeys", `{"col":"c"}`, 1},
	{"conn", `{}`, 1},
	{"ins", `[{"col":"c","doc":"new","ts":1,"data":"x"}]`, 2},
	{"sval", `{"col":"c","key":"new","value":"v"}`, 2},
	{"ddoc", `{"col":"c","doc":"d"}`, 3},
	{"dcol", `{"col":"c"}`, 3},
	{"drec", `{"col":"c","doc":"d","ts":1}`, 3},
	{"dmrec", `[{"col":"c","doc":"d","ts":1}]`, 3},
	{"drrng", `{"col":"c","doc":"d","fromTs":1,"toTs":2}`, 3},
	{"rval", `{"col":"c","key":"k"}`, 3},
}

func seedScopes(c *client) {
	c.ok("ins", `[{"col":"c","doc":"d","ts":1,"data":"one"},{"col":"c","doc":"d","ts":2,"data":"two"}]`)
	c.ok("sval", `{"col":"c","key":"k","value":"v"}`)
}

func TestScopes(t *testing.T) {
	scopes := []struct {
		key, spelling string
		level         int
	}{
		{"ro-key", "readonly", 1},
		{"rw-key", "read_write", 2},
		{"rwd-key", "read_write_delete", 3},
	}
	for _, sc := range scopes {
		t.Run(sc.spelling, func(t *testing.T) {
			s := startServer(t, server.Config{})
			master := s.dial(t, masterKey)
			addKey(t, master, sc.key, sc.spelling)
			c := s.dial(t, sc.key)
			for _, m := range scopeCases {
				seedScopes(master)
				before := dump(t, master)
				r := c.do(m.typ, m.payload)
				if m.need <= sc.level {
					if r.isErr() {
						t.Errorf("%s with %s: error %s, want success", m.typ, sc.spelling, r.raw)
					}
					continue
				}
				if r.errText() != "permission denied" || r.fields["code"] != "permission_denied" {
					t.Errorf("%s with %s: %s, want error \"permission denied\" code permission_denied", m.typ, sc.spelling, r.raw)
				}
				if after := dump(t, master); after != before {
					t.Errorf("denied %s with %s changed state:\n%s\n->\n%s", m.typ, sc.spelling, before, after)
				}
			}
			// keys: below read_write_delete → permission denied; a non-master
			// read_write_delete key → only the master key may manage API keys.
			for _, p := range []string{`{"action":"list"}`, `{"action":"add","key":"x","scope":"readonly"}`, `{"action":"remove","key":"ro-key"}`, `{"action":"bogus"}`} {
				want := "permission denied"
				if sc.level == 3 {
					want = "only the master key may manage API keys"
				}
				c.failWith("keys", p, want, "")
			}
			// The key is still there and usable, nothing was added.
			list := master.ok("keys", `{"action":"list"}`)
			if n := len(list.fields["keys"].([]any)); n != 2 {
				t.Errorf("keys list after denied management has %d keys, want 2: %s", n, list.raw)
			}
		})
	}
}

func TestMasterHasEveryScope(t *testing.T) {
	s := startServer(t, server.Config{})
	c := s.dial(t, masterKey)
	for _, m := range scopeCases {
		seedScopes(c)
		c.ok(m.typ, m.payload)
	}
	c.ok("keys", `{"action":"list"}`)
}

func TestKeysManagement(t *testing.T) {
	s := startServer(t, server.Config{})
	c := s.dial(t, masterKey)

	// Canonical scope in the reply; spellings ignore case, spaces, commas, hyphens, underscores;
	// action is case-insensitive.
	for _, tc := range []struct{ action, key, scope, want string }{
		{"add", "k-ro", "Read-Only", "readonly"},
		{"ADD", "k-rw", "read write", "read_write"},
		{"Add", "k-rwd", "READ_WRITE_DELETE", "read_write_delete"},
		{"add", "k-rwd2", "read, write, delete", "read_write_delete"},
		{"add", "k-rwd2", " Read_Write-Delete ", "read_write_delete"}, // again: re-scope, same key
	} {
		c.expect("keys", mustJSON(map[string]string{"action": tc.action, "key": tc.key, "scope": tc.scope}),
			`{"status":"ok","scope":"`+tc.want+`"}`)
	}

	// Errors, byte-exact, invalid scope checked first.
	c.failWith("keys", `{"action":"add","key":"","scope":"bogus"}`, "invalid scope", "")
	c.failWith("keys", `{"action":"add","scope":"bogus"}`, "invalid scope", "")
	c.failWith("keys", `{"action":"add","key":"x"}`, "invalid scope", "")
	c.failWith("keys", `{"action":"add","key":"","scope":"readonly"}`, "api key cannot be empty", "")
	c.failWith("keys", `{"action":"add","scope":"readonly"}`, "api key cannot be empty", "")
	// A key or scope of the wrong type is named as such, not taken for an empty one.
	c.failWith("keys", `{"action":"add","key":5,"scope":"readonly"}`, "key must be a string", "")
	c.failWith("keys", `{"action":"add","key":"k","scope":["readonly"]}`, "scope must be a string", "")
	c.failWith("keys", `{"action":"remove","key":"never-added"}`, "api key not found", "not_found")
	c.failWith("keys", `{"action":"remove","key":""}`, "api key not found", "not_found")
	c.failWith("keys", `{"action":"remove"}`, "api key not found", "not_found")
	c.failWith("keys", `{"action":"remove","key":"`+masterKey+`"}`, "api key cannot be removed", "forbidden")
	// The master key's scope is fixed: asking for it again is a no-op, less is refused.
	c.expect("keys", `{"action":"add","key":"`+masterKey+`","scope":"read_write_delete"}`, `{"status":"ok","scope":"read_write_delete"}`)
	c.failWith("keys", `{"action":"add","key":"`+masterKey+`","scope":"readonly"}`,
		"the master key always has read_write_delete and cannot be re-scoped", "forbidden")
	c.failWith("keys", `{"action":"frobnicate"}`, "unknown action", "")
	c.failWith("keys", `{}`, "unknown action", "")

	// list: master first-class, every key with key/scope/deletable, secrets never in clear.
	r := c.ok("keys", `{"action":"list"}`)
	if r.fields["status"] != "ok" {
		t.Errorf("keys list status = %v, want ok", r.fields["status"])
	}
	rows, _ := r.fields["keys"].([]any)
	if len(rows) != 5 { // master + 4 distinct keys
		t.Fatalf("keys list has %d rows, want 5: %s", len(rows), r.raw)
	}
	scopes := map[string]int{}
	masters := 0
	for _, x := range rows {
		m := x.(map[string]any)
		for _, f := range []string{"key", "scope", "deletable"} {
			if _, ok := m[f]; !ok {
				t.Errorf("keys list row %v lacks %q", m, f)
			}
		}
		if _, ok := m["key"].(string); !ok {
			t.Errorf("keys list row key %v is not a string", m["key"])
		}
		scopes[m["scope"].(string)]++
		if m["deletable"] == false {
			masters++
			if m["scope"] != "read_write_delete" {
				t.Errorf("master row scope %v, want read_write_delete", m["scope"])
			}
		}
	}
	if masters != 1 {
		t.Errorf("keys list: %d non-deletable rows, want 1 (the master): %s", masters, r.raw)
	}
	if scopes["readonly"] != 1 || scopes["read_write"] != 1 || scopes["read_write_delete"] != 3 {
		t.Errorf("keys list scopes = %v: %s", scopes, r.raw)
	}
	for _, secret := range []string{masterKey, "k-ro", "k-rw", "k-rwd", "k-rwd2"} {
		if strings.Contains(string(r.raw), secret) {
			t.Errorf("keys list shows the secret %q in clear text: %s", secret, r.raw)
		}
	}

	// remove → ok, then the key no longer authenticates.
	c.expect("keys", `{"action":"remove","key":"k-ro"}`, `{"status":"ok"}`)
	c.failWith("keys", `{"action":"remove","key":"k-ro"}`, "api key not found", "")
	s.dialRefused(t, s.url("api-key=k-ro"), nil, "Unknown API key")
	s.dial(t, "k-rw").ok("qry", `{"col":"c","ts":1}`)
}

func TestLiveRescope(t *testing.T) {
	s := startServer(t, server.Config{})
	master := s.dial(t, masterKey)
	addKey(t, master, "live", "readonly")
	c := s.dial(t, "live")
	ins := `[{"col":"c","doc":"d","ts":1,"data":"x"}]`
	c.failWith("ins", ins, "permission denied", "permission_denied")

	addKey(t, master, "live", "read_write") // re-scope: the open connection gets it at once
	c.expect("ins", ins, `{}`)
	c.failWith("drec", `{"col":"c","doc":"d","ts":1}`, "permission denied", "")

	addKey(t, master, "live", "read-write-delete")
	c.expect("drec", `{"col":"c","doc":"d","ts":1}`, `{}`)
	c.failWith("keys", `{"action":"list"}`, "only the master key may manage API keys", "")

	addKey(t, master, "live", "readonly") // and down again
	c.failWith("ins", ins, "permission denied", "")
	c.ok("qry", `{"col":"c","ts":1}`)
	// The drec emptied c, which stays listed (record deletes never remove a collection).
	if got := dump(t, master); got != "collection \"c\"\n" {
		t.Errorf("state after re-scope test: %q, want only the emptied collection", got)
	}
}

func TestRevocation(t *testing.T) {
	s := startServer(t, server.Config{})
	master := s.dial(t, masterKey)
	addKey(t, master, "doomed", "read_write")
	addKey(t, master, "other", "read_write")
	a := s.dial(t, "doomed")
	b := s.dial(t, "doomed")
	other := s.dial(t, "other")
	a.ok("cols", "{}")

	master.expect("keys", `{"action":"remove","key":"doomed"}`, `{"status":"ok"}`)
	for _, c := range []*client{a, b} {
		if frames := c.expectClose(websocket.StatusPolicyViolation, "API key revoked"); len(frames) != 0 {
			t.Errorf("revoked connection got frames before the close: %q", frames)
		}
	}
	// Others are untouched; the key no longer authenticates.
	other.ok("cols", "{}")
	master.ok("cols", "{}")
	s.dialRefused(t, s.url("api-key=doomed"), nil, "Unknown API key")
	// Re-adding the same secret makes it valid again (a new grant).
	addKey(t, master, "doomed", "readonly")
	s.dial(t, "doomed").ok("cols", "{}")
}

// TestRevocationRacingUpgrades: a connection whose upgrade passed the key check while the
// key was being removed is closed too (the removal walked the open connections before this
// one was registered): every connection that got its ready frame ends with 1008.
func TestRevocationRacingUpgrades(t *testing.T) {
	s := startServer(t, server.Config{})
	master := s.dial(t, masterKey)
	const rounds, dials = 10, 20
	for round := range rounds {
		key := fmt.Sprintf("racing-%d", round)
		addKey(t, master, key, "read_write")
		u := s.url("api-key=" + key)
		var wg sync.WaitGroup
		results := make(chan string, dials)
		for range dials {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				ws, _, err := websocket.Dial(ctx, u, nil)
				if err != nil {
					results <- "" // refused: the key was already gone
					return
				}
				defer ws.CloseNow()
				for { // read until the connection ends; a live one is a failure
					rctx, rcancel := context.WithTimeout(context.Background(), 3*time.Second)
					_, _, err := ws.Read(rctx)
					rcancel()
					if err != nil {
						if websocket.CloseStatus(err) == websocket.StatusPolicyViolation {
							results <- ""
						} else {
							results <- fmt.Sprintf("connection not closed with 1008: %v", err)
						}
						return
					}
				}
			}()
		}
		master.expect("keys", fmt.Sprintf(`{"action":"remove","key":%q}`, key), `{"status":"ok"}`)
		wg.Wait()
		close(results)
		for r := range results {
			if r != "" {
				t.Fatalf("round %d: %s", round, r)
			}
		}
	}
}

func TestHandshakeAuth(t *testing.T) {
	s := startServer(t, server.Config{})
	master := s.dial(t, masterKey)
	addKey(t, master, "a b+c&d/é", "readonly")

	// Query string decoded with form rules: '+' is a space, %xx escapes.
	for _, q := range []string{
		"api-key=a+b%2Bc%26d%2F%C3%A9",
		"api-key=a%20b%2Bc%26d/%c3%a9",
		"name=x&api-key=" + url.QueryEscape("a b+c&d/é"),
	} {
		s.dialURL(t, s.url(q), nil).ok("cols", "{}")
	}
	// Header forms.
	s.dialURL(t, s.url(""), http.Header{"Authorization": {"Bearer " + masterKey}}).ok("cols", "{}")
	s.dialURL(t, s.url(""), http.Header{"X-Api-Key": {masterKey}}).ok("cols", "{}")
	// Any path is accepted for the upgrade.
	s.dialURL(t, "ws://"+s.Addr+"/some/path?api-key="+masterKey, nil).ok("cols", "{}")
	s.dialURL(t, "ws://"+s.Addr+"?api-key="+masterKey, nil).ok("cols", "{}")

	// Refusals: HTTP 401 with the exact text.
	s.dialRefused(t, s.url(""), nil, "Missing API key parameter")
	s.dialRefused(t, s.url("api-key="), nil, "Missing API key parameter")
	s.dialRefused(t, s.url("name=x"), nil, "Missing API key parameter")
	s.dialRefused(t, s.url("api-key=wrong"), nil, "Unknown API key")
	s.dialRefused(t, s.url("api-key=a+b%2Bc%26d"), nil, "Unknown API key")
	s.dialRefused(t, s.url("api-key="+masterKey+"x"), nil, "Unknown API key")
	s.dialRefused(t, s.url(""), http.Header{"Authorization": {"Bearer wrong"}}, "Unknown API key")
	s.dialRefused(t, s.url(""), http.Header{"X-Api-Key": {"wrong"}}, "Unknown API key")
}

func TestHealthEndpoints(t *testing.T) {
	s := startServer(t, server.Config{})
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + s.Addr + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", p, resp.StatusCode)
		}
	}
}

// A malformed sibling parameter must not hide a valid api-key (form decoding of the key
// itself is what PROTOCOL.md §1 asks for).
func TestHandshakeKeyBesideMalformedParameter(t *testing.T) {
	s := startServer(t, server.Config{})
	for _, q := range []string{
		"api-key=" + masterKey + "&name=cpu%",
		"name=50%zz&api-key=" + masterKey,
		"api-key=" + masterKey + "&name=a;b",
	} {
		t.Run(q, func(t *testing.T) {
			s.dialURL(t, s.url(q), nil).on(t).ok("cols", "{}")
		})
	}
}

func TestKeysActionCaseInsensitive(t *testing.T) {
	s := startServer(t, server.Config{})
	c := s.dial(t, masterKey)
	addKey(t, c, "x-key", "readonly")
	if rows := c.ok("keys", `{"action":"LIST"}`).fields["keys"].([]any); len(rows) != 2 {
		t.Errorf("LIST: %d rows, want 2", len(rows))
	}
	c.expect("keys", `{"action":"Remove","key":"x-key"}`, `{"status":"ok"}`)
}
