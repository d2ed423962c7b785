package server_test

import (
	"net/url"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/volandoo/fluxiondb/internal/server"
)

// Semantics and exact reply shapes of every message in PROTOCOL.md §3, in both name
// generations.

func sortedStrings(t *testing.T, v any) []string {
	t.Helper()
	s := stringList(t, v)
	sort.Strings(s)
	return s
}

func equalStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %q, want %q", what, got, want)
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s = %q, want %q", what, got, want)
			return
		}
	}
}

func TestInsert(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		// Success reply is exactly {"id":…}.
		c.expect("ins", g.p(`[{"ts":3,"$doc":"a","data":"three","$col":"c"},
			{"ts":1,"$doc":"a","data":"one","$col":"c"},
			{"ts":2,"$doc":"a","data":"two","$col":"c"},
			{"ts":2,"$doc":"a","data":"two-later","$col":"c"},
			{"ts":5,"$doc":"b","data":"b5","$col":"other"}]`), `{}`)
		// Out-of-order inserts land in order; within one batch the later entry wins.
		c.expect("qdoc", g.p(`{"$col":"c","$doc":"a","to":100}`),
			`{"records":[{"ts":1,"data":"one"},{"ts":2,"data":"two-later"},{"ts":3,"data":"three"}]}`)
		// The same document and ts again replaces.
		c.expect("ins", g.p(`[{"ts":1,"$doc":"a","data":"uno","$col":"c"}]`), `{}`)
		c.expect("qdoc", g.p(`{"$col":"c","$doc":"a","to":100}`),
			`{"records":[{"ts":1,"data":"uno"},{"ts":2,"data":"two-later"},{"ts":3,"data":"three"}]}`)
		// Collections are created on demand.
		equalStrings(t, "cols", sortedStrings(t, c.ok("cols", "{}").fields["collections"]), []string{"c", "other"})
		// Empty array: success, nothing changes.
		before := dump(t, c)
		c.expect("ins", `[]`, `{}`)
		if after := dump(t, c); after != before {
			t.Errorf("empty ins changed state:\n%s\n->\n%s", before, after)
		}
	})
}

func TestInsertBothSpellingsV2Wins(t *testing.T) {
	s := startServer(t, server.Config{})
	c := s.dial(t, masterKey)
	c.ok("ins", `[{"ts":1,"key":"v1doc","doc":"v2doc","collection":"v1col","col":"v2col","data":"x"}]`)
	c.expect("qry", `{"col":"v2col","ts":10}`, `{"records":{"v2doc":{"ts":1,"data":"x"}}}`)
	c.expect("qry", `{"col":"v1col","ts":10}`, `{"records":{}}`)
	// Same rule for a query that carries both spellings.
	c.expect("qdoc", `{"collection":"v1col","col":"v2col","key":"v1doc","doc":"v2doc","to":10}`,
		`{"records":[{"ts":1,"data":"x"}]}`)
	// The losing spelling is ignored whatever it holds; the winning one must be a string.
	c.ok("ins", `[{"ts":2,"key":5,"doc":"v2doc","collection":null,"col":"v2col","data":"y"}]`)
	c.expect("qdoc", `{"col":"v2col","doc":"v2doc","to":10}`, `{"records":[{"ts":1,"data":"x"},{"ts":2,"data":"y"}]}`)
	// null is "absent" in ins as in every other message: the other spelling is used.
	c.ok("ins", `[{"ts":3,"key":"v1doc","doc":null,"col":null,"collection":"v2col","data":"z"}]`)
	c.expect("qdoc", `{"col":"v2col","doc":"v1doc","to":10}`, `{"records":[{"ts":3,"data":"z"}]}`)
	c.expect("qry", `{"col":"v2col","doc":null,"collection":"x","ts":10}`, `{"records":{"v1doc":{"ts":3,"data":"z"},"v2doc":{"ts":2,"data":"y"}}}`)
	c.failWith("ins", `[{"ts":3,"doc":null,"col":"v2col","data":"z"}]`, "data[0].doc (or key) is required", "bad_request")
	c.failWith("ins", `[{"ts":3,"doc":"d","collection":"v1col","col":7,"data":"z"}]`, "data[0].col must be a string", "bad_request")
	c.failWith("ins", `[{"ts":3,"doc":"d","collection":7,"data":"z"}]`, "data[0].collection must be a string", "bad_request")
}

// seedLatest stores the data the qry tests read.
func seedLatest(c *client, g gen) {
	c.ok("ins", g.p(`[
		{"$col":"c","$doc":"a","ts":10,"data":"{\"s\":\"on\"}"},
		{"$col":"c","$doc":"a","ts":20,"data":"{\"s\":\"off\"}"},
		{"$col":"c","$doc":"a","ts":30,"data":"{\"s\":\"on\"}"},
		{"$col":"c","$doc":"b","ts":5,"data":"{\"s\":\"off\"}"},
		{"$col":"c","$doc":"Bee","ts":15,"data":"{\"s\":\"on\"}"},
		{"$col":"c","$doc":"c","ts":40,"data":"late"}]`))
}

