package protocol

import (
	"bytes"
	"regexp"
	"strings"
)

// Pattern is a value that may be a `/regex/flags` (PROTOCOL.md §3, "Regex values").
// The zero Pattern is empty (matches nothing as a name, everything as a predicate: callers
// check Empty first).
type Pattern struct {
	Literal string
	Re      *regexp.Regexp // non-nil when the value is a valid regex
	lit     []byte
}

// ParsePattern reads v as a regex when it is at least 2 characters, starts with '/' and has a
// later unescaped '/'; what follows that last '/' are flags (i, m, s). An invalid pattern or an
// unknown flag makes the whole value a literal. Go's RE2 engine runs in linear time, so hostile
// patterns cannot stall the server.
func ParsePattern(v string) Pattern {
	p := Pattern{Literal: v, lit: []byte(v)}
	if len(v) < 2 || v[0] != '/' {
		return p
	}
	end := -1
	for i := 1; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++ // skip the escaped character
		case '/':
			end = i
		}
	}
	if end < 1 {
		return p
	}
	body, flags := v[1:end], v[end+1:]
	var prefix strings.Builder
	for _, f := range flags {
		switch f {
		case 'i', 'm', 's':
			if !strings.ContainsRune(prefix.String(), f) {
				prefix.WriteRune(f)
			}
		default:
			return p
		}
	}
	expr := body
	if prefix.Len() > 0 {
		expr = "(?" + prefix.String() + ")" + body
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return p
	}
	p.Re = re
	return p
}

// Empty reports whether no value was given.
func (p Pattern) Empty() bool { return p.Re == nil && p.Literal == "" }

// IsRegex reports whether the value is a regex.
func (p Pattern) IsRegex() bool { return p.Re != nil }

// Contains reports whether data contains the literal or a match of the regex
// (where/filter semantics: unanchored).
func (p Pattern) Contains(data []byte) bool {
	if p.Re != nil {
		return p.Re.Match(data)
	}
	return bytes.Contains(data, p.lit)
}

// MatchName reports whether a name is selected: equal to the literal, or containing a match
// of the regex.
func (p Pattern) MatchName(name string) bool {
	if p.Re != nil {
		return p.Re.MatchString(name)
	}
	return name == p.Literal
}

// Predicate combines where (keep when it matches) and filter (drop when it matches) into one
// function, or nil when neither is set — so the engine's fast path sees no predicate at all.
func Predicate(where, filter Pattern) func([]byte) bool {
	switch {
	case where.Empty() && filter.Empty():
		return nil
	case filter.Empty():
		return where.Contains
	case where.Empty():
		return func(b []byte) bool { return !filter.Contains(b) }
	}
	return func(b []byte) bool { return where.Contains(b) && !filter.Contains(b) }
}
