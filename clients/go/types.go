package fluxiondb

// InsertRecord is one record to insert: Data at TS in document Doc of
// collection Col. The field order matches the official v2 type
// InsertMessageRequest, which is an alias of this one.
type InsertRecord struct {
	TS   int64  `json:"ts"`
	Doc  string `json:"doc"`
	Data string `json:"data"`
	Col  string `json:"col"`
}

// Record is one stored record: its timestamp and its payload, byte-exact as
// inserted (for valid UTF-8; invalid bytes are sent as U+FFFD, as
// encoding/json does). Timestamps cover the whole int64 range exactly.
type Record struct {
	TS   int64  `json:"ts"`
	Data string `json:"data"`
}

// RecordRef names one record: document Doc of collection Col at TS.
type RecordRef struct {
	Doc string `json:"doc"`
	Col string `json:"col"`
	TS  int64  `json:"ts"`
}

// LatestQuery selects, for each document of Col, its newest record at or
// before TS (message qry).
type LatestQuery struct {
	// Col is the collection (required).
	Col string `json:"col"`
	// TS is the inclusive upper bound (required, > 0); math.MaxInt64 means
	// "now and forever".
	TS int64 `json:"ts"`
	// Doc limits the query to one document, or to the documents whose names
	// match a "/regex/flags" value. Empty: every document.
	Doc string `json:"doc,omitempty"`
	// From drops documents whose latest record is older than From (0: no
	// bound). There is no fallback to an older record.
	From int64 `json:"from,omitempty"`
	// Where keeps only records whose data contains this substring (or
	// matches "/regex/flags").
	Where string `json:"where,omitempty"`
	// Filter drops records whose data contains this substring (or matches
	// "/regex/flags").
	Filter string `json:"filter,omitempty"`
}

// HistoryQuery selects the records of one document in [From, To] (message
// qdoc).
type HistoryQuery struct {
	Col string `json:"col"`
	// Doc is the literal document name (never a regex).
	Doc string `json:"doc"`
	// From and To are inclusive bounds; To is required (> 0).
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Limit keeps the first Limit records after ordering (0: all).
	Limit int `json:"limit,omitempty"`
	// Reverse orders newest first; with Limit it gives the newest N.
	Reverse bool `json:"reverse,omitempty"`
	// Where and Filter work as in LatestQuery, per record, before Limit.
	Where  string `json:"where,omitempty"`
	Filter string `json:"filter,omitempty"`
}

// Scope is the permission level of an API key.
type Scope string

// The canonical scopes, from least to most.
const (
	ScopeReadOnly        Scope = "readonly"
	ScopeReadWrite       Scope = "read_write"
	ScopeReadWriteDelete Scope = "read_write_delete"
)

// APIKeyInfo describes one API key as the server lists it. Key is an
// identifier the server chooses (a prefix or digest), never the secret.
type APIKeyInfo struct {
	Key       string `json:"key"`
	Scope     string `json:"scope"`
	Deletable bool   `json:"deletable"`
}

// ConnectionInfo describes one live connection to the server.
type ConnectionInfo struct {
	IP string `json:"ip"`
	// Since is how long the connection has been open, in milliseconds.
	Since int64 `json:"since"`
	// Self is true for the connection that asked.
	Self bool `json:"self"`
	// Name is the connection's label, nil when it has none.
	Name *string `json:"name"`
}

// Wire payloads that have no public type of their own.

type collectionParams struct {
	Col string `json:"col"`
}

type deleteDocParams struct {
	Doc string `json:"doc"`
	Col string `json:"col,omitempty"`
}

type deleteRangeParams struct {
	Doc    string `json:"doc"`
	Col    string `json:"col"`
	FromTS int64  `json:"fromTs"`
	ToTS   int64  `json:"toTs"`
}

type kvParams struct {
	Col   string `json:"col"`
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}