func TestQueryLatest(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		seedLatest(c, g)
		cases := []struct{ name, payload, want string }{
			{"ts inclusive", `{"$col":"c","ts":30}`,
				`{"records":{"a":{"ts":30,"data":"{\"s\":\"on\"}"},"b":{"ts":5,"data":"{\"s\":\"off\"}"},"Bee":{"ts":15,"data":"{\"s\":\"on\"}"}}}`},
			{"between records", `{"$col":"c","ts":29}`,
				`{"records":{"a":{"ts":20,"data":"{\"s\":\"off\"}"},"b":{"ts":5,"data":"{\"s\":\"off\"}"},"Bee":{"ts":15,"data":"{\"s\":\"on\"}"}}}`},
			{"documents without a record at or before ts are omitted", `{"$col":"c","ts":9}`,
				`{"records":{"b":{"ts":5,"data":"{\"s\":\"off\"}"}}}`},
			{"from drops old latest records", `{"$col":"c","ts":30,"from":15}`,
				`{"records":{"a":{"ts":30,"data":"{\"s\":\"on\"}"},"Bee":{"ts":15,"data":"{\"s\":\"on\"}"}}}`},
			{"from 0 is no bound", `{"$col":"c","ts":9,"from":0}`,
				`{"records":{"b":{"ts":5,"data":"{\"s\":\"off\"}"}}}`},
			{"exact doc", `{"$col":"c","ts":100,"$doc":"a"}`,
				`{"records":{"a":{"ts":30,"data":"{\"s\":\"on\"}"}}}`},
			{"exact doc is not a prefix match", `{"$col":"c","ts":100,"$doc":"B"}`, `{"records":{}}`},
			{"empty doc is all documents", `{"$col":"c","ts":9,"$doc":""}`,
				`{"records":{"b":{"ts":5,"data":"{\"s\":\"off\"}"}}}`},
			{"doc regex", `{"$col":"c","ts":100,"$doc":"/^[ab]$/"}`,
				`{"records":{"a":{"ts":30,"data":"{\"s\":\"on\"}"},"b":{"ts":5,"data":"{\"s\":\"off\"}"}}}`},
			{"doc regex is unanchored", `{"$col":"c","ts":100,"$doc":"/e/"}`,
				`{"records":{"Bee":{"ts":15,"data":"{\"s\":\"on\"}"}}}`},
			{"doc regex flag i", `{"$col":"c","ts":100,"$doc":"/^b/i"}`,
				`{"records":{"b":{"ts":5,"data":"{\"s\":\"off\"}"},"Bee":{"ts":15,"data":"{\"s\":\"on\"}"}}}`},
			{"invalid regex is a literal", `{"$col":"c","ts":100,"$doc":"/[/"}`, `{"records":{}}`},
			{"unknown flag makes a literal", `{"$col":"c","ts":100,"$doc":"/a/x"}`, `{"records":{}}`},
			{"where keeps matching latest records", `{"$col":"c","ts":100,"where":"\"on\""}`,
				`{"records":{"a":{"ts":30,"data":"{\"s\":\"on\"}"},"Bee":{"ts":15,"data":"{\"s\":\"on\"}"}}}`},
			{"where has no fallback to an older record", `{"$col":"c","ts":30,"$doc":"a","where":"off"}`, `{"records":{}}`},
			{"filter drops matching latest records", `{"$col":"c","ts":100,"filter":"on"}`,
				`{"records":{"b":{"ts":5,"data":"{\"s\":\"off\"}"},"c":{"ts":40,"data":"late"}}}`},
			{"filter has no fallback", `{"$col":"c","ts":30,"$doc":"a","filter":"on"}`, `{"records":{}}`},
			{"where regex", `{"$col":"c","ts":100,"where":"/^LA/i"}`,
				`{"records":{"c":{"ts":40,"data":"late"}}}`},
			{"where and filter", `{"$col":"c","ts":100,"where":"/s/","filter":"off"}`,
				`{"records":{"a":{"ts":30,"data":"{\"s\":\"on\"}"},"Bee":{"ts":15,"data":"{\"s\":\"on\"}"}}}`},
			{"missing collection", `{"$col":"nope","ts":100}`, `{"records":{}}`},
			{"missing document", `{"$col":"c","ts":100,"$doc":"nope"}`, `{"records":{}}`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c.on(t).expect("qry", g.p(tc.payload), tc.want)
			})
		}
	})
}

