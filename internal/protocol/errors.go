package protocol

import "fmt"

// Code is the machine-readable kind of an error reply, sent as "code" beside "error".
// The SDKs map these to typed errors; the set is part of the public contract (docs/PROTOCOL.md).
type Code string

const (
	CodeBadRequest       Code = "bad_request"       // the request is malformed or fails validation
	CodeUnknownType      Code = "unknown_type"      // the "type" is not a known message
	CodePermissionDenied Code = "permission_denied" // the key's scope does not allow the message
	CodeNotFound         Code = "not_found"         // the named API key does not exist
	CodeForbidden        Code = "forbidden"         // never allowed: removing the master key, non-master key management
	CodeUnavailable      Code = "unavailable"       // the change could not be made durable; retrying is safe
	CodeRateLimited      Code = "rate_limited"      // the key sent more requests than its rate limit
	CodeTooLarge         Code = "too_large"         // a batch or value is over a configured limit
	CodeInternal         Code = "internal"          // a server fault; the message says what
	CodeCursorExpired    Code = "cursor_expired"    // a subscription cannot resume: its history is gone; subscribe afresh
)

// Error is a client-visible error: a stable text (some are matched by existing clients and
// must not change, see PROTOCOL.md §2) and a code.
type Error struct {
	Code Code
	Text string
}

func (e *Error) Error() string { return e.Text }

// Errorf builds a bad_request error.
func Errorf(format string, args ...any) *Error {
	return &Error{Code: CodeBadRequest, Text: fmt.Sprintf(format, args...)}
}

// Texts that official clients and tools match on. Keep them byte-exact.
var (
	ErrPermissionDenied = &Error{CodePermissionDenied, "permission denied"}
	ErrOnlyMaster       = &Error{CodeForbidden, "only the master key may manage API keys"}
	ErrInvalidScope     = &Error{CodeBadRequest, "invalid scope"}
	ErrEmptyAPIKey      = &Error{CodeBadRequest, "api key cannot be empty"}
	ErrKeyNotFound      = &Error{CodeNotFound, "api key not found"}
	ErrKeyNotRemovable  = &Error{CodeForbidden, "api key cannot be removed"}
	ErrUnknownAction    = &Error{CodeBadRequest, "unknown action"}
	ErrAuthMessage      = &Error{CodeBadRequest, "auth messages are not supported; use the api-key query parameter"}
	ErrBinaryFrame      = &Error{CodeBadRequest, "binary frames are not supported; send each request as a JSON text frame"}
	ErrInvalidUTF8      = &Error{CodeBadRequest, "the frame is not valid UTF-8: a text frame must be UTF-8 (RFC 6455), names and data included"}
)

// Handshake rejection texts (HTTP 401 body), PROTOCOL.md §1.
const (
	TextMissingKey = "Missing API key parameter"
	TextUnknownKey = "Unknown API key"
)
