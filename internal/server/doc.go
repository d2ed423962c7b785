// Package server serves FluxionDB over HTTP and WebSocket: the health and metrics endpoints,
// the handshake with its API-key check, and one connection per client.
//
// The path of a request: conn.readLoop reads a frame and protocol.ParseEnvelope decodes it
// (for an insert, all its records). A small frame with nothing ahead of it is answered
// right there; a large one (a batch) goes to the connection's handler goroutine
// (conn.handleLoop) so the read loop can decode the next batch meanwhile. Either way
// conn.request and conn.dispatch check the key's scope (live: a re-scoped or revoked key applies
// to the next request) and runs the message against internal/db — reads straight from the
// engine, changes through db's ordered change path — appending the reply into a pooled
// buffer. The reply goes on the connection's bounded outbound queue; conn.writeLoop waits,
// for a change, until it is durable (db.Wait, shared fsyncs), then writes it. So requests on
// one connection are answered in order and may be pipelined, and a client that stops reading
// fills only its own queue and is closed with 1008 after --write-timeout.
//
// Subscriptions (subscribe.go) add one goroutine per subscription that reads the shared
// change history (internal/pubsub) and queues event frames on the same outbound queue.
//
// Lock order: conn.mu is a leaf (never held while calling out); the engine and db locks are
// taken only inside their packages' calls.
package server
