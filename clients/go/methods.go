package fluxiondb

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Insert stores records (message ins). The batch is applied whole or not
// at all. A record with the same document and TS as an existing one
// replaces it. For high rates use a BatchWriter.
func (c *Client) Insert(ctx context.Context, records ...InsertRecord) error {
	for i := range records {
		if err := checkNames("insert", records[i].Col, records[i].Doc); err != nil {
			return err
		}
	}
	return c.do(ctx, typeInsert, quotedData(appendInsertData(nil, records)), nil)
}

// Latest returns the newest record per document at or before q.TS (message
// qry), keyed by document name.
func (c *Client) Latest(ctx context.Context, q LatestQuery) (map[string]Record, error) {
	var r QueryResponse
	if err := c.do(ctx, typeLatest, q, &r); err != nil {
		return nil, err
	}
	if r.Records == nil {
		r.Records = map[string]Record{}
	}
	return r.Records, nil
}

// History returns the records of one document in [q.From, q.To] (message
// qdoc), oldest first unless q.Reverse.
func (c *Client) History(ctx context.Context, q HistoryQuery) ([]Record, error) {
	var r QueryCollectionResponse
	if err := c.do(ctx, typeHistory, q, &r); err != nil {
		return nil, err
	}
	if r.Records == nil {
		r.Records = []Record{}
	}
	return r.Records, nil
}

// Collections lists every collection (message cols), in no particular order:
// those holding documents or KV entries, and those that record or KV deletes
// emptied (only RemoveDocument, when the collection then holds nothing, and
// RemoveCollection remove one).
func (c *Client) Collections(ctx context.Context) ([]string, error) {
	var r CollectionsResponse
	if err := c.do(ctx, typeCollections, nil, &r); err != nil {
		return nil, err
	}
	if r.Collections == nil {
		r.Collections = []string{}
	}
	return r.Collections, nil
}

// RemoveDocument deletes document doc with all its records from collection
// col, or from every collection when col is "" (message ddoc).
func (c *Client) RemoveDocument(ctx context.Context, col, doc string) error {
	if err := checkNames("ddoc", col, doc); err != nil {
		return err
	}
	return c.do(ctx, typeDeleteDoc, deleteDocParams{Doc: doc, Col: col}, nil)
}

// RemoveCollection deletes collection col: its documents and its KV
// entries (message dcol). A missing collection is not an error.
func (c *Client) RemoveCollection(ctx context.Context, col string) error {
	if err := checkNames("dcol", col); err != nil {
		return err
	}
	return c.do(ctx, typeDeleteCol, collectionParams{Col: col}, nil)
}

// RemoveRecord deletes the one record ref names (message drec). A missing
// record is not an error.
func (c *Client) RemoveRecord(ctx context.Context, ref RecordRef) error {
	if err := checkNames("drec", ref.Col, ref.Doc); err != nil {
		return err
	}
	return c.do(ctx, typeDeleteRecord, ref, nil)
}

// RemoveRecords deletes many records, possibly across collections, all or
// none (message dmrec).
func (c *Client) RemoveRecords(ctx context.Context, refs ...RecordRef) error {
	if refs == nil {
		refs = []RecordRef{}
	}
	for _, ref := range refs {
		if err := checkNames("dmrec", ref.Col, ref.Doc); err != nil {
			return err
		}
	}
	return c.do(ctx, typeDeleteMany, refs, nil)
}

// RemoveRange deletes the records of one document with from <= ts <= to
// (message drrng).
func (c *Client) RemoveRange(ctx context.Context, col, doc string, from, to int64) error {
	if err := checkNames("drrng", col, doc); err != nil {
		return err
	}
	return c.do(ctx, typeDeleteRange, deleteRangeParams{Doc: doc, Col: col, FromTS: from, ToTS: to}, nil)
}

// KVSet sets key to value in collection col's key-value store (message
// sval), creating the collection if needed.
func (c *Client) KVSet(ctx context.Context, col, key, value string) error {
	if err := checkNames("sval", col, key); err != nil {
		return err
	}
	return c.do(ctx, typeSetValue, kvParams{Col: col, Key: key, Value: value}, nil)
}

// KVGet returns the value of key in col, "" when absent (message gval).
func (c *Client) KVGet(ctx context.Context, col, key string) (string, error) {
	var r KeyValueResponse
	if err := c.do(ctx, typeGetValue, kvParams{Col: col, Key: key}, &r); err != nil {
		return "", err
	}
	return r.Value, nil
}