func TestQueryLatestValidation(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		seedLatest(c, g)
		for _, p := range []string{
			`{"ts":10}`, `{"$col":"","ts":10}`, `{"$col":"c"}`, `{"$col":"c","ts":0}`,
			`{"$col":"c","ts":-1}`, `{"$col":"c","ts":"10"}`, `{"$col":"c","ts":1.5}`,
		} {
			r := c.fail("qry", g.p(p))
			if r.fields["code"] != "bad_request" {
				t.Errorf("qry %s: code %v, want bad_request", g.p(p), r.fields["code"])
			}
		}
	})
}

func TestCollections(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		c.expect("cols", `{}`, `{"collections":[]}`)
		c.ok("ins", g.p(`[{"$col":"docs","$doc":"d","ts":1,"data":"x"}]`))
		c.ok("sval", g.p(`{"$col":"kvonly","key":"k","value":"v"}`))
		equalStrings(t, "cols", sortedStrings(t, c.ok("cols", "{}").fields["collections"]), []string{"docs", "kvonly"})
		c.ok("dcol", g.p(`{"$col":"docs"}`))
		c.expect("cols", `{}`, `{"collections":["kvonly"]}`)
	})
}

// TestEmptiedCollectionsStayListed: drec, dmrec, drrng and rval never remove a collection
// (PROTOCOL.md §3), so one they empty is still listed; ddoc removes a collection that then
// holds no documents and no KV entries, and dcol removes one whatever it holds.
func TestEmptiedCollectionsStayListed(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		c.ok("ins", g.p(`[{"$col":"r","$doc":"d","ts":1,"data":"x"},{"$col":"m","$doc":"d","ts":1,"data":"x"},
			{"$col":"g","$doc":"d","ts":1,"data":"x"},{"$col":"dd","$doc":"d","ts":1,"data":"x"}]`))
		c.ok("sval", g.p(`{"$col":"kv","key":"k","value":"v"}`))
		c.ok("drec", g.p(`{"$col":"r","$doc":"d","ts":1}`))
		c.ok("dmrec", g.p(`[{"$col":"m","$doc":"d","ts":1}]`))
		c.ok("drrng", `{"col":"g","doc":"d","fromTs":1,"toTs":9}`)
		c.ok("rval", g.p(`{"$col":"kv","key":"k"}`))
		want := []string{"dd", "g", "kv", "m", "r"}
		equalStrings(t, "cols after emptying deletes", sortedStrings(t, c.ok("cols", "{}").fields["collections"]), want)
		c.expect("qry", g.p(`{"$col":"r","ts":10}`), `{"records":{}}`)
		c.expect("gvals", g.p(`{"$col":"kv"}`), `{"values":{}}`)
		// ddoc removes a collection that then holds nothing: after its last document, and an
		// emptied one even when the document is missing ("when the collection then holds no
		// documents"); ddoc leaves one with KV entries, dcol removes any.
		c.ok("ddoc", g.p(`{"$col":"r","$doc":"nope"}`))
		c.ok("ddoc", g.p(`{"$col":"dd","$doc":"d"}`))
		c.ok("dcol", g.p(`{"$col":"g"}`))
		c.ok("sval", g.p(`{"$col":"kv","key":"k2","value":"v"}`))
		c.ok("ddoc", g.p(`{"$col":"kv","$doc":"nope"}`))
		equalStrings(t, "cols after ddoc and dcol", sortedStrings(t, c.ok("cols", "{}").fields["collections"]), []string{"kv", "m"})
	})
}

func seedRange(c *client, g gen) {
	c.ok("ins", g.p(`[
		{"$col":"c","$doc":"d","ts":-5,"data":"neg"},
		{"$col":"c","$doc":"d","ts":1,"data":"odd1"},
		{"$col":"c","$doc":"d","ts":2,"data":"even2"},
		{"$col":"c","$doc":"d","ts":3,"data":"odd3"},
		{"$col":"c","$doc":"d","ts":4,"data":"even4"},
		{"$col":"c","$doc":"d","ts":5,"data":"odd5"},
		{"$col":"c","$doc":"d","ts":6,"data":"even6"},
		{"$col":"c","$doc":"other","ts":3,"data":"other3"}]`))
}

