package tank

// The reason ids an Error.Reason holds: tank's published snake_case ids,
// listed once here, each with the Status that carries it. include/tank.h's
// table (generated from the core's list) is the source; reasons_test.go
// checks this list against it, so the two cannot drift.
const (
	// StatusBadInput.

	// ReasonBadInput: an argument was rejected before any request was sent.
	ReasonBadInput = "bad_input"
	// ReasonNoMatchingPlatform: Pull found an index without an image for the
	// platform asked for; the message names the platforms it has.
	ReasonNoMatchingPlatform = "no_matching_platform"
	// ReasonAuthConfig (StatusBadInput): an auth file (docker config.json,
	// podman auth.json) is missing or malformed. The message names the
	// file, never a secret in it.
	ReasonAuthConfig = "auth_config"
	// ReasonCertificate (StatusBadInput): a PEM file holds no certificate,
	// is not PEM, or a certs directory has a client certificate without
	// its key (or the directory cannot be read).
	ReasonCertificate = "certificate"
	// ReasonRegistriesConf (StatusBadInput): a registries.conf file is
	// malformed; the message names the file and the line.
	ReasonRegistriesConf = "registries_conf"
	// ReasonBlocked (StatusBadInput): the registry is blocked by
	// registries.conf; nothing was asked of it.
	ReasonBlocked = "blocked"

	// StatusHTTP.

	// ReasonHTTPStatus: the final answer was an HTTP error status
	// (Error.HTTPStatus).
	ReasonHTTPStatus = "http_status"

	// StatusDigestMismatch.

	// ReasonDigestMismatch: a blob's bytes did not hash to its digest.
	ReasonDigestMismatch = "digest_mismatch"
	// ReasonManifestDigestMismatch: a manifest's bytes did not hash to the
	// digest asked for or to the registry's Docker-Content-Digest.
	ReasonManifestDigestMismatch = "manifest_digest_mismatch"

	// StatusTransport.

	ReasonConnect          = "connect"
	ReasonTimeout          = "timeout"
	ReasonConnectionReset  = "connection_reset"
	ReasonTLS              = "tls"
	ReasonRequestFailed    = "request_failed"
	ReasonTooManyRedirects = "too_many_redirects"
	ReasonInsecureRedirect = "insecure_redirect"
	ReasonInvalidRedirect  = "invalid_redirect"
	// ReasonProxy: a proxy setting tank cannot use, or a CONNECT the proxy
	// refused (Error.HTTPStatus is its status).
	ReasonProxy = "proxy"

	// StatusAuth.

	// ReasonTokenRequestFailed: the token endpoint failed; Error.HTTPStatus
	// is its status when it answered one.
	ReasonTokenRequestFailed = "token_request_failed"
	ReasonNoTokenInResponse  = "no_token_in_response"
	ReasonMissingRealm       = "missing_realm"
	ReasonInvalidRealm       = "invalid_realm"
	// ReasonCredentialHelper (StatusAuth): a docker-credential-* helper
	// named by an auth file could not run, failed, or printed no usable
	// answer. It is returned by the fetch that needed the credentials, not
	// by LoadAuthConfig.
	ReasonCredentialHelper = "credential_helper"

	// StatusProtocol.

	ReasonInvalidManifestJSON        = "invalid_manifest_json"
	ReasonInvalidContentDigestHeader = "invalid_content_digest_header"
	ReasonManifestTooLarge           = "manifest_too_large"
	ReasonLengthMismatch             = "length_mismatch"
	ReasonTooLarge                   = "too_large"
	ReasonRangeNotHonoured           = "range_not_honoured"
	// ReasonInvalidList: a tags or catalog page that is not the JSON it
	// must be, or names a name over 255 bytes.
	ReasonInvalidList = "invalid_list"
	// ReasonListTooLarge: a tags or catalog page over 4 MiB, or a listing
	// past 100000 pages or 10000000 names.
	ReasonListTooLarge = "list_too_large"
	// ReasonInvalidNextLink: a Link rel="next" that cannot be parsed, leads
	// to another origin, or back to a page already read.
	ReasonInvalidNextLink = "invalid_next_link"

	// StatusInternal.

	ReasonPanic       = "panic"
	ReasonRuntime     = "runtime"
	ReasonOutOfMemory = "out_of_memory"

	// StatusCancelled.

	ReasonCancelled = "cancelled"

	// StatusIO.

	ReasonIO = "io"

	// StatusLayer: the reasons of an error matching ErrLayer.

	// ReasonUnsafePath: an entry, a whiteout or a link target would land
	// outside the root filesystem (e.g. "../x"); the message names it.
	ReasonUnsafePath = "unsafe_path"
	// ReasonBadLayer: not a tar, a corrupt or truncated stream, a header
	// tank refuses (a PAX or long-name header over 1 MiB, a name longer
	// than the OS takes), or a config whose diff_ids do not pair with the
	// layers.
	ReasonBadLayer = "bad_layer"
	// ReasonDiffIDMismatch: the uncompressed layer does not hash to its
	// diff_id in the image config (rootfs.diff_ids).
	ReasonDiffIDMismatch = "diff_id_mismatch"
	// ReasonUnsupportedMediaType: a layer type tank cannot apply; the
	// message names it.
	ReasonUnsupportedMediaType = "unsupported_media_type"
)