// KVFind returns the entries of col whose key matches pattern, a
// "/regex/flags" value, or the one entry named pattern literally (value ""
// when absent) (message gvalues).
func (c *Client) KVFind(ctx context.Context, col, pattern string) (map[string]string, error) {
	var r KeyValueAllValuesResponse
	if err := c.do(ctx, typeFindValues, kvParams{Col: col, Key: pattern}, &r); err != nil {
		return nil, err
	}
	return nonNilMap(r.Values), nil
}

// KVAll returns every entry of col's key-value store (message gvals).
func (c *Client) KVAll(ctx context.Context, col string) (map[string]string, error) {
	var r KeyValueAllValuesResponse
	if err := c.do(ctx, typeAllValues, collectionParams{Col: col}, &r); err != nil {
		return nil, err
	}
	return nonNilMap(r.Values), nil
}

// KVKeys returns every key of col's key-value store (message gkeys).
func (c *Client) KVKeys(ctx context.Context, col string) ([]string, error) {
	var r KeyValueAllKeysResponse
	if err := c.do(ctx, typeAllKeys, collectionParams{Col: col}, &r); err != nil {
		return nil, err
	}
	if r.Keys == nil {
		r.Keys = []string{}
	}
	return r.Keys, nil
}

// KVDelete removes key from col (message rval); a missing key is not an
// error.
func (c *Client) KVDelete(ctx context.Context, col, key string) error {
	if err := checkNames("rval", col, key); err != nil {
		return err
	}
	return c.do(ctx, typeRemoveValue, kvParams{Col: col, Key: key}, nil)
}

// CreateAPIKey creates key with scope, or re-scopes an existing key, and
// returns the canonical scope (message keys, action add; master key only).
func (c *Client) CreateAPIKey(ctx context.Context, key string, scope Scope) (Scope, error) {
	r, err := c.manageKeys(ctx, ManageAPIKeyParams{Action: "add", Key: key, Scope: scope})
	if err != nil {
		return "", err
	}
	return Scope(r.Scope), nil
}

// RevokeAPIKey removes key; connections using it are closed by the server
// (message keys, action remove; master key only). An unknown key gives an
// error matching ErrNotFound.
func (c *Client) RevokeAPIKey(ctx context.Context, key string) error {
	_, err := c.manageKeys(ctx, ManageAPIKeyParams{Action: "remove", Key: key})
	return err
}

// APIKeys lists the API keys (message keys, action list; master key only).
func (c *Client) APIKeys(ctx context.Context) ([]APIKeyInfo, error) {
	r, err := c.manageKeys(ctx, ManageAPIKeyParams{Action: "list"})
	if err != nil {
		return nil, err
	}
	if r.Keys == nil {
		r.Keys = []APIKeyInfo{}
	}
	return r.Keys, nil
}

// manageKeys sends one keys message. Servers that reply with an "error"
// field are already turned into a *ServerError by the read loop; a reply
// whose status is not "ok" is reported too.
func (c *Client) manageKeys(ctx context.Context, p ManageAPIKeyParams) (ManageAPIKeyResponse, error) {
	var r ManageAPIKeyResponse
	if err := c.do(ctx, typeKeys, p, &r); err != nil {
		return ManageAPIKeyResponse{}, err
	}
	if r.Status != "" && r.Status != "ok" {
		return r, fmt.Errorf("%w: keys %s: status %q", ErrProtocol, p.Action, r.Status)
	}
	return r, nil
}

// Connections lists the server's live connections (message conn).
func (c *Client) Connections(ctx context.Context) ([]ConnectionInfo, error) {
	var r ConnectionsResponse
	if err := c.do(ctx, typeConnections, nil, &r); err != nil {
		return nil, err
	}
	if r.Connections == nil {
		r.Connections = []ConnectionInfo{}
	}
	return r.Connections, nil
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// checkNames refuses, before anything is sent, a change naming a collection, document or
// key that is not valid UTF-8: the server reads such a name with U+FFFD in place of the bad
// bytes, so two names that differ only there are one, and the write would land on (or the
// delete remove) the other. ErrInvalidRequest, as the server's own refusals.
func checkNames(op string, names ...string) error {
	for _, n := range names {
		if !utf8.ValidString(n) {
			return fmt.Errorf("%w: %s: name %q is not valid UTF-8 (the server would read it as %q, and names that differ only there are one)",
				ErrInvalidRequest, op, n, strings.ToValidUTF8(n, "\uFFFD"))
		}
	}
	return nil
}
