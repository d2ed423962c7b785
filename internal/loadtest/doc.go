// Package loadtest drives a FluxionDB-compatible server over the standard
// WebSocket protocol (PROTOCOL.md) and measures it: records and requests per
// second, latency percentiles, the server's resident memory and CPU, and the
// tool's own CPU. cmd/fluxbench is its command line.
//
// # Model
//
// A run is a sequence of phases (an unmeasured preload, then the measured
// phase). A phase opens connections; each connection has one generator that
// builds request frames of one kind (ins, qry, qdoc) and pipelines them, keeping
// up to Inflight requests outstanding; replies are matched by id and the latency
// of each request goes into a log-linear histogram (Histogram, ~0.4% precision).
// A closed-loop connection (the default: the next request as soon as a slot is
// free) runs on one goroutine: it sends every free slot's request, then reads
// the replies already received, and again — a reader and a writer goroutine
// handing slots over cost about a fifth of the tool's CPU per qdoc request in
// wake-ups (interleaved runs: 20-22 µs against 16-18 µs). A paced connection (fanout's -rate) keeps the two goroutines. Request ids are
// "<slot>.<seq>": the slot says which in-flight entry a reply completes, the
// sequence number proves it is the reply to the request in that slot now.
//
// # Fan-out
//
// The fanout scenario (live subscriptions, docs/PROTOCOL.md §7) first opens
// Conns subscriber connections and subscribes each Subs times to the
// collection, waiting for every reply, so that every record of the measured
// phase must reach every subscription exactly once. Then Writers connections
// insert batches at Rate records/s (a pacer: the writer waits for its turn and
// sends each frame alone) or flat out. Every record's payload begins with
// {"fbt":<stamp>}, the tool's monotonic clock at send time; receivers are in
// the same process, so now − stamp is the delivery latency with no clock skew.
// Receivers do not decode event frames: they walk the '{' bytes, counting
// {"op":" (an event) and reading the digits after {\"fbt\": (a stamp),
// neither of which can be confused with the other or with string content.
// After the writers stop, the run waits until every subscription has its
// events (or overflowed, or nothing arrived for 2 s) and reports events/s
// overall and per connection, latency percentiles, overflow signals and the
// shortfall, if any.
//
// # Not being the bottleneck
//
// Frames are built by appending precomputed, already double-encoded pieces
// (the envelope's data field is a JSON document encoded as a string, so a
// record's payload is escaped twice): per document one prefix up to the
// timestamp, then the timestamp digits. Buffers are reused per slot and per
// reader. Replies are parsed with a fast path that reads the leading id and
// looks for an "error" key without building a JSON tree. NoopServer is an
// in-process server that speaks the envelope but does no work, so the tool's
// own ceiling can be measured with the same code and printed beside every
// figure.
//
// # Caveats
//
// Server memory and CPU come from /proc/PID (Linux), so they are known only
// when the tool starts the server itself or is given its PID. Bytes per record
// are (RSS after - RSS before) / records stored - payload size; they include
// whatever garbage the server's collector has not returned yet.
package loadtest
