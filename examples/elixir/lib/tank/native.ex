defmodule Tank.Native do
  @moduledoc """
  The Rust NIF behind `Tank.Image.Registry` (crate `native/`, built by
  `mix compile` into `priv/native/libtank_nif.so`). Call
  `Tank.Image.Registry` instead: it documents the contracts.

  `manifest/4` and `blob/4` run on dirty I/O schedulers and block only
  that scheduler thread while tank's hidden runtime does the I/O.
  `new_token_cache/1` returns a NIF resource (freed by the garbage
  collector). A panic inside the NIF comes back as
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

  @doc "Fetches a manifest: `{:ok, info}` or `{:error, reason}`."
  def manifest(_registry, _repo, _reference, _token_cache), do: :erlang.nif_error(:nif_not_loaded)

  @doc "Fetches a blob, verified: `{:ok, bytes}` or `{:error, reason}`."
  def blob(_registry, _repo, _digest, _token_cache), do: :erlang.nif_error(:nif_not_loaded)

  @doc "A new token cache whose entries live at most `ttl_ms` milliseconds."
  def new_token_cache(_ttl_ms), do: :erlang.nif_error(:nif_not_loaded)

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
