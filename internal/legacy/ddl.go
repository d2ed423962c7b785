package legacy

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file reads what the import needs from a CREATE TABLE statement: the columns in order,
// which one is the rowid's alias, and each column's DEFAULT (what SQLite returns for a row
// written before an ALTER TABLE … ADD COLUMN). It tokenizes SQL properly (quoted names and
// strings, comments) and understands nothing else.

// A column of a table.
type sqlColumn struct {
	name string   // lower case, unquoted
	def  sqlValue // DEFAULT, NULL when none
}

// sqlToken is one SQL token: a word or number, a quoted name, a string literal or punctuation.
type sqlToken struct {
	text   string // the word, the unquoted name or string, or the punctuation character
	quoted bool   // a quoted name ("…", `…`, […])
	str    bool   // a string literal ('…')
}

// tokenize splits SQL into tokens, dropping whitespace and comments.
func tokenize(sql string) ([]sqlToken, error) {
	var out []sqlToken
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return nil, errors.New("unterminated comment")
			}
			i += end + 4
		case c == '\'' || c == '"' || c == '`' || c == '[':
			closer := c
			if c == '[' {
				closer = ']'
			}
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(sql) {
					return nil, fmt.Errorf("unterminated %c", c)
				}
				if sql[j] == closer {
					if closer != ']' && j+1 < len(sql) && sql[j+1] == closer { // doubled: an escaped quote
						b.WriteByte(closer)
						j += 2
						continue
					}
					break
				}
				b.WriteByte(sql[j])
				j++
			}
			out = append(out, sqlToken{text: b.String(), quoted: c != '\'', str: c == '\''})
			i = j + 1
		case isWordByte(c):
			j := i
			for j < len(sql) && (isWordByte(sql[j]) || sql[j] == '.' && j > i && isDigits(sql[i:j])) {
				j++
			}
			// A number's exponent: 1e+5.
			if j+1 < len(sql) && (sql[j-1] == 'e' || sql[j-1] == 'E') && (sql[j] == '+' || sql[j] == '-') && isDigits(sql[i:i+1]) {
				j++
				for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
					j++
				}
			}
			out = append(out, sqlToken{text: sql[i:j]})
			i = j
		default:
			out = append(out, sqlToken{text: string(c)})
			i++
		}
	}
	return out, nil
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// is reports whether t is the keyword kw (unquoted, any case).
func (t sqlToken) is(kw string) bool { return !t.quoted && !t.str && strings.EqualFold(t.text, kw) }

// parseCreateTable reads the columns of CREATE TABLE sql and the index of the rowid's alias
// (-1 when none): a column of type INTEGER that is the PRIMARY KEY, not DESC, by its own
// constraint or a one-column table constraint. A table WITHOUT ROWID is refused.
func parseCreateTable(sql string) (cols []sqlColumn, rowidCol int, err error) {
	toks, err := tokenize(sql)
	if err != nil {
		return nil, -1, err
	}
	open := -1
	for i, t := range toks {
		if t.text == "(" && !t.quoted && !t.str {
			open = i
			break
		}
	}
	if open < 0 {
		return nil, -1, errors.New("no column list (CREATE TABLE … AS SELECT is not supported)")
	}
	// Split the list at its top-level commas; what follows its closing parenthesis are table
	// options.
	var defs [][]sqlToken
	depth, start, end := 0, open+1, -1
	for i := open + 1; i < len(toks) && end < 0; i++ {
		t := toks[i]
		if t.quoted || t.str {
			continue
		}
		switch t.text {
		case "(":
			depth++
		case ")":
			if depth == 0 {
				defs, end = append(defs, toks[start:i]), i
			}
			depth--
		case ",":
			if depth == 0 {
				defs, start = append(defs, toks[start:i]), i+1
			}
		}
	}
	if end < 0 {
		return nil, -1, errors.New("unbalanced parentheses")
	}
	for i := end + 1; i+1 < len(toks); i++ {
		if toks[i].is("WITHOUT") && toks[i+1].is("ROWID") {
			return nil, -1, errors.New("a WITHOUT ROWID table cannot be read")
		}
	}
	rowidCol = -1
	intPK := map[string]int{} // INTEGER columns by name, for a PRIMARY KEY(col) constraint
	var pkCols [][]sqlToken
	for _, d := range defs {
		if len(d) == 0 {
			continue
		}
		switch {
		case d[0].is("PRIMARY"):
			pkCols = append(pkCols, d)
			continue
		case d[0].is("UNIQUE") || d[0].is("CHECK") || d[0].is("FOREIGN") || d[0].is("CONSTRAINT"):
			continue
		}
		col := sqlColumn{name: strings.ToLower(d[0].text), def: sqlValue{kind: 'n'}}
		// The declared type: the words before the first constraint keyword or parenthesis.
		typ := ""
		k := 1
		for ; k < len(d) && !d[k].quoted && !d[k].str && isTypeWord(d[k].text); k++ {
			typ += strings.ToUpper(d[k].text) + " "
		}
		typ = strings.TrimSpace(typ)
		if typ == "INTEGER" {
			intPK[col.name] = len(cols)
		}
		for ; k < len(d); k++ {
			switch {
			case d[k].is("PRIMARY") && k+1 < len(d) && d[k+1].is("KEY"):
				if typ == "INTEGER" && !(k+2 < len(d) && d[k+2].is("DESC")) {
					rowidCol = len(cols)
				}
			case d[k].is("DEFAULT") && k+1 < len(d):
				v, n, err := literal(d[k+1:])
				if err != nil {
					return nil, -1, fmt.Errorf("column %s: DEFAULT: %w", col.name, err)
				}
				col.def = v
				k += n // the loop steps past DEFAULT itself
			}
		}
		cols = append(cols, col)
	}
	for _, d := range pkCols { // PRIMARY KEY ( col [ASC] )
		var names []string
		desc := false
		for _, t := range d[2:] {
			switch {
			case t.text == "(" || t.text == ")" || t.text == ",":
			case t.is("ASC"):
			case t.is("DESC"):
				desc = true
			case t.is("COLLATE") || t.is("ON") || t.is("CONFLICT"):
			default:
				names = append(names, strings.ToLower(t.text))
			}
		}
		if len(names) == 1 && !desc {
			if i, ok := intPK[names[0]]; ok {
				rowidCol = i
			}
		}
	}
	return cols, rowidCol, nil
}

