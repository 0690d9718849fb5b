/*
 * tank.h: pull OCI and Docker images from registries.
 *
 * Conventions (README.md, "API conventions", says more):
 * - Fallible calls return a TankStatus. On TANK_OK the out-parameter is
 *   filled; on failure nothing is written to it and, when `err` is not NULL,
 *   *err receives a TankError the caller frees with tank_error_free.
 * - Everything tank hands out has its own release/free function; never call
 *   free() on it. Releasing a zeroed struct and freeing NULL are no-ops.
 * - Strings in are NUL-terminated UTF-8 and are copied; nothing the caller
 *   passes is kept after a call returns. Strings out are NUL-terminated UTF-8.
 * - Calls block the calling thread and may be made from any thread, many at
 *   once. There is no thread-local error state.
 *
 * Reason ids (tank_error_reason), under the status that carries each:
 *   TANK_ERR_BAD_INPUT
 *     bad_input                      an argument was rejected before any request was sent
 *     no_matching_platform           tank_pull: the index has no image for the platform; the message names the
 *                                    platforms it has
 *     auth_config                    an auth file that is missing or malformed; names the file
 *     certificate                    a CA or client certificate file that is not usable; names it
 *     registries_conf                a registries.conf file that is malformed; names the file and the line
 *     blocked                        the registry is blocked by registries.conf
 *   TANK_ERR_HTTP
 *     http_status                    the final answer was an HTTP error status; tank_error_http_status gives it
 *   TANK_ERR_DIGEST_MISMATCH
 *     digest_mismatch                blob bytes != requested digest
 *     manifest_digest_mismatch       manifest bytes != requested digest or Docker-Content-Digest
 *   TANK_ERR_TRANSPORT
 *     connect                        the connection could not be made
 *     timeout                        the connect or the answer took too long
 *     connection_reset               the connection was reset or closed early
 *     tls                            TLS failed: the handshake, the server's certificate, or a client certificate
 *                                    it asked for
 *     request_failed                 any other failure of the request
 *     too_many_redirects             the registry redirected too many times
 *     insecure_redirect              a redirect from https to plain http, or to a scheme that is not http(s)
 *     invalid_redirect               a redirect without a Location header, or with one that cannot be parsed
 *     proxy                          a proxy setting tank cannot use, or a CONNECT refused: tank_error_http_status
 *                                    gives the proxy's status
 *   TANK_ERR_AUTH
 *     token_request_failed           the token endpoint failed; tank_error_http_status gives its status when it
 *                                    answered one
 *     no_token_in_response           the token endpoint's answer holds no usable token
 *     missing_realm                  a Bearer challenge without a realm
 *     invalid_realm                  a realm that is not an http(s) URL (also: an https registry's plain-http
 *                                    realm, never asked)
 *     credential_helper              a docker-credential-* helper failed, was missing, answered nonsense or took
 *                                    over 10 s
 *   TANK_ERR_PROTOCOL
 *     invalid_manifest_json          a manifest or index that is not the JSON it must be
 *     invalid_content_digest_header  a Docker-Content-Digest header that is not a digest
 *     manifest_too_large             a manifest larger than tank accepts
 *     length_mismatch                a body longer or shorter than its declared or expected size
 *     too_large                      a blob past the caller's in-memory limit; no C call sets one yet
 *     range_not_honoured             206 answers from another byte than asked, again and again
 *     invalid_list                   a tags or catalog page that is not the JSON it must be, or names a name over
 *                                    255 bytes
 *     list_too_large                 a tags or catalog page over 4 MiB, or a listing past 100000 pages or 10000000
 *                                    names
 *     invalid_next_link              a Link rel="next" that cannot be parsed, leads to another origin, or back to a
 *                                    page already read
 *   TANK_ERR_INTERNAL
 *     panic                          a panic inside tank, caught at the boundary (a bug in tank)
 *     runtime                        the call could not be run: no runtime or HTTP client, or a blocking call from
 *                                    inside an async runtime
 *     out_of_memory                  the memory for a blob could not be allocated
 *   TANK_ERR_CANCELLED
 *     cancelled                      a TankCancel was triggered
 *   TANK_ERR_IO
 *     io                             a local file or directory; the message names it and the OS error
 *   TANK_ERR_LAYER
 *     unsafe_path                    an entry, whiteout or link target would land outside the root; names it
 *     bad_layer                      not a tar, a corrupt or truncated stream, a header tank refuses
 *     diff_id_mismatch               the uncompressed layer does not hash to the config's diff_id
 *     unsupported_media_type         a layer type tank cannot apply; names it
 */


#ifndef TANK_H
#define TANK_H

