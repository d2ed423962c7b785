package fluxiondb_test

import (
	"errors"
	"math"
	"slices"
	"sort"
	"testing"

	fluxiondb "github.com/volandoo/fluxiondb/clients/go"
)

func ptr[T any](v T) *T { return &v }

// TestLegacyV1 calls every method of the first official generation with
// its own types (LTDB prefix, Key/Collection fields).
func TestLegacyV1(t *testing.T) {
	url := fluxiondb.StartServerForTest(t)
	client := fluxiondb.NewClient(url, fluxiondb.MasterKeyForTest)
	if err := client.Connect(); err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	must(t, client.InsertMultipleDocumentRecords([]fluxiondb.LTDBInsertMessageRequest{
		{TS: 10, Key: "k1", Data: "a", Collection: "v1"},
		{TS: 20, Key: "k1", Data: "b", Collection: "v1"},
		{TS: 30, Key: "k1", Data: "c", Collection: "v1"},
		{TS: 15, Key: "k2", Data: "z", Collection: "v1"},
	}))
	must(t, client.InsertSingleDocumentRecord(fluxiondb.LTDBInsertMessageRequest{TS: 40, Key: "k1", Data: "d", Collection: "v1"}))

	cols, err := client.FetchCollections()
	if err != nil || !slices.Equal(cols, []string{"v1"}) {
		t.Fatalf("FetchCollections = %v, %v", cols, err)
	}
	latest, err := client.FetchLatestDocumentRecords(fluxiondb.LTDBFetchLatestRecordsParams{Collection: "v1", TS: 25, Key: "k1"})
	if err != nil || len(latest) != 1 || latest["k1"] != (fluxiondb.LTDBRecordResponse{TS: 20, Data: "b"}) {
		t.Fatalf("FetchLatestDocumentRecords = %v, %v", latest, err)
	}
	latest, err = client.FetchLatestDocumentRecords(fluxiondb.LTDBFetchLatestRecordsParams{Collection: "v1", TS: 100, From: ptr(int64(35))})
	if err != nil || len(latest) != 1 || latest["k1"].TS != 40 {
		t.Fatalf("FetchLatestDocumentRecords from = %v, %v", latest, err)
	}
	recs, err := client.FetchDocument(fluxiondb.LTDBFetchRecordsParams{Collection: "v1", Key: "k1", From: 0, To: 100, Limit: ptr(2), Reverse: ptr(true)})
	if err != nil || len(recs) != 2 || recs[0].TS != 40 || recs[1].TS != 30 {
		t.Fatalf("FetchDocument = %v, %v", recs, err)
	}

	must(t, client.DeleteDocumentRecord(fluxiondb.LTDBDeleteRecord{Key: "k1", Collection: "v1", TS: 10}))
	must(t, client.DeleteMultipleDocumentRecords([]fluxiondb.LTDBDeleteRecord{{Key: "k1", Collection: "v1", TS: 20}, {Key: "k1", Collection: "v1", TS: 30}}))
	recs, _ = client.FetchDocument(fluxiondb.LTDBFetchRecordsParams{Collection: "v1", Key: "k1", To: 100})
	if len(recs) != 1 || recs[0].TS != 40 {
		t.Fatalf("after deletes: %v", recs)
	}
	must(t, client.DeleteDocument(fluxiondb.LTDBDeleteDocumentParams{Key: "k1", Collection: "v1"}))
	recs, _ = client.FetchDocument(fluxiondb.LTDBFetchRecordsParams{Collection: "v1", Key: "k1", To: 100})
	if len(recs) != 0 {
		t.Fatalf("after DeleteDocument: %v", recs)
	}

	must(t, client.SetValue(fluxiondb.LTDBSetValueParams{Collection: "kv1", Key: "a", Value: "1"}))
	must(t, client.SetValue(fluxiondb.LTDBSetValueParams{Collection: "kv1", Key: "b", Value: "2"}))
	if v, err := client.GetValue(fluxiondb.LTDBGetValueParams{Collection: "kv1", Key: "a"}); err != nil || v != "1" {
		t.Fatalf("GetValue = %q, %v", v, err)
	}
	keys, err := client.GetKeys(fluxiondb.LTDBCollectionParam{Collection: "kv1"})
	sort.Strings(keys)
	if err != nil || !slices.Equal(keys, []string{"a", "b"}) {
		t.Fatalf("GetKeys = %v, %v", keys, err)
	}
	vals, err := client.GetValues(fluxiondb.LTDBCollectionParam{Collection: "kv1"})
	if err != nil || len(vals) != 2 || vals["b"] != "2" {
		t.Fatalf("GetValues = %v, %v", vals, err)
	}
	must(t, client.DeleteValue(fluxiondb.LTDBDeleteValueParams{Collection: "kv1", Key: "a"}))
	if v, _ := client.GetValue(fluxiondb.LTDBGetValueParams{Collection: "kv1", Key: "a"}); v != "" {
		t.Fatalf("value after DeleteValue = %q", v)
	}

	resp, err := client.AddAPIKey("v1-reader", fluxiondb.ApiKeyScopeReadOnly)
	if err != nil || resp.Status != "ok" || resp.Scope != "readonly" {
		t.Fatalf("AddAPIKey = %+v, %v", resp, err)
	}
	var scope fluxiondb.LTDBApiKeyScope = fluxiondb.ApiKeyScopeReadWriteDelete
	if _, err := client.AddAPIKey("v1-admin", scope); err != nil {
		t.Fatal(err)
	}
	var rr fluxiondb.LTDBManageAPIKeyResponse
	rr, err = client.RemoveAPIKey("v1-reader")
	if err != nil || rr.Status != "ok" {
		t.Fatalf("RemoveAPIKey = %+v, %v", rr, err)
	}
	// The official client swallowed this error; ours returns it.
	if _, err := client.RemoveAPIKey("v1-reader"); !errors.Is(err, fluxiondb.ErrNotFound) {
		t.Fatalf("RemoveAPIKey of removed key: %v", err)
	}

	must(t, client.DeleteCollection(fluxiondb.LTDBDeleteCollectionParams{Collection: "v1"}))
	cols, _ = client.FetchCollections()
	if slices.Contains(cols, "v1") {
		t.Fatalf("v1 still listed: %v", cols)
	}
}

