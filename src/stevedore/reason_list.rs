// The reason ids: the one list. Not a module: `reason.rs` includes it to
// define the `Reason` enum, and `header_config.rs` includes it (for build.rs
// and tests/header.rs) to write include/tank.h's table of reason ids. Each
// group is the `ErrorKind`, hence the C status, that carries its reasons.
//
// Ids are published (C, Go, Elixir atoms): never change or reuse one. The
// text is the one line the header shows beside the id.
reasons! {
    BadInput {
        BadInput = "bad_input": "an argument was rejected before any request was sent";
        NoMatchingPlatform = "no_matching_platform":
            "tank_pull: the index has no image for the platform; the message names the platforms it has";
        AuthConfig = "auth_config": "an auth file that is missing or malformed; names the file";
        Certificate = "certificate": "a CA or client certificate file that is not usable; names it";
        RegistriesConf = "registries_conf": "a registries.conf file that is malformed; names the file and the line";
        Blocked = "blocked": "the registry is blocked by registries.conf";
    }
    Http {
        HttpStatus = "http_status": "the final answer was an HTTP error status; tank_error_http_status gives it";
    }
    DigestMismatch {
        DigestMismatch = "digest_mismatch": "blob bytes != requested digest";
        ManifestDigestMismatch = "manifest_digest_mismatch":
            "manifest bytes != requested digest or Docker-Content-Digest";
    }
    Transport {
        Connect = "connect": "the connection could not be made";
        Timeout = "timeout": "the connect or the answer took too long";
        ConnectionReset = "connection_reset": "the connection was reset or closed early";
        Tls = "tls": "TLS failed: the handshake, the server's certificate, or a client certificate it asked for";
        RequestFailed = "request_failed": "any other failure of the request";
        TooManyRedirects = "too_many_redirects": "the registry redirected too many times";
        InsecureRedirect = "insecure_redirect": "a redirect from https to plain http, or to a scheme that is not http(s)";
        InvalidRedirect = "invalid_redirect": "a redirect without a Location header, or with one that cannot be parsed";
        Proxy = "proxy":
            "a proxy setting tank cannot use, or a CONNECT refused: tank_error_http_status gives the proxy's status";
    }
    Auth {
        TokenRequestFailed = "token_request_failed":
            "the token endpoint failed; tank_error_http_status gives its status when it answered one";
        NoTokenInResponse = "no_token_in_response": "the token endpoint's answer holds no usable token";
        MissingRealm = "missing_realm": "a Bearer challenge without a realm";
        InvalidRealm = "invalid_realm":
            "a realm that is not an http(s) URL (also: an https registry's plain-http realm, never asked)";
        CredentialHelper = "credential_helper":
            "a docker-credential-* helper failed, was missing, answered nonsense or took over 10 s";
    }
    Protocol {
        InvalidManifestJson = "invalid_manifest_json": "a manifest or index that is not the JSON it must be";
        InvalidContentDigestHeader = "invalid_content_digest_header":
            "a Docker-Content-Digest header that is not a digest";
        ManifestTooLarge = "manifest_too_large": "a manifest larger than tank accepts";
        LengthMismatch = "length_mismatch": "a body longer or shorter than its declared or expected size";
        TooLarge = "too_large": "a blob past the caller's in-memory limit; no C call sets one yet";
        RangeNotHonoured = "range_not_honoured": "206 answers from another byte than asked, again and again";
        InvalidList = "invalid_list":
            "a tags or catalog page that is not the JSON it must be, or names a name over 255 bytes";
        ListTooLarge = "list_too_large":
            "a tags or catalog page over 4 MiB, or a listing past 100000 pages or 10000000 names";
        InvalidNextLink = "invalid_next_link":
            "a Link rel=\"next\" that cannot be parsed, leads to another origin, or back to a page already read";
    }
    Internal {
        Panic = "panic": "a panic inside tank, caught at the boundary (a bug in tank)";
        Runtime = "runtime": "the call could not be run: no runtime or HTTP client, or a blocking call from inside an async runtime";
        OutOfMemory = "out_of_memory": "the memory for a blob could not be allocated";
    }
    Cancelled {
        Cancelled = "cancelled": "a TankCancel was triggered";
    }
    Io {
        Io = "io": "a local file or directory; the message names it and the OS error";
    }
    Layer {
        UnsafePath = "unsafe_path": "an entry, whiteout or link target would land outside the root; names it";
        BadLayer = "bad_layer": "not a tar, a corrupt or truncated stream, a header tank refuses";
        DiffIdMismatch = "diff_id_mismatch": "the uncompressed layer does not hash to the config's diff_id";
        UnsupportedMediaType = "unsupported_media_type": "a layer type tank cannot apply; names it";
    }
}