// isTypeWord reports whether a word belongs to a declared type (not a constraint keyword).
func isTypeWord(w string) bool {
	switch strings.ToUpper(w) {
	case "CONSTRAINT", "PRIMARY", "NOT", "NULL", "UNIQUE", "CHECK", "DEFAULT", "COLLATE", "REFERENCES", "GENERATED", "AS":
		return false
	}
	return w != "(" && w != ")" && w != ","
}

// literal reads a DEFAULT's constant: a number (signed), a string, NULL, TRUE/FALSE, a blob
// X'…', or one of those in parentheses. It returns the value and how many tokens it took.
func literal(t []sqlToken) (sqlValue, int, error) {
	if len(t) == 0 {
		return sqlValue{}, 0, errors.New("nothing after DEFAULT")
	}
	if t[0].text == "(" && !t[0].quoted && !t[0].str {
		v, n, err := literal(t[1:])
		if err != nil || n+1 >= len(t) || t[n+1].text != ")" {
			return v, 0, errors.New("not a constant")
		}
		return v, n + 2, nil
	}
	neg, n := false, 0
	if !t[0].quoted && !t[0].str && (t[0].text == "-" || t[0].text == "+") {
		neg, n = t[0].text == "-", 1
		if len(t) < 2 {
			return sqlValue{}, 0, errors.New("a sign without a number")
		}
	}
	x := t[n]
	switch {
	case x.str && n == 0:
		return sqlValue{kind: 't', b: []byte(x.text)}, 1, nil
	case x.is("NULL") && n == 0:
		return sqlValue{kind: 'n'}, 1, nil
	case x.is("TRUE") && n == 0:
		return sqlValue{kind: 'i', i: 1}, 1, nil
	case x.is("FALSE") && n == 0:
		return sqlValue{kind: 'i', i: 0}, 1, nil
	case x.is("X") && n == 0 && len(t) > 1 && t[1].str:
		b, err := hex.DecodeString(t[1].text)
		if err != nil {
			return sqlValue{}, 0, fmt.Errorf("blob X'%s': %w", t[1].text, err)
		}
		return sqlValue{kind: 't', b: b}, 2, nil
	case !x.quoted && !x.str:
		if i, err := strconv.ParseInt(x.text, 0, 64); err == nil {
			if neg {
				i = -i
			}
			return sqlValue{kind: 'i', i: i}, n + 1, nil
		}
		if f, err := strconv.ParseFloat(x.text, 64); err == nil {
			if neg {
				f = -f
			}
			return sqlValue{kind: 'f', f: f}, n + 1, nil
		}
	}
	return sqlValue{}, 0, fmt.Errorf("%q is not a constant this reader knows", x.text)
}
