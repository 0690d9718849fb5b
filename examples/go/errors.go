package tank

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#include "tank.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net/http"
)

// Status is the class of a failure: the C API's TankStatus. Its values are
// the C codes, which are never renumbered.
type Status uint32

// The statuses a call can fail with.
const (
	StatusOK             Status = 0
	StatusBadInput       Status = 1  // rejected before any request
	StatusHTTP           Status = 2  // the final answer was an HTTP error status
	StatusDigestMismatch Status = 3  // bytes did not hash to their digest
	StatusTransport      Status = 4  // connect, reset, timeout, TLS, unusable redirect
	StatusAuth           Status = 5  // the token handshake or a credential helper failed
	StatusProtocol       Status = 6  // bad JSON, bad headers, sizes
	StatusInternal       Status = 7  // a bug caught at the boundary
	StatusCancelled      Status = 8  // the caller cancelled (a context, a TankCancel)
	StatusIO             Status = 9  // a local file or directory could not be read or written
	StatusLayer          Status = 10 // a layer cannot be applied to a root filesystem (Unpack)
)

// Fails to compile unless the values above are tank.h's.
var _ = [1]struct{}{}[StatusOK^Status(C.TANK_OK)|
	StatusBadInput^Status(C.TANK_ERR_BAD_INPUT)|
	StatusHTTP^Status(C.TANK_ERR_HTTP)|
	StatusDigestMismatch^Status(C.TANK_ERR_DIGEST_MISMATCH)|
	StatusTransport^Status(C.TANK_ERR_TRANSPORT)|
	StatusAuth^Status(C.TANK_ERR_AUTH)|
	StatusProtocol^Status(C.TANK_ERR_PROTOCOL)|
	StatusInternal^Status(C.TANK_ERR_INTERNAL)|
	StatusCancelled^Status(C.TANK_ERR_CANCELLED)|
	StatusIO^Status(C.TANK_ERR_IO)|
	StatusLayer^Status(C.TANK_ERR_LAYER)]

// String gives the C name of the status, e.g. "TANK_ERR_HTTP", or
// "TANK_UNKNOWN_STATUS".
func (s Status) String() string {
	return C.GoString(C.tank_status_name(C.uint32_t(s)))
}

// Error is what every failed call returns. Use errors.As to read it and
// errors.Is with the Err* sentinels to classify it:
//
//	m, err := tank.FetchManifest(reg, repo, ref, cache)
//	if errors.Is(err, tank.ErrNotFound) { ... }
//	var terr *tank.Error
//	if errors.As(err, &terr) { log.Print(terr.Reason, terr.HTTPStatus) }
type Error struct {
	// Status classifies the failure.
	Status Status
	// HTTPStatus is the HTTP status that ended the call (for StatusAuth with
	// Reason "token_request_failed", the token endpoint's), or 0.
	HTTPStatus int
	// Reason is a stable snake_case id, one of the Reason* constants
	// (reasons.go), e.g. ReasonHTTPStatus ("http_status"); include/tank.h
	// lists them all.
	Reason string
	// Message is human-readable and names the URL or argument at fault.
	Message string
	// Body is the start of the response body that came with the failure (a
	// few KiB at most), or "".
	Body string
	// cause is the context's error when a context ended the call, so that
	// errors.Is(err, context.Canceled) holds too.
	cause error
}

// Unwrap gives the context error behind a StatusCancelled, else nil.
func (e *Error) Unwrap() error { return e.cause }

// Error formats the message and the reason id.
func (e *Error) Error() string {
	if e.Reason == "" {
		return "tank: " + e.Message
	}
	return fmt.Sprintf("tank: %s (%s)", e.Message, e.Reason)
}

// Is makes errors.Is(err, sentinel) work for the Err* values below.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadInput:
		return e.Status == StatusBadInput
	case ErrHTTP:
		return e.Status == StatusHTTP
	case ErrNotFound:
		return e.Status == StatusHTTP && e.HTTPStatus == http.StatusNotFound
	case ErrUnauthorized:
		return e.Status == StatusHTTP && e.HTTPStatus == http.StatusUnauthorized
	case ErrDigestMismatch:
		return e.Status == StatusDigestMismatch
	case ErrTransport:
		return e.Status == StatusTransport
	case ErrAuth:
		return e.Status == StatusAuth
	case ErrProtocol:
		return e.Status == StatusProtocol
	case ErrInternal:
		return e.Status == StatusInternal
	case ErrCacheClosed:
		return e.Status == StatusBadInput && e.Reason == reasonCacheClosed
	case ErrCancelled:
		return e.Status == StatusCancelled
	case ErrIO:
		return e.Status == StatusIO
	case ErrLayer:
		return e.Status == StatusLayer
	}
	return false
}

