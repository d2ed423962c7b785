package legacy

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseCreateTable(t *testing.T) {
	for _, tc := range []struct {
		sql      string
		cols     string // name=default, default "" for NULL
		rowidCol int
		err      string
	}{
		{`CREATE TABLE records (collection TEXT NOT NULL, doc TEXT NOT NULL, ts INTEGER NOT NULL, data TEXT, PRIMARY KEY (collection, doc, ts))`,
			"collection doc ts data", -1, ""},
		{`CREATE TABLE r (id INTEGER PRIMARY KEY AUTOINCREMENT, "Doc" TEXT, [ts] INTEGER, ` + "`data`" + ` BLOB)`, "id doc ts data", 0, ""},
		{`CREATE TABLE r (id integer not null primary key, v)`, "id v", 0, ""},
		{`CREATE TABLE r (ts INTEGER PRIMARY KEY DESC, v)`, "ts v", -1, ""},         // DESC: not the rowid's alias
		{`CREATE TABLE r (ts INT PRIMARY KEY, v)`, "ts v", -1, ""},                  // INT is not INTEGER
		{`CREATE TABLE r (a TEXT, ts INTEGER, PRIMARY KEY(ts ASC))`, "a ts", 1, ""}, // a table constraint
		{`CREATE TABLE r (a TEXT, ts INTEGER, PRIMARY KEY(a, ts))`, "a ts", -1, ""},
		{`CREATE TABLE r ( -- the collection, then a comment, with a comma
			c TEXT /* , d TEXT */, doc TEXT DEFAULT 'x,y', n INTEGER DEFAULT -5, f REAL DEFAULT (1.5), s TEXT DEFAULT 'it''s',
			z DEFAULT NULL, b DEFAULT TRUE, h BLOB DEFAULT X'6869')`,
			"c doc=x,y n=-5 f=1.5 s=it's z b=1 h=hi", -1, ""},
		{`CREATE TABLE r (a, b) WITHOUT ROWID`, "", -1, "WITHOUT ROWID"},
		{`CREATE TABLE r AS SELECT 1`, "", -1, "no column list"},
		{`CREATE TABLE r (a DEFAULT (1 + 2))`, "", -1, "not a constant"},
		{`CREATE TABLE r (a TEXT /* never closed`, "", -1, "unterminated comment"},
	} {
		cols, rowid, err := parseCreateTable(tc.sql)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.sql, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.sql, err)
			continue
		}
		var got []string
		for _, c := range cols {
			s := c.name
			if c.def.kind != 'n' {
				s += "=" + string(c.def.text())
			}
			got = append(got, s)
		}
		if !reflect.DeepEqual(strings.Join(got, " "), tc.cols) || rowid != tc.rowidCol {
			t.Errorf("%s:\ncolumns %q rowid %d, want %q %d", tc.sql, strings.Join(got, " "), rowid, tc.cols, tc.rowidCol)
		}
	}
}

func TestRealText(t *testing.T) {
	for f, want := range map[float64]string{3: "3.0", 1e20: "1.0e+20", 0.1: "0.1", -2.5: "-2.5", 1.0 / 3: "0.333333333333333"} {
		if got := string(realText(f)); got != want {
			t.Errorf("realText(%v) = %q, want %q", f, got, want)
		}
	}
}