// TestLegacyV2 calls every method of the second official generation with
// its own types (Doc/Col fields).
func TestLegacyV2(t *testing.T) {
	url := fluxiondb.StartServerForTest(t)
	client := fluxiondb.NewClientWithName(url, fluxiondb.MasterKeyForTest, "first-name")
	client.SetConnectionName("v2-suite")
	if err := client.Connect(); err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	must(t, client.InsertMultipleRecords([]fluxiondb.InsertMessageRequest{
		{Col: "v2", Doc: "d1", TS: 100, Data: `{"state":"flying"}`},
		{Col: "v2", Doc: "d1", TS: 200, Data: `{"state":"landed"}`},
		{Col: "v2", Doc: "d2", TS: 150, Data: `{"state":"flying","quality":"bad"}`},
		{Col: "v2", Doc: "d1", TS: 300, Data: `{"state":"parked"}`},
	}))
	must(t, client.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "v2", Doc: "d3", TS: 50, Data: `{"state":"flying"}`}))

	latest, err := client.FetchLatestRecords(fluxiondb.FetchLatestRecordsParams{Col: "v2", TS: 250, Where: "/state\":\"(flying|landed)/", Filter: "quality:bad"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]fluxiondb.RecordResponse{
		"d1": {TS: 200, Data: `{"state":"landed"}`},
		"d2": {TS: 150, Data: `{"state":"flying","quality":"bad"}`}, // filter text differs from data (no quotes)
		"d3": {TS: 50, Data: `{"state":"flying"}`},
	}
	if len(latest) != len(want) {
		t.Fatalf("FetchLatestRecords = %v, want %v", latest, want)
	}
	for k, v := range want {
		if latest[k] != v {
			t.Fatalf("FetchLatestRecords[%s] = %v, want %v", k, latest[k], v)
		}
	}
	latest, err = client.FetchLatestRecords(fluxiondb.FetchLatestRecordsParams{Col: "v2", TS: math.MaxInt64, Doc: "/^d[12]$/", From: ptr(int64(160))})
	if err != nil || len(latest) != 1 || latest["d1"].TS != 300 {
		t.Fatalf("FetchLatestRecords regex/from = %v, %v", latest, err)
	}
	recs, err := client.FetchDocument(fluxiondb.FetchRecordsParams{Col: "v2", Doc: "d1", From: 0, To: 1000, Where: "flying"})
	if err != nil || len(recs) != 1 || recs[0].TS != 100 {
		t.Fatalf("FetchDocument where = %v, %v", recs, err)
	}
	recs, err = client.FetchDocument(fluxiondb.FetchRecordsParams{Col: "v2", Doc: "d1", To: 1000, Limit: ptr(1), Reverse: ptr(true)})
	if err != nil || len(recs) != 1 || recs[0].TS != 300 {
		t.Fatalf("FetchDocument reverse = %v, %v", recs, err)
	}

	conns, err := client.GetConnections()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range conns {
		if c.Self && c.Name != nil && *c.Name == "v2-suite" {
			found = true
		}
	}
	if !found {
		t.Fatalf("GetConnections has no self entry named v2-suite: %+v", conns)
	}

	must(t, client.DeleteRecordsRange(fluxiondb.DeleteRecordsRange{Col: "v2", Doc: "d1", FromTS: 150, ToTS: 250}))
	must(t, client.DeleteDocumentRecord(fluxiondb.DeleteRecord{Col: "v2", Doc: "d1", TS: 100}))
	recs, _ = client.FetchDocument(fluxiondb.FetchRecordsParams{Col: "v2", Doc: "d1", To: 1000})
	if len(recs) != 1 || recs[0].TS != 300 {
		t.Fatalf("after range+record delete: %v", recs)
	}
	must(t, client.DeleteMultipleRecords([]fluxiondb.DeleteRecord{{Col: "v2", Doc: "d1", TS: 300}, {Col: "v2", Doc: "d2", TS: 150}}))
	must(t, client.DeleteDocument(fluxiondb.DeleteDocumentParams{Col: "v2", Doc: "d3"}))
	latest, _ = client.FetchLatestRecords(fluxiondb.FetchLatestRecordsParams{Col: "v2", TS: math.MaxInt64})
	if len(latest) != 0 {
		t.Fatalf("documents left: %v", latest)
	}

	must(t, client.SetValue(fluxiondb.SetValueParams{Col: "cfg", Key: "env.a", Value: "1"}))
	must(t, client.SetValue(fluxiondb.SetValueParams{Col: "cfg", Key: "env.b", Value: "2"}))
	must(t, client.SetValue(fluxiondb.SetValueParams{Col: "cfg", Key: "x", Value: "3"}))
	if v, err := client.GetValue(fluxiondb.GetValueParams{Col: "cfg", Key: "x"}); err != nil || v != "3" {
		t.Fatalf("GetValue = %q, %v", v, err)
	}
	pattern := `/env\..*/`
	vals, err := client.GetValues(fluxiondb.GetValuesParams{Col: "cfg", Key: &pattern})
	if err != nil || len(vals) != 2 || vals["env.b"] != "2" {
		t.Fatalf("GetValues regex = %v, %v", vals, err)
	}
	vals, err = client.GetValues(fluxiondb.GetValuesParams{Col: "cfg"})
	if err != nil || len(vals) != 3 {
		t.Fatalf("GetValues all = %v, %v", vals, err)
	}
	vals, err = client.GetValues(fluxiondb.CollectionParam{Col: "cfg"})
	if err != nil || len(vals) != 3 {
		t.Fatalf("GetValues(CollectionParam) = %v, %v", vals, err)
	}
	keys, err := client.GetKeys(fluxiondb.CollectionParam{Col: "cfg"})
	if err != nil || len(keys) != 3 {
		t.Fatalf("GetKeys = %v, %v", keys, err)
	}
	must(t, client.DeleteValue(fluxiondb.DeleteValueParams{Col: "cfg", Key: "x"}))
	if keys, _ := client.GetKeys(fluxiondb.CollectionParam{Col: "cfg"}); len(keys) != 2 {
		t.Fatalf("keys after DeleteValue: %v", keys)
	}

	if r, err := client.AddAPIKey("v2-writer", fluxiondb.ApiKeyScopeReadWrite); err != nil || r.Scope != "read_write" {
		t.Fatalf("AddAPIKey = %+v, %v", r, err)
	}
	list, err := client.ListAPIKeys()
	if err != nil || len(list) < 2 {
		t.Fatalf("ListAPIKeys = %+v, %v", list, err)
	}
	if _, err := client.RemoveAPIKey("v2-writer"); err != nil {
		t.Fatal(err)
	}
	must(t, client.DeleteCollection(fluxiondb.DeleteCollectionParams{Col: "cfg"}))
	if cols, _ := client.FetchCollections(); slices.Contains(cols, "cfg") {
		t.Fatalf("cfg still listed: %v", cols)
	}
}

