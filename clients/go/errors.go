package fluxiondb

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Match them with errors.Is; a *ServerError matches the
// sentinel of its class, and client-side failures wrap the sentinel that
// names them, so one errors.Is test works for both.
var (
	// ErrUnauthenticated: the server refused the API key (missing, unknown or
	// revoked). Retrying with the same key will not help.
	ErrUnauthenticated = errors.New("fluxiondb: unauthenticated")
	// ErrPermissionDenied: the key is valid but its scope does not allow the
	// request (server codes permission_denied and forbidden).
	ErrPermissionDenied = errors.New("fluxiondb: permission denied")
	// ErrForbidden: an API-key operation that no key may do, or only the
	// master key may do (server code forbidden). It also matches
	// ErrPermissionDenied.
	ErrForbidden = errors.New("fluxiondb: forbidden")
	// ErrInvalidRequest: the server rejected the request's content (server
	// codes bad_request, unknown_type, too_large). Nothing was changed.
	ErrInvalidRequest = errors.New("fluxiondb: invalid request")
	// ErrUnknownType: the server does not know the message type (server code
	// unknown_type). It also matches ErrInvalidRequest.
	ErrUnknownType = errors.New("fluxiondb: unknown message type")
	// ErrTooLarge: the request exceeded a server limit (server code
	// too_large). It also matches ErrInvalidRequest.
	ErrTooLarge = errors.New("fluxiondb: request too large")
	// ErrNotFound: the named object does not exist (server code not_found,
	// e.g. removing an unknown API key). Reads of missing data are not errors.
	ErrNotFound = errors.New("fluxiondb: not found")
	// ErrUnavailable: the server could not make a write durable (disk
	// trouble); it may or may not have been applied, and since every write is
	// idempotent it is safe to retry (server code unavailable).
	ErrUnavailable = errors.New("fluxiondb: unavailable")
	// ErrRateLimited: the server asked the client to slow down (server code
	// rate_limited).
	ErrRateLimited = errors.New("fluxiondb: rate limited")
	// ErrInternal: the server failed (server code internal).
	ErrInternal = errors.New("fluxiondb: internal server error")

	// ErrClosed: the Client or BatchWriter was closed by its owner.
	ErrClosed = errors.New("fluxiondb: client closed")
	// ErrConnectionLost: the connection dropped before the reply arrived, or
	// the client could not (re)connect. Whether a write that failed this way
	// was applied is unknown.
	ErrConnectionLost = errors.New("fluxiondb: connection lost")
	// ErrInvalidURL: the server URL cannot be dialled as given (it must be
	// ws://host:port or wss://host:port). Retrying cannot help, so the client
	// does not.
	ErrInvalidURL = errors.New("fluxiondb: invalid URL")
	// ErrTimeout: the request's deadline passed before its reply arrived.
	// It wraps context.DeadlineExceeded too.
	ErrTimeout = errors.New("fluxiondb: timeout")
	// ErrProtocol: the server sent something this client cannot read.
	ErrProtocol = errors.New("fluxiondb: protocol error")

	// ErrCursorExpired: the server no longer holds the changes since a
	// subscription cursor (its bounded history moved on, or the cursor
	// comes from an earlier server process). Server code cursor_expired.
	ErrCursorExpired = errors.New("fluxiondb: subscription cursor expired")
	// ErrSubscriptionLost: a subscription ended because changes it should
	// have delivered are gone: it fell behind the server's history
	// (overflow), or could not resume after a reconnect (cursor expired).
	// Events up to the gap were delivered; nothing after it will be.
	// Subscribe again with Snapshot, or use ResubscribeWithSnapshot.
	ErrSubscriptionLost = errors.New("fluxiondb: subscription lost events")
	// ErrSlowSubscriber: the subscription's buffer (WithSubscriptionBuffer)
	// was full when more events arrived, so the client ended it rather than
	// stall the connection's other requests. Events up to that point were
	// delivered.
	ErrSlowSubscriber = errors.New("fluxiondb: subscriber too slow")
)

