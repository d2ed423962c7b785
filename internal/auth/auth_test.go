package auth_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/volandoo/fluxiondb/internal/auth"
)

func TestParseScopeSpellings(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want auth.Scope
		ok   bool
	}{
		{"readonly", auth.ScopeReadOnly, true},
		{"Read-Only", auth.ScopeReadOnly, true},
		{"read only", auth.ScopeReadOnly, true},
		{"READ_ONLY", auth.ScopeReadOnly, true},
		{"read_write", auth.ScopeReadWrite, true},
		{"read write", auth.ScopeReadWrite, true},
		{"Read-Write", auth.ScopeReadWrite, true},
		{"READ_WRITE_DELETE", auth.ScopeReadWriteDelete, true},
		{"read, write, delete", auth.ScopeReadWriteDelete, true},
		{"readonly\n", auth.ScopeReadOnly, true},
		{" read_write\r\n", auth.ScopeReadWrite, true},
		{"", auth.ScopeNone, false},
		{"admin", auth.ScopeNone, false},
		{"read", auth.ScopeNone, false},
		{"write", auth.ScopeNone, false},
		{"readwritedeleteall", auth.ScopeNone, false},
	} {
		got, ok := auth.ParseScope(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseScope(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	for s, want := range map[auth.Scope]string{auth.ScopeReadOnly: "readonly", auth.ScopeReadWrite: "read_write", auth.ScopeReadWriteDelete: "read_write_delete"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
		if back, ok := auth.ParseScope(want); !ok || back != s {
			t.Errorf("canonical %q does not parse back", want)
		}
	}
	if !(auth.ScopeReadOnly < auth.ScopeReadWrite && auth.ScopeReadWrite < auth.ScopeReadWriteDelete) {
		t.Error("scopes must be ordered: higher includes lower")
	}
}

func TestKeysLifecycle(t *testing.T) {
	k := auth.New("master")
	var revoked atomic.Int32
	k.OnRevoke = func(*auth.Entry) { revoked.Add(1) }

	m, ok := k.Lookup("master")
	if !ok || !m.Master || m.Scope() != auth.ScopeReadWriteDelete {
		t.Fatalf("master lookup = %+v, %v", m, ok)
	}
	if !k.IsMaster("master") || k.IsMaster("other") {
		t.Error("IsMaster")
	}
	if _, ok := k.Lookup("nope"); ok {
		t.Error("unknown key authenticated")
	}

	h := auth.HashKey("scoped-secret")
	k.Put(h, auth.Hint("scoped-secret"), auth.ScopeReadOnly)
	e, ok := k.Lookup("scoped-secret")
	if !ok || e.Master || e.Scope() != auth.ScopeReadOnly {
		t.Fatalf("scoped lookup = %+v, %v", e, ok)
	}
	// Re-adding re-scopes the same entry in place: holders see it at once.
	k.Put(h, auth.Hint("scoped-secret"), auth.ScopeReadWrite)
	if e.Scope() != auth.ScopeReadWrite {
		t.Errorf("held entry scope = %v after re-scope, want read_write", e.Scope())
	}
	if e2, _ := k.Lookup("scoped-secret"); e2 != e {
		t.Error("re-scope replaced the entry instead of updating it")
	}
	if !k.Has(h) {
		t.Error("Has")
	}

	rows := k.List()
	if len(rows) != 2 || rows[0].Deletable || !rows[1].Deletable || rows[1].Scope != auth.ScopeReadWrite {
		t.Errorf("List = %+v", rows)
	}
	for _, r := range rows {
		if strings.Contains(r.ID+r.Hint, "scoped-secret") || strings.Contains(r.ID+r.Hint, "master") && r.Deletable {
			t.Errorf("List shows a secret: %+v", r)
		}
	}
	for _, s := range k.Export() {
		if s.Hash != h || s.Scope != auth.ScopeReadWrite {
			t.Errorf("Export = %+v", s)
		}
	}

	if !k.Remove(h) {
		t.Fatal("Remove of an existing key = false")
	}
	if !e.Revoked() || e.Scope() != auth.ScopeNone {
		t.Errorf("held entry after removal: revoked=%v scope=%v", e.Revoked(), e.Scope())
	}
	if revoked.Load() != 1 {
		t.Errorf("OnRevoke called %d times, want 1", revoked.Load())
	}
	if _, ok := k.Lookup("scoped-secret"); ok {
		t.Error("removed key still authenticates")
	}
	if k.Remove(h) || revoked.Load() != 1 {
		t.Error("second Remove reported success or revoked again")
	}
	if len(k.List()) != 1 {
		t.Errorf("List after removal = %+v", k.List())
	}
}

func TestHashAndHintDoNotRevealSecrets(t *testing.T) {
	secret := "correct-horse-battery-staple"
	h := auth.HashKey(secret)
	if h == auth.HashKey(secret+"x") || h != auth.HashKey(secret) {
		t.Error("HashKey is not a function of the secret")
	}
	if id := h.ID(); len(id) != 12 || strings.Contains(secret, id) {
		t.Errorf("ID = %q", id)
	}
	for _, s := range []string{"", "a", "abc", "abcd", "abcdefgh", secret, "日本語のキー"} {
		hint := auth.Hint(s)
		if len(hint) > 4 || len(hint) > len(s)/4 || !strings.HasPrefix(s, hint) {
			t.Errorf("Hint(%q) = %q: at most 4 bytes and a quarter of the secret", s, hint)
		}
	}
}

// TestShadowedByMaster: a scoped key with the master's secret (added before that secret became
// --secret-key) is reported, and listed as not deletable, since removing the master's secret
// is refused.
func TestShadowedByMaster(t *testing.T) {
	k := auth.New("same-secret")
	if k.Shadowed() {
		t.Fatal("no scoped key yet, but Shadowed")
	}
	k.Put(auth.HashKey("other-secret"), "ot", auth.ScopeReadOnly)
	k.Put(auth.HashKey("same-secret"), "sa", auth.ScopeReadOnly)
	if !k.Shadowed() {
		t.Fatal("a scoped key with the master's secret is not reported")
	}
	for _, row := range k.List()[1:] {
		if want := row.Hint != "sa"; row.Deletable != want {
			t.Errorf("row %+v: deletable %v, want %v", row, row.Deletable, want)
		}
	}
	if e, _ := k.Lookup("same-secret"); !e.Master {
		t.Fatal("the master key does not stand in for its shadowed entry")
	}
}
