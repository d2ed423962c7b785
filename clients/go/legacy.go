package fluxiondb

import "context"

// This file keeps every name of the two official client generations so that
// code written for them compiles unchanged:
//
//   - v1 types carry the LTDB prefix and Key/Collection fields;
//   - v2 types drop the prefix and use Doc/Col fields.
//
// Both generations share some method names with different parameter types
// (FetchDocument takes LTDBFetchRecordsParams in v1, FetchRecordsParams in
// v2). Go has no overloading, so those methods take a small sealed
// interface that both generations' types implement; a call written for
// either generation compiles. Every method here is a thin wrapper over the
// context-taking API in methods.go, using context.Background() and the
// client's request timeout.

// ---- v2 types ----

// InsertMessageRequest is the v2 name of InsertRecord.
//
// Deprecated: use InsertRecord.
type InsertMessageRequest = InsertRecord

// RecordResponse is the v2 name of Record.
//
// Deprecated: use Record.
type RecordResponse = Record

// DeleteRecord is the v2 name of RecordRef.
//
// Deprecated: use RecordRef.
type DeleteRecord = RecordRef

// ApiKeyScope is the official name of Scope.
//
// Deprecated: use Scope.
type ApiKeyScope = Scope //nolint:revive // official name

// Official names of the scope constants.
//
// Deprecated: use ScopeReadOnly, ScopeReadWrite, ScopeReadWriteDelete.
const (
	ApiKeyScopeReadOnly        = ScopeReadOnly
	ApiKeyScopeReadWrite       = ScopeReadWrite
	ApiKeyScopeReadWriteDelete = ScopeReadWriteDelete
)

// ManageAPIKeyParams is the payload of the keys message.
type ManageAPIKeyParams struct {
	Action string      `json:"action"`
	Key    string      `json:"key"`
	Scope  ApiKeyScope `json:"scope,omitempty"`
}

// ManageAPIKeyResponse is the reply to the keys message.
type ManageAPIKeyResponse struct {
	ID     string       `json:"id"`
	Status string       `json:"status,omitempty"`
	Error  string       `json:"error,omitempty"`
	Scope  string       `json:"scope,omitempty"`
	Keys   []APIKeyInfo `json:"keys,omitempty"`
}

// InsertMessageResponse is the reply to messages that return nothing.
type InsertMessageResponse struct {
	ID string `json:"id"`
}

// QueryResponse is the reply to qry.
type QueryResponse struct {
	ID      string                    `json:"id"`
	Records map[string]RecordResponse `json:"records"`
}

// QueryCollectionResponse is the reply to qdoc.
type QueryCollectionResponse struct {
	ID      string           `json:"id"`
	Records []RecordResponse `json:"records"`
}

// CollectionsResponse is the reply to cols.
type CollectionsResponse struct {
	ID          string   `json:"id"`
	Collections []string `json:"collections"`
}

// ConnectionsResponse is the reply to conn.
type ConnectionsResponse struct {
	ID          string           `json:"id"`
	Connections []ConnectionInfo `json:"connections"`
}

// KeyValueResponse is the reply to gval.
type KeyValueResponse struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// KeyValueAllKeysResponse is the reply to gkeys.
type KeyValueAllKeysResponse struct {
	ID   string   `json:"id"`
	Keys []string `json:"keys"`
}

// KeyValueAllValuesResponse is the reply to gvals and gvalues.
type KeyValueAllValuesResponse struct {
	ID     string            `json:"id"`
	Values map[string]string `json:"values"`
}

// WebSocketResponse is the part every reply shares.
type WebSocketResponse struct {
	ID string `json:"id"`
}

// WebSocketMessage is the request envelope; Data is the JSON-encoded
// payload.
type WebSocketMessage struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data string `json:"data"`
}

// CollectionParam names a collection (v2).
//
// Deprecated: the modern methods take the collection name directly.
type CollectionParam struct {
	Col string `json:"col"`
}

// DeleteCollectionParams names the collection to delete (v2).
//
// Deprecated: use RemoveCollection.
type DeleteCollectionParams = CollectionParam