func TestQueryDocument(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		seedRange(c, g)
		cases := []struct{ name, payload, want string }{
			{"inclusive bounds", `{"$col":"c","$doc":"d","from":2,"to":4}`,
				`{"records":[{"ts":2,"data":"even2"},{"ts":3,"data":"odd3"},{"ts":4,"data":"even4"}]}`},
			{"from defaults to 0", `{"$col":"c","$doc":"d","to":2}`,
				`{"records":[{"ts":1,"data":"odd1"},{"ts":2,"data":"even2"}]}`},
			{"negative from", `{"$col":"c","$doc":"d","from":-10,"to":1}`,
				`{"records":[{"ts":-5,"data":"neg"},{"ts":1,"data":"odd1"}]}`},
			{"from equal to", `{"$col":"c","$doc":"d","from":3,"to":3}`, `{"records":[{"ts":3,"data":"odd3"}]}`},
			{"reverse", `{"$col":"c","$doc":"d","from":2,"to":4,"reverse":true}`,
				`{"records":[{"ts":4,"data":"even4"},{"ts":3,"data":"odd3"},{"ts":2,"data":"even2"}]}`},
			{"reverse false", `{"$col":"c","$doc":"d","from":2,"to":3,"reverse":false}`,
				`{"records":[{"ts":2,"data":"even2"},{"ts":3,"data":"odd3"}]}`},
			{"reverse 1", `{"$col":"c","$doc":"d","from":2,"to":3,"reverse":1}`,
				`{"records":[{"ts":3,"data":"odd3"},{"ts":2,"data":"even2"}]}`},
			{"reverse 0", `{"$col":"c","$doc":"d","from":2,"to":3,"reverse":0}`,
				`{"records":[{"ts":2,"data":"even2"},{"ts":3,"data":"odd3"}]}`},
			{"limit keeps the first N", `{"$col":"c","$doc":"d","to":100,"limit":2}`,
				`{"records":[{"ts":1,"data":"odd1"},{"ts":2,"data":"even2"}]}`},
			{"reverse and limit is the newest N", `{"$col":"c","$doc":"d","to":100,"limit":2,"reverse":true}`,
				`{"records":[{"ts":6,"data":"even6"},{"ts":5,"data":"odd5"}]}`},
			{"limit 0 is unlimited", `{"$col":"c","$doc":"d","from":4,"to":100,"limit":0}`,
				`{"records":[{"ts":4,"data":"even4"},{"ts":5,"data":"odd5"},{"ts":6,"data":"even6"}]}`},
			{"negative limit is unlimited", `{"$col":"c","$doc":"d","from":4,"to":100,"limit":-3}`,
				`{"records":[{"ts":4,"data":"even4"},{"ts":5,"data":"odd5"},{"ts":6,"data":"even6"}]}`},
			{"where before limit", `{"$col":"c","$doc":"d","to":100,"where":"even","limit":2}`,
				`{"records":[{"ts":2,"data":"even2"},{"ts":4,"data":"even4"}]}`},
			{"filter before limit, reversed", `{"$col":"c","$doc":"d","to":100,"filter":"/^even/","limit":2,"reverse":true}`,
				`{"records":[{"ts":5,"data":"odd5"},{"ts":3,"data":"odd3"}]}`},
			{"where regex with flag", `{"$col":"c","$doc":"d","to":100,"where":"/ODD[13]/i"}`,
				`{"records":[{"ts":1,"data":"odd1"},{"ts":3,"data":"odd3"}]}`},
			{"doc is literal, never a regex", `{"$col":"c","$doc":"/d/","to":100}`, `{"records":[]}`},
			{"missing document", `{"$col":"c","$doc":"nope","to":100}`, `{"records":[]}`},
			{"missing collection", `{"$col":"nope","$doc":"d","to":100}`, `{"records":[]}`},
			{"empty range", `{"$col":"c","$doc":"d","from":7,"to":100}`, `{"records":[]}`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c.on(t).expect("qdoc", g.p(tc.payload), tc.want)
			})
		}
		t.Run("validation", func(t *testing.T) {
			c := c.on(t)
			for _, p := range []string{
				`{"$doc":"d","to":10}`, `{"$col":"c","to":10}`, `{"$col":"","$doc":"d","to":10}`,
				`{"$col":"c","$doc":"","to":10}`, `{"$col":"c","$doc":"d"}`, `{"$col":"c","$doc":"d","to":0}`,
				`{"$col":"c","$doc":"d","from":5,"to":4}`, `{"$col":"c","$doc":"d","to":"10"}`,
				`{"$col":"c","$doc":"d","to":10,"reverse":2}`, `{"$col":"c","$doc":"d","to":10,"limit":"x"}`,
			} {
				c.fail("qdoc", g.p(p))
			}
		})
	})
}

