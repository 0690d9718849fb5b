defmodule Tank.Image.Registry do
  @moduledoc """
  OCI registry access for image pulls — a thin shim over tank, a Rust
  registry client called through a NIF (`Tank.Native`).

  Tank fetches all OCI data through this module. It preserves the historical
  return contracts so the rest of `Tank.Image` is unchanged:

    * `manifest/4` → `{:ok, info, token_cache}` (an image index / manifest
      list, or a single image manifest);
    * `blob/4` → `{:ok, bytes}` (the image config, or any blob small enough
      to hold in memory: at most `:max_size`, 512 MiB unless `blob/5` says
      otherwise; use `blob_to_file/5` for layers);
    * `blob_to_file/5` → `:ok`, the blob verified in a file (an addition);
    * `pull/3` → `{:ok, info}`, a whole image (the platform's, out of an
      index) in an OCI image layout directory (an addition), and with
      `:rootfs` unpacked into a root filesystem directory as well;
    * `unpack/4` → `{:ok, info}`, an image of an OCI image layout unpacked
      into a root filesystem directory (an addition);
    * `tags/3` → `{:ok, tags}`, every tag of a repository (Stevedore's
      `list_tags`, every page followed);
    * `referrers/4` → `{:ok, info}`, the manifests that refer to a digest,
      as an OCI image index (Stevedore's `referrers`: the Referrers API,
      then the `sha256-<hex>` tag).

  The bearer-token handshake, manifest fetch, and digest-verified blob
  download all live in tank's Rust core now. No scheduler waits on the
  network: the NIF starts the work on tank's threads and the answer comes
  back as a message, so any number of calls run at once, and a caller that
  exits or is killed cancels its call. `blob_to_file/5` streams a blob of
  any size to disk, resumably, with progress messages; `pull/3` does that
  for all of an image's blobs, several at once, into an OCI layout;
  `unpack/4` (or `pull/3` with `:rootfs`) turns an image of such a layout
  into a root filesystem, each layer streamed, verified and applied in one
  pass, safe against layers that try to write outside it.

  The 4th argument is an optional token cache (`t:token_cache/0`, made by
  `new_token_cache/1`) that `Tank.Image` threads across a pull so the bearer
  token is earned once rather than re-fetched per call. One cache may be
  shared by any number of processes at once: concurrent calls that miss the
  same token wait for a single token request. `nil` disables caching, and
  every call runs the handshake again.

  ## Private registries and TLS trust

  A cache also carries who its calls are and what TLS they trust, set when
  `new_token_cache/1` makes it, so every call that is handed the cache
  (`manifest/4`, `blob/4`, `blob_to_file/5`, `pull/3`) uses them:

      cache =
        Tank.Image.Registry.new_token_cache(
          credentials: [
            {"ghcr.io", {"alice", System.fetch_env!("GHCR_TOKEN")}},
            {"registry.example:5000", {:identity_token, refresh_token}}
          ],
          auth_config: :default,
          ca_files: [{"registry.internal:443", "/etc/ssl/internal-ca.pem"}],
          certs_dir: :default
        )

  Tokens are cached per identity: a token earned with credentials is never
  handed to an anonymous call or to another user. A `nil` cache pulls
  anonymously and trusts the system's and Mozilla's roots only. Bad
  options, auth files or PEM files raise `ArgumentError` there and then;
  see `new_token_cache/1`.

  A private repository pulled without the credentials it needs, or with
  ones an htpasswd registry refuses, is `{:manifest_http, 401}` (or
  `{:blob_http, 401}`), as for any final 401; credentials the token realm
  refuses are `{:request_failed, %{reason: :token_request_failed, status:
  401}}`; a credential helper that fails is `{:request_failed, %{reason:
  :credential_helper, kind: :auth}}`; a server certificate no trusted CA
  signed is `{:request_failed, %{reason: :tls}}`.

  ## Errors

  Every function returns `{:error, reason}` rather than raising, with
  `reason` one of:

    * `{:bad_input, message}` — an argument was rejected before any request
      (a malformed digest, a repository or tag outside the distribution
      grammar, a non-string argument);
    * `{:manifest_http, status}` — the manifest request ended in an HTTP
      status (after retries and the token handshake);
    * `{:blob_http, status}` — the blob request ended in an HTTP status;
    * `{:digest_mismatch, :blob}` — the blob's bytes do not hash to the
      requested digest;
    * `{:request_failed, detail}` — anything else: transport, token
      endpoint, an invalid manifest, a manifest whose bytes do not match its
      digest, too many redirects. `detail` is a map with `:reason` (an atom,
      see `t:failure_reason/0`), `:kind` (`:transport`, `:auth`,
      `:protocol`, `:digest_mismatch` or `:internal`), `:message` (names the
      URL at fault) and, when there is one, `:status` (an HTTP status) and
      `:body` (an excerpt of the answer).

  The additions (`blob_to_file/5`, `pull/3`, `unpack/4`) add `:cancelled`,
  `{:io, path, message}`, for `pull/3` `{:no_matching_platform,
  platforms}`, and for `unpack/4` (and `pull/3` with `:rootfs`)
  `{:layer, reason, message}`; their docs say when.

  ## Bounds

  No call waits forever, and none holds more memory than it says:

    * `manifest/5` and `blob/5` take a `:timeout` (the whole call,
      default 10 minutes: well past tank's own bounds on each request, 15 s
      to connect, 15 s of silence, a token answer, a few retries);
    * `blob_to_file/5`, `pull/3` and `unpack/4`, which may rightly run for
      hours, take an `:idle_timeout` instead: how long the call may go without
      progress (default 10 minutes);
    * past either the call is cancelled (its connections close) and the
      answer is `{:error, {:request_failed, %{reason: :timeout, kind:
      :transport}}}`;
    * `blob/5` holds at most `:max_size` bytes (default 512 MiB): a longer
      blob is `{:error, {:request_failed, %{reason: :too_large}}}`, found
      before more than that is read. Layers belong on disk: use
      `blob_to_file/5`, whose memory stays flat for any size.
  """

  @typedoc """
  A fetched manifest: its media type, content digest, raw bytes, and parsed
  JSON. `digest` is always an `"algo:hex"` string (`sha256:…` unless the
  registry says `sha512:…`): computed from `raw` when the registry omits the
  `Docker-Content-Digest` header. `media_type` is the `Content-Type` the
  registry sent, else the JSON's `mediaType`, else the OCI image manifest
  type, so it is never `nil` in practice. `json` is the decoded document:
  maps with string keys, lists, integers, floats, strings, booleans, `nil`.
  """
  @type info() :: %{
          media_type: String.t() | nil,
          digest: String.t(),
          raw: binary(),
          json: map()
        }

  @typedoc """
  An optional token cache threaded across a pull's fetches so the bearer
  token is reused instead of re-earned on every call. `nil` disables
  caching. `manifest/4` echoes it back so the caller can thread it onward —
  it occupies the slot the old client used for the bearer token.

  A cache is a NIF resource (a reference): the garbage collector frees it
  once no process refers to it. It is safe to share between processes. It
  also holds the credentials and TLS trust `new_token_cache/1` was given.
  """
  @type token_cache() :: reference() | nil

  @typedoc """
  Who the calls through a cache are at one registry (`new_token_cache/1`'s
  `:credentials`): a user name and password, or an identity (refresh)
  token.
  """
  @type credential() ::
          {registry :: String.t(), {username :: String.t(), password :: String.t()}}
          | {registry :: String.t(), {:identity_token, String.t()}}

  @typedoc """
  A mirror of a registry (`new_token_cache/1`'s `:mirrors`): asked before
  the registry, for tags (`:resolve`) and content by digest (`:pull`); the
  two-element form means both.
  """
  @type mirror() ::
          {registry :: String.t(), mirror :: String.t()}
          | {registry :: String.t(), mirror :: String.t(), [:pull | :resolve, ...]}

  @typedoc """
  How calls through a cache fetch big blobs (`new_token_cache/1`'s
  `:connections`, `:connections_per_host`, `:ranged_threshold`): `nil` or
  `0` is each one's default (4 connections per blob, 16 per host for a
  pull, ranges from 64 MiB).
  """
  @type connections_option() ::
          {:connections, 1..64 | 0 | nil}
          | {:connections_per_host, 1..256 | 0 | nil}
          | {:ranged_threshold, non_neg_integer() | nil}

  @typedoc """
  The `:reason` of a `{:request_failed, detail}` error: a stable id from
  tank's fixed set (include/tank.h lists them all; a test checks this list
  against it).
  """
  @type failure_reason() ::
          :manifest_digest_mismatch
          | :connect
          | :timeout
          | :connection_reset
          | :tls
          | :request_failed
          | :too_many_redirects
          | :insecure_redirect
          | :invalid_redirect
          | :proxy
          | :token_request_failed
          | :no_token_in_response
          | :missing_realm
          | :invalid_realm
          | :invalid_manifest_json
          | :invalid_content_digest_header
          | :manifest_too_large
          | :length_mismatch
          | :too_large
          | :range_not_honoured
          | :invalid_list
          | :list_too_large
          | :invalid_next_link
          | :out_of_memory
          | :credential_helper
          | :panic
          | :runtime

  @typedoc "What a failed call returns after `:error`."
  @type error_reason() ::
          {:bad_input, String.t()}
          | {:manifest_http, pos_integer()}
          | {:blob_http, pos_integer()}
          | {:digest_mismatch, :blob}
          | {:request_failed,
             %{
               required(:reason) => failure_reason(),
               required(:kind) => atom(),
               required(:message) => String.t(),
               optional(:status) => pos_integer(),
               optional(:body) => String.t()
             }}

  @typedoc """
  Why a layer cannot be applied (`unpack/4`, `pull/3` with `:rootfs`):

    * `:unsafe_path` — an entry would land outside the root (a name that
      climbs, `../x`, a whiteout naming `.` or `..`, a hardlink to
      something outside the root or to a directory);
    * `:bad_layer` — not a tar, a corrupt or truncated stream, a header
      tank refuses (an extension header over 1 MiB, a name longer than
      the OS takes), or a config whose `diff_ids` do not pair with the
      layers;
    * `:diff_id_mismatch` — the uncompressed layer does not hash to the
      config's `rootfs.diff_ids` entry;
    * `:unsupported_media_type` — a layer type tank cannot apply.
  """
  @type layer_reason() :: :unsafe_path | :bad_layer | :diff_id_mismatch | :unsupported_media_type

  @typedoc "What a failed `unpack/4` returns after `:error`."
  @type unpack_error_reason() ::
          {:layer, layer_reason(), String.t()}
          | {:bad_input, String.t()}
          | {:digest_mismatch, :blob}
          | {:request_failed, map()}
          | :cancelled
          | {:io, String.t(), String.t()}

  @typedoc """
  What a failed `tags/3` returns after `:error`: as `t:error_reason/0`,
  with `{:tags_http, status}` for a tags page that ended in an HTTP status
  (404: no such repository).
  """
  @type tags_error_reason() ::
          {:bad_input, String.t()}
          | {:tags_http, pos_integer()}
          | {:request_failed, map()}

  @typedoc """
  What a failed `referrers/4` returns after `:error`: as
  `t:error_reason/0`, with `{:referrers_http, status}` for a Referrers API
  that answered an error other than 404 (which means it has none), and
  `{:manifest_http, status}` for a fallback tag that did (other than 404,
  which means no referrers).
  """
  @type referrers_error_reason() ::
          {:bad_input, String.t()}
          | {:referrers_http, pos_integer()}
          | {:manifest_http, pos_integer()}
          | {:request_failed, map()}

  @typedoc "What a failed `pull/3` returns after `:error`."
  @type pull_error_reason() ::
          error_reason()
          | :cancelled
          | {:io, String.t(), String.t()}
          | {:no_matching_platform, [String.t()]}
          | {:layer, layer_reason(), String.t()}

  @default_ttl_ms 60_000
  @default_jobs 4
  @default_timeout_ms 600_000
  @default_idle_timeout_ms 600_000
  @default_max_size 512 * 1024 * 1024
  # The longest `after` the VM takes.
  @max_wait_ms 4_294_967_295
  # How long a caller whose bound ran out waits for the cancelled call's
  # answer (cancelling ends a call at once; this only guards against an
  # answer that never comes).
  @cancel_grace_ms 5_000

  @doc """
  Fetches the manifest for `repo:reference` from `registry`.

  `registry` is a host with an optional port (`"ghcr.io"`,
  `"localhost:5000"`; loopback hosts speak plain HTTP, every other host
  HTTPS, and an `http://` or `https://` prefix overrides that). `reference`
  is a tag or a `sha256:` digest (then the bytes must hash to it);
  `token_cache` is an optional cache from `new_token_cache/1`. Returns
  `{:ok, info, token_cache}`, echoing the very cache term passed in so the
  caller threads it into the pull's later fetches.

  Options:

    * `:timeout` — how long the whole call may take, in milliseconds
      (default #{@default_timeout_ms}, 10 minutes); past it the call is
      cancelled and the answer is `{:error, {:request_failed, %{reason:
      :timeout}}}`.
  """
  @spec manifest(String.t(), String.t(), String.t(), token_cache(), keyword()) ::
          {:ok, info(), token_cache()} | {:error, error_reason()}
  def manifest(registry, repo, reference, token_cache \\ nil, opts \\ []) do
    opts = Keyword.validate!(opts, timeout: @default_timeout_ms)
    timeout = opts[:timeout]

    with :ok <- check_strings(registry: registry, repo: repo, reference: reference),
         :ok <- check_cache(token_cache),
         :ok <- check_wait(:timeout, timeout),
         {:ok, info} <-
           await(
             &Tank.Native.manifest(&1, registry, repo, reference, token_cache),
             {:total, timeout}
           ) do
      {:ok, info, token_cache}
    end
  end

  @doc """
  Downloads the blob `digest` (a `sha256:` string) from `repo` on `registry`.

  Returns `{:ok, bytes}`. tank verifies the bytes against `digest` while
  they stream in, and drops the `Authorization` header across CDN
  redirects, so the blob arrives already verified and the token is never
  handed to the CDN. A malformed `digest` is `{:error, {:bad_input, _}}`
  before any request is sent.

  The blob is held in memory, so it is bounded: for layers, which may be
  any size, use `blob_to_file/5`.

  Options:

    * `:size` — the descriptor's size, when known: the blob must be exactly
      that long (else `{:error, {:request_failed, %{reason:
      :length_mismatch}}}`), and no more is ever read.
    * `:max_size` — the most bytes the blob may have (default
      #{@default_max_size}, 512 MiB). A longer one, or a `Content-Length` or
      `:size` saying so, is `{:error, {:request_failed, %{reason: :too_large,
      kind: :protocol}}}`, found before more than `:max_size` bytes are read.
    * `:timeout` — as for `manifest/5` (default 10 minutes, the whole
      call); a blob too big to arrive in that time belongs on disk.
  """
  @spec blob(String.t(), String.t(), String.t(), token_cache(), keyword()) ::
          {:ok, binary()} | {:error, error_reason()}
  def blob(registry, repo, digest, token_cache \\ nil, opts \\ []) do
    opts =
      Keyword.validate!(opts, size: nil, max_size: @default_max_size, timeout: @default_timeout_ms)

    {size, max_size, timeout} = {opts[:size], opts[:max_size], opts[:timeout]}

    with :ok <- check_strings(registry: registry, repo: repo, digest: digest),
         :ok <- check_cache(token_cache),
         :ok <- check_size(size),
         :ok <- check_max_size(max_size),
         :ok <- check_wait(:timeout, timeout) do
      await(
        &Tank.Native.blob(&1, registry, repo, digest, token_cache, size, max_size),
        {:total, timeout}
      )
    end
  end

  @doc """
  Downloads the blob `digest` from `repo` on `registry` into the file at
  `path`, verified against the digest as it is written: memory stays flat
  for any size, and no scheduler is held while the bytes move.

  The bytes go to `path <> ".partial"` and are renamed to `path` once
  verified and flushed. A download that fails after bytes arrived (a
  dropped connection, a caller that exited) keeps the partial file and the
  next call for `path` resumes it; a `path` that already holds the blob is
  `:ok` without a request; two calls for one `path` at once download it
  once. A caller that exits or is killed cancels its download.

  Options:

    * `:size` — the descriptor's size, when known (the body must match it).
    * `:token_cache` — a cache from `new_token_cache/1`.
    * `:progress` — a pid that gets `{:tank_progress, path, done, total}`
      at most every 100 ms while bytes arrive, and once with
      `done == total` before `:ok`.
    * `:idle_timeout` — how long the download may go without progress, in
      milliseconds (default #{@default_idle_timeout_ms}, 10 minutes; bytes
      arriving are progress, so a long download is fine). Past it the call
      is cancelled, the partial file kept, and the answer is
      `{:error, {:request_failed, %{reason: :timeout}}}`. Waiting for
      another call that is downloading the same `path` counts as silence.

  Errors are those of `blob/4`, and `{:error, :cancelled}`, and
  `{:error, {:io, path, message}}` when a local file or directory could not
  be written (`path` is the one the OS refused).
  """
  @spec blob_to_file(String.t(), String.t(), String.t(), Path.t(), keyword()) ::
          :ok | {:error, error_reason() | :cancelled | {:io, String.t(), String.t()}}
  def blob_to_file(registry, repo, digest, path, opts \\ []) do
    opts =
      Keyword.validate!(opts,
        size: nil,
        token_cache: nil,
        progress: nil,
        idle_timeout: @default_idle_timeout_ms
      )

    {size, cache, progress} = {opts[:size], opts[:token_cache], opts[:progress]}
    idle_timeout = opts[:idle_timeout]

    with :ok <- check_strings(registry: registry, repo: repo, digest: digest, path: path),
         :ok <- check_cache(cache),
         :ok <- check_size(size),
         :ok <- check_progress(progress),
         :ok <- check_wait(:idle_timeout, idle_timeout) do
      await(
        &Tank.Native.blob_to_file(&1, registry, repo, digest, path, size, cache, progress),
        {:idle, idle_timeout}
      )
    end
  end

  @doc """
  Pulls the image `reference` into the OCI image layout directory `layout`
  (created when missing) and returns the image manifest pulled.

  `reference` is written as for `docker pull`: `"alpine"`,
  `"ghcr.io/org/app:v1"`, `"localhost:5000/app@sha256:…"`, with Docker's
  normalization (no registry host means Docker Hub, where a one-part
  repository is `library/…`; no tag means `latest`). Loopback registries
  speak plain HTTP, every other one HTTPS, and an `http://` or `https://`
  prefix overrides that, as for `manifest/4`.

  When `reference` names an index (a manifest list), the image for
  `:platform` is taken from it. Then the config and the layers arrive,
  `:jobs` at once, each verified into `blobs/<alg>/<hex>`: partials wait in
  `ingest/` and the next pull into `layout` resumes them, and blobs already
  there are not fetched again. The manifests go into `blobs/` too. Last,
  `index.json` gets one entry for the image, named by the normalized
  reference (`org.opencontainers.image.ref.name` and
  `io.containerd.image.name`, e.g. `"docker.io/library/alpine:latest"`),
  replacing an entry of that name and keeping every other; it is replaced
  in one step, so a pull that fails leaves a valid layout. A Docker schema 2
  manifest is stored with OCI media types, as `skopeo copy` stores it (the
  blobs keep their digests, the manifest gets one of its own), so its
  entry's digest is not `info.digest`.

  Options:

    * `:platform` — `"os/arch"` or `"os/arch/variant"` (`"linux/arm64"`,
      `"linux/arm/v7"`); default: the host's. Normalized as containerd does
      (`aarch64` is `arm64`, `arm64` means `arm64/v8`, `arm` means
      `arm/v7`) and then compared exactly; attestation entries
      (`unknown/unknown`) never match. An image manifest that is not in an
      index is pulled whatever its platform.
    * `:jobs` — how many blobs download at once, a positive integer
      (default #{@default_jobs}).
    * `:token_cache` — a cache from `new_token_cache/1`. Without one, the
      pull still earns a single token for all of its requests.
    * `:progress` — a pid that gets `{:tank_progress, reference, done,
      total}`, `reference` being the very string passed in and `done` the
      bytes so far over all of the image's config and layers (`total`, their
      sum), at most every 100 ms, and once with `done == total` before
      `{:ok, info}`.
    * `:idle_timeout` — as for `blob_to_file/5`: how long the pull may go
      without progress (default 10 minutes).
    * `:rootfs` — a directory path: the image is also unpacked there, as
      `unpack/4` unpacks it, each layer applied as soon as it and every
      layer below it are in `layout` while the later ones still download.
      `:progress` then counts each blob byte twice, once downloaded and once
      applied (`total` is twice the blobs' bytes). Default `nil`: the
      layout only.
    * `:keep_owners`, `:replace` — as for `unpack/4`, with `:rootfs`.

  Returns `{:ok, info}`, `info` as `manifest/4` gives it, for the image
  manifest pulled (for an index, the platform's image manifest).

  Errors (`t:pull_error_reason/0`):

    * those of `manifest/4` and `blob/4`: `{:manifest_http, status}` when a
      manifest request ends in an HTTP status, `{:blob_http, status}` and
      `{:digest_mismatch, :blob}` for the config and the layers, and
      `{:request_failed, detail}`;
    * `{:bad_input, message}` — a reference or a platform outside the
      grammar (`"UPPER/x"`: repositories are lower case), an empty
      `layout` or an option of the wrong type, all before any request; or,
      at the end, a `layout` whose `index.json` is not an OCI image index
      (it is left as it was);
    * `{:no_matching_platform, platforms}` — the index has no image for
      the platform; `platforms` lists those it has (`"os/arch[/variant]"`
      as the index writes them, attestations left out);
    * `:cancelled` and `{:io, path, message}`, as for `blob_to_file/5`;
    * with `:rootfs`, those of `unpack/4`: `{:layer, reason, message}`,
      and `{:io, rootfs, message}` for a `rootfs` that exists without
      `replace: true`.

  No scheduler is held while the image arrives, and a caller that exits or
  is killed cancels the pull: its connections close, and what arrived stays
  in `ingest/` for the next pull to resume; with `:rootfs`, the temporary
  tree is removed and `rootfs` is left as it was.
  """
  @spec pull(String.t(), Path.t(), keyword()) :: {:ok, info()} | {:error, pull_error_reason()}
  def pull(reference, layout, opts \\ []) do
    opts =
      Keyword.validate!(opts,
        platform: nil,
        jobs: @default_jobs,
        token_cache: nil,
        progress: nil,
        idle_timeout: @default_idle_timeout_ms,
        rootfs: nil,
        keep_owners: false,
        replace: false
      )

    {platform, jobs} = {opts[:platform], opts[:jobs]}
    {cache, progress, idle_timeout} = {opts[:token_cache], opts[:progress], opts[:idle_timeout]}
    {rootfs, keep_owners, replace} = {opts[:rootfs], opts[:keep_owners], opts[:replace]}

    with :ok <- check_strings(reference: reference, layout: layout),
         :ok <- check_platform(platform),
         :ok <- check_jobs(jobs),
         :ok <- check_cache(cache),
         :ok <- check_progress(progress),
         :ok <- check_wait(:idle_timeout, idle_timeout),
         :ok <- check_rootfs(rootfs),
         :ok <- check_booleans(keep_owners: keep_owners, replace: replace) do
      await(
        &Tank.Native.pull(
          &1,
          reference,
          layout,
          platform,
          jobs,
          cache,
          progress,
          rootfs,
          keep_owners,
          replace
        ),
        {:idle, idle_timeout}
      )
    end
  end

  @doc """
  Unpacks the image `image` of the OCI image layout `layout` into the new
  directory `rootfs`, and returns the image manifest unpacked.

  `image` names an entry of the layout's `index.json`: its
  `org.opencontainers.image.ref.name` exactly as written (`pull/3` writes
  the full normalized reference, `"docker.io/library/alpine:latest"`;
  `skopeo copy` writes what it was given), else a reference that
  normalizes to one (`"alpine"`), or the digest `"sha256:…"` of an entry's
  image manifest. An entry that is an index, or none, is `{:bad_input,
  message}` (the message lists the names the layout has).

  Each layer blob is read once, as it streams: decompressed (`tar`,
  `tar+gzip`, `tar+zstd`, and Docker's layer types), its digest and its
  diff_id (the config's `rootfs.diff_ids`) checked in that same pass, and
  applied in order: whiteouts and opaque directories as OCI says, modes
  (setuid, setgid and sticky too) and modification times, hardlinks and
  symlinks (their targets kept verbatim). Memory stays bounded for any
  layer size. Every path and every link is resolved as if `rootfs` were
  `/`: nothing a layer says reaches outside it.

  The tree is built in a temporary directory beside `rootfs` and renamed
  to `rootfs` when every layer is in; on any failure, cancel or caller exit
  that tree is removed and `rootfs` is left as it was.

  Options:

    * `:keep_owners` — owners and groups from the layer (numeric ids),
      device nodes, and every xattr (`security.capability` too): needs
      root (without it, `{:bad_input, message}` before any work). Default
      `false`: rootless, as `Tank.Image` unpacks: files belong to the VM's
      user, device nodes are skipped, only `user.*` xattrs are applied.
    * `:replace` — replace an existing `rootfs` (the old tree stays whole
      until the new one is, then the two are exchanged in one step and the
      old one removed). Default `false`: an existing `rootfs` is
      `{:io, rootfs, message}`.
    * `:progress` — a pid that gets `{:tank_progress, rootfs, done,
      total}`, `rootfs` being the very string passed in, `done` the layer
      bytes read so far of their total size, at most every 100 ms, and once
      with `done == total` before `{:ok, info}`.
    * `:idle_timeout` — as for `blob_to_file/5` (default 10 minutes).

  Errors (`t:unpack_error_reason/0`):

    * `{:layer, reason, message}` — a layer cannot be applied; `reason`
      (`t:layer_reason/0`) is `:unsafe_path`, `:bad_layer`,
      `:diff_id_mismatch` or `:unsupported_media_type`, `message` says
      which layer and, for `:unsafe_path`, which entry;
    * `{:digest_mismatch, :blob}` — a blob in the layout does not hash to
      its digest;
    * `{:bad_input, message}` — an argument of the wrong type, an `image`
      the layout does not have (or that is an index), `keep_owners: true`
      without root;
    * `{:io, path, message}` — an existing `rootfs` without `replace:
      true`, a layout that cannot be read, a full disk;
    * `:cancelled`, and `{:request_failed, %{reason: :timeout}}` past
      `:idle_timeout`.

  No scheduler is held while the layers are applied, and a caller that
  exits or is killed cancels the unpack: its temporary tree is removed.
  """
  @spec unpack(Path.t(), String.t(), Path.t(), keyword()) ::
          {:ok, info()} | {:error, unpack_error_reason()}
  def unpack(layout, image, rootfs, opts \\ []) do
    opts =
      Keyword.validate!(opts,
        keep_owners: false,
        replace: false,
        progress: nil,
        idle_timeout: @default_idle_timeout_ms
      )

    {keep_owners, replace} = {opts[:keep_owners], opts[:replace]}
    {progress, idle_timeout} = {opts[:progress], opts[:idle_timeout]}

    with :ok <- check_strings(layout: layout, image: image, rootfs: rootfs),
         :ok <- check_booleans(keep_owners: keep_owners, replace: replace),
         :ok <- check_progress(progress),
         :ok <- check_wait(:idle_timeout, idle_timeout) do
      await(
        &Tank.Native.unpack(&1, layout, image, rootfs, keep_owners, replace, progress),
        {:idle, idle_timeout}
      )
    end
  end

  @doc """
  Lists every tag of `repo` on `registry`: `{:ok, tags}`, the tags (strings)
  in the order the registry gives them, every page followed (`Link: <…>;
  rel="next"`, relative or absolute, on the registry's own origin only).

  Errors (`t:tags_error_reason/0`): `{:tags_http, 404}` for a repository
  the registry does not know (`{:tags_http, 401}` for one the caller may
  not see); `{:request_failed, %{reason: :invalid_next_link}}` for a
  `Link` to another origin or back to a page already read,
  `%{reason: :list_too_large}` past 4 MiB a page, 100,000 pages or 10
  million tags, `%{reason: :invalid_list}` for a page that is not a tag
  list; `{:bad_input, message}` before any request.

  Options:

    * `:token_cache` — a cache from `new_token_cache/1` (default `nil`).
    * `:timeout` — as for `manifest/5` (default 10 minutes, the whole
      call, every page).
  """
  @spec tags(String.t(), String.t(), keyword()) ::
          {:ok, [String.t()]} | {:error, tags_error_reason()}
  def tags(registry, repo, opts \\ []) do
    opts = Keyword.validate!(opts, token_cache: nil, timeout: @default_timeout_ms)
    {token_cache, timeout} = {opts[:token_cache], opts[:timeout]}

    with :ok <- check_strings(registry: registry, repo: repo),
         :ok <- check_cache(token_cache),
         :ok <- check_wait(:timeout, timeout) do
      await(&Tank.Native.tags(&1, registry, repo, token_cache), {:total, timeout})
    end
  end

  @doc """
  Finds the referrers of `digest` (a `sha256:` string) in `repo` on
  `registry` — the manifests whose `subject` it is: signatures, SBOMs,
  attestations — as an OCI image index: `{:ok, info}`, `info` shaped as
  `manifest/4`'s, its `json["manifests"]` the referrers' descriptors with
  their `"artifactType"` and `"annotations"`.

  The Referrers API (`GET /v2/<repo>/referrers/<digest>`) is asked first;
  where the registry has none (404), the referrers tag `sha256-<hex>` that
  OCI 1.1 clients push beside the subject; where neither exists, the
  answer is an empty index (`json["manifests"] == []`). `raw` is the index
  as the registry sent it, or as tank re-encoded it when entries were
  dropped (`digest` is then its own).

  Errors (`t:referrers_error_reason/0`): `{:bad_input, message}` for a
  `digest` that is not a digest, before any request; `{:referrers_http,
  status}`, `{:manifest_http, status}` and `{:request_failed, detail}` as
  for `manifest/4`.

  Options:

    * `:artifact_type` — only the referrers of that `artifactType`
      (default `nil`: every one). The registry is asked to filter, and tank
      checks every entry whether the registry says it did or not.
    * `:token_cache` — a cache from `new_token_cache/1` (default `nil`).
    * `:timeout` — as for `manifest/5` (default 10 minutes).
  """
  @spec referrers(String.t(), String.t(), String.t(), keyword()) ::
          {:ok, info()} | {:error, referrers_error_reason()}
  def referrers(registry, repo, digest, opts \\ []) do
    opts =
      Keyword.validate!(opts, artifact_type: nil, token_cache: nil, timeout: @default_timeout_ms)

    {artifact_type, token_cache, timeout} =
      {opts[:artifact_type], opts[:token_cache], opts[:timeout]}

    with :ok <- check_strings(registry: registry, repo: repo, digest: digest),
         :ok <- check_artifact_type(artifact_type),
         :ok <- check_cache(token_cache),
         :ok <- check_wait(:timeout, timeout) do
      await(
        &Tank.Native.referrers(&1, registry, repo, digest, artifact_type, token_cache),
        {:total, timeout}
      )
    end
  end

  defp check_artifact_type(nil), do: :ok
  defp check_artifact_type(type) when is_binary(type) and type != "", do: :ok

  defp check_artifact_type(other) do
    {:error,
     {:bad_input,
      "artifact_type must be a non-empty string or nil (every type), got: #{inspect(other)}"}}
  end

  # Starts a NIF call and waits for its answer, at most `bound`: `{:total,
  # ms}` for the whole call, `{:idle, ms}` since it last showed progress.
  # The handle stays referenced until the answer is in (keep/1 after the
  # receive): were it collected first, the call would be cancelled.
  defp await(start, bound) do
    ref = make_ref()

    case start.(ref) do
      {:ok, handle} ->
        {_, ms} = bound
        wait(ref, handle, bound, ms)

      {:error, _} = error ->
        error
    end
  end

  defp wait(ref, handle, bound, ms) do
    receive do
      {^ref, result} ->
        Tank.Native.keep(handle)
        result
    after
      ms ->
        case bound do
          {:idle, limit} ->
            case Tank.Native.idle_ms(handle) do
              idle when idle >= limit -> give_up(ref, handle, bound)
              idle -> wait(ref, handle, bound, limit - idle)
            end

          {:total, _} ->
            give_up(ref, handle, bound)
        end
    end
  end

  # Cancels the call and takes its answer out of the mailbox: cancelling
  # ends the call at once, so the answer follows. A call that finished just
  # before keeps its own answer.
  defp give_up(ref, handle, bound) do
    Tank.Native.cancel(handle)

    receive do
      {^ref, {:error, :cancelled}} -> timeout_error(bound)
      {^ref, result} -> result
    after
      @cancel_grace_ms -> timeout_error(bound)
    end
  end

  defp timeout_error({kind, ms}) do
    what =
      case kind do
        :total -> "no answer within #{ms} ms (the :timeout option)"
        :idle -> "no answer and no progress for #{ms} ms (the :idle_timeout option)"
      end

    {:error,
     {:request_failed,
      %{reason: :timeout, kind: :transport, message: what <> "; the call was cancelled"}}}
  end

  defp check_wait(_name, ms) when is_integer(ms) and ms > 0 and ms <= @max_wait_ms, do: :ok

  defp check_wait(name, other) do
    {:error,
     {:bad_input,
      "#{name} must be a positive integer of milliseconds (at most #{@max_wait_ms}), " <>
        "got: #{inspect(other)}"}}
  end

  defp check_max_size(max_size) when is_integer(max_size) and max_size >= 0, do: :ok

  defp check_max_size(other),
    do: {:error, {:bad_input, "max_size must be a non-negative integer, got: #{inspect(other)}"}}

  defp check_size(nil), do: :ok
  defp check_size(size) when is_integer(size) and size >= 0, do: :ok

  defp check_size(other),
    do: {:error, {:bad_input, "size must be a non-negative integer or nil, got: #{inspect(other)}"}}

  defp check_platform(nil), do: :ok
  defp check_platform(platform) when is_binary(platform), do: :ok

  defp check_platform(other),
    do: {:error, {:bad_input, "platform must be a string or nil, got: #{inspect(other)}"}}

  defp check_jobs(jobs) when is_integer(jobs) and jobs > 0, do: :ok

  defp check_jobs(other),
    do: {:error, {:bad_input, "jobs must be a positive integer, got: #{inspect(other)}"}}

  defp check_rootfs(nil), do: :ok
  defp check_rootfs(rootfs) when is_binary(rootfs), do: :ok

  defp check_rootfs(other),
    do: {:error, {:bad_input, "rootfs must be a string or nil, got: #{inspect(other)}"}}

  defp check_booleans(args) do
    Enum.find_value(args, :ok, fn
      {_name, value} when is_boolean(value) ->
        nil

      {name, value} ->
        {:error, {:bad_input, "#{name} must be true or false, got: #{inspect(value)}"}}
    end)
  end

  defp check_progress(nil), do: :ok
  defp check_progress(pid) when is_pid(pid), do: :ok

  defp check_progress(other),
    do: {:error, {:bad_input, "progress must be a pid or nil, got: #{inspect(other)}"}}

  @doc """
  Creates a token cache to thread through a pull's `manifest/4`, `blob/4`,
  `blob_to_file/5`, `pull/3`, `tags/3` and `referrers/4` calls, and sets
  who those calls are, what TLS they trust, which mirrors they ask and how
  they fetch big blobs.

  Options:

    * `:ttl` — how long a token stays cached, in milliseconds (default
      #{@default_ttl_ms}, the original's fixed 60 s). A token the issuer
      says expires sooner (`expires_in`, never taken below 60 s) is dropped
      a few seconds before that instead.
    * `:credentials` — `[{registry, {username, password}}]` and
      `[{registry, {:identity_token, token}}]` (`t:credential/0`), default
      `[]`. `registry` is `host[:port]` as the calls name it (an `http://`
      or `https://` prefix is ignored; `"docker.io"`, `"index.docker.io"`
      and `"registry-1.docker.io"` are all Docker Hub). A registry's Bearer
      challenge is answered by asking its token realm as that user (Basic
      auth on the token GET), or with the identity (refresh) token `docker
      login` keeps for OAuth2 token servers (an OAuth2 `refresh_token`
      POST; a server without OAuth2 gets it as the password of the user
      `<token>`, as docker sends it); a `Basic` challenge (an htpasswd
      registry) is answered with the user name and password. A later entry
      for the same registry replaces an earlier one, and these beat
      anything from `:auth_config`.
    * `:auth_config` — `:default` or the path of a docker `config.json` or
      podman `auth.json` whose `auths`, `credHelpers` and `credsStore` say
      who to be (a credential helper, `docker-credential-<name>`, runs when
      a call needs it, at most once per registry per cache). `:default`
      searches, in order, `$REGISTRY_AUTH_FILE`,
      `$XDG_RUNTIME_DIR/containers/auth.json`,
      `$XDG_CONFIG_HOME/containers/auth.json` (default
      `~/.config/containers/auth.json`) and `$DOCKER_CONFIG/config.json`
      (default `~/.docker/config.json`), skipping those that do not exist
      (but `$REGISTRY_AUTH_FILE`, when set, must); the first with an entry
      for a registry wins. The variables (and the `PATH` helpers are found
      on) are the OS process's, as the VM started: OTP keeps
      `System.put_env/2` to itself. Default `nil`: no auth file is read, as
      the original read none.
    * `:ca_files` — `[{registry, pem_path}]` and `[{:all, pem_path}]`:
      trust the CA certificates in the PEM file for that registry, or for
      every registry, beside the system's and Mozilla's roots (no
      `SSL_CERT_FILE` needed). Default `[]`.
    * `:certs_dir` — `:default` or the path of a certs directory laid out
      as docker and podman lay it out: `<dir>/<host[:port]>/*.crt` are CAs
      for that registry, and `X.cert` with `X.key` its client certificate
      (mutual TLS); and as containerd does, with `<host_port_>` names and
      a `hosts.toml` whose `ca`, `client` and `skip_verify` apply to the
      hosts it names. `:default` loads `/etc/containerd/certs.d`,
      `/etc/containers/certs.d` and `/etc/docker/certs.d` where they exist.
      Default `nil`: none.
    * `:registries_conf` — `:default` or the path of a
      containers-registries.conf(5) file (version 2; its drop-in
      directories too): prefixes, `location`, `insecure`, `blocked`,
      `mirror-by-digest-only` and `[[registry.mirror]]` apply to every call
      given the cache. `:default` is the containers search:
      `$HOME/.config/containers/registries.conf` if it exists, else
      `/etc/containers/registries.conf`, then the `registries.conf.d`
      directories; a missing default file is not an error. A call to a
      blocked registry is `{:error, {:bad_input, message}}` before any
      request. Short names keep Docker's normalization:
      `unqualified-search-registries`, `short-name-mode` and aliases are
      read, not used. Default `nil`: none is read.
    * `:mirrors` — `[{registry, mirror}]`, or `{registry, mirror,
      capabilities}` with `capabilities` a non-empty list of `:pull`
      (blobs, manifests by digest) and `:resolve` (tags); `{registry,
      mirror}` means both (`t:mirror/0`). `mirror` is
      `https://host[:port][/namespace]` or `host[:port][/namespace]`
      (https; plain http for a loopback host). A registry's mirrors are
      asked before it, in the order given (and before those of
      `:registries_conf`): one that cannot be reached, answers 404, 429 or
      5xx, or serves bytes that do not match their digest is left for the
      next, the registry last. A mirror authenticates with the credentials
      given for its own host, never the registry's. Default `[]`.
    * `:connections` — how many connections at once may fetch one big
      blob (at most 64; default `nil`, which is 4; `1` turns ranges off).
      A blob of at least `:ranged_threshold` bytes whose server honours
      `Range` (a CDN a registry redirects to, typically, where each
      connection is rate-capped) is fetched as ranges over that many
      separate connections, still verified in one pass, in order, and
      resumable range by range (`blob_to_file/5`, `pull/3`). A server that
      ignores `Range` or answers it wrongly gets one connection, with no
      byte fetched twice.
    * `:connections_per_host` — the most connections a `pull/3` holds to one
      host at once, its layers and their ranges together (at most 256 and
      not below `:connections`; default `nil`, which is 16).
    * `:ranged_threshold` — in bytes, the smallest blob fetched as ranges
      (default `nil`, which is 64 MiB). For these three options `0` also
      means the default.

  Credentials go only to the registry and the realm its challenge names,
  only over HTTPS (or plain HTTP to a loopback registry), and never appear
  in an error's message or body excerpt. A cache with TLS trust of its own
  opens connections of its own for the registries it concerns. A `nil`
  cache has no credentials and trusts the defaults only.

  Bad values raise `ArgumentError`, as `:ttl` does: an option of the wrong
  shape (a bad credential entry is described by its position and registry,
  never shown), a registry name outside the grammar, an auth file that is
  missing or malformed, a PEM file with no certificate, a certs directory
  that does not exist or holds a `.cert` without its `.key`, a
  registries.conf that is missing or malformed (the message names its file
  and line), a mirror that is neither https nor on a loopback host,
  connection settings that are not non-negative integers or are out of
  their bounds (named as `tank_cache_set_connections` names them:
  `per_blob` is `:connections`, `per_host` `:connections_per_host`). The
  message names the option and the file at fault and never holds a
  secret. (A
  client certificate and a key that do not go together are found when a
  call first needs that registry: `{:error, {:bad_input, message}}`.)

  The cache is freed by the garbage collector once unreferenced; there is
  nothing to close.
  """
  @spec new_token_cache([connections_option() | {atom(), term()}]) :: reference()
  def new_token_cache(opts \\ []) do
    opts =
      Keyword.validate!(opts,
        ttl: @default_ttl_ms,
        credentials: [],
        auth_config: nil,
        ca_files: [],
        certs_dir: nil,
        registries_conf: nil,
        mirrors: [],
        connections: nil,
        connections_per_host: nil,
        ranged_threshold: nil
      )

    ttl = check_ttl!(opts[:ttl])
    credentials = check_credentials!(opts[:credentials])
    auth_config = check_place!(:auth_config, opts[:auth_config])
    ca_files = check_ca_files!(opts[:ca_files])
    certs_dir = check_place!(:certs_dir, opts[:certs_dir])
    registries_conf = check_place!(:registries_conf, opts[:registries_conf])
    mirrors = check_mirrors!(opts[:mirrors])

    connections =
      {check_count!(:connections, opts[:connections]),
       check_count!(:connections_per_host, opts[:connections_per_host]),
       check_count!(:ranged_threshold, opts[:ranged_threshold])}

    made =
      Tank.Native.new_token_cache(
        ttl,
        credentials,
        auth_config,
        ca_files,
        certs_dir,
        registries_conf,
        mirrors,
        connections
      )

    case made do
      {:ok, cache} -> cache
      {:error, {_reason, message}} -> raise ArgumentError, "new_token_cache/1: " <> message
    end
  end

  defp check_ttl!(ttl) when is_integer(ttl) and ttl >= 0, do: ttl

  defp check_ttl!(other) do
    raise ArgumentError,
          "new_token_cache/1: :ttl must be a non-negative integer (milliseconds), got: " <>
            inspect(other)
  end

  # nil is the default, as 0 is for the NIF; the upper bounds are the
  # NIF's (tank_cache_set_connections's), so that they are stated once.
  defp check_count!(_name, nil), do: 0
  defp check_count!(_name, n) when is_integer(n) and n >= 0, do: n

  defp check_count!(name, other) do
    raise ArgumentError,
          "new_token_cache/1: #{inspect(name)} must be nil or a non-negative integer, got: " <>
            inspect(other)
  end

  # Into the NIF's {registry, :basic, username, password} and
  # {registry, :identity_token, token, nil}. A bad entry is never inspected:
  # it may hold a password.
  defp check_credentials!(credentials) when is_list(credentials) do
    credentials
    |> Enum.with_index(1)
    |> Enum.map(fn
      {{registry, {:identity_token, token}}, _}
      when is_binary(registry) and registry != "" and is_binary(token) and token != "" ->
        {registry, :identity_token, token, nil}

      {{registry, {username, password}}, _}
      when is_binary(registry) and registry != "" and is_binary(username) and username != "" and
             is_binary(password) ->
        {registry, :basic, username, password}

      {entry, n} ->
        for_registry =
          case entry do
            {registry, _} when is_binary(registry) -> " (for #{inspect(registry)})"
            _ -> ""
          end

        raise ArgumentError,
              "new_token_cache/1: :credentials entry #{n}#{for_registry} is not " <>
                "{registry, {username, password}} or {registry, {:identity_token, token}} " <>
                "with non-empty strings (a password may be empty); " <>
                "its value is not shown, as it may hold a secret"
    end)
  end

  defp check_credentials!(_other) do
    raise ArgumentError,
          "new_token_cache/1: :credentials must be a list of {registry, {username, password}} " <>
            "or {registry, {:identity_token, token}} (its value is not shown, as it may hold a secret)"
  end

  defp check_place!(_name, nil), do: nil
  defp check_place!(_name, :default), do: :default
  defp check_place!(_name, path) when is_binary(path) and path != "", do: path

  defp check_place!(name, other) do
    raise ArgumentError,
          "new_token_cache/1: #{inspect(name)} must be :default or a non-empty path (a string), " <>
            "got: " <> inspect(other)
  end

  defp check_ca_files!(ca_files) when is_list(ca_files) do
    Enum.map(ca_files, fn
      {:all, path} when is_binary(path) and path != "" ->
        {nil, path}

      {registry, path}
      when is_binary(registry) and registry != "" and is_binary(path) and path != "" ->
        {registry, path}

      other ->
        raise ArgumentError,
              "new_token_cache/1: :ca_files entries must be {registry, pem_path} or " <>
                "{:all, pem_path} with non-empty strings, got: " <> inspect(other)
    end)
  end

  defp check_ca_files!(other) do
    raise ArgumentError,
          "new_token_cache/1: :ca_files must be a list of {registry, pem_path} or " <>
            "{:all, pem_path}, got: " <> inspect(other)
  end

  # Into the NIF's {registry, mirror, pull, resolve}.
  defp check_mirrors!(mirrors) when is_list(mirrors) do
    Enum.map(mirrors, fn
      {registry, mirror} when is_binary(registry) and is_binary(mirror) ->
        {registry, mirror, true, true}

      {registry, mirror, [_ | _] = caps} = entry when is_binary(registry) and is_binary(mirror) ->
        unless Enum.all?(caps, &(&1 in [:pull, :resolve])), do: bad_mirror!(entry)
        {registry, mirror, :pull in caps, :resolve in caps}

      other ->
        bad_mirror!(other)
    end)
  end

  defp check_mirrors!(other), do: bad_mirror!(other)

  defp bad_mirror!(what) do
    raise ArgumentError,
          "new_token_cache/1: :mirrors must be a list of {registry, mirror} or " <>
            "{registry, mirror, capabilities} (strings; capabilities a non-empty list of " <>
            ":pull and :resolve), got: " <> inspect(what)
  end

  defp check_strings(args) do
    Enum.find_value(args, :ok, fn
      {_name, value} when is_binary(value) ->
        nil

      {name, value} ->
        {:error, {:bad_input, "#{name} must be a string, got: #{inspect(value)}"}}
    end)
  end

  defp check_cache(nil), do: :ok
  defp check_cache(cache) when is_reference(cache), do: :ok

  defp check_cache(other) do
    {:error,
     {:bad_input,
      "token_cache must be nil or a cache from Tank.Image.Registry.new_token_cache/1, got: " <>
        inspect(other)}}
  end
end