/* Generated by cbindgen from src/ffi by build.rs. Do not edit by hand. */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * The version of tank this header comes with (Cargo.toml's); tank_version()
 * gives the version of the library a program runs with. The shared
 * library's soname is libtank.so.1.
 */
#define TANK_VERSION_MAJOR 1
#define TANK_VERSION_MINOR 1
#define TANK_VERSION_PATCH 0
#define TANK_VERSION "1.1.0"
/* One number to compare in #if: 0xMMmmpp, e.g. TANK_VERSION_NUMBER >= 0x000200. */
#define TANK_VERSION_NUMBER ((TANK_VERSION_MAJOR << 16) | (TANK_VERSION_MINOR << 8) | TANK_VERSION_PATCH)


/**
 * `tank_cache_add_mirror`'s capability: blobs, and manifests by digest.
 */
#define TANK_MIRROR_PULL 1u

/**
 * `tank_cache_add_mirror`'s capability: tags, resolved to manifests.
 */
#define TANK_MIRROR_RESOLVE 2u

/**
 * `size` when the caller does not know the blob's size.
 */
#define TANK_SIZE_UNKNOWN UINT64_MAX

/**
 * Owners from the layer (`lchown`, numeric ids), device nodes, and every
 * xattr (`security.capability` included): needs root.
 */
#define TANK_UNPACK_KEEP_OWNERS 1u

/**
 * Replace an existing `rootfs` (the old tree stays whole until the new one
 * is).
 */
#define TANK_UNPACK_REPLACE 2u

/**
 * What a fallible call returns. Codes are never renumbered; a retired code
 * stays reserved.
 */
enum TankStatus
#ifdef __cplusplus
  : uint32_t
#endif // __cplusplus
 {
  TANK_OK = 0,
  /**
   * An argument was rejected before any request (reason `bad_input`).
   */
  TANK_ERR_BAD_INPUT = 1,
  /**
   * The final answer was an HTTP error status (reason `http_status`;
   * `tank_error_http_status` gives it).
   */
  TANK_ERR_HTTP = 2,
  /**
   * Bytes did not hash to their digest (`digest_mismatch` for a blob,
   * `manifest_digest_mismatch` for a manifest).
   */
  TANK_ERR_DIGEST_MISMATCH = 3,
  /**
   * Connect, reset, timeout, TLS, or an unusable redirect.
   */
  TANK_ERR_TRANSPORT = 4,
  /**
   * The bearer-token handshake failed.
   */
  TANK_ERR_AUTH = 5,
  /**
   * The registry broke the protocol (bad JSON, bad headers, sizes).
   */
  TANK_ERR_PROTOCOL = 6,
  /**
   * A bug caught at the boundary, or the runtime could not run the call.
   */
  TANK_ERR_INTERNAL = 7,
  /**
   * The caller cancelled the call through its `TankCancel` (reason
   * `cancelled`).
   */
  TANK_ERR_CANCELLED = 8,
  /**
   * A local file or directory could not be read or written (reason
   * `io`); the message names the path and the OS error.
   */
  TANK_ERR_IO = 9,
  /**
   * A layer cannot be applied to a root filesystem (reasons
   * `unsafe_path`, `bad_layer`, `diff_id_mismatch`,
   * `unsupported_media_type`); the message names the layer and the entry.
   */
  TANK_ERR_LAYER = 10,
};
#ifndef __cplusplus
typedef uint32_t TankStatus;
#endif // __cplusplus

/**
 * A session shared by the calls given it: the bearer tokens they earn
 * (each bound to the origin, scope and identity it was earned for), the
 * credentials and TLS trust set on it, and the HTTP clients that trust
 * needs. Opaque and thread-safe: many threads may use one cache at once. Free it with
 * `tank_cache_free` once no call is using it.
 */
typedef struct TankCache TankCache;

/**
 * A cancel switch for calls in flight. Opaque and thread-safe (a `Box`
 * around a token that is shared by reference count): trigger it from any
 * thread, at any time. Calls given it hold their own reference to the
 * token, so freeing the switch while they run is safe.
 */
typedef struct TankCancel TankCancel;

/**
 * A failed call's details. Opaque; free it with `tank_error_free`.
 */
typedef struct TankError TankError;

/**
 * Bytes owned by tank until `tank_bytes_release`.
 */
typedef struct TankBytes {
  const uint8_t *data;
  size_t len;
  void *_private;
} TankBytes;

/**
 * A list of strings. Filled in by `tank_tags` and `tank_catalog` on
 * `TANK_OK` and owned by the caller until `tank_strings_release`; every
 * pointer in it stays valid until then.
 */
typedef struct TankStrings {
  /**
   * `len` NUL-terminated UTF-8 strings; NULL when `len` is 0.
   */
  const char *const *items;
  size_t len;
  void *_private;
} TankStrings;

/**
 * A content descriptor: a config, a layer, or an index entry.
 */
typedef struct TankDescriptor {
  const char *media_type;
  const char *digest;
  uint64_t size;
  /**
   * The entry's platform (index entries): NULL when the descriptor has no
   * platform; "" for a field missing from a platform that is there.
   * `variant` is NULL whenever it is absent.
   */
  const char *os;
  const char *architecture;
  const char *variant;
  /**
   * OCI 1.1's `artifactType` (a referrer, an artifact's index entry);
   * NULL when absent.
   */
  const char *artifact_type;
  /**
   * The `annotations`, as `annotations_len` key/value pairs sorted by
   * key (byte order): `annotations[2*i]` is a key, `annotations[2*i+1]`
   * its value. NULL when there are none.
   */
  const char *const *annotations;
  size_t annotations_len;
} TankDescriptor;

/**
 * A fetched manifest. Filled in by `tank_manifest` on `TANK_OK` and owned
 * by the caller until `tank_manifest_release`; every pointer in it stays
 * valid until then.
 */
typedef struct TankManifest {
  /**
   * The `Content-Type` as sent, else the JSON's `mediaType`, else the OCI
   * image manifest type.
   */
  const char *media_type;
  /**
   * "sha256:<hex>" (or sha512 when the registry's digest header says so).
   */
  const char *digest;
  /**
   * The bytes exactly as the registry sent them.
   */
  const uint8_t *raw;
  size_t raw_len;
  /**
   * An image manifest's config; NULL for an index.
   */
  const struct TankDescriptor *config;
  /**
   * An image manifest's layers, in order; NULL when there are none.
   */
  const struct TankDescriptor *layers;
  size_t layers_len;
  /**
   * An index's or manifest list's entries, with their platforms; NULL
   * when there are none.
   */
  const struct TankDescriptor *manifests;
  size_t manifests_len;
  /**
   * The manifest's own `artifactType`; NULL when absent.
   */
  const char *artifact_type;
  /**
   * The manifest's own `annotations`, laid out as `TankDescriptor`'s.
   */
  const char *const *annotations;
  size_t annotations_len;
  /**
   * The manifest this one refers to (`subject`, a referrer's); NULL
   * when absent.
   */
  const struct TankDescriptor *subject;
  void *_private;
} TankManifest;

/**
 * Progress of a transfer: `done` bytes of `total` (0 while unknown).
 * Called on the thread that made the call, never on one of tank's: at most
 * every 100 ms and at least once a second while bytes arrive, and once
 * more with `done == total` before a successful return.
 */
typedef void (*TankProgressFn)(void *user, uint64_t done, uint64_t total);

/**
 * A parsed image reference. Filled in by `tank_reference_parse` and owned
 * by the caller until `tank_reference_release`.
 */
typedef struct TankReference {
  /**
   * The host to contact, as `tank_manifest` takes it:
   * "registry-1.docker.io", "ghcr.io", "localhost:5000", or with the
   * reference's "http://"/"https://" prefix when it had one.
   */
  const char *registry;
  /**
   * "library/alpine"
   */
  const char *repository;
  /**
   * "latest" when neither tag nor digest was given; NULL when only a
   * digest was.
   */
  const char *tag;
  /**
   * NULL when absent.
   */
  const char *digest;
  /**
   * Normalized, as people read it: "docker.io/library/alpine:latest".
   */
  const char *name;
  void *_private;
} TankReference;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * The library version, e.g. "1.0.0" (`TANK_VERSION` is the header's). Static; never free it.
 */
const char *tank_version(void);

/**
 * Fetches the blob `digest` from `repo` on `registry`, verified against the
 * digest while it arrives, and writes it to `*out` (only on `TANK_OK`). The
 * buffer is handed over as received, without a copy.
 *
 * `digest` must be `sha256:` + 64 or `sha512:` + 128 lowercase hex digits,
 * else `TANK_ERR_BAD_INPUT` before any request. `cache`, `err`: as for
 * `tank_manifest`.
 *
 * # Safety
 * String arguments are NULL or NUL-terminated; `out` is NULL or writable;
 * `cache` is NULL or live; `err` is NULL or writable.
 */
TankStatus tank_blob(const char *registry,
                     const char *repo,
                     const char *digest,
                     struct TankCache *cache,
                     struct TankBytes *out,
                     struct TankError **err);

/**
 * As `tank_blob`, and `cancel` (NULL: none) ends the call with
 * `TANK_ERR_CANCELLED` when triggered; one already triggered means no
 * request is sent.
 *
 * # Safety
 * As for `tank_blob`; `cancel` is NULL or live.
 */
TankStatus tank_blob_with(const char *registry,
                          const char *repo,
                          const char *digest,
                          struct TankCache *cache,
                          struct TankCancel *cancel,
                          struct TankBytes *out,
                          struct TankError **err);

/**
 * As `tank_blob`, for a blob whose size the caller knows (the descriptor's
 * `size`): a `Content-Length` that differs, or a body that runs past
 * `size`, fails with `TANK_ERR_PROTOCOL` / `length_mismatch` before more
 * than `size` bytes are read. Use it for untrusted registries: without a
 * size, a registry that streams forever is read until memory runs out.
 *
 * # Safety
 * As for `tank_blob`.
 */
TankStatus tank_blob_sized(const char *registry,
                           const char *repo,
                           const char *digest,
                           uint64_t size,
                           struct TankCache *cache,
                           struct TankBytes *out,
                           struct TankError **err);

/**
 * As `tank_blob_sized`, with `cancel` as for `tank_blob_with`.
 *
 * # Safety
 * As for `tank_blob`; `cancel` is NULL or live.
 */
TankStatus tank_blob_sized_with(const char *registry,
                                const char *repo,
                                const char *digest,
                                uint64_t size,
                                struct TankCache *cache,
                                struct TankCancel *cancel,
                                struct TankBytes *out,
                                struct TankError **err);

/**
 * Frees what `tank_blob` filled in and zeroes `*b`. NULL, a zeroed struct,
 * or one already released is a no-op.
 *
 * # Safety
 * `b` is NULL or points at a struct that is zeroed or was filled by
 * `tank_blob`.
 */
void tank_bytes_release(struct TankBytes *b);

/**
 * A cache whose tokens live at most 60 s (less if the issuer says so).
 * Returns NULL only if allocation fails.
 */
struct TankCache *tank_cache_new(void);

/**
 * A cache whose tokens live at most `ttl_ms` milliseconds (less if the
 * issuer says so; 0 caches nothing).
 */
struct TankCache *tank_cache_new_with_ttl(uint64_t ttl_ms);

/**
 * Frees a cache. NULL is a no-op. Calls still running with it keep their
 * own reference, so this never waits and never pulls memory from under
 * them.
 *
 * # Safety
 * `cache` is NULL or a pointer from `tank_cache_new*`, not yet freed.
 */
void tank_cache_free(struct TankCache *cache);

/**
 * Calls through `cache` to `registry` (`host[:port]`, an `http://` or
 * `https://` prefix accepted and ignored; `docker.io`, `index.docker.io`
 * and `registry-1.docker.io` all name Docker Hub) send this user name and
 * password: as Basic credentials to a `Basic` challenge, or to the realm
 * of a `Bearer` one. Replaces any credential set before for `registry`;
 * beats anything loaded from auth files. Never sent over plain HTTP except
 * to a loopback registry. Calls that start afterwards use it.
 *
 * # Safety
 * `cache` is NULL or live; strings are NULL or NUL-terminated; `err` is
 * NULL or writable.
 */
TankStatus tank_cache_set_basic_auth(struct TankCache *cache,
                                     const char *registry,
                                     const char *username,
                                     const char *password,
                                     struct TankError **err);

/**
 * As `tank_cache_set_basic_auth`, with an identity (refresh) token, as
 * `docker login` keeps for registries with OAuth2 token servers.
 *
 * # Safety
 * As for `tank_cache_set_basic_auth`.
 */
TankStatus tank_cache_set_identity_token(struct TankCache *cache,
                                         const char *registry,
                                         const char *token,
                                         struct TankError **err);

/**
 * Adds the credentials of a docker `config.json` or podman `auth.json`
 * behind any loaded before (`auths`, `credHelpers`, `credsStore`; helpers
 * run when a call needs them, at most once per registry). `path` NULL
 * searches, in order: `$REGISTRY_AUTH_FILE`,
 * `$XDG_RUNTIME_DIR/containers/auth.json`,
 * `$XDG_CONFIG_HOME/containers/auth.json` (default
 * `~/.config/containers/auth.json`), `$DOCKER_CONFIG/config.json` (default
 * `~/.docker/config.json`), skipping those that do not exist. A missing or
 * malformed file given explicitly (also through `REGISTRY_AUTH_FILE`) is
 * `TANK_ERR_BAD_INPUT` / `auth_config`, naming the file, never a secret.
 *
 * # Safety
 * As for `tank_cache_set_basic_auth`.
 */
TankStatus tank_cache_load_auth_config(struct TankCache *cache,
                                       const char *path,
                                       struct TankError **err);

/**
 * Trusts the CA certificates in the PEM file `pem_path` for `registry`,
 * or for every registry when `registry` is NULL, beside the system's and
 * Mozilla's roots. A cache with trust of its own uses HTTP clients of its
 * own. CAs set for one registry are trusted for that host only, not for
 * its token realm or redirect targets on other hosts (name those too, or
 * pass NULL). A file with no certificate is `TANK_ERR_BAD_INPUT` /
 * `certificate`.
 *
 * # Safety
 * As for `tank_cache_set_basic_auth`.
 */
TankStatus tank_cache_trust_ca_file(struct TankCache *cache,
                                    const char *registry,
                                    const char *pem_path,
                                    struct TankError **err);

/**
 * Loads a certs directory as docker and podman lay it out:
 * the `.crt` files in `<dir>/<host[:port]>/` are CAs for that registry, and `X.cert` with
 * `X.key` its client certificate (mutual TLS), presented to that host only,
 * never to its token realm or redirect targets elsewhere. Also as
 * containerd lays it out: `<host_port_>` directory names, and a
 * `hosts.toml` in each directory (`_default` for registries without one),
 * which gives the registry's sources (its `[host]` mirrors, then `server`)
 * for calls that start afterwards, and whose `ca`, `client` and
 * `skip_verify` apply to the host each entry names (`skip_verify` to that
 * host only). A later load's directories are looked up after an earlier
 * one's, the first with a directory for the registry deciding, as
 * containerd's `config_path`. `dir` NULL loads
 * `/etc/containerd/certs.d`, `/etc/containers/certs.d`, then
 * `/etc/docker/certs.d`, where they exist.
 * A certificate without its key, or a file that is not PEM, is
 * `TANK_ERR_BAD_INPUT` / `certificate`; a malformed `hosts.toml`,
 * `TANK_ERR_BAD_INPUT` naming it; either way nothing from `dir` is kept.
 *
 * # Safety
 * As for `tank_cache_set_basic_auth`.
 */
TankStatus tank_cache_load_certs_dir(struct TankCache *cache,
                                     const char *dir,
                                     struct TankError **err);

/**
 * Calls through `cache` ask `mirror` for `registry`'s repositories before
 * the registry itself, for what `capabilities` allows
 * (`TANK_MIRROR_PULL | TANK_MIRROR_RESOLVE`; at least one). `mirror` is
 * `https://host[:port][/ns…]` or `host[:port][/ns…]`: https, or plain http
 * for a loopback host (`http://` is refused elsewhere); a path is the
 * namespace the mirror keeps the registry's repositories under
 * (`mirror.example/hub` serves `docker.io/library/alpine` as
 * `hub/library/alpine`). Mirrors of one registry are tried in the order
 * they were added, before those of registries.conf and hosts.toml. A
 * mirror authenticates with the credentials set for its own host, never
 * the registry's. Calls that start afterwards use it.
 *
 * # Safety
 * As for `tank_cache_set_basic_auth`.
 */
TankStatus tank_cache_add_mirror(struct TankCache *cache,
                                 const char *registry,
                                 const char *mirror,
                                 uint32_t capabilities,
                                 struct TankError **err);

/**
 * How calls through `cache` fetch big blobs. A blob of at least
 * `threshold` bytes (0: the default, 64 MiB) from a server that honours
 * `Range` is fetched as several ranges at once over up to `per_blob`
 * separate connections (0: the default, 4; 1: one connection, as before);
 * the bytes are still hashed in order, once, and a call cut short keeps
 * every range that arrived for the next. A pull holds at most `per_host`
 * connections to one host at once for its blobs, layers and ranges
 * together (0: the default, 16). `per_blob` at most 64, `per_host` at
 * most 256 and not below `per_blob`. Calls that start afterwards use it.
 *
 * # Safety
 * `cache` is NULL or a live pointer from `tank_cache_new*`; `err` is NULL
 * or points to writable storage for one pointer.
 */
TankStatus tank_cache_set_connections(struct TankCache *cache,
                                      uint32_t per_blob,
                                      uint32_t per_host,
                                      uint64_t threshold,
                                      struct TankError **err);

/**
 * Reads containers-registries.conf(5), version 2, with its drop-in
 * directories, replacing what an earlier load set. `path` NULL: the
 * default search (`$HOME/.config/containers/registries.conf` if it
 * exists, else `/etc/containers/registries.conf`, then the
 * `registries.conf.d` directories in the man page's order); a missing
 * default file is not an error. A missing named file, or a malformed one,
 * is `TANK_ERR_BAD_INPUT` / `registries_conf`, naming the file and the
 * line. Prefixes, locations, `insecure`, `blocked`,
 * `mirror-by-digest-only` and `[[registry.mirror]]` apply to calls that
 * start afterwards; a blocked registry is `TANK_ERR_BAD_INPUT` /
 * `blocked` before any request. Short names keep Docker's normalization:
 * `unqualified-search-registries`, `short-name-mode` and aliases are
 * read, not used.
 *
 * # Safety
 * As for `tank_cache_set_basic_auth`.
 */
TankStatus tank_cache_load_registries_conf(struct TankCache *cache,
                                           const char *path,
                                           struct TankError **err);

/**
 * A new, untriggered switch. Returns NULL only if allocation fails.
 */
struct TankCancel *tank_cancel_new(void);

/**
 * Ends every call using `c`, now and later, with `TANK_ERR_CANCELLED`
 * (within 500 ms, whatever the call is waiting for). Idempotent; NULL is a
 * no-op. A call that has already returned is not affected.
 *
 * # Safety
 * `c` is NULL or a pointer from `tank_cancel_new`, not yet freed.
 */
void tank_cancel_trigger(struct TankCancel *c);

/**
 * Frees the switch. NULL is a no-op. Calls still using it keep it alive
 * (and can still be cancelled by nobody), so this never waits.
 *
 * # Safety
 * `c` is NULL or a pointer from `tank_cancel_new`, not yet freed.
 */
void tank_cancel_free(struct TankCancel *c);

/**
 * The error's status. `TANK_ERR_BAD_INPUT` for a NULL `e`.
 *
 * # Safety
 * `e` is NULL or a live pointer from a tank call.
 */
TankStatus tank_error_status(const struct TankError *e);

/**
 * The HTTP status that ended the call (also the token endpoint's status
 * for `token_request_failed`), or 0 when none.
 *
 * # Safety
 * `e` is NULL or a live pointer from a tank call.
 */
uint16_t tank_error_http_status(const struct TankError *e);

/**
 * The stable snake_case reason id (see the list at the top of this header).
 * Owned by `e`; valid until `tank_error_free(e)`. NULL for a NULL `e`.
 *
 * # Safety
 * `e` is NULL or a live pointer from a tank call.
 */
const char *tank_error_reason(const struct TankError *e);

/**
 * A human-readable message naming the URL or argument at fault. Owned by
 * `e`; valid until `tank_error_free(e)`. NULL for a NULL `e`.
 *
 * # Safety
 * `e` is NULL or a live pointer from a tank call.
 */
const char *tank_error_message(const struct TankError *e);

/**
 * The start of the response body that came with the failure (at most a
 * few KiB, lossily decoded as UTF-8), or NULL when there was none. Owned
 * by `e`.
 *
 * # Safety
 * `e` is NULL or a live pointer from a tank call.
 */
const char *tank_error_body(const struct TankError *e);

/**
 * Frees an error. NULL is a no-op.
 *
 * # Safety
 * `e` is NULL or a pointer from a tank call, not yet freed.
 */
void tank_error_free(struct TankError *e);

/**
 * Every tag of `repo` on `registry`, all pages followed, in the order the
 * registry gives them, written to `*out` (only on `TANK_OK`).
 *
 * Asks the registry itself (never a mirror the cache knows), `n=1000`
 * tags a page (fewer when the registry says so), and follows each `Link:
 * <…>; rel="next"`, relative or absolute, on the registry's own origin
 * only. A `Link` to another origin, or back to
 * a page already read, is `TANK_ERR_PROTOCOL` (reason `invalid_next_link`)
 * at once; so is a page over 4 MiB, or a listing past 100000 pages or
 * 10000000 tags (`list_too_large`), or a page that is neither the spec's
 * `{"name": …, "tags": […]}` nor Docker Hub's (whose `"tags"` may be
 * `null`: no tags) (`invalid_list`). A repository the registry does not know
 * is `TANK_ERR_HTTP` 404.
 *
 * `registry`, `repo`, `cache` and `err`: as for `tank_manifest`; `cancel`
 * (NULL: none) as for `tank_manifest_with`.
 *
 * # Safety
 * String arguments are NULL or NUL-terminated; `out` is NULL or writable;
 * `cache` and `cancel` are NULL or live; `err` is NULL or writable.
 */
TankStatus tank_tags(const char *registry,
                     const char *repo,
                     struct TankCache *cache,
                     struct TankCancel *cancel,
                     struct TankStrings *out,
                     struct TankError **err);

/**
 * Every repository name in `registry`'s catalog (`GET /v2/_catalog`), all
 * pages followed, in the order the registry gives them, written to `*out`
 * (only on `TANK_OK`).
 *
 * Pages, bounds and errors as for `tank_tags` (the page is
 * `{"repositories": […]}`). The catalog is no repository's: its token
 * (scope `registry:catalog:*`) is asked with the credentials `cache` holds
 * for the registry as a whole, never a namespace's, and is cached apart
 * from the repositories' tokens. A registry that does not open its catalog
 * to the caller (Docker Hub opens it to no one) answers `TANK_ERR_HTTP`,
 * most often 401.
 *
 * # Safety
 * As for `tank_tags`.
 */
TankStatus tank_catalog(const char *registry,
                        struct TankCache *cache,
                        struct TankCancel *cancel,
                        struct TankStrings *out,
                        struct TankError **err);

/**
 * Frees what `tank_tags` or `tank_catalog` filled in and zeroes `*s`.
 * NULL, a zeroed struct, or one already released is a no-op.
 *
 * # Safety
 * `s` is NULL or points at a struct that is zeroed or was filled by
 * `tank_tags` or `tank_catalog`.
 */
void tank_strings_release(struct TankStrings *s);

/**
 * Fetches the manifest `repo:reference` from `registry` and writes it to
 * `*out` (only on `TANK_OK`).
 *
 * `registry` is `host[:port]`, optionally prefixed by `http://` or
 * `https://`; without a prefix, loopback hosts speak HTTP and others HTTPS.
 * `reference` is a tag or a digest; a digest is checked against the bytes.
 * `cache` may be NULL (no token caching). On failure, and when `err` is not
 * NULL, `*err` receives an error the caller frees with `tank_error_free`.
 * Blocks the calling thread; safe from any thread, many at once.
 *
 * # Safety
 * String arguments are NULL or NUL-terminated; `out` is NULL or writable;
 * `cache` is NULL or live; `err` is NULL or writable.
 */
TankStatus tank_manifest(const char *registry,
                         const char *repo,
                         const char *reference,
                         struct TankCache *cache,
                         struct TankManifest *out,
                         struct TankError **err);

/**
 * As `tank_manifest`, and `cancel` (NULL: none) ends the call with
 * `TANK_ERR_CANCELLED` when triggered; one already triggered means no
 * request is sent.
 *
 * # Safety
 * As for `tank_manifest`; `cancel` is NULL or live.
 */
TankStatus tank_manifest_with(const char *registry,
                              const char *repo,
                              const char *reference,
                              struct TankCache *cache,
                              struct TankCancel *cancel,
                              struct TankManifest *out,
                              struct TankError **err);

/**
 * Frees what `tank_manifest` filled in and zeroes `*m`. NULL, a zeroed
 * struct, or one already released is a no-op.
 *
 * # Safety
 * `m` is NULL or points at a struct that is zeroed or was filled by
 * `tank_manifest`.
 */
void tank_manifest_release(struct TankManifest *m);

/**
 * Pulls the image `reference` ("alpine", "ghcr.io/o/r:1.2",
 * "localhost:5000/x@sha256:…") into the OCI image layout directory
 * `layout`, created when missing.
 *
 * - An index (manifest list) gives the image for `platform`
 *   ("os/arch[/variant]"; NULL = this host's); none there is
 *   `TANK_ERR_BAD_INPUT` / `no_matching_platform`, naming the platforms it
 *   has.
 * - The config and the layers arrive `jobs` at once (0 = 4), each
 *   verified, into `blobs/<alg>/<hex>`; partials wait in `ingest/` and
 *   resume on the next pull. Blobs already there are not fetched again.
 * - `index.json` gets one entry for the image, named by the reference's
 *   normalized name (`org.opencontainers.image.ref.name` and
 *   `io.containerd.image.name`), replacing one of that name; it is
 *   replaced in one step, last, so a failed pull leaves the layout valid.
 * - `progress` gets bytes over all of the image's blobs, with the rules of
 *   `tank_blob_to_file`; `cancel` ends the call as it does there.
 * - `out`, when not NULL, receives the image manifest pulled (release it
 *   with `tank_manifest_release`).
 *
 * `cache`, `cancel`, `progress` and `out` may be NULL; a NULL cache still
 * earns one token for the whole pull.
 *
 * # Safety
 * String arguments are NULL (`platform` may be) or NUL-terminated; `cache`
 * and `cancel` are NULL or live; `progress` is NULL or callable with
 * `progress_user`; `out` and `err` are NULL or writable.
 */
TankStatus tank_pull(const char *reference,
                     const char *layout,
                     const char *platform,
                     uint32_t jobs,
                     struct TankCache *cache,
                     struct TankCancel *cancel,
                     TankProgressFn progress,
                     void *progress_user,
                     struct TankManifest *out,
                     struct TankError **err);

/**
 * Parses `reference` ("alpine", "ghcr.io/o/r:1.2",
 * "localhost:5000/x@sha256:…") with Docker's normalization and writes it
 * to `*out` (only on `TANK_OK`). A malformed reference is
 * `TANK_ERR_BAD_INPUT`, naming what is wrong. No request is made.
 *
 * # Safety
 * `reference` is NULL or NUL-terminated; `out` is NULL or writable; `err`
 * is NULL or writable.
 */
TankStatus tank_reference_parse(const char *reference,
                                struct TankReference *out,
                                struct TankError **err);

/**
 * Frees what `tank_reference_parse` filled in and zeroes `*r`. NULL, a
 * zeroed struct, or one already released is a no-op.
 *
 * # Safety
 * `r` is NULL or points at a struct that is zeroed or was filled by
 * `tank_reference_parse`.
 */
void tank_reference_release(struct TankReference *r);

/**
 * The referrers of `digest` in `repo` on `registry` (the manifests whose
 * `subject` is `digest`), as an OCI image index written to `*out` (only
 * on `TANK_OK`; release it with `tank_manifest_release`):
 *
 * - the Referrers API (`GET /v2/<repo>/referrers/<digest>`), else, where
 *   the registry has none (404), the referrers tag `sha256-<hex>` that OCI
 *   1.1 clients push beside it, else an empty index (`manifests_len` 0);
 * - `artifact_type` NULL: every referrer; else only those of that
 *   `artifactType`. The registry is asked to filter, and tank checks each
 *   entry whether it says it did (`OCI-Filters-Applied`) or not.
 *
 * Each entry's `artifact_type` and `annotations` are in `out->manifests`.
 * `out->raw` is the index as the registry sent it, or as tank re-encoded
 * it when entries were dropped (`out->digest` is then its own). `digest`
 * must be a digest ("sha256:<hex>"): anything else is `TANK_ERR_BAD_INPUT`
 * before any request. `cache` and `cancel` may be NULL; `cancel` works as
 * for `tank_manifest_with`.
 *
 * # Safety
 * String arguments are NULL (`artifact_type` may be) or NUL-terminated;
 * `cache` and `cancel` are NULL or live; `out` and `err` are NULL or
 * writable.
 */
TankStatus tank_referrers(const char *registry,
                          const char *repo,
                          const char *digest,
                          const char *artifact_type,
                          struct TankCache *cache,
                          struct TankCancel *cancel,
                          struct TankManifest *out,
                          struct TankError **err);

/**
 * The name of a status code ("TANK_ERR_HTTP"), or "TANK_UNKNOWN_STATUS"
 * for a value that is not one. Takes a plain integer so any value from C
 * is safe. Static; never free it.
 */
const char *tank_status_name(uint32_t status);

/**
 * Fetches the blob `digest` from `repo` on `registry` into the file
 * `path`, verified against the digest as it is written.
 *
 * - The bytes go to `<path>.partial` (same directory) and are hashed as
 *   they are written; memory stays flat for any size. On success the file
 *   is flushed, renamed to `path` in one step, and the directory flushed.
 * - `size` is the descriptor's size, or `TANK_SIZE_UNKNOWN`; a body that
 *   disagrees is `TANK_ERR_PROTOCOL` / `length_mismatch`, bytes that do
 *   not hash to `digest` are `TANK_ERR_DIGEST_MISMATCH`; either way the
 *   partial file is deleted and `path` is not touched.
 * - A failure after bytes arrived (reset, timeout, cancel) keeps the
 *   partial file; the next call for `path` resumes from it with a `Range`
 *   request. A `path` that already holds the blob is `TANK_OK` with no
 *   request. Two calls for one `path` at once download it once (a lock
 *   file `<path>.lock` beside it, removed afterwards).
 * - When the call returns, however it ends, tank has stopped writing its
 *   files: the partial file holds what the next call resumes from, and
 *   may be moved or deleted at once.
 * - tank's own files are never opened through a symlink, and a partial
 *   is mode 0600. A `<path>.partial` that is not a regular file of the
 *   caller's, with one name, that only its owner can write, is not
 *   resumed: a fresh download replaces it. A symlink at `<path>.lock` is
 *   `TANK_ERR_IO`, naming it.
 * - A registry whose `206` answers never start where asked is
 *   `TANK_ERR_PROTOCOL` / `range_not_honoured` after a few requests.
 * - A file or directory the OS refuses is `TANK_ERR_IO`, naming it.
 *
 * `cache`, `cancel` and `progress` may be NULL; `progress_user` is passed
 * to `progress` as it is.
 *
 * # Safety
 * String arguments are NULL or NUL-terminated; `cache` and `cancel` are
 * NULL or live; `progress` is NULL or callable with `progress_user`;
 * `err` is NULL or writable.
 */
TankStatus tank_blob_to_file(const char *registry,
                             const char *repo,
                             const char *digest,
                             uint64_t size,
                             const char *path,
                             struct TankCache *cache,
                             struct TankCancel *cancel,
                             TankProgressFn progress,
                             void *progress_user,
                             struct TankError **err);

/**
 * Unpacks the image `image` of the OCI image layout `layout` into the new
 * directory `rootfs`: its layers applied in order, bottom first, as
 * `umoci unpack --rootless` would (same paths, types, contents, symlink
 * targets, hardlinks, permission bits and times).
 *
 * - `image` is an `index.json` entry's `org.opencontainers.image.ref.name`
 *   exactly as written (`tank_pull` writes the full normalized name,
 *   "docker.io/library/alpine:latest"; skopeo writes what it was given),
 *   else a reference that normalizes to one ("alpine" =
 *   "docker.io/library/alpine:latest"), else the digest "sha256:…" of an
 *   entry. It must name an image manifest: an index, or no entry, is
 *   `TANK_ERR_BAD_INPUT`, and the message lists the names the layout has.
 * - Layer types: OCI `tar`, `tar+gzip`, `tar+zstd` and their
 *   `nondistributable` forms; Docker `rootfs.diff.tar.gzip`,
 *   `rootfs.diff.tar`, `rootfs.foreign.diff.tar.gzip`. Any other is
 *   `TANK_ERR_LAYER` / `unsupported_media_type`, found before any layer is
 *   applied.
 * - Each layer blob is read once, streamed (memory stays flat for any
 *   size): its digest (`TANK_ERR_DIGEST_MISMATCH`) and its diff_id
 *   (`TANK_ERR_LAYER` / `diff_id_mismatch`) are checked in that same pass.
 *   A layer that cannot be applied is `TANK_ERR_LAYER` (`unsafe_path`: an
 *   entry that would land outside the root; `bad_layer`: not a tar, a
 *   corrupt or truncated stream, a header tank refuses); the message
 *   names the layer ("layer 2 (sha256:…)") and the entry.
 * - Nothing lands outside `rootfs`: names and links in a layer resolve as
 *   if `rootfs` were `/`.
 * - `flags`: `TANK_UNPACK_KEEP_OWNERS` (owners from the layer, device
 *   nodes, every xattr; needs root: without it the call is
 *   `TANK_ERR_BAD_INPUT` before any work), `TANK_UNPACK_REPLACE` (replace
 *   an existing `rootfs`). Without these, files belong to the caller,
 *   device nodes are skipped and only `user.*` xattrs are applied. Any
 *   other bit is `TANK_ERR_BAD_INPUT`.
 * - Atomic: the tree is built in a temporary directory beside `rootfs`
 *   (`.<name>.tank-<random>`, same filesystem) and renamed to `rootfs`
 *   only once every layer is applied. On any failure or cancel the
 *   temporary tree is removed and `rootfs` is as it was: absent, or with
 *   `TANK_UNPACK_REPLACE` the old tree, whole (it is exchanged with the
 *   new one in one step, then removed). An existing `rootfs` without
 *   `TANK_UNPACK_REPLACE` is `TANK_ERR_IO` naming it, before any work; a
 *   full disk is `TANK_ERR_IO`.
 * - `progress` gets the layers' compressed bytes read of the sum of their
 *   sizes, with the rules of `tank_blob_to_file`: on the calling thread,
 *   at most every 100 ms, and a final report with `done == total` before
 *   `TANK_OK`.
 * - `cancel` ends the call within 500 ms with `TANK_ERR_CANCELLED`, the
 *   temporary tree removed. When the call returns, however it ends, tank
 *   no longer touches any file.
 *
 * `cancel` and `progress` may be NULL; `progress_user` is passed to
 * `progress` as it is.
 *
 * # Safety
 * String arguments are NULL or NUL-terminated; `cancel` is NULL or live;
 * `progress` is NULL or callable with `progress_user`; `err` is NULL or
 * writable.
 */
TankStatus tank_unpack(const char *layout,
                       const char *image,
                       const char *rootfs,
                       uint32_t flags,
                       struct TankCancel *cancel,
                       TankProgressFn progress,
                       void *progress_user,
                       struct TankError **err);

/**
 * `tank_pull`, then the image unpacked into `rootfs`: each layer is
 * applied as soon as it and every layer below it are in the layout, while
 * the later ones still download.
 *
 * - `image`, `layout`, `platform`, `jobs`, `cache` and `out` are
 *   `tank_pull`'s; `rootfs` and `flags` are `tank_unpack`'s, with its
 *   promises (atomic, safe, verified in one pass). An existing `rootfs`
 *   without `TANK_UNPACK_REPLACE`, or `TANK_UNPACK_KEEP_OWNERS` without
 *   root, fails the call before any request.
 * - The layout ends as `tank_pull` leaves it (every blob verified, the
 *   `index.json` entry written), then the tree is renamed into place. A
 *   layer that cannot be applied ends the downloads too; the blobs already
 *   verified stay in the layout (a later pull does not fetch them again)
 *   and nothing is left at `rootfs`.
 * - `progress` counts each blob byte twice, once downloaded and once
 *   applied, of twice the image's blob bytes (the config counts once
 *   downloaded and once read; a layer the manifest lists twice is applied,
 *   and counted, twice). Same rules as `tank_pull`'s.
 * - `cancel` ends the call within 500 ms, downloads and unpack alike, the
 *   temporary tree removed.
 *
 * # Safety
 * As `tank_pull` and `tank_unpack`.
 */
TankStatus tank_pull_unpack(const char *image,
                            const char *layout,
                            const char *rootfs,
                            const char *platform,
                            uint32_t jobs,
                            uint32_t flags,
                            struct TankCache *cache,
                            struct TankCancel *cancel,
                            TankProgressFn progress,
                            void *progress_user,
                            struct TankManifest *out,
                            struct TankError **err);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* TANK_H */
