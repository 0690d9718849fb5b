defmodule Tank.Image.UnpackTest do
  @moduledoc """
  `unpack/4` and `pull/3` with `:rootfs`: images of the rig's registries
  and layouts made here (hostile layers among them) unpacked into root
  filesystems. `async: false`: the cancel test keeps a disk busy for a
  moment and the modules with bounded waits should not share it.
  """
  use ExUnit.Case, async: false
  import Tank.Test.Wait

  alias Tank.Image.Registry
  alias Tank.Test.{Layer, Origin, Rig}

  @moduletag :tmp_dir

  @oci_manifest "application/vnd.oci.image.manifest.v1+json"

  # tank's temporary trees in `dir`: `.<rootfs name>.tank-<random>`.
  defp temporary_trees(dir), do: Enum.filter(File.ls!(dir), &(&1 =~ ~r/^\..*\.tank-/))

  # 100 000 empty files in 100 directories: seconds of work for tank (a
  # system call or more each), little disk.
  defp many_files_layout(dir) do
    entries = for d <- 0..99, f <- -1..999, do: many_files_entry(d, f)
    layout = Path.join(dir, "layout")
    {layout, Layer.layout!(layout, "test/many-files:1", [%{bytes: Layer.tar(entries)}])}
  end

  defp many_files_entry(d, -1), do: {:dir, "d#{d}/"}
  defp many_files_entry(d, f), do: {:file, "d#{d}/f#{f}", ""}

  defp reference(which, image), do: "#{Rig.registry(which)}/#{image["repo"]}:#{image["tag"]}"

  # Every progress report for `name` already in the mailbox, oldest first
  # (they are all sent before the answer).
  defp progress_reports(name, acc \\ []) do
    receive do
      {:tank_progress, ^name, done, total} -> progress_reports(name, [{done, total} | acc])
    after
      0 -> Enum.reverse(acc)
    end
  end

  # The files of a layer blob of the layout, as {name, bytes}.
  defp layer_files(layout, digest, media_type) do
    bytes = File.read!(Layer.blob_path(layout, digest))
    compressed = if String.ends_with?(media_type, "gzip"), do: [:compressed], else: []
    {:ok, files} = :erl_tar.extract({:binary, bytes}, [:memory | compressed])
    Map.new(files, fn {name, content} -> {to_string(name), content} end)
  end

  # What the rig's `tank/oci-image:v1` unpacks to: the second layer's
  # release file over the first's, its bulk file whited out by the third,
  # and the third's data.
  defp assert_oci_image_tree(rootfs, layout, image) do
    manifest = Tank.Test.JSON.decode!(File.read!(Layer.blob_path(layout, image["digest"])))
    [_, second, third] = manifest["layers"]
    second = layer_files(layout, second["digest"], second["mediaType"])
    third = layer_files(layout, third["digest"], third["mediaType"])

    assert File.read!(Path.join(rootfs, "etc/tank-release")) == second["etc/tank-release"]
    assert File.read!(Path.join(rootfs, "opt/tank/data.bin")) == third["opt/tank/data.bin"]
    assert File.dir?(Path.join(rootfs, "usr/share/tank"))
    assert File.ls!(Path.join(rootfs, "usr/share/tank")) == []
    assert Enum.sort(File.ls!(rootfs)) == ["etc", "opt", "usr"]
  end

  test "an image pulled from the rig, unpacked by name and by digest, with progress",
       %{tmp_dir: dir} do
    image = Rig.image(:oci_image)
    reference = reference(:plain, image)
    layout = Path.join(dir, "layout")
    assert {:ok, %{digest: digest}} = Registry.pull(reference, layout)
    assert digest == image["digest"]

    roots = Path.join(dir, "roots")
    File.mkdir_p!(roots)
    rootfs = Path.join(roots, "by-name")

    assert {:ok, info} = Registry.unpack(layout, reference, rootfs, progress: self())
    assert info.digest == image["digest"]
    assert info.json["config"]["digest"] == image["config"]
    assert_oci_image_tree(rootfs, layout, image)

    # The layer bytes read, of their total, never backwards, last done == total.
    total = image["layers"] |> Enum.map(&image["blob_sizes"][&1]) |> Enum.sum()
    reports = progress_reports(rootfs)
    assert List.last(reports) == {total, total}, inspect(reports)
    assert Enum.all?(reports, fn {done, t} -> t == total and done <= total end), inspect(reports)
    dones = Enum.map(reports, &elem(&1, 0))
    assert dones == Enum.sort(dones), inspect(reports)

    by_digest = Path.join(roots, "by-digest")
    assert {:ok, ^info} = Registry.unpack(layout, image["digest"], by_digest)
    assert_oci_image_tree(by_digest, layout, image)

    # Nothing but the two trees beside them: no temporary tree left.
    assert Enum.sort(File.ls!(roots)) == ["by-digest", "by-name"]

    # A name the layout does not have: the message lists the ones it has.
    assert {:error, {:bad_input, message}} =
             Registry.unpack(layout, "no/such:image", Path.join(roots, "none"))

    assert message =~ reference
    refute File.exists?(Path.join(roots, "none"))
  end

  test "an existing rootfs is an io error naming it, left whole; replace: true swaps it",
       %{tmp_dir: dir} do
    image = Rig.image(:oci_image)
    reference = reference(:plain, image)
    layout = Path.join(dir, "layout")
    assert {:ok, _} = Registry.pull(reference, layout)

    roots = Path.join(dir, "roots")
    rootfs = Path.join(roots, "rootfs")
    File.mkdir_p!(rootfs)
    File.write!(Path.join(rootfs, "old"), "the old tree")

    assert {:error, {:io, path, message}} = Registry.unpack(layout, reference, rootfs)
    assert path == rootfs
    assert is_binary(message) and message != ""
    assert File.ls!(rootfs) == ["old"]
    assert File.ls!(roots) == ["rootfs"]

    # pull/3 with :rootfs says the same.
    assert {:error, {:io, ^rootfs, _}} = Registry.pull(reference, layout, rootfs: rootfs)
    assert File.ls!(rootfs) == ["old"]

    assert {:ok, %{digest: digest}} = Registry.unpack(layout, reference, rootfs, replace: true)
    assert digest == image["digest"]
    refute File.exists?(Path.join(rootfs, "old"))
    assert_oci_image_tree(rootfs, layout, image)
    assert File.ls!(roots) == ["rootfs"]
  end

  test "pull/3 with :rootfs: the layout and the tree, progress counting each byte twice",
       %{tmp_dir: dir} do
    image = Rig.image(:oci_image)
    reference = reference(:token, image)
    layout = Path.join(dir, "layout")
    rootfs = Path.join(dir, "rootfs")
    cache = Registry.new_token_cache()

    assert {:ok, info} =
             Registry.pull(reference, layout,
               rootfs: rootfs,
               token_cache: cache,
               jobs: 2,
               progress: self()
             )

    assert info.digest == image["digest"]

    for digest <- [image["config"] | image["layers"]] do
      assert Layer.sha256(File.read!(Layer.blob_path(layout, digest))) == digest
    end

    assert_oci_image_tree(rootfs, layout, image)

    reports = progress_reports(reference)
    assert {total, total} = List.last(reports)
    blob_bytes = Enum.sum(Map.values(image["blob_sizes"]))
    assert total == 2 * blob_bytes, inspect({reports, image["blob_sizes"]})
    assert Enum.all?(reports, fn {done, t} -> t == total and done <= total end), inspect(reports)

    # Again, replacing the tree: everything is in the layout already.
    assert {:ok, ^info} = Registry.pull(reference, layout, rootfs: rootfs, replace: true)
    assert_oci_image_tree(rootfs, layout, image)

    # A Docker image (its manifest stored under OCI media types) too.
    docker = Rig.image(:docker_image)
    docker_rootfs = Path.join(dir, "docker-rootfs")

    assert {:ok, %{digest: digest}} =
             Registry.pull(reference(:plain, docker), Path.join(dir, "docker"),
               rootfs: docker_rootfs
             )

    assert digest == docker["digest"]
    assert File.read!(Path.join(docker_rootfs, "etc/tank-release")) =~ "tank/docker-image"
  end

  test "hostile layers made here: {:layer, reason, message}, nothing at rootfs, nothing outside",
       %{tmp_dir: dir} do
    ok_file = {:file, "etc/ok", "fine"}
    not_a_tar = :binary.copy("this is not a tar archive. ", 100)

    cases = [
      {"a name that climbs", [%{bytes: Layer.tar([ok_file, {:file, "../escape", "out"}])}],
       {:layer, :unsafe_path}, "escape"},
      {"a name that climbs through a directory",
       [%{bytes: Layer.tar([{:dir, "a/"}, {:file, "a/../../escape", "out"}])}],
       {:layer, :unsafe_path}, "escape"},
      {"a whiteout naming ..", [%{bytes: Layer.tar([{:dir, "a/"}, {:file, "a/.wh..", ""}])}],
       {:layer, :unsafe_path}, nil},
      {"not a tar", [%{bytes: not_a_tar}], {:layer, :bad_layer}, nil},
      {"a truncated tar",
       [%{bytes: binary_part(IO.iodata_to_binary(Layer.tar([{:file, "f", "x"}])), 0, 300)}],
       {:layer, :bad_layer}, nil},
      {"a wrong diff_id", [%{bytes: Layer.tar([ok_file]), diff_id: Layer.sha256("something else")}],
       {:layer, :diff_id_mismatch}, nil},
      {"a layer type tank cannot apply",
       [%{bytes: Layer.tar([ok_file]), media_type: "application/vnd.example.layer.v1.tar+lz4"}],
       {:layer, :unsupported_media_type}, "lz4"}
    ]

    for {{what, layers, {:layer, reason}, named}, i} <- Enum.with_index(cases) do
      layout = Path.join(dir, "layout-#{i}")
      roots = Path.join([dir, "case-#{i}", "roots"])
      File.mkdir_p!(roots)
      digest = Layer.layout!(layout, "test/hostile:#{i}", layers)
      rootfs = Path.join(roots, "rootfs")

      assert {:error, {:layer, ^reason, message}} = Registry.unpack(layout, digest, rootfs),
             what

      assert is_binary(message), what
      if named, do: assert(message =~ named, "#{what}: #{message}")
      # Nothing at rootfs, no temporary tree, nothing written above.
      assert File.ls!(roots) == [], what
      assert File.ls!(Path.join(dir, "case-#{i}")) == ["roots"], what
      refute File.exists?(Path.join(dir, "escape")), what
    end
  end

  test "a blob in the layout that does not match its digest is {:digest_mismatch, :blob}",
       %{tmp_dir: dir} do
    layout = Path.join(dir, "layout")
    tar = IO.iodata_to_binary(Layer.tar([{:file, "etc/ok", "fine"}]))
    digest = Layer.layout!(layout, "test/wrong-blob:1", [%{bytes: tar}])
    # Same length, other bytes.
    File.write!(Layer.blob_path(layout, Layer.sha256(tar)), :binary.copy("x", byte_size(tar)))
    rootfs = Path.join(dir, "rootfs")
    assert {:error, {:digest_mismatch, :blob}} = Registry.unpack(layout, digest, rootfs)
    refute File.exists?(rootfs)
  end

  test "keep_owners: owners from the layer as root, {:bad_input, _} otherwise",
       %{tmp_dir: dir} do
    layout = Path.join(dir, "layout")
    tar = Layer.tar([{:file, "owned", "x", uid: 4321, gid: 8765, mode: 0o4755}])
    digest = Layer.layout!(layout, "test/owners:1", [%{bytes: tar}])
    {uid, 0} = System.cmd("id", ["-u"])

    # Rootless (the default): the caller's, whatever the layer says; the
    # mode bits, setuid included, as the layer says.
    rootless = Path.join(dir, "rootless")
    assert {:ok, _} = Registry.unpack(layout, digest, rootless)
    stat = File.lstat!(Path.join(rootless, "owned"))
    assert stat.uid == String.to_integer(String.trim(uid))
    assert Bitwise.band(stat.mode, 0o7777) == 0o4755

    kept = Path.join(dir, "kept")

    case String.trim(uid) do
      "0" ->
        assert {:ok, _} = Registry.unpack(layout, digest, kept, keep_owners: true)
        assert %{uid: 4321, gid: 8765} = File.lstat!(Path.join(kept, "owned"))

      _ ->
        assert {:error, {:bad_input, _}} = Registry.unpack(layout, digest, kept, keep_owners: true)
        refute File.exists?(kept)
    end
  end

  test "arguments of the wrong type are {:bad_input, message} before any work",
       %{tmp_dir: dir} do
    layout = Path.join(dir, "layout")
    rootfs = Path.join(dir, "rootfs")

    for {args, opts} <- [
          {[:layout, "x", rootfs], []},
          {[layout, ~c"x", rootfs], []},
          {[layout, "x", nil], []},
          {[layout, "x", rootfs], keep_owners: 1},
          {[layout, "x", rootfs], replace: "yes"},
          {[layout, "x", rootfs], progress: :me},
          {[layout, "x", rootfs], idle_timeout: 0}
        ] do
      assert {:error, {:bad_input, message}} = apply(Registry, :unpack, args ++ [opts]),
             inspect({args, opts})

      assert is_binary(message)
    end

    for opts <- [[rootfs: :dir], [rootfs: rootfs, replace: nil], [rootfs: rootfs, keep_owners: 1]] do
      assert {:error, {:bad_input, _}} = Registry.pull("a/b:c", layout, opts), inspect(opts)
    end

    refute File.exists?(layout) or File.exists?(rootfs)
    assert_raise ArgumentError, fn -> Registry.unpack(layout, "x", rootfs, replce: true) end
  end

  @tag timeout: 300_000
  test "a caller killed mid-unpack cancels it: the temporary tree goes, nothing at rootfs",
       %{tmp_dir: dir} do
    {layout, digest} = many_files_layout(dir)
    roots = Path.join(dir, "roots")
    File.mkdir_p!(roots)
    rootfs = Path.join(roots, "rootfs")
    me = self()

    caller =
      spawn(fn ->
        send(me, {:unpack_returned, Registry.unpack(layout, digest, rootfs, progress: me)})
      end)

    # Killed once tank reports layer bytes read, with its temporary tree
    # beside rootfs, and before the answer.
    receive do
      {:tank_progress, ^rootfs, _done, _total} ->
        :ok

      {:unpack_returned, result} ->
        flunk("the unpack ended before it could be killed: #{inspect(result)}")
    after
      60_000 -> flunk("no progress from the unpack within 60 s")
    end

    eventually("the temporary tree beside rootfs", fn -> temporary_trees(roots) != [] end)
    Process.exit(caller, :kill)
    refute_received {:unpack_returned, _}

    # The cancelled unpack removes its temporary tree itself, and rootfs
    # never appears (a finished unpack would have renamed the tree to it).
    eventually("the temporary tree removed", fn -> File.ls!(roots) == [] end, 30_000)
    refute File.exists?(rootfs)

    File.rm_rf!(dir)
  end

  test "a cancelled unpack answers once its temporary tree is gone (as :idle_timeout cancels)",
       %{tmp_dir: dir} do
    {layout, digest} = many_files_layout(dir)
    roots = Path.join(dir, "roots")
    File.mkdir_p!(roots)
    rootfs = Path.join(roots, "rootfs")
    ref = make_ref()
    {:ok, handle} = Tank.Native.unpack(ref, layout, digest, rootfs, false, false, self())
    assert_receive {:tank_progress, ^rootfs, _, _}, 60_000
    eventually("the temporary tree beside rootfs", fn -> temporary_trees(roots) != [] end)
    Tank.Native.cancel(handle)
    assert_receive {^ref, {:error, :cancelled}}, 30_000
    Tank.Native.keep(handle)
    # Nothing is written under roots once the answer is in: the call ended
    # itself, its temporary tree removed, rather than being dropped while
    # a layer was still being applied.
    assert File.ls!(roots) == []
    File.rm_rf!(dir)
  end

  test "a caller killed mid-pull with :rootfs: the download stops, the temporary tree goes",
       %{tmp_dir: dir} do
    # Two layers on a scripted origin: the first served whole (so it is
    # applied at once), the second's first 300 000 bytes and then silence.
    first = IO.iodata_to_binary(Layer.tar([{:file, "etc/first", "applied"}]))
    second = IO.iodata_to_binary(Layer.tar([{:file, "big", :binary.copy("b", 1_000_000)}]))
    me = self()

    config =
      ~s({"architecture":"amd64","os":"linux","rootfs":{"type":"layers",) <>
        ~s("diff_ids":["#{Layer.sha256(first)}","#{Layer.sha256(second)}"]}})

    descriptor = fn media_type, bytes ->
      ~s({"mediaType":"#{media_type}","digest":"#{Layer.sha256(bytes)}","size":#{byte_size(bytes)}})
    end

    manifest =
      ~s({"schemaVersion":2,"mediaType":"#{@oci_manifest}","config":) <>
        descriptor.("application/vnd.oci.image.config.v1+json", config) <>
        ~s(,"layers":[#{descriptor.(Layer.tar_media_type(), first)},) <>
        ~s(#{descriptor.(Layer.tar_media_type(), second)}]})

    blob = fn bytes -> "/v2/a/b/blobs/" <> Layer.sha256(bytes) end
    {config_path, first_path, second_path} = {blob.(config), blob.(first), blob.(second)}
    stalled = byte_size(second)

    origin =
      Origin.start(fn
        %{path: "/v2/a/b/manifests/v1"} ->
          {200, [{"content-type", @oci_manifest}], manifest}

        %{path: ^config_path} ->
          {200, [], config}

        %{path: ^first_path} ->
          {200, [], first}

        %{path: ^second_path} ->
          {:partial, 200, [{"content-length", "#{stalled}"}], binary_part(second, 0, 300_000), me}

        _ ->
          {404, [], ""}
      end)

    layout = Path.join(dir, "layout")
    roots = Path.join(dir, "roots")
    File.mkdir_p!(roots)
    rootfs = Path.join(roots, "rootfs")
    "sha256:" <> hex = Layer.sha256(second)
    partial = Path.join([layout, "ingest", "sha256-" <> hex <> ".partial"])

    caller =
      spawn(fn ->
        send(me, {:pull_returned, Registry.pull("#{origin.addr}/a/b:v1", layout, rootfs: rootfs)})
      end)

    eventually("the second layer's first bytes in ingest/", fn ->
      match?({:ok, %{size: 300_000}}, File.stat(partial))
    end)

    eventually("the temporary tree beside rootfs", fn -> temporary_trees(roots) != [] end)
    Process.exit(caller, :kill)
    assert_receive {:origin_client_closed, ^second_path}, 5_000
    refute_received {:pull_returned, _}
    eventually("the temporary tree removed", fn -> File.ls!(roots) == [] end)
    refute File.exists?(rootfs)
    # What arrived stays for the next pull to resume.
    assert File.stat!(partial).size == 300_000
  end

  test "the README's Tank.Image flow: rootfs/<manifest digest>, online then offline",
       %{tmp_dir: dir} do
    # The README's own code, so that what it shows is what runs.
    [code] =
      Regex.run(
        ~r/```elixir\n(defmodule MyApp\.Rootfs do\n.*?\nend)\n```/s,
        File.read!(Path.join(__DIR__, "../../../README.md")),
        capture: :all_but_first
      )

    Code.compile_string(code)
    rootfs = &apply(MyApp.Rootfs, :rootfs, [&1, &2, &3])
    image = Rig.image(:oci_image)
    reference = reference(:plain, image)
    tree = Path.join([dir, "rootfs", image["digest"]])

    assert {:ok, ^tree, %{digest: digest}} = rootfs.(reference, dir, [])
    assert digest == image["digest"]
    assert_oci_image_tree(tree, Path.join(dir, "oci"), image)
    # Again, online and offline: the same tree, no staging name left.
    assert {:ok, ^tree, _} = rootfs.(reference, dir, [])
    assert {:ok, ^tree, _} = rootfs.(reference, dir, offline: true)
    assert File.ls!(Path.join(dir, "rootfs")) == [image["digest"]]
    assert_oci_image_tree(tree, Path.join(dir, "oci"), image)

    # Offline, an image never pulled is not found (the layout lists its names).
    other = reference(:plain, Rig.image(:docker_image))
    assert {:error, {:bad_input, message}} = rootfs.(other, dir, offline: true)
    assert message =~ reference
    assert File.ls!(Path.join(dir, "rootfs")) == [image["digest"]]
  end
end
