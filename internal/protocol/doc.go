// Package protocol reads and writes FluxionDB's wire format (docs/PROTOCOL.md). It does no
// I/O: internal/server hands it the bytes of a text frame and gets back decoded requests,
// and it appends replies into the server's buffers.
//
// A request is an envelope {"id","type","data"} whose "data" is a JSON document encoded as
// a string. ParseEnvelope decodes the envelope and un-escapes "data" once into a reusable
// buffer; then the payload decoder of the message type (Insert.Decode, DecodeLatest,
// DecodeRange, …) validates it into typed values. The records of an `ins` — nearly all the
// bytes a server reads — are read in one pass instead, straight from the escaped data string
// (Request.FastInsert, insert_escaped.go), whenever they have the usual shape. Both field-name generations are accepted
// (col/collection, doc/key; v2 wins), every rule violation is an *Error with a stable text and
// a Code, and nothing is partially accepted: a batch with one bad element is rejected whole.
//
// The hot path — an `ins` of thousands of records, and the records of a query reply — is a
// small hand-written scanner (scan.go) and append-style encoders (encode.go): no JSON tree,
// no reflection, no allocation per record; strings are scanned and quoted 8 bytes at a time.
// Every decoder has a fuzz target that checks it against encoding/json.
package protocol