func TestDeleteDocument(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		c.ok("ins", g.p(`[
			{"$col":"withkv","$doc":"d","ts":1,"data":"x"},
			{"$col":"plain","$doc":"d","ts":1,"data":"x"},
			{"$col":"plain","$doc":"keep","ts":1,"data":"y"},
			{"$col":"solo","$doc":"d","ts":1,"data":"x"},
			{"$col":"solo2","$doc":"e","ts":1,"data":"x"}]`))
		c.ok("sval", g.p(`{"$col":"withkv","key":"k","value":"v"}`))

		c.expect("ddoc", g.p(`{"$col":"plain","$doc":"d"}`), `{}`)
		c.expect("qry", g.p(`{"$col":"plain","ts":10}`), `{"records":{"keep":{"ts":1,"data":"y"}}}`)

		// [ours] a collection that still holds KV entries is kept, with its entries.
		c.expect("ddoc", g.p(`{"$col":"withkv","$doc":"d"}`), `{}`)
		c.expect("gvals", g.p(`{"$col":"withkv"}`), `{"values":{"k":"v"}}`)
		c.expect("qry", g.p(`{"$col":"withkv","ts":10}`), `{"records":{}}`)
		equalStrings(t, "cols", sortedStrings(t, c.ok("cols", "{}").fields["collections"]), []string{"plain", "solo", "solo2", "withkv"})

		// A collection left with neither documents nor KV entries is gone.
		c.expect("ddoc", g.p(`{"$col":"solo2","$doc":"e"}`), `{}`)
		equalStrings(t, "cols", sortedStrings(t, c.ok("cols", "{}").fields["collections"]), []string{"plain", "solo", "withkv"})

		// Missing document or collection: success, nothing changes.
		before := dump(t, c)
		c.expect("ddoc", g.p(`{"$col":"nope","$doc":"d"}`), `{}`)
		c.expect("ddoc", g.p(`{"$col":"plain","$doc":"nope"}`), `{}`)
		if after := dump(t, c); after != before {
			t.Errorf("ddoc of a missing document changed state:\n%s\n->\n%s", before, after)
		}

		// doc is required.
		c.fail("ddoc", g.p(`{"$col":"plain"}`))
		c.fail("ddoc", g.p(`{"$col":"plain","$doc":""}`))
	})
}

func TestDeleteDocumentEveryCollection(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		for _, payload := range []string{`{"$doc":"d"}`, `{"$doc":"d","$col":""}`} {
			c.ok("ins", g.p(`[
				{"$col":"x","$doc":"d","ts":1,"data":"x"},
				{"$col":"x","$doc":"keep","ts":1,"data":"k"},
				{"$col":"y","$doc":"d","ts":2,"data":"y"},
				{"$col":"y","$doc":"keep","ts":1,"data":"k"}]`))
			c.expect("ddoc", g.p(payload), `{}`)
			for _, col := range []string{"x", "y"} {
				c.expect("qry", g.p(`{"$col":"`+col+`","ts":10}`), `{"records":{"keep":{"ts":1,"data":"k"}}}`)
			}
		}
	})
}

func TestDeleteCollection(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		c.ok("ins", g.p(`[{"$col":"gone","$doc":"d","ts":1,"data":"x"},{"$col":"stay","$doc":"d","ts":1,"data":"x"}]`))
		c.ok("sval", g.p(`{"$col":"gone","key":"k","value":"v"}`))
		c.expect("dcol", g.p(`{"$col":"gone"}`), `{}`)
		c.expect("qry", g.p(`{"$col":"gone","ts":10}`), `{"records":{}}`)
		c.expect("gvals", g.p(`{"$col":"gone"}`), `{"values":{}}`)
		c.expect("gval", g.p(`{"$col":"gone","key":"k"}`), `{"value":""}`)
		c.expect("cols", `{}`, `{"collections":["stay"]}`)
		// Missing: success.
		c.expect("dcol", g.p(`{"$col":"never"}`), `{}`)
		c.fail("dcol", g.p(`{"$col":""}`))
		c.fail("dcol", `{}`)
	})
}

func TestDeleteRecord(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		c.ok("ins", g.p(`[{"$col":"c","$doc":"d","ts":1,"data":"a"},{"$col":"c","$doc":"d","ts":2,"data":"b"},
			{"$col":"c","$doc":"e","ts":7,"data":"e"}]`))
		c.expect("drec", g.p(`{"$col":"c","$doc":"d","ts":2}`), `{}`)
		c.expect("qdoc", g.p(`{"$col":"c","$doc":"d","to":10}`), `{"records":[{"ts":1,"data":"a"}]}`)
		// Exactly that ts: a near miss deletes nothing. Missing: success.
		for _, p := range []string{`{"$col":"c","$doc":"d","ts":3}`, `{"$col":"c","$doc":"nope","ts":1}`, `{"$col":"nope","$doc":"d","ts":1}`} {
			c.expect("drec", g.p(p), `{}`)
		}
		c.expect("qdoc", g.p(`{"$col":"c","$doc":"d","to":10}`), `{"records":[{"ts":1,"data":"a"}]}`)
		// A document left with no records disappears.
		c.expect("drec", g.p(`{"$col":"c","$doc":"d","ts":1}`), `{}`)
		c.expect("qry", g.p(`{"$col":"c","ts":10}`), `{"records":{"e":{"ts":7,"data":"e"}}}`)
		for _, p := range []string{`{"$col":"c","$doc":"e"}`, `{"$col":"c","$doc":"e","ts":"7"}`, `{"$col":"","$doc":"e","ts":7}`, `{"$col":"c","$doc":"","ts":7}`} {
			c.fail("drec", g.p(p))
		}
		c.expect("qry", g.p(`{"$col":"c","ts":10}`), `{"records":{"e":{"ts":7,"data":"e"}}}`)
		// ins stores zero and negative timestamps; drec deletes them one by one (dmrec and
		// drrng demand ts > 0, as the contract says).
		c.ok("ins", g.p(`[{"$col":"c","$doc":"e","ts":0,"data":"z"},{"$col":"c","$doc":"e","ts":-5,"data":"n"}]`))
		c.expect("drec", g.p(`{"$col":"c","$doc":"e","ts":0}`), `{}`)
		c.expect("drec", g.p(`{"$col":"c","$doc":"e","ts":-5}`), `{}`)
		c.expect("qdoc", g.p(`{"$col":"c","$doc":"e","from":-10,"to":10}`), `{"records":[{"ts":7,"data":"e"}]}`)
	})
}

