defmodule Tank.Native do
  @moduledoc """
  The Rust NIF behind `Tank.Image.Registry` (crate `native/`, built by
  `mix compile` into `priv/native/libtank_nif.so`). Call
  `Tank.Image.Registry` instead: it documents the contracts.

  `manifest/5`, `blob/7`, `blob_to_file/8`, `pull/10`, `unpack/7`, `tags/4`
  and `referrers/6` return at once with
  `{:ok, handle}` (or `{:error, reason}` for bad arguments); the answer
  arrives as a message `{ref, result}`, `ref` being their first argument.
  No scheduler is held meanwhile. The caller keeps `handle` until it has
  the answer (`keep/1` after the `receive`): once the handle is collected,
  because the caller exited or was killed, the call is cancelled.
  `cancel/1` cancels it at once (the answer, `{:error, :cancelled}` unless
  the call had just finished, still comes), and `idle_ms/1` says how long
  ago the call started or last reported progress.
  `new_token_cache/8` returns `{:ok, cache}`, a NIF resource (freed by the
  garbage collector). A panic inside the NIF comes back as
  `{:error, {:request_failed, %{reason: :panic}}}`.
  """

  @on_load :load_nif

  @doc false
  def load_nif do
    # On a fresh checkout the first compile loads this module before Mix has
    # linked priv/ into _build, so the checkout's own priv/ is the fallback.
    installed = :filename.join(:code.priv_dir(:tank), ~c"native/libtank_nif")
    in_checkout = String.to_charlist(Path.expand("../../priv/native/libtank_nif", __DIR__))

    case :erlang.load_nif(installed, 0) do
      :ok ->
        :ok

      {:error, {:load_failed, _}} = first ->
        case :erlang.load_nif(in_checkout, 0) do
          :ok -> :ok
          {:error, _} -> warn(installed, first)
        end

      error ->
        warn(installed, error)
    end
  end

  defp warn(path, {:error, {reason, text}}) do
    IO.warn("Tank.Native: cannot load #{path}.so (#{reason}): #{text}; run `mix compile`")
    {:error, reason}
  end

  @doc "Starts a manifest fetch; the answer is `{ref, {:ok, info} | {:error, reason}}`."
  def manifest(_ref, _registry, _repo, _reference, _token_cache),
    do: :erlang.nif_error(:nif_not_loaded)

  @doc """
  Starts a blob fetch; the answer is `{ref, {:ok, bytes} | {:error,
  reason}}`. `size` is the exact size or nil; `max_size` (an integer) the
  most the blob may be, else `too_large`.
  """
  def blob(_ref, _registry, _repo, _digest, _token_cache, _size, _max_size),
    do: :erlang.nif_error(:nif_not_loaded)

  @doc """
  Starts a blob download into `path`; the answer is `{ref, :ok | {:error,
  reason}}`, and `progress` (a pid or nil) gets
  `{:tank_progress, path, done, total}` meanwhile.
  """
  def blob_to_file(_ref, _registry, _repo, _digest, _path, _size, _token_cache, _progress),
    do: :erlang.nif_error(:nif_not_loaded)

  @doc """
  Starts a whole-image pull into the OCI layout `layout`; the answer is
  `{ref, {:ok, info} | {:error, reason}}`, and `progress` (a pid or nil)
  gets `{:tank_progress, reference, done, total}` meanwhile. `platform` is
  a string or nil, `jobs` a positive integer. `rootfs` (a path or nil)
  also unpacks the image there as its layers arrive, with `keep_owners`
  and `replace` (booleans) as for `unpack/7`.
  """
  def pull(
        _ref,
        _reference,
        _layout,
        _platform,
        _jobs,
        _token_cache,
        _progress,
        _rootfs,
        _keep_owners,
        _replace
      ),
      do: :erlang.nif_error(:nif_not_loaded)

  @doc """
  Starts unpacking the image `image` of the OCI layout `layout` into the
  new directory `rootfs`; the answer is `{ref, {:ok, info} | {:error,
  reason}}`, and `progress` (a pid or nil) gets `{:tank_progress, rootfs,
  done, total}` meanwhile. `keep_owners` and `replace` are booleans.
  """
  def unpack(_ref, _layout, _image, _rootfs, _keep_owners, _replace, _progress),
    do: :erlang.nif_error(:nif_not_loaded)

  @doc """
  Starts listing every tag of `repo`, all pages followed; the answer is
  `{ref, {:ok, [tag]} | {:error, reason}}`.
  """
  def tags(_ref, _registry, _repo, _token_cache), do: :erlang.nif_error(:nif_not_loaded)

  @doc """
  Starts finding the referrers of `digest` in `repo`; the answer is
  `{ref, {:ok, info} | {:error, reason}}`, `info` the index as for
  `manifest/5`. `artifact_type` is a string or nil (every type).
  """
  def referrers(_ref, _registry, _repo, _digest, _artifact_type, _token_cache),
    do: :erlang.nif_error(:nif_not_loaded)

  @doc "Keeps a call handle alive until its answer has been received."
  def keep(_handle), do: :erlang.nif_error(:nif_not_loaded)

  @doc "Cancels the call now; its answer still comes."
  def cancel(_handle), do: :erlang.nif_error(:nif_not_loaded)

  @doc "Milliseconds since the call started or last reported progress."
  def idle_ms(_handle), do: :erlang.nif_error(:nif_not_loaded)

  @doc """
  A new token cache whose entries live at most `ttl_ms` milliseconds, with
  its credentials and TLS trust: `credentials` a list of
  `{registry, :basic, username, password}` and
  `{registry, :identity_token, token, nil}`; `auth_config` and `certs_dir`
  nil, `:default` or a path; `ca_files` a list of `{registry | nil, path}`
  (nil: every registry); `registries_conf` nil, `:default` or a path;
  `mirrors` a list of `{registry, mirror, pull, resolve}` (`pull` and
  `resolve` booleans); `connections` `{per_blob, per_host, threshold}`,
  non-negative integers (0: each one's default), checked as
  `tank_cache_set_connections` checks them. Returns `{:ok, cache}` or
  `{:error, {reason, message}}` (`reason` the core's id, e.g.
  `:auth_config`, `:certificate`, `:registries_conf`, `:bad_input`). Runs
  on a dirty I/O scheduler: it reads files.
  """
  def new_token_cache(
        _ttl_ms,
        _credentials,
        _auth_config,
        _ca_files,
        _certs_dir,
        _registries_conf,
        _mirrors,
        _connections
      ),
      do: :erlang.nif_error(:nif_not_loaded)

  @doc """
  `%{token_caches: n, buffers: n, buffer_bytes: n}`: token caches and
  zero-copy blob buffers the VM has not freed yet.
  """
  def resource_counts, do: :erlang.nif_error(:nif_not_loaded)

  @doc false
  # Panics inside the NIF's guard on purpose; the tests use it to show a
  # panic becomes an error tuple.
  def debug_panic, do: :erlang.nif_error(:nif_not_loaded)
end
