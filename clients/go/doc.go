// Package fluxiondb is the Go client for FluxionDB, an in-memory time-series
// database served over WebSockets.
//
// # Model
//
// A server holds collections; a collection holds documents (each an ordered
// series of records: an int64 timestamp and an opaque string payload) and a
// key-value store of strings. One Client holds one WebSocket connection and
// pipelines any number of concurrent requests over it; replies are matched
// to requests by id, so a slow query does not block other goroutines.
//
//	c, err := fluxiondb.Dial(ctx, "ws://localhost:8080", apiKey,
//		fluxiondb.WithConnectionName("ingest-1"))
//	if err != nil { … }
//	defer c.Close()
//	err = c.Insert(ctx, fluxiondb.InsertRecord{Col: "sensors", Doc: "dev-1", TS: ts, Data: `{"t":22.5}`})
//	latest, err := c.Latest(ctx, fluxiondb.LatestQuery{Col: "sensors", TS: math.MaxInt64})
//
// Every request takes a context.Context; a request without a deadline gets
// the client's request timeout (WithRequestTimeout, 30s by default).
// Timestamps are int64 end to end, exact over the whole range.
//
// # Errors
//
// A request the server rejects returns a *ServerError carrying the server's
// code, text and the request id. Classify errors with errors.Is and the
// sentinels: ErrInvalidRequest, ErrPermissionDenied, ErrNotFound,
// ErrUnavailable (safe to retry) and others for server replies;
// ErrUnauthenticated when the server refuses the API key at connect;
// ErrConnectionLost, ErrTimeout and ErrClosed for failures on the client
// side.
//
// # Connection loss
//
// When the connection drops, every request in flight fails at once with
// ErrConnectionLost (a write that failed this way may or may not have been
// applied). The client then reconnects in the background with exponential
// backoff and jitter (WithReconnectPolicy); requests made meanwhile wait
// for the new connection, within their context. Close stops everything and
// may be called more than once.
//
// # Ingest
//
// For high write rates use a BatchWriter (Client.NewBatchWriter): it groups
// records into large ins requests, flushes by size and by time, pipelines
// batches, and blocks writers when its queue is full.
//
// # Live subscriptions
//
// Client.Subscribe streams the changes of a collection (optionally one
// document or a /regex/ of them, and the where/filter predicates) as they
// happen, on the same connection: a Go channel (Subscription.Events) or an
// iterator (Subscription.All), ended by the context, Close, or an error
// that Subscription.Err reports. With SubscribeQuery.Snapshot it starts
// with the latest record of each document, then live, without a gap or a
// duplicate. After a reconnect it resumes from the last event received; if
// the server no longer holds the missed changes it ends with
// ErrSubscriptionLost (or, with ResubscribeWithSnapshot, starts over with an
// OpReset event). A reader that falls behind its buffer ends with
// ErrSlowSubscriber rather than stall the connection: events are never
// dropped silently.
//
// # Compatibility
//
// Every method and type of both official client generations is kept, so
// code written for them compiles unchanged: the v1 names (LTDB… types with
// Key/Collection fields, InsertSingleDocumentRecord,
// FetchLatestDocumentRecords, …) and the v2 names (types with Doc/Col
// fields, FetchLatestRecords, DeleteRecordsRange, ListAPIKeys,
// GetConnections, …). They are thin wrappers over the context-taking API,
// marked Deprecated. Unlike the official clients, they return server errors
// instead of treating them as success, never hang after a disconnect, and
// log nothing unless given a logger (WithLogger).
package fluxiondb