func TestDeleteManyRecords(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		c.ok("ins", g.p(`[{"$col":"c1","$doc":"d","ts":1,"data":"a"},{"$col":"c1","$doc":"d","ts":2,"data":"b"},
			{"$col":"c2","$doc":"e","ts":5,"data":"e5"},{"$col":"c2","$doc":"e","ts":6,"data":"e6"}]`))
		// Any bad element: error and nothing deleted.
		before := dump(t, c)
		for _, p := range []string{
			`[{"$col":"c1","$doc":"d","ts":1},{"$col":"","$doc":"e","ts":5}]`,
			`[{"$col":"c1","$doc":"d","ts":1},{"$col":"c2","$doc":"","ts":5}]`,
			`[{"$col":"c1","$doc":"d","ts":1},{"$col":"c2","$doc":"e","ts":0}]`,
			`[{"$col":"c1","$doc":"d","ts":1},{"$col":"c2","$doc":"e"}]`,
			`[{"$col":"c1","$doc":"d","ts":1},{"$col":"c2","$doc":"e","ts":"5"}]`,
			`[{"$col":"c1","$doc":"d","ts":1},5]`,
			`{"$col":"c1","$doc":"d","ts":1}`,
		} {
			c.fail("dmrec", g.p(p))
		}
		if after := dump(t, c); after != before {
			t.Errorf("rejected dmrec changed state:\n%s\n->\n%s", before, after)
		}
		// Elements may span collections; missing records are fine.
		c.expect("dmrec", g.p(`[{"$col":"c1","$doc":"d","ts":1},{"$col":"c2","$doc":"e","ts":6},{"$col":"c2","$doc":"e","ts":99}]`), `{}`)
		c.expect("qdoc", g.p(`{"$col":"c1","$doc":"d","to":10}`), `{"records":[{"ts":2,"data":"b"}]}`)
		c.expect("qdoc", g.p(`{"$col":"c2","$doc":"e","to":10}`), `{"records":[{"ts":5,"data":"e5"}]}`)
		c.expect("dmrec", `[]`, `{}`)
	})
}

func TestDeleteRecordRange(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		c.ok("ins", g.p(`[{"$col":"c","$doc":"d","ts":1,"data":"1"},{"$col":"c","$doc":"d","ts":2,"data":"2"},
			{"$col":"c","$doc":"d","ts":3,"data":"3"},{"$col":"c","$doc":"d","ts":4,"data":"4"},
			{"$col":"c","$doc":"x","ts":2,"data":"x2"}]`))
		before := dump(t, c)
		for _, p := range []string{
			`{"$col":"c","$doc":"d","fromTs":3,"toTs":2}`, `{"$col":"c","$doc":"d","fromTs":0,"toTs":2}`,
			`{"$col":"c","$doc":"d","fromTs":1}`, `{"$col":"c","$doc":"d","toTs":2}`,
			`{"$col":"","$doc":"d","fromTs":1,"toTs":2}`, `{"$col":"c","$doc":"","fromTs":1,"toTs":2}`,
			`{"$col":"c","$doc":"d","fromTs":-1,"toTs":2}`, `{"$col":"c","$doc":"d","fromTs":1,"toTs":"2"}`,
		} {
			c.fail("drrng", g.p(p))
		}
		if after := dump(t, c); after != before {
			t.Errorf("rejected drrng changed state:\n%s\n->\n%s", before, after)
		}
		c.expect("drrng", g.p(`{"$col":"c","$doc":"d","fromTs":2,"toTs":3}`), `{}`)
		c.expect("qdoc", g.p(`{"$col":"c","$doc":"d","to":10}`), `{"records":[{"ts":1,"data":"1"},{"ts":4,"data":"4"}]}`)
		c.expect("qdoc", g.p(`{"$col":"c","$doc":"x","to":10}`), `{"records":[{"ts":2,"data":"x2"}]}`)
		c.expect("drrng", g.p(`{"$col":"c","$doc":"nope","fromTs":1,"toTs":9}`), `{}`)
		c.expect("drrng", g.p(`{"$col":"c","$doc":"d","fromTs":1,"toTs":9223372036854775807}`), `{}`)
		c.expect("qry", g.p(`{"$col":"c","ts":10}`), `{"records":{"x":{"ts":2,"data":"x2"}}}`)
	})
}