// FetchLatestRecordsParams is the v2 qry parameter set.
//
// Deprecated: use LatestQuery.
type FetchLatestRecordsParams struct {
	Col    string `json:"col"`
	TS     int64  `json:"ts"`
	Doc    string `json:"doc,omitempty"`
	From   *int64 `json:"from,omitempty"`
	Where  string `json:"where,omitempty"`
	Filter string `json:"filter,omitempty"`
}

// FetchRecordsParams is the v2 qdoc parameter set.
//
// Deprecated: use HistoryQuery.
type FetchRecordsParams struct {
	Col     string `json:"col"`
	Doc     string `json:"doc"`
	From    int64  `json:"from"`
	To      int64  `json:"to"`
	Limit   *int   `json:"limit,omitempty"`
	Reverse *bool  `json:"reverse,omitempty"`
	Where   string `json:"where,omitempty"`
	Filter  string `json:"filter,omitempty"`
}

// DeleteDocumentParams names the document to delete (v2).
//
// Deprecated: use RemoveDocument.
type DeleteDocumentParams struct {
	Doc string `json:"doc"`
	Col string `json:"col"`
}

// DeleteRecordsRange names the records to delete (v2 drrng).
//
// Deprecated: use RemoveRange.
type DeleteRecordsRange struct {
	Doc    string `json:"doc"`
	Col    string `json:"col"`
	FromTS int64  `json:"fromTs"`
	ToTS   int64  `json:"toTs"`
}

