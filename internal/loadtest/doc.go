// Package loadtest drives a FluxionDB-compatible server over the standard
// WebSocket protocol (PROTOCOL.md) and measures it: records and requests per
// second, latency percentiles, the server's resident memory and CPU, and the
// tool's own CPU. cmd/fluxbench is its command line.
//
// # Model
//
// A run is a sequence of phases (an unmeasured preload, then the measured
// phase). A phase opens connections; each connection has one generator that
// builds request frames of one kind (ins, qry, qdoc) and pipelines them: a
// writer goroutine keeps up to Inflight requests outstanding, a reader
// goroutine matches replies by id and records the latency of each request in
// a log-linear histogram (Histogram, ~0.4% precision). Request ids are
// "<slot>.<seq>": the slot says which in-flight entry a reply completes, the
// sequence number proves it is the reply to the request in that slot now.
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