// reasonStatuses is the list: every reason id libtank can return, with
// the status that carries it.
var reasonStatuses = map[string]Status{
	ReasonBadInput:                   StatusBadInput,
	ReasonNoMatchingPlatform:         StatusBadInput,
	ReasonAuthConfig:                 StatusBadInput,
	ReasonCertificate:                StatusBadInput,
	ReasonRegistriesConf:             StatusBadInput,
	ReasonBlocked:                    StatusBadInput,
	ReasonHTTPStatus:                 StatusHTTP,
	ReasonDigestMismatch:             StatusDigestMismatch,
	ReasonManifestDigestMismatch:     StatusDigestMismatch,
	ReasonConnect:                    StatusTransport,
	ReasonTimeout:                    StatusTransport,
	ReasonConnectionReset:            StatusTransport,
	ReasonTLS:                        StatusTransport,
	ReasonRequestFailed:              StatusTransport,
	ReasonTooManyRedirects:           StatusTransport,
	ReasonInsecureRedirect:           StatusTransport,
	ReasonInvalidRedirect:            StatusTransport,
	ReasonProxy:                      StatusTransport,
	ReasonTokenRequestFailed:         StatusAuth,
	ReasonNoTokenInResponse:          StatusAuth,
	ReasonMissingRealm:               StatusAuth,
	ReasonInvalidRealm:               StatusAuth,
	ReasonCredentialHelper:           StatusAuth,
	ReasonInvalidManifestJSON:        StatusProtocol,
	ReasonInvalidContentDigestHeader: StatusProtocol,
	ReasonManifestTooLarge:           StatusProtocol,
	ReasonLengthMismatch:             StatusProtocol,
	ReasonTooLarge:                   StatusProtocol,
	ReasonRangeNotHonoured:           StatusProtocol,
	ReasonInvalidList:                StatusProtocol,
	ReasonListTooLarge:               StatusProtocol,
	ReasonInvalidNextLink:            StatusProtocol,
	ReasonPanic:                      StatusInternal,
	ReasonRuntime:                    StatusInternal,
	ReasonOutOfMemory:                StatusInternal,
	ReasonCancelled:                  StatusCancelled,
	ReasonIO:                         StatusIO,
	ReasonUnsafePath:                 StatusLayer,
	ReasonBadLayer:                   StatusLayer,
	ReasonDiffIDMismatch:             StatusLayer,
	ReasonUnsupportedMediaType:       StatusLayer,
}

// reasonCacheClosed is the binding's own: a Cache used after Close
// (StatusBadInput), raised in Go before any call into libtank.
const reasonCacheClosed = "cache_closed"
