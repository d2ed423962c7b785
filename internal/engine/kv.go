package engine

import "strings"

// SetValue sets a KV entry, creating the collection. Key and value are copied, so they never
// pin a caller's (larger) request buffer.
func (s *Store) SetValue(collection, key, value string) {
	c := s.lockOrCreate(collection)
	if _, ok := c.kv[key]; !ok {
		key = strings.Clone(key)
		s.nKV.Add(1)
	}
	c.kv[key] = strings.Clone(value)
	s.unlock(c)
}

// Value returns a KV entry.
func (s *Store) Value(collection, key string) (value string, ok bool) {
	c := s.rlock(collection)
	if c == nil {
		return "", false
	}
	defer c.mu.RUnlock()
	value, ok = c.kv[key]
	return value, ok
}

// DeleteValue removes a KV entry. Missing: no-op. A collection left with no documents and no
// KV entries disappears.
func (s *Store) DeleteValue(collection, key string) {
	c := s.lockExisting(collection)
	if c == nil {
		return
	}
	if _, ok := c.kv[key]; ok {
		delete(c.kv, key)
		s.nKV.Add(-1)
	}
	s.unlock(c)
}

// Values calls fn for every KV entry whose key passes keep (nil = all), in no particular
// order, under the collection's read lock (fn must not call back into the Store).
func (s *Store) Values(collection string, keep func(key string) bool, fn func(key, value string)) {
	c := s.rlock(collection)
	if c == nil {
		return
	}
	defer c.mu.RUnlock()
	for k, v := range c.kv {
		if keep == nil || keep(k) {
			fn(k, v)
		}
	}
}

// Keys returns the KV keys of a collection (any order).
func (s *Store) Keys(collection string) []string {
	c := s.rlock(collection)
	if c == nil {
		return nil
	}
	defer c.mu.RUnlock()
	keys := make([]string, 0, len(c.kv))
	for k := range c.kv {
		keys = append(keys, k)
	}
	return keys
}