func TestKeyValue(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		c.expect("sval", g.p(`{"$col":"kv","key":"user.1","value":"alice"}`), `{}`)
		c.expect("sval", g.p(`{"$col":"kv","key":"user.2","value":"bob"}`), `{}`)
		c.expect("sval", g.p(`{"$col":"kv","key":"USER.3","value":"carol"}`), `{}`)
		c.expect("sval", g.p(`{"$col":"kv","key":"config","value":"old"}`), `{}`)
		c.expect("sval", g.p(`{"$col":"kv","key":"config","value":"new"}`), `{}`) // overwrites
		// sval creates the collection.
		c.expect("cols", `{}`, `{"collections":["kv"]}`)

		c.expect("gval", g.p(`{"$col":"kv","key":"config"}`), `{"value":"new"}`)
		c.expect("gval", g.p(`{"$col":"kv","key":"nope"}`), `{"value":""}`)
		c.expect("gval", g.p(`{"$col":"nope","key":"config"}`), `{"value":""}`)

		c.expect("gvals", g.p(`{"$col":"kv"}`), `{"values":{"user.1":"alice","user.2":"bob","USER.3":"carol","config":"new"}}`)
		c.expect("gvals", g.p(`{"$col":"nope"}`), `{"values":{}}`)
		equalStrings(t, "gkeys", sortedStrings(t, c.ok("gkeys", g.p(`{"$col":"kv"}`)).fields["keys"]),
			[]string{"USER.3", "config", "user.1", "user.2"})
		c.expect("gkeys", g.p(`{"$col":"nope"}`), `{"keys":[]}`)

		c.expect("gvalues", g.p(`{"$col":"kv","key":"/^user\\./"}`), `{"values":{"user.1":"alice","user.2":"bob"}}`)
		c.expect("gvalues", g.p(`{"$col":"kv","key":"/^user\\./i"}`), `{"values":{"user.1":"alice","user.2":"bob","USER.3":"carol"}}`)
		c.expect("gvalues", g.p(`{"$col":"kv","key":"/fig/"}`), `{"values":{"config":"new"}}`)
		c.expect("gvalues", g.p(`{"$col":"kv","key":"/zzz/"}`), `{"values":{}}`)
		c.expect("gvalues", g.p(`{"$col":"kv","key":"config"}`), `{"values":{"config":"new"}}`)
		c.expect("gvalues", g.p(`{"$col":"kv","key":"user"}`), `{"values":{"user":""}}`)
		c.expect("gvalues", g.p(`{"$col":"nope","key":"k"}`), `{"values":{"k":""}}`)
		c.expect("gvalues", g.p(`{"$col":"nope","key":"/k/"}`), `{"values":{}}`)

		c.expect("rval", g.p(`{"$col":"kv","key":"config"}`), `{}`)
		c.expect("gval", g.p(`{"$col":"kv","key":"config"}`), `{"value":""}`)
		c.expect("rval", g.p(`{"$col":"kv","key":"config"}`), `{}`) // missing: success
		c.expect("rval", g.p(`{"$col":"nope","key":"config"}`), `{}`)
		c.expect("gvals", g.p(`{"$col":"kv"}`), `{"values":{"user.1":"alice","user.2":"bob","USER.3":"carol"}}`)

		// Validation: all non-empty for sval; collection and key for the others.
		before := dump(t, c)
		for _, tc := range []struct{ typ, p string }{
			{"sval", `{"$col":"kv","key":"k"}`}, {"sval", `{"$col":"kv","key":"k","value":""}`},
			{"sval", `{"$col":"kv","key":"","value":"v"}`}, {"sval", `{"$col":"","key":"k","value":"v"}`},
			{"sval", `{"key":"k","value":"v"}`}, {"sval", `{"$col":"kv","key":"k","value":5}`},
			{"gval", `{"$col":"kv"}`}, {"gval", `{"key":"k"}`},
			{"rval", `{"$col":"kv"}`}, {"rval", `{"$col":"","key":"user.1"}`},
			{"gvals", `{}`}, {"gkeys", `{"$col":""}`}, {"gvalues", `{"$col":"kv"}`},
		} {
			c.fail(tc.typ, g.p(tc.p))
		}
		if after := dump(t, c); after != before {
			t.Errorf("rejected KV messages changed state:\n%s\n->\n%s", before, after)
		}
	})
}