// TestLegacyErrorsNotSwallowed: the official clients resolved error replies
// as success. Every legacy method here must return them.
func TestLegacyErrorsNotSwallowed(t *testing.T) {
	url := fluxiondb.StartServerForTest(t)
	client := fluxiondb.NewClient(url, fluxiondb.MasterKeyForTest)
	defer client.Close()
	if err := client.InsertSingleDocumentRecord(fluxiondb.LTDBInsertMessageRequest{TS: 1, Data: "x"}); !errors.Is(err, fluxiondb.ErrInvalidRequest) {
		t.Fatalf("insert without names: %v", err)
	}
	if _, err := client.FetchLatestDocumentRecords(fluxiondb.LTDBFetchSessionsParams{TS: 1}); !errors.Is(err, fluxiondb.ErrInvalidRequest) {
		t.Fatalf("qry without collection: %v", err)
	}
	if _, err := client.FetchDocument(fluxiondb.FetchRecordsParams{Col: "c", Doc: "d", From: 10, To: 5}); !errors.Is(err, fluxiondb.ErrInvalidRequest) {
		t.Fatalf("qdoc from > to: %v", err)
	}
	if err := client.DeleteRecordsRange(fluxiondb.DeleteRecordsRange{Col: "c", Doc: "d", FromTS: 0, ToTS: 5}); !errors.Is(err, fluxiondb.ErrInvalidRequest) {
		t.Fatalf("drrng fromTs 0: %v", err)
	}
	if _, err := client.AddAPIKey("", fluxiondb.ApiKeyScopeReadOnly); !errors.Is(err, fluxiondb.ErrInvalidRequest) {
		t.Fatalf("add empty key: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
