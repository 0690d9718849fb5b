defmodule Tank.Image.RegistryPullTest do
  @moduledoc """
  `pull/3`: whole images into OCI layouts from the rig's real registries
  (and, for faults and hang-ups a registry will not show, a scripted
  origin). `async: false`: the 256 MiB pull that is killed on purpose
  should not load the machine under the async modules' bounded waits.
  """
  use ExUnit.Case, async: false
  import Tank.Test.Wait

  alias Tank.Image.Registry
  alias Tank.Test.{JSON, Origin, Pull, Rig}

  @moduletag :tmp_dir

  @oci_manifest "application/vnd.oci.image.manifest.v1+json"
  @oci_index "application/vnd.oci.image.index.v1+json"
  @ref_name "org.opencontainers.image.ref.name"

  defp reference(which, image), do: "#{Rig.registry(which)}/#{image["repo"]}:#{image["tag"]}"

  defp hex("sha256:" <> hex), do: hex

  defp blob_path(layout, digest), do: Path.join([layout, "blobs", "sha256", hex(digest)])

  # Where a blob's partial and lock files live while it downloads.
  defp ingest_base(layout, digest), do: Path.join([layout, "ingest", "sha256-" <> hex(digest)])

  defp file_size(path) do
    case File.stat(path) do
      {:ok, %{size: size}} -> size
      _ -> nil
    end
  end

  defp index_json(layout), do: JSON.decode!(File.read!(Path.join(layout, "index.json")))

  defp file_sha256(path) do
    path
    |> File.stream!([], 1_048_576)
    |> Enum.reduce(:crypto.hash_init(:sha256), &:crypto.hash_update(&2, &1))
    |> :crypto.hash_final()
    |> then(&("sha256:" <> Base.encode16(&1, case: :lower)))
  end

  # Every progress report already in the mailbox, oldest first. Reports are
  # sent before the answer, so once pull/3 has returned they are all here.
  defp progress_reports(reference, acc \\ []) do
    receive do
      {:tank_progress, ^reference, done, total} ->
        progress_reports(reference, [{done, total} | acc])
    after
      0 -> Enum.reverse(acc)
    end
  end

  # Waits (bounded) for something another process brings about.
  # A registry of one image, `a/b:v1`, on a scripted origin: its manifest,
  # its config, and one layer served as `serve_layer.(request)` says.
  defp one_image_origin(layer, serve_layer) do
    config = ~s({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})
    {config_digest, layer_digest} = {Pull.sha256(config), Pull.sha256(layer)}

    manifest =
      ~s({"schemaVersion":2,"mediaType":"#{@oci_manifest}",) <>
        ~s("config":{"mediaType":"application/vnd.oci.image.config.v1+json",) <>
        ~s("digest":"#{config_digest}","size":#{byte_size(config)}},) <>
        ~s("layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar",) <>
        ~s("digest":"#{layer_digest}","size":#{byte_size(layer)}}]})

    {config_path, layer_path} =
      {"/v2/a/b/blobs/" <> config_digest, "/v2/a/b/blobs/" <> layer_digest}

    origin =
      Origin.start(fn
        %{path: "/v2/a/b/manifests/v1"} -> {200, [{"content-type", @oci_manifest}], manifest}
        %{path: ^config_path} -> {200, [], config}
        %{path: ^layer_path} = request -> serve_layer.(request)
        _ -> {404, [], ""}
      end)

    %{
      origin: origin,
      reference: "#{origin.addr}/a/b:v1",
      manifest: manifest,
      layer: layer_digest,
      layer_path: layer_path
    }
  end

  test "linux/arm64 out of the multi-arch index: the manifest, index.json, every blob, progress",
       %{tmp_dir: dir} do
    index = Rig.image(:oci_index)
    arm64 = Enum.find(index["manifests"], &(&1["platform"] == "linux/arm64/v8"))
    reference = reference(:plain, index)
    layout = Path.join(dir, "layout")

    assert {:ok, info} = Registry.pull(reference, layout, platform: "linux/arm64", progress: self())

    # The info manifest/4 gives for the same manifest.
    assert info.digest == arm64["digest"]
    assert info.media_type == arm64["media_type"]

    assert {:ok, ^info, nil} =
             Registry.manifest(Rig.registry(:plain), index["repo"], arm64["digest"])

    assert info.json == JSON.decode!(info.raw)
    assert info.json["config"]["digest"] == arm64["config"]

    assert %{"schemaVersion" => 2, "mediaType" => @oci_index, "manifests" => [entry]} =
             index_json(layout)

    assert entry["digest"] == arm64["digest"]
    assert entry["mediaType"] == arm64["media_type"]
    assert entry["size"] == arm64["size"]
    assert entry["annotations"][@ref_name] == reference

    assert JSON.decode!(File.read!(Path.join(layout, "oci-layout"))) == %{
             "imageLayoutVersion" => "1.0.0"
           }

    blobs = Enum.uniq([arm64["config"] | arm64["layers"]])

    for digest <- blobs do
      path = blob_path(layout, digest)
      assert file_size(path) == index["blob_sizes"][digest], "#{digest} in blobs/"
      assert file_sha256(path) == digest
    end

    # The manifests are blobs of the layout too.
    assert File.read!(blob_path(layout, arm64["digest"])) == info.raw
    assert file_sha256(blob_path(layout, index["digest"])) == index["digest"]
    # No other platform's blobs.
    amd64 = Enum.find(index["manifests"], &(&1["platform"] == "linux/amd64"))
    refute File.exists?(blob_path(layout, amd64["digest"]))
    refute File.exists?(blob_path(layout, amd64["config"]))
    assert File.ls!(Path.join(layout, "ingest")) == []

    # Bytes over all the blobs, never backwards, and last done == total.
    total = blobs |> Enum.map(&index["blob_sizes"][&1]) |> Enum.sum()
    reports = progress_reports(reference)
    assert reports != []
    assert List.last(reports) == {total, total}
    assert Enum.all?(reports, fn {done, t} -> t == total and done <= total end), inspect(reports)
    dones = Enum.map(reports, &elem(&1, 0))
    assert dones == Enum.sort(dones), inspect(reports)

    # Again into the same layout: nothing to fetch, still one entry, and the
    # final report.
    assert {:ok, ^info} =
             Registry.pull(reference, layout, platform: "linux/arm64/v8", progress: self())

    assert [%{"digest" => digest}] = index_json(layout)["manifests"]
    assert digest == arm64["digest"]
    assert List.last(progress_reports(reference)) == {total, total}
  end

  test "without :platform the host's image; a second image joins the same index.json",
       %{tmp_dir: dir} do
    index = Rig.image(:oci_index)
    layout = Path.join(dir, "layout")

    host =
      case to_string(:erlang.system_info(:system_architecture)) do
        "x86_64" <> _ -> "linux/amd64"
        "aarch64" <> _ -> "linux/arm64/v8"
        "arm" <> _ -> "linux/arm/v7"
        _ -> nil
      end

    # The rig's index has images for the hosts tank is tested on.
    entry = Enum.find(index["manifests"], &(&1["platform"] == host))
    assert entry, "no image in the rig's index for this host (#{host})"
    assert {:ok, %{digest: digest}} = Registry.pull(reference(:plain, index), layout)
    assert digest == entry["digest"]

    image = Rig.image(:oci_image)
    assert {:ok, info} = Registry.pull(reference(:plain, image), layout, jobs: 1)
    assert info.digest == image["digest"]

    for digest <- [image["config"] | image["layers"]] do
      assert file_sha256(blob_path(layout, digest)) == digest
    end

    entries = index_json(layout)["manifests"]
    names = for m <- entries, do: m["annotations"][@ref_name]
    assert Enum.sort(names) == Enum.sort([reference(:plain, index), reference(:plain, image)])

    assert Enum.sort(Enum.map(entries, & &1["digest"])) ==
             Enum.sort([entry["digest"], image["digest"]])
  end

  test "through the token registry and the CDN one, with a token cache", %{tmp_dir: dir} do
    index = Rig.image(:oci_index)
    amd64 = Enum.find(index["manifests"], &(&1["platform"] == "linux/amd64"))
    cache = Registry.new_token_cache()

    for which <- [:token, :cdn] do
      layout = Path.join(dir, "#{which}")

      assert {:ok, %{digest: digest}} =
               Registry.pull(reference(which, index), layout,
                 platform: "linux/amd64",
                 token_cache: cache,
                 jobs: 2
               )

      assert digest == amd64["digest"]

      for blob <- [amd64["config"] | amd64["layers"]] do
        assert file_sha256(blob_path(layout, blob)) == blob
      end
    end
  end

  test "{:no_matching_platform, platforms}: the index's platforms, attestations left out",
       %{tmp_dir: dir} do
    index = Rig.image(:oci_index)
    layout = Path.join(dir, "layout")

    assert {:error, {:no_matching_platform, platforms}} =
             Registry.pull(reference(:plain, index), layout, platform: "linux/s390x")

    assert "linux/amd64" in platforms
    refute "unknown/unknown" in platforms

    assert platforms ==
             Enum.reject(Enum.map(index["manifests"], & &1["platform"]), &(&1 == "unknown/unknown"))

    # An arm/v6 request never gets the arm/v7 image.
    assert {:error, {:no_matching_platform, ^platforms}} =
             Registry.pull(reference(:plain, index), layout, platform: "linux/arm/v6")

    refute File.exists?(Path.join(layout, "index.json"))
  end

  test "{:bad_input, message}: a reference, platform or option outside the grammar",
       %{tmp_dir: dir} do
    layout = Path.join(dir, "layout")
    good = reference(:plain, Rig.image(:oci_image))

    assert {:error, {:bad_input, message}} = Registry.pull("UPPER/x", layout)
    assert message =~ "UPPER/x"
    # Refused before anything was made.
    refute File.exists?(layout)

    for {reference, path, opts} <- [
          {"", layout, []},
          {"a b", layout, []},
          {"ftp://x/y", layout, []},
          {~c"alpine", layout, []},
          {good, :layout, []},
          {good, "", []},
          {good, layout, platform: "linux"},
          {good, layout, platform: "linux/amd64/v1/x"},
          {good, layout, platform: :linux},
          {good, layout, jobs: 0},
          {good, layout, jobs: "4"},
          {good, layout, token_cache: "cache"},
          {good, layout, progress: :me}
        ] do
      assert {:error, {:bad_input, message}} = Registry.pull(reference, path, opts),
             inspect({reference, path, opts})

      assert is_binary(message)
    end

    refute File.exists?(layout)
    assert_raise ArgumentError, fn -> Registry.pull(good, layout, platfrom: "linux/amd64") end

    # An index.json that is not an OCI index is not overwritten.
    File.mkdir_p!(layout)
    File.write!(Path.join(layout, "index.json"), "not json")
    assert {:error, {:bad_input, message}} = Registry.pull(good, layout)
    assert message =~ "index.json"
    assert File.read!(Path.join(layout, "index.json")) == "not json"
  end

  test "HTTP statuses, bytes that do not hash, a layout that cannot be made", %{tmp_dir: dir} do
    index = Rig.image(:oci_index)
    layout = Path.join(dir, "layout")
    missing_tag = "#{Rig.registry(:plain)}/#{index["repo"]}:no-such-tag"
    assert {:error, {:manifest_http, 404}} = Registry.pull(missing_tag, layout)

    layer = :binary.copy("l", 1000)
    missing = one_image_origin(layer, fn _ -> {404, [], ~s({"errors":[]})} end)
    assert {:error, {:blob_http, 404}} = Registry.pull(missing.reference, layout)

    wrong = one_image_origin(layer, fn _ -> {200, [], :binary.copy("w", 1000)} end)
    assert {:error, {:digest_mismatch, :blob}} = Registry.pull(wrong.reference, layout)
    refute File.exists?(blob_path(layout, wrong.layer))
    refute File.exists?(Path.join(layout, "index.json"))

    file = Path.join(dir, "a-file")
    File.write!(file, "")
    under_file = Path.join(file, "layout")

    assert {:error, {:io, refused, message}} =
             Registry.pull(reference(:plain, Rig.image(:oci_image)), under_file)

    assert String.starts_with?(refused, file) and message =~ "a-file"
  end

  test "a caller killed mid-pull cancels it: the connection closes, the next pull resumes",
       %{tmp_dir: dir} do
    layer = :binary.copy("t", 1_000_000)
    me = self()

    # The layer's first 300 000 bytes, then silence; the origin tells us
    # when tank hangs up (it would wait 15 s, its idle timeout, otherwise).
    stalled =
      one_image_origin(layer, fn _ ->
        {:partial, 200, [{"content-length", "1000000"}], binary_part(layer, 0, 300_000), me}
      end)

    layout = Path.join(dir, "layout")
    partial = ingest_base(layout, stalled.layer) <> ".partial"
    caller = spawn(fn -> Registry.pull(stalled.reference, layout) end)
    eventually("the first bytes in ingest/", fn -> file_size(partial) == 300_000 end)
    Process.exit(caller, :kill)
    layer_path = stalled.layer_path
    assert_receive {:origin_client_closed, ^layer_path}, 5_000
    assert file_size(partial) == 300_000
    refute File.exists?(blob_path(layout, stalled.layer))
    refute File.exists?(Path.join(layout, "index.json"))

    # The next pull asks only for the rest.
    served =
      one_image_origin(layer, fn %{headers: headers} ->
        case List.keyfind(headers, "range", 0) do
          {"range", "bytes=300000-"} ->
            {206, [{"content-range", "bytes 300000-999999/1000000"}],
             binary_part(layer, 300_000, 700_000)}

          _ ->
            {500, [], "expected a Range request"}
        end
      end)

    assert {:ok, %{digest: digest}} = Registry.pull(served.reference, layout)
    assert digest == Pull.sha256(served.manifest)
    assert File.read!(blob_path(layout, served.layer)) == layer
    assert File.ls!(Path.join(layout, "ingest")) == []
    assert [_] = Enum.filter(Origin.requests(served.origin), &(&1.path == served.layer_path))
  end

  @tag timeout: 300_000
  test "a caller killed while the rig's 256 MiB layer arrives: the download stops short, the next pull completes it",
       %{tmp_dir: dir} do
    image = Rig.image(:large)
    [layer] = image["layers"]
    size = image["blob_sizes"][layer]
    reference = reference(:plain, image)
    layout = Path.join(dir, "layout")
    base = ingest_base(layout, layer)

    caller = spawn(fn -> Registry.pull(reference, layout) end)
    # The lock file comes before the partial and goes, by its holder, when
    # the download ends: with the blob in blobs/ when it succeeded.
    # Bytes in the partial, not only the file: an empty partial is nothing
    # to resume from, and a cancelled download removes it.
    eventually("the layer's download under way", fn ->
      (file_size(base <> ".partial") || 0) > 0
    end)

    Process.exit(caller, :kill)
    eventually("the download to end", fn -> not File.exists?(base <> ".lock") end)
    # It ended without the blob: it was cancelled.
    refute File.exists?(blob_path(layout, layer))
    assert file_size(base <> ".partial") < size
    refute File.exists?(Path.join(layout, "index.json"))

    assert {:ok, %{digest: digest}} = Registry.pull(reference, layout)
    assert digest == image["digest"]
    assert file_size(blob_path(layout, layer)) == size
    assert file_sha256(blob_path(layout, layer)) == layer
    assert File.ls!(Path.join(layout, "ingest")) == []
    File.rm_rf!(layout)
  end
end