// In KV messages "key" is always the KV key, even beside "col"/"collection".
func TestKeyValueKeyIsNotDocument(t *testing.T) {
	s := startServer(t, server.Config{})
	c := s.dial(t, masterKey)
	c.ok("sval", `{"collection":"kv","key":"k","value":"v1gen"}`)
	c.ok("sval", `{"col":"kv","key":"k2","value":"v2gen"}`)
	c.expect("gvals", `{"collection":"kv"}`, `{"values":{"k":"v1gen","k2":"v2gen"}}`)
	// Both collection spellings: col wins.
	c.expect("gval", `{"collection":"other","col":"kv","key":"k"}`, `{"value":"v1gen"}`)
}

func TestConnections(t *testing.T) {
	s := startServer(t, server.Config{})
	named := s.dialURL(t, s.url("api-key="+masterKey+"&name=feeder+one%21"), nil)
	anon := s.dial(t, masterKey)

	check := func(c *client, selfName any) {
		t.Helper()
		r := c.ok("conn", "{}")
		conns, ok := r.fields["connections"].([]any)
		if !ok || len(conns) != 2 {
			t.Fatalf("conn: want 2 connections: %s", r.raw)
		}
		selves := 0
		names := map[any]bool{}
		for _, x := range conns {
			m := x.(map[string]any)
			if len(m) != 4 {
				t.Errorf("conn entry has fields %v, want ip, since, name, self", m)
			}
			if m["ip"] != "127.0.0.1" {
				t.Errorf("conn ip = %v, want 127.0.0.1", m["ip"])
			}
			n, ok := m["since"].(interface{ Int64() (int64, error) })
			if !ok {
				t.Errorf("conn since = %v (%T), want an integer", m["since"], m["since"])
			} else if v, err := n.Int64(); err != nil || v < 0 || v > 60_000 {
				t.Errorf("conn since = %v, want milliseconds >= 0", m["since"])
			}
			names[m["name"]] = true
			if m["self"] == true {
				selves++
				if m["name"] != selfName {
					t.Errorf("self entry name = %v, want %v", m["name"], selfName)
				}
			} else if m["self"] != false {
				t.Errorf("conn self = %v, want a boolean", m["self"])
			}
		}
		if selves != 1 {
			t.Errorf("conn: %d entries with self=true, want 1: %s", selves, r.raw)
		}
		if !names["feeder one!"] || !names[nil] {
			t.Errorf("conn names = %v, want \"feeder one!\" and null: %s", names, r.raw)
		}
	}
	check(named, "feeder one!")
	check(anon, nil)
}

// qry: "from 0 or absent = no bound" — a latest record with a negative ts is kept.
func TestQueryLatestFromZeroIsNoBound(t *testing.T) {
	forGens(t, func(t *testing.T, g gen, s *testServer, c *client) {
		c.ok("ins", g.p(`[{"$col":"c","$doc":"neg","ts":-5,"data":"n"},{"$col":"c","$doc":"pos","ts":3,"data":"p"}]`))
		want := `{"records":{"neg":{"ts":-5,"data":"n"},"pos":{"ts":3,"data":"p"}}}`
		c.expect("qry", g.p(`{"$col":"c","ts":10}`), want)
		c.expect("qry", g.p(`{"$col":"c","ts":10,"from":0}`), want)
		c.expect("qry", g.p(`{"$col":"c","ts":10,"from":-4}`), `{"records":{"pos":{"ts":3,"data":"p"}}}`)
	})
}

// TestConnectionNameIsBounded: a connection name is kept to 256 bytes (plus "…"): it goes into
// every log line about the connection and into `conn` listings, and was kept at any length.
func TestConnectionNameIsBounded(t *testing.T) {
	s := startServer(t, server.Config{})
	long := strings.Repeat("é", 3000) // 6000 bytes
	c := s.dialURL(t, s.url("api-key="+masterKey+"&name="+url.QueryEscape(long)), nil)
	r := c.ok("conn", "{}")
	conns, _ := r.fields["connections"].([]any)
	if len(conns) != 1 {
		t.Fatalf("conn: %s", r.raw)
	}
	name, _ := conns[0].(map[string]any)["name"].(string)
	if !strings.HasPrefix(long, strings.TrimSuffix(name, "…")) || len(name) > 256+len("…") || !utf8.ValidString(name) {
		t.Fatalf("name of %d bytes (valid UTF-8: %v), want a prefix of at most 256 bytes and …", len(name), utf8.ValidString(name))
	}
}
