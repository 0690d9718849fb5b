defmodule Tank.Image.ConnectionsTest do
  @moduledoc """
  `new_token_cache/1`'s `:connections`, `:connections_per_host` and
  `:ranged_threshold`: bad values are refused (an `ArgumentError` from the
  module, `{:error, {:bad_input, _}}` from the NIF, never a crash), good
  ones are taken, and pulls through the rig's CDN (which honours `Range`)
  stay right whatever they are; the CDN's log shows the settings reach the
  download. Not whether ranges are faster: that is the benchmark's
  business. The log is the rig's, shared: these run with no other test at
  once.
  """
  use ExUnit.Case, async: false

  alias Tank.Image.Registry
  alias Tank.Test.Rig

  @moduletag :tmp_dir

  defp hex("sha256:" <> hex), do: hex

  defp blob_path(layout, digest), do: Path.join([layout, "blobs", "sha256", hex(digest)])

  defp file_sha256(path) do
    path
    |> File.stream!([], 1_048_576)
    |> Enum.reduce(:crypto.hash_init(:sha256), &:crypto.hash_update(&2, &1))
    |> :crypto.hash_final()
    |> then(&("sha256:" <> Base.encode16(&1, case: :lower)))
  end

  # The NIF as `new_token_cache/1` calls it, with nothing but `connections`.
  defp native(connections),
    do: Tank.Native.new_token_cache(60_000, [], nil, [], nil, nil, [], connections)

  describe "bad values" do
    test "of the wrong shape raise ArgumentError naming the option" do
      for {opts, option} <- [
            {[connections: -1], ":connections"},
            {[connections: 4.0], ":connections"},
            {[connections: "4"], ":connections"},
            {[connections: :four], ":connections"},
            {[connections_per_host: -16], ":connections_per_host"},
            {[connections_per_host: [16]], ":connections_per_host"},
            {[ranged_threshold: -1], ":ranged_threshold"},
            {[ranged_threshold: 1.5e6], ":ranged_threshold"}
          ] do
        error = assert_raise ArgumentError, fn -> Registry.new_token_cache(opts) end

        assert error.message =~
                 "new_token_cache/1: #{option} must be nil or a non-negative integer",
               "#{inspect(opts)}: #{error.message}"
      end
    end

    test "out of bounds raise ArgumentError with the core's reason" do
      for {opts, says} <- [
            {[connections: 65, connections_per_host: 256], "per_blob 65: at most 64"},
            {[connections: 4, connections_per_host: 257], "per_host 257: at most 256"},
            {[connections: 8, connections_per_host: 4], "per_host 4 is below per_blob 8"},
            # nil (and 0) are the defaults: 4 per blob, 16 per host.
            {[connections_per_host: 2], "per_host 2 is below per_blob 4"},
            {[connections: 20], "per_host 16 is below per_blob 20"},
            {[connections: 0, connections_per_host: 2], "per_host 2 is below per_blob 4"},
            {[connections: 2 ** 40], "per_blob 1099511627776: past 32 bits"},
            {[ranged_threshold: 2 ** 64], "threshold must be a non-negative integer below 2^64"}
          ] do
        error = assert_raise ArgumentError, fn -> Registry.new_token_cache(opts) end

        assert String.starts_with?(error.message, "new_token_cache/1: :connections: " <> says),
               "#{inspect(opts)}: #{error.message}"
      end
    end

    test "reach the NIF as {:error, {:bad_input, message}}, never a crash" do
      for {term, says} <- [
            {{-1, 0, 0}, "per_blob must be a non-negative integer below 2^64"},
            {{0, -1, 0}, "per_host must be a non-negative integer below 2^64"},
            {{0, 0, -1}, "threshold must be a non-negative integer below 2^64"},
            {{1.0, 0, 0}, "per_blob must be"},
            {{0, 0, 2 ** 70}, "threshold must be"},
            {{2 ** 32, 0, 0}, "per_blob 4294967296: past 32 bits"},
            {{0, 2 ** 32 + 16, 0}, "per_host 4294967312: past 32 bits"},
            {{65, 0, 0}, "per_blob 65: at most 64"},
            {{0, 0}, "must be {per_blob, per_host, threshold}"},
            {[4, 16, 0], "must be {per_blob, per_host, threshold}"},
            {nil, "must be {per_blob, per_host, threshold}"}
          ] do
        assert {:error, {:bad_input, message}} = native(term), inspect(term)

        assert String.starts_with?(message, ":connections: " <> says),
               "#{inspect(term)}: #{message}"
      end
    end
  end

  test "zeros, nil, the bounds and the single stream are taken" do
    for opts <- [
          [connections: nil, connections_per_host: nil, ranged_threshold: nil],
          [connections: 0, connections_per_host: 0, ranged_threshold: 0],
          [connections: 1],
          [connections: 1, connections_per_host: 1, ranged_threshold: 1],
          [connections: 64, connections_per_host: 256, ranged_threshold: 2 ** 64 - 1],
          [connections: 16],
          [connections_per_host: 4]
        ] do
      assert is_reference(Registry.new_token_cache(opts)), inspect(opts)
    end

    assert {:ok, cache} = native({64, 256, 1})
    assert is_reference(cache)
  end

  # tank/many:v1, two 64 MiB layers: with a threshold below that, both are
  # candidates for ranges, and their connections share the per-host budget.
  @tag timeout: 300_000
  test "pulls and blob_to_file through the CDN stay right whatever the settings",
       %{tmp_dir: dir} do
    image = Rig.image(:many)
    registry = Rig.registry(:cdn)
    reference = "#{registry}/#{image["repo"]}:#{image["tag"]}"
    [layer | _] = image["layers"]

    for {opts, n} <-
          Enum.with_index([
            [connections: 1],
            [],
            [connections: 4, connections_per_host: 4, ranged_threshold: 8 * 1_048_576],
            [connections: 64, connections_per_host: 256, ranged_threshold: 1]
          ]) do
      cache = Registry.new_token_cache(opts)
      layout = Path.join(dir, "layout-#{n}")

      assert {:ok, %{digest: digest}} = Registry.pull(reference, layout, token_cache: cache),
             inspect(opts)

      assert digest == image["digest"], inspect(opts)

      for blob <- [image["config"] | image["layers"]] do
        path = blob_path(layout, blob)
        assert File.stat!(path).size == image["blob_sizes"][blob], "#{inspect(opts)}: #{blob}"
        assert file_sha256(path) == blob, "#{inspect(opts)}: #{blob}"
      end

      assert File.ls!(Path.join(layout, "ingest")) == [], inspect(opts)
      File.rm_rf!(layout)

      path = Path.join(dir, "layer-#{n}")

      assert :ok =
               Registry.blob_to_file(registry, image["repo"], layer, path,
                 size: image["blob_sizes"][layer],
                 token_cache: cache
               ),
             inspect(opts)

      assert file_sha256(path) == layer, inspect(opts)
      File.rm!(path)
    end
  end

  # The TCP connections the CDN saw requests for `digest` on since the last
  # Rig.clear().
  defp blob_connections(digest) do
    Rig.cdn_requests()
    |> Enum.filter(&(&1["path"] =~ hex(digest) and &1["connection"] != nil))
    |> Enum.map(& &1["connection"])
    |> Enum.uniq()
  end

  @tag timeout: 120_000
  test "the settings reach the download: one connection per blob is one TCP connection",
       %{tmp_dir: dir} do
    image = Rig.image(:many)
    [layer | _] = image["layers"]

    # Not at most 4 with 4: that bounds connections at once, and the first
    # request's connection may give way to a fresh one.
    for {connections, wanted} <- [{1, 1..1}, {4, 2..1_000}] do
      cache =
        Registry.new_token_cache(
          connections: connections,
          connections_per_host: 16,
          ranged_threshold: 8 * 1_048_576
        )

      Rig.clear()
      path = Path.join(dir, "layer-#{connections}")

      assert :ok =
               Registry.blob_to_file(Rig.registry(:cdn), image["repo"], layer, path,
                 size: image["blob_sizes"][layer],
                 token_cache: cache
               )

      seen = length(blob_connections(layer))

      assert seen in wanted,
             "connections: #{connections}: the CDN saw the layer over #{seen} connections"
    end
  end
end
