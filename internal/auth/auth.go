// Package auth holds the API keys of a FluxionDB server: the master key given on the command
// line and the scoped keys created with the `keys` message.
//
// Secrets are never kept in clear text: a key is known by the SHA-256 of its secret (Hash),
// and shown to people by a short non-reversible identifier (Hash.ID). The master key lives
// only in memory and is never persisted.
//
// A connection holds the *Entry it authenticated with. Re-adding a key updates the same
// Entry's scope in place, so open connections get the new scope at once; removing it marks
// the Entry revoked and tells the server (OnRevoke) to close those connections.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Scope is what a key may do. Higher scopes include the lower ones.
type Scope uint32

const (
	ScopeNone Scope = iota
	ScopeReadOnly
	ScopeReadWrite
	ScopeReadWriteDelete
)

// String returns the canonical spelling (PROTOCOL.md §3).
func (s Scope) String() string {
	switch s {
	case ScopeReadOnly:
		return "readonly"
	case ScopeReadWrite:
		return "read_write"
	case ScopeReadWriteDelete:
		return "read_write_delete"
	}
	return "none"
}

// ParseScope accepts any spelling that ignores case, spaces, commas, hyphens and underscores
// (`Read-Only`, `read write`, `READ_WRITE_DELETE`).
func ParseScope(s string) (Scope, bool) {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch r {
		case ' ', ',', '-', '_', '\t', '\n', '\r': // spaces, line ends (a scope read from a file) and separators
			continue
		}
		b.WriteRune(r)
	}
	switch b.String() {
	case "readonly":
		return ScopeReadOnly, true
	case "readwrite":
		return ScopeReadWrite, true
	case "readwritedelete":
		return ScopeReadWriteDelete, true
	}
	return ScopeNone, false
}

// Hash identifies a key without revealing it.
type Hash [sha256.Size]byte

// HashKey hashes a secret. API keys are bearer secrets chosen to be hard to guess; a fast
// hash is what lets every connection be authenticated in microseconds.
func HashKey(secret string) Hash {
	return sha256.Sum256([]byte("fluxiondb-api-key\x00" + secret))
}

// ID is the short public identifier of a key: the first 12 hex digits of its hash.
func (h Hash) ID() string { return hex.EncodeToString(h[:6]) }

// Entry is one key. Its scope may change while connections hold it.
type Entry struct {
	Hash    Hash
	Master  bool
	Hint    string // a few leading characters of the secret, for people ("anal…"); "" if unknown
	scope   atomic.Uint32
	revoked atomic.Bool
}

// Scope returns the key's current scope, or ScopeNone once it has been revoked.
func (e *Entry) Scope() Scope {
	if e.revoked.Load() {
		return ScopeNone
	}
	return Scope(e.scope.Load())
}

// Revoked reports whether the key has been removed.
func (e *Entry) Revoked() bool { return e.revoked.Load() }

// Keys is the set of valid keys. Safe for concurrent use.
type Keys struct {
	master *Entry

	mu     sync.RWMutex
	scoped map[Hash]*Entry

	// OnRevoke, when set, is called (without locks held) after a key is removed.
	OnRevoke func(*Entry)
}

// New creates the key set with its master key.
func New(masterSecret string) *Keys {
	m := &Entry{Hash: HashKey(masterSecret), Master: true}
	m.scope.Store(uint32(ScopeReadWriteDelete))
	return &Keys{master: m, scoped: make(map[Hash]*Entry)}
}

// Lookup authenticates a secret.
func (k *Keys) Lookup(secret string) (*Entry, bool) {
	h := HashKey(secret)
	if subtle.ConstantTimeCompare(h[:], k.master.Hash[:]) == 1 {
		return k.master, true
	}
	k.mu.RLock()
	e, ok := k.scoped[h]
	k.mu.RUnlock()
	return e, ok
}

// IsMaster reports whether secret is the master key.
func (k *Keys) IsMaster(secret string) bool {
	h := HashKey(secret)
	return subtle.ConstantTimeCompare(h[:], k.master.Hash[:]) == 1
}

// Hint returns the identifying prefix shown for a secret: at most 4 characters, and never
// more than a quarter of it.
func Hint(secret string) string {
	runes := []rune(secret)
	n := min(4, len(runes)/4)
	return string(runes[:n])
}

// Put adds a key or changes its scope (by hash, as the log and snapshots store it).
func (k *Keys) Put(h Hash, hint string, s Scope) {
	k.mu.Lock()
	e, ok := k.scoped[h]
	if !ok {
		e = &Entry{Hash: h, Hint: hint}
		k.scoped[h] = e
	}
	e.scope.Store(uint32(s))
	k.mu.Unlock()
}

// Remove deletes a key; it reports whether the key existed.
func (k *Keys) Remove(h Hash) bool {
	k.mu.Lock()
	e, ok := k.scoped[h]
	delete(k.scoped, h)
	k.mu.Unlock()
	if !ok {
		return false
	}
	e.revoked.Store(true)
	if k.OnRevoke != nil {
		k.OnRevoke(e)
	}
	return true
}

// Has reports whether a scoped key with this hash exists.
func (k *Keys) Has(h Hash) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	_, ok := k.scoped[h]
	return ok
}

// Shadowed reports whether a scoped key has the master key's secret (it was added before
// that secret became --secret-key): the master authenticates in its place, and it can be
// neither removed nor re-scoped until the master key changes.
func (k *Keys) Shadowed() bool { return k.Has(k.master.Hash) }

// Listed is one row of `keys list`.
type Listed struct {
	ID        string // short hash identifier
	Hint      string
	Scope     Scope
	Deletable bool
}

// List returns the master key first, then the scoped keys ordered by identifier.
func (k *Keys) List() []Listed {
	out := []Listed{{ID: k.master.Hash.ID(), Hint: "master", Scope: ScopeReadWriteDelete}}
	k.mu.RLock()
	rows := make([]Listed, 0, len(k.scoped))
	for _, e := range k.scoped {
		// A key shadowed by the master (Shadowed) cannot be removed while it is the master.
		rows = append(rows, Listed{ID: e.Hash.ID(), Hint: e.Hint, Scope: e.Scope(), Deletable: e.Hash != k.master.Hash})
	}
	k.mu.RUnlock()
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	return append(out, rows...)
}

// Stored is a scoped key as persisted: hash, hint and scope, never the secret.
type Stored struct {
	Hash  Hash
	Hint  string
	Scope Scope
}

// Export returns every scoped key, for snapshots.
func (k *Keys) Export() []Stored {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]Stored, 0, len(k.scoped))
	for _, e := range k.scoped {
		out = append(out, Stored{Hash: e.Hash, Hint: e.Hint, Scope: e.Scope()})
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].Hash[:]) < string(out[j].Hash[:]) })
	return out
}