// SetValueParams is the v2 sval parameter set.
//
// Deprecated: use KVSet.
type SetValueParams struct {
	Col   string `json:"col"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

// GetValueParams is the v2 gval parameter set.
//
// Deprecated: use KVGet.
type GetValueParams struct {
	Col string `json:"col"`
	Key string `json:"key"`
}

// DeleteValueParams is the v2 rval parameter set.
//
// Deprecated: use KVDelete.
type DeleteValueParams = GetValueParams

// GetValuesParams selects KV entries: all of Col when Key is nil or empty,
// else those matching *Key (literal or "/regex/").
//
// Deprecated: use KVAll or KVFind.
type GetValuesParams struct {
	Col string  `json:"col"`
	Key *string `json:"key,omitempty"`
}

// ---- v1 (LTDB) types ----

// LTDBInsertMessageRequest is the v1 insert record.
//
// Deprecated: use InsertRecord.
type LTDBInsertMessageRequest struct {
	TS         int64  `json:"ts"`
	Key        string `json:"key"`
	Data       string `json:"data"`
	Collection string `json:"collection"`
}

// LTDBApiKeyScope is the v1 name of Scope.
//
// Deprecated: use Scope.
type LTDBApiKeyScope = Scope

// LTDBManageAPIKeyParams is the v1 name of ManageAPIKeyParams.
//
// Deprecated: use the API-key methods.
type LTDBManageAPIKeyParams = ManageAPIKeyParams

// LTDBManageAPIKeyResponse is the v1 name of ManageAPIKeyResponse.
//
// Deprecated: use the API-key methods.
type LTDBManageAPIKeyResponse = ManageAPIKeyResponse

// LTDBInsertMessageResponse is the v1 name of InsertMessageResponse.
//
// Deprecated: replies are decoded for you.
type LTDBInsertMessageResponse = InsertMessageResponse

// LTDBQueryResponse is the v1 name of QueryResponse.
//
// Deprecated: replies are decoded for you.
type LTDBQueryResponse = QueryResponse

// LTDBRecordResponse is the v1 name of Record.
//
// Deprecated: use Record.
type LTDBRecordResponse = Record

// LTDBQueryCollectionResponse is the v1 name of QueryCollectionResponse.
//
// Deprecated: replies are decoded for you.
type LTDBQueryCollectionResponse = QueryCollectionResponse

// LTDBCollectionsResponse is the v1 name of CollectionsResponse.
//
// Deprecated: replies are decoded for you.
type LTDBCollectionsResponse = CollectionsResponse

// LTDBKeyValueResponse is the v1 name of KeyValueResponse.
//
// Deprecated: replies are decoded for you.
type LTDBKeyValueResponse = KeyValueResponse

// LTDBKeyValueAllKeysResponse is the v1 name of KeyValueAllKeysResponse.
//
// Deprecated: replies are decoded for you.
type LTDBKeyValueAllKeysResponse = KeyValueAllKeysResponse

// LTDBKeyValueAllValuesResponse is the v1 name of KeyValueAllValuesResponse.
//
// Deprecated: replies are decoded for you.
type LTDBKeyValueAllValuesResponse = KeyValueAllValuesResponse

// LTDBCollectionParam names a collection (v1).
//
// Deprecated: the modern methods take the collection name directly.
type LTDBCollectionParam struct {
	Collection string `json:"collection"`
}

// LTDBDeleteCollectionParams names the collection to delete (v1).
//
// Deprecated: use RemoveCollection.
type LTDBDeleteCollectionParams = LTDBCollectionParam

// LTDBFetchLatestRecordsParams is the v1 qry parameter set.
//
// Deprecated: use LatestQuery.
type LTDBFetchLatestRecordsParams struct {
	Collection string `json:"collection"`
	TS         int64  `json:"ts"`
	Key        string `json:"key,omitempty"`
	From       *int64 `json:"from,omitempty"`
}

// LTDBFetchSessionsParams is the name the design document's example uses
// for LTDBFetchLatestRecordsParams.
//
// Deprecated: use LatestQuery.
type LTDBFetchSessionsParams = LTDBFetchLatestRecordsParams

// LTDBFetchRecordsParams is the v1 qdoc parameter set.
//
// Deprecated: use HistoryQuery.
type LTDBFetchRecordsParams struct {
	Collection string `json:"collection"`
	Key        string `json:"key"`
	From       int64  `json:"from"`
	To         int64  `json:"to"`
	Limit      *int   `json:"limit,omitempty"`
	Reverse    *bool  `json:"reverse,omitempty"`
}

// LTDBDeleteDocumentParams names the document to delete (v1).
//
// Deprecated: use RemoveDocument.
type LTDBDeleteDocumentParams struct {
	Key        string `json:"key"`
	Collection string `json:"collection"`
}

// LTDBDeleteRecord names one record (v1).
//
// Deprecated: use RecordRef.
type LTDBDeleteRecord struct {
	Key        string `json:"key"`
	Collection string `json:"collection"`
	TS         int64  `json:"ts"`
}

// LTDBSetValueParams is the v1 sval parameter set.
//
// Deprecated: use KVSet.
type LTDBSetValueParams struct {
	Collection string `json:"collection"`
	Key        string `json:"key"`
	Value      string `json:"value"`
}

// LTDBGetValueParams is the v1 gval parameter set.
//
// Deprecated: use KVGet.
type LTDBGetValueParams struct {
	Collection string `json:"collection"`
	Key        string `json:"key"`
}

// LTDBDeleteValueParams is the v1 rval parameter set.
//
// Deprecated: use KVDelete.
type LTDBDeleteValueParams = LTDBGetValueParams

// ---- parameter interfaces: one legacy method, both generations' types ----

// InsertArg is a record in either generation's shape: InsertRecord
// (InsertMessageRequest) or LTDBInsertMessageRequest.
type InsertArg interface{ insertRecord() InsertRecord }

func (r InsertRecord) insertRecord() InsertRecord { return r }
func (r LTDBInsertMessageRequest) insertRecord() InsertRecord {
	return InsertRecord{TS: r.TS, Doc: r.Key, Data: r.Data, Col: r.Collection}
}

// HistoryArg is a qdoc parameter set: HistoryQuery, FetchRecordsParams or
// LTDBFetchRecordsParams.
type HistoryArg interface{ historyQuery() HistoryQuery }

func (q HistoryQuery) historyQuery() HistoryQuery { return q }
func (p FetchRecordsParams) historyQuery() HistoryQuery {
	return HistoryQuery{Col: p.Col, Doc: p.Doc, From: p.From, To: p.To, Limit: deref(p.Limit),
		Reverse: deref(p.Reverse), Where: p.Where, Filter: p.Filter}
}
func (p LTDBFetchRecordsParams) historyQuery() HistoryQuery {
	return HistoryQuery{Col: p.Collection, Doc: p.Key, From: p.From, To: p.To, Limit: deref(p.Limit),
		Reverse: deref(p.Reverse)}
}

// CollectionArg names a collection: CollectionParam or LTDBCollectionParam.
type CollectionArg interface{ collection() string }

func (p CollectionParam) collection() string     { return p.Col }
func (p LTDBCollectionParam) collection() string { return p.Collection }

// DocumentArg names a document: DeleteDocumentParams or
// LTDBDeleteDocumentParams.
type DocumentArg interface{ document() (col, doc string) }

func (p DeleteDocumentParams) document() (string, string)     { return p.Col, p.Doc }
func (p LTDBDeleteDocumentParams) document() (string, string) { return p.Collection, p.Key }

// RecordArg names one record: RecordRef (DeleteRecord) or LTDBDeleteRecord.
type RecordArg interface{ recordRef() RecordRef }

func (r RecordRef) recordRef() RecordRef { return r }
func (r LTDBDeleteRecord) recordRef() RecordRef {
	return RecordRef{Doc: r.Key, Col: r.Collection, TS: r.TS}
}

// SetValueArg is an sval parameter set: SetValueParams or LTDBSetValueParams.
type SetValueArg interface {
	kvEntry() (col, key, value string)
}

func (p SetValueParams) kvEntry() (string, string, string)     { return p.Col, p.Key, p.Value }
func (p LTDBSetValueParams) kvEntry() (string, string, string) { return p.Collection, p.Key, p.Value }

// ValueArg names one KV entry: GetValueParams (DeleteValueParams) or
// LTDBGetValueParams (LTDBDeleteValueParams).
type ValueArg interface{ kvKey() (col, key string) }

func (p GetValueParams) kvKey() (string, string)     { return p.Col, p.Key }
func (p LTDBGetValueParams) kvKey() (string, string) { return p.Collection, p.Key }

// ValuesArg selects KV entries: GetValuesParams, CollectionParam or
// LTDBCollectionParam.
type ValuesArg interface {
	kvSelect() (col string, key *string)
}

func (p GetValuesParams) kvSelect() (string, *string)     { return p.Col, p.Key }
func (p CollectionParam) kvSelect() (string, *string)     { return p.Col, nil }
func (p LTDBCollectionParam) kvSelect() (string, *string) { return p.Collection, nil }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// ---- legacy methods ----

// NewClientWithName is NewClient with a connection label.
//
// Deprecated: use NewClient(url, apiKey, WithConnectionName(name)).
func NewClientWithName(wsURL, apiKey, connectionName string) *Client {
	return NewClient(wsURL, apiKey, WithConnectionName(connectionName))
}

// SetConnectionName sets the connection label used from the next
// connection on.
//
// Deprecated: use WithConnectionName.
func (c *Client) SetConnectionName(name string) {
	c.mu.Lock()
	c.name = name
	c.mu.Unlock()
}

// FetchCollections lists collections.
//
// Deprecated: use Collections.
func (c *Client) FetchCollections() ([]string, error) {
	return c.Collections(context.Background())
}

// GetConnections lists live connections.
//
// Deprecated: use Connections.
func (c *Client) GetConnections() ([]ConnectionInfo, error) {
	return c.Connections(context.Background())
}

// FetchLatestRecords returns the newest record per document (v2 name).
//
// Deprecated: use Latest.
func (c *Client) FetchLatestRecords(params FetchLatestRecordsParams) (map[string]RecordResponse, error) {
	return c.Latest(context.Background(), LatestQuery{Col: params.Col, TS: params.TS, Doc: params.Doc,
		From: deref(params.From), Where: params.Where, Filter: params.Filter})
}

// FetchLatestDocumentRecords returns the newest record per document (v1
// name).
//
// Deprecated: use Latest.
func (c *Client) FetchLatestDocumentRecords(params LTDBFetchLatestRecordsParams) (map[string]LTDBRecordResponse, error) {
	return c.Latest(context.Background(), LatestQuery{Col: params.Collection, TS: params.TS, Doc: params.Key, From: deref(params.From)})
}

// DeleteCollection deletes a collection.
//
// Deprecated: use RemoveCollection.
func (c *Client) DeleteCollection(params CollectionArg) error {
	return c.RemoveCollection(context.Background(), params.collection())
}

// InsertMultipleRecords inserts records (v2 name).
//
// Deprecated: use Insert.
func (c *Client) InsertMultipleRecords(items []InsertMessageRequest) error {
	return c.Insert(context.Background(), items...)
}

// InsertMultipleDocumentRecords inserts records (v1 name).
//
// Deprecated: use Insert.
func (c *Client) InsertMultipleDocumentRecords(items []LTDBInsertMessageRequest) error {
	recs := make([]InsertRecord, len(items))
	for i, it := range items {
		recs[i] = it.insertRecord()
	}
	return c.Insert(context.Background(), recs...)
}

// InsertSingleDocumentRecord inserts one record, given in either
// generation's shape.
//
// Deprecated: use Insert.
func (c *Client) InsertSingleDocumentRecord(item InsertArg) error {
	return c.Insert(context.Background(), item.insertRecord())
}

// FetchDocument returns a document's records in a time range.
//
// Deprecated: use History.
func (c *Client) FetchDocument(params HistoryArg) ([]RecordResponse, error) {
	return c.History(context.Background(), params.historyQuery())
}

// DeleteDocument deletes a document.
//
// Deprecated: use RemoveDocument.
func (c *Client) DeleteDocument(params DocumentArg) error {
	col, doc := params.document()
	return c.RemoveDocument(context.Background(), col, doc)
}

// DeleteDocumentRecord deletes one record.
//
// Deprecated: use RemoveRecord.
func (c *Client) DeleteDocumentRecord(params RecordArg) error {
	return c.RemoveRecord(context.Background(), params.recordRef())
}

// DeleteMultipleRecords deletes records (v2 name).
//
// Deprecated: use RemoveRecords.
func (c *Client) DeleteMultipleRecords(params []DeleteRecord) error {
	return c.RemoveRecords(context.Background(), params...)
}

// DeleteMultipleDocumentRecords deletes records (v1 name).
//
// Deprecated: use RemoveRecords.
func (c *Client) DeleteMultipleDocumentRecords(params []LTDBDeleteRecord) error {
	refs := make([]RecordRef, len(params))
	for i, p := range params {
		refs[i] = p.recordRef()
	}
	return c.RemoveRecords(context.Background(), refs...)
}

// DeleteRecordsRange deletes a document's records in a time range.
//
// Deprecated: use RemoveRange.
func (c *Client) DeleteRecordsRange(params DeleteRecordsRange) error {
	return c.RemoveRange(context.Background(), params.Col, params.Doc, params.FromTS, params.ToTS)
}

// SetValue sets a KV entry.
//
// Deprecated: use KVSet.
func (c *Client) SetValue(params SetValueArg) error {
	col, key, value := params.kvEntry()
	return c.KVSet(context.Background(), col, key, value)
}

// GetValue reads a KV entry.
//
// Deprecated: use KVGet.
func (c *Client) GetValue(params ValueArg) (string, error) {
	col, key := params.kvKey()
	return c.KVGet(context.Background(), col, key)
}

// GetKeys lists a collection's KV keys.
//
// Deprecated: use KVKeys.
func (c *Client) GetKeys(params CollectionArg) ([]string, error) {
	return c.KVKeys(context.Background(), params.collection())
}

// GetValues returns a collection's KV entries, all of them or those
// matching GetValuesParams.Key.
//
// Deprecated: use KVAll or KVFind.
func (c *Client) GetValues(params ValuesArg) (map[string]string, error) {
	col, key := params.kvSelect()
	if key == nil || *key == "" {
		return c.KVAll(context.Background(), col)
	}
	return c.KVFind(context.Background(), col, *key)
}

// DeleteValue removes a KV entry.
//
// Deprecated: use KVDelete.
func (c *Client) DeleteValue(params ValueArg) error {
	col, key := params.kvKey()
	return c.KVDelete(context.Background(), col, key)
}

// AddAPIKey creates or re-scopes an API key.
//
// Deprecated: use CreateAPIKey.
func (c *Client) AddAPIKey(key string, scope ApiKeyScope) (ManageAPIKeyResponse, error) {
	return c.manageKeys(context.Background(), ManageAPIKeyParams{Action: "add", Key: key, Scope: scope})
}

// RemoveAPIKey removes an API key.
//
// Deprecated: use RevokeAPIKey.
func (c *Client) RemoveAPIKey(key string) (ManageAPIKeyResponse, error) {
	return c.manageKeys(context.Background(), ManageAPIKeyParams{Action: "remove", Key: key})
}

// ListAPIKeys lists API keys.
//
// Deprecated: use APIKeys.
func (c *Client) ListAPIKeys() ([]APIKeyInfo, error) {
	return c.APIKeys(context.Background())
}