// Server error codes, as sent in the reply's "code" field.
const (
	CodeBadRequest       = "bad_request"
	CodeUnknownType      = "unknown_type"
	CodePermissionDenied = "permission_denied"
	CodeNotFound         = "not_found"
	CodeForbidden        = "forbidden"
	CodeUnavailable      = "unavailable"
	CodeRateLimited      = "rate_limited"
	CodeTooLarge         = "too_large"
	CodeInternal         = "internal"
	CodeCursorExpired    = "cursor_expired"
)

// ServerError is an error reply from the server: {"id","error","code"}.
// Use errors.As to read it, errors.Is with a sentinel to classify it.
type ServerError struct {
	// Code is the server's machine-readable code (Code* constants). For
	// servers that send no code it is inferred from Message where the text is
	// one the protocol fixes, and empty otherwise.
	Code string
	// Message is the server's error text, verbatim.
	Message string
	// RequestID is the id of the request that failed.
	RequestID string
	// Type is the message type of the request that failed ("ins", "qry", …).
	Type string
}

// Error implements error.
func (e *ServerError) Error() string {
	var b strings.Builder
	if e.Type == pushOverflow {
		// Not an answer to a request: the server ended a subscription.
		fmt.Fprintf(&b, "fluxiondb: server ended the subscription: %s (%s)", e.Message, e.Code)
		return b.String()
	}
	b.WriteString("fluxiondb: server rejected ")
	if e.Type != "" {
		b.WriteString(e.Type)
		b.WriteByte(' ')
	}
	b.WriteString("request")
	if e.RequestID != "" {
		b.WriteString(" ")
		b.WriteString(e.RequestID)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	return b.String()
}

// Is reports whether the error belongs to the class of target, one of the
// sentinels above.
func (e *ServerError) Is(target error) bool {
	switch e.Code {
	case CodeBadRequest:
		return target == ErrInvalidRequest
	case CodeUnknownType:
		return target == ErrUnknownType || target == ErrInvalidRequest
	case CodeTooLarge:
		return target == ErrTooLarge || target == ErrInvalidRequest
	case CodePermissionDenied:
		return target == ErrPermissionDenied
	case CodeForbidden:
		return target == ErrForbidden || target == ErrPermissionDenied
	case CodeNotFound:
		return target == ErrNotFound
	case CodeUnavailable:
		return target == ErrUnavailable
	case CodeRateLimited:
		return target == ErrRateLimited
	case CodeInternal:
		return target == ErrInternal
	case CodeCursorExpired:
		return target == ErrCursorExpired
	}
	return false
}

// inferCode maps the error texts that PROTOCOL.md §2 fixes to a code, for
// servers (the official C++ one) that send no "code" field.
func inferCode(msg string) string {
	switch strings.ToLower(strings.TrimSpace(msg)) {
	case "permission denied":
		return CodePermissionDenied
	case "only the master key may manage api keys", "api key cannot be removed":
		return CodeForbidden
	case "api key not found":
		return CodeNotFound
	case "invalid scope", "api key cannot be empty", "unknown action":
		return CodeBadRequest
	}
	if strings.Contains(strings.ToLower(msg), "unknown message type") {
		return CodeUnknownType
	}
	return ""
}

// newServerError builds the error for an error reply.
func newServerError(id, typ, code, msg string) *ServerError {
	if code == "" {
		code = inferCode(msg)
	}
	return &ServerError{Code: code, Message: msg, RequestID: id, Type: typ}
}

// AuthError is returned by Connect when the server refuses the API key. It
// matches ErrUnauthenticated.
type AuthError struct {
	// Reason is the server's text: "Missing API key parameter",
	// "Unknown API key" or "API key revoked".
	Reason string
	// HTTPStatus is the status of the refused upgrade (401), or 0 when the
	// server accepted the upgrade and closed the socket instead (1008).
	HTTPStatus int
}

// Error implements error.
func (e *AuthError) Error() string {
	if e.HTTPStatus != 0 {
		return fmt.Sprintf("fluxiondb: authentication failed (HTTP %d): %s", e.HTTPStatus, e.Reason)
	}
	return "fluxiondb: authentication failed: " + e.Reason
}

// Is makes AuthError match ErrUnauthenticated.
func (e *AuthError) Is(target error) bool { return target == ErrUnauthenticated }