// Sentinels for errors.Is. A failed call never returns one of these itself;
// it returns a *Error that matches them.
var (
	// ErrBadInput: an argument was rejected before any request was sent
	// (malformed digest or reference, repository or tag outside the
	// distribution grammar, a bad platform, a NUL byte in a string, a
	// closed cache), or a settings call was given a bad file: Reason
	// ReasonAuthConfig for an auth file, ReasonCertificate for a PEM file
	// or certs directory. Pull also returns it, with Reason
	// "no_matching_platform", for an index without an image for the
	// platform asked for.
	ErrBadInput = errors.New("tank: bad input")
	// ErrHTTP: the request ended in an HTTP error status, after retries and
	// the token handshake. Error.HTTPStatus says which.
	ErrHTTP = errors.New("tank: HTTP error status")
	// ErrNotFound: the request ended in HTTP 404 (no such manifest or blob).
	ErrNotFound = errors.New("tank: not found (HTTP 404)")
	// ErrUnauthorized: the request ended in HTTP 401 even after the token
	// handshake, or the registry asked for an unsupported auth scheme.
	ErrUnauthorized = errors.New("tank: unauthorized (HTTP 401)")
	// ErrDigestMismatch: a blob's bytes, or a manifest's, did not hash to
	// the digest asked for (or to the registry's Docker-Content-Digest).
	ErrDigestMismatch = errors.New("tank: digest mismatch")
	// ErrTransport: connect, reset, idle timeout, TLS, or an unusable redirect.
	ErrTransport = errors.New("tank: transport failure")
	// ErrAuth: the bearer-token handshake failed (the token server refused
	// the credentials: Reason "token_request_failed", HTTPStatus its
	// status), or a credential helper failed (ReasonCredentialHelper).
	ErrAuth = errors.New("tank: token handshake failed")
	// ErrProtocol: the registry broke the protocol (bad JSON, bad headers, sizes).
	ErrProtocol = errors.New("tank: protocol violation")
	// ErrInternal: a bug inside tank caught at the boundary.
	ErrInternal = errors.New("tank: internal error")
	// ErrCacheClosed: a call was given a Cache after its Close. It also
	// matches ErrBadInput.
	ErrCacheClosed = errors.New("tank: cache is closed")
	// ErrCancelled: the call's context was cancelled or expired. The error
	// also matches context.Canceled or context.DeadlineExceeded.
	ErrCancelled = errors.New("tank: cancelled")
	// ErrIO: a local file or directory could not be read or written; the
	// message names it and the OS error.
	ErrIO = errors.New("tank: local I/O failed")
	// ErrLayer: a layer cannot be applied to a root filesystem (Unpack,
	// Pull with a Rootfs). Error.Reason says why: ReasonUnsafePath,
	// ReasonBadLayer, ReasonDiffIDMismatch or ReasonUnsupportedMediaType;
	// the message names the layer and the entry.
	ErrLayer = errors.New("tank: layer cannot be applied")
)

// PanicError is the error of a call (FetchBlobToFile, Pull) whose progress
// func panicked. The panic is recovered where the func was called, inside
// the call (it must not unwind through libtank's frames), the func is not
// called again, the call is cancelled, and this is returned once the call
// has ended, even if the call had succeeded. runtime.Goexit (t.FailNow and
// the like) cannot be stopped that way: a progress func must not call it.
type PanicError struct {
	// Value is what the progress func panicked with.
	Value interface{}
	// Stack is the calling goroutine's stack at the panic.
	Stack []byte
}

// Error says that a progress func panicked, and with what.
func (e *PanicError) Error() string {
	return fmt.Sprintf("tank: progress func panicked: %v", e.Value)
}

// Unwrap gives Value when the func panicked with an error, else nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// badInput is an error raised on the Go side before calling into C, shaped
// like the ones tank raises itself.
func badInput(reason, format string, args ...interface{}) *Error {
	return &Error{Status: StatusBadInput, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// takeError copies a C error into Go memory and frees it.
func takeError(status C.TankStatus, e *C.TankError) *Error {
	if e == nil {
		// Not expected: every call passes an err out-parameter.
		s := Status(status)
		return &Error{Status: s, Message: "call failed with " + s.String()}
	}
	defer C.tank_error_free(e)
	out := &Error{
		Status:     Status(C.tank_error_status(e)),
		HTTPStatus: int(C.tank_error_http_status(e)),
		Reason:     goString(C.tank_error_reason(e)),
		Message:    goString(C.tank_error_message(e)),
		Body:       goString(C.tank_error_body(e)),
	}
	return out
}

// goString is C.GoString that maps NULL to "".
func goString(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}
