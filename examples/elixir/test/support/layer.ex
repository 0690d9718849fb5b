defmodule Tank.Test.Layer do
  @moduledoc """
  Layers and OCI image layouts made at test time, byte by byte, for
  `unpack/4`'s hostile cases: `:erl_tar` refuses to write names such as
  `../escape`, so the 512-byte ustar headers are written here.
  """

  @oci_manifest "application/vnd.oci.image.manifest.v1+json"
  @oci_config "application/vnd.oci.image.config.v1+json"
  @oci_index "application/vnd.oci.image.index.v1+json"
  @tar "application/vnd.oci.image.layer.v1.tar"
  @block 512

  def tar_media_type, do: @tar

  @doc """
  A tar of `entries`, each `{:file, name, content}`, `{:file, name, content,
  opts}`, `{:dir, name}` or `{:symlink, name, target}`, written as given
  (no name is checked or cleaned). `opts`: `mode:`, `uid:`, `gid:`.
  Returns iodata.
  """
  def tar(entries), do: [Enum.map(entries, &entry/1), zeros(2 * @block)]

  defp entry({:file, name, content}), do: entry({:file, name, content, []})

  defp entry({:file, name, content, opts}) do
    size = IO.iodata_length(content)
    [header(name, ?0, size, "", opts), content, zeros(padding(size))]
  end

  defp entry({:dir, name}), do: header(name, ?5, 0, "", mode: 0o755)
  defp entry({:symlink, name, target}), do: header(name, ?2, 0, target, mode: 0o777)

  defp padding(size), do: rem(@block - rem(size, @block), @block)

  defp zeros(n), do: :binary.copy(<<0>>, n)

  # The checksum sums the header's bytes with its own field as spaces. All
  # but the names are the same from one entry to the next in a big layer,
  # so their part (and its sum) is made once per process: a test writes
  # 100 000 headers, and summing 512 bytes each takes seconds.
  defp header(name, type, size, link, opts) do
    {middle, tail, fixed_sum} = fixed_part(type, size, link, opts)
    sum = fixed_sum + byte_sum(name)
    checksum = binary_part(octal(sum, 7), 0, 6) <> <<0, ?\s>>
    header = IO.iodata_to_binary([field(name, 100), middle, checksum, tail])
    @block = byte_size(header)
    header
  end

  # What follows the name up to the checksum, what follows the checksum,
  # and the sum of both plus the checksum's spaces.
  defp fixed_part(type, size, link, opts) do
    key = {__MODULE__, type, size, link, opts}

    with nil <- Process.get(key) do
      middle =
        IO.iodata_to_binary([
          octal(Keyword.get(opts, :mode, 0o644), 8),
          octal(Keyword.get(opts, :uid, 0), 8),
          octal(Keyword.get(opts, :gid, 0), 8),
          octal(size, 12),
          # A fixed mtime: 2001-09-09.
          octal(1_000_000_000, 12)
        ])

      tail =
        IO.iodata_to_binary([
          <<type>>,
          field(link, 100),
          "ustar\0",
          "00",
          zeros(64),
          octal(0, 8),
          octal(0, 8),
          zeros(155 + 12)
        ])

      part = {middle, tail, byte_sum(middle) + byte_sum(tail) + 8 * ?\s}
      Process.put(key, part)
      part
    end
  end

  defp byte_sum(bytes), do: bytes |> :binary.bin_to_list() |> :lists.sum()

  defp field(text, width) when byte_size(text) <= width,
    do: text <> zeros(width - byte_size(text))

  # Plain binary work: String.pad_leading walks graphemes, and a test
  # writes 100 000 headers.
  defp octal(n, width) do
    digits = Integer.to_string(n, 8)
    :binary.copy("0", width - 1 - byte_size(digits)) <> digits <> <<0>>
  end

  @doc """
  Writes an OCI image layout at `layout` holding one image named `name`
  (`org.opencontainers.image.ref.name`) whose layers are `layers`, each
  `%{bytes: blob, media_type: type, diff_id: "sha256:..."}` (`media_type`
  defaults to an uncompressed tar, `diff_id` to the blob's own digest).
  Returns the image manifest's digest.
  """
  def layout!(layout, name, layers) do
    layers =
      Enum.map(layers, fn layer ->
        bytes = IO.iodata_to_binary(layer.bytes)
        digest = sha256(bytes)

        %{
          bytes: bytes,
          digest: digest,
          media_type: Map.get(layer, :media_type, @tar),
          diff_id: Map.get(layer, :diff_id, digest)
        }
      end)

    diff_ids = Enum.map_join(layers, ",", &~s("#{&1.diff_id}"))

    config =
      ~s({"architecture":"amd64","os":"linux","config":{},) <>
        ~s("rootfs":{"type":"layers","diff_ids":[#{diff_ids}]}})

    descriptors =
      Enum.map_join(layers, ",", fn l ->
        ~s({"mediaType":"#{l.media_type}","digest":"#{l.digest}","size":#{byte_size(l.bytes)}})
      end)

    manifest =
      ~s({"schemaVersion":2,"mediaType":"#{@oci_manifest}",) <>
        ~s("config":{"mediaType":"#{@oci_config}","digest":"#{sha256(config)}",) <>
        ~s("size":#{byte_size(config)}},"layers":[#{descriptors}]})

    for bytes <- [config, manifest | Enum.map(layers, & &1.bytes)], do: put_blob!(layout, bytes)

    File.write!(Path.join(layout, "oci-layout"), ~s({"imageLayoutVersion":"1.0.0"}))

    File.write!(
      Path.join(layout, "index.json"),
      ~s({"schemaVersion":2,"mediaType":"#{@oci_index}","manifests":[) <>
        ~s({"mediaType":"#{@oci_manifest}","digest":"#{sha256(manifest)}",) <>
        ~s("size":#{byte_size(manifest)},) <>
        ~s("annotations":{"org.opencontainers.image.ref.name":"#{name}"}}]})
    )

    sha256(manifest)
  end

  @doc "Where the layout keeps the blob `digest`."
  def blob_path(layout, "sha256:" <> hex), do: Path.join([layout, "blobs", "sha256", hex])

  defp put_blob!(layout, bytes) do
    path = blob_path(layout, sha256(bytes))
    File.mkdir_p!(Path.dirname(path))
    File.write!(path, bytes)
  end

  def sha256(bytes), do: "sha256:" <> Base.encode16(:crypto.hash(:sha256, bytes), case: :lower)
end
