defmodule Tank.Image.BlobToFileTest do
  @moduledoc """
  `blob_to_file/5`: real registries for whole downloads, a scripted origin
  for a caller that dies mid-transfer and for more downloads at once than
  the VM has dirty schedulers.
  """
  use ExUnit.Case, async: true
  import Tank.Test.Wait

  alias Tank.Image.Registry
  alias Tank.Test.{Origin, Pull, Rig}

  @moduletag :tmp_dir

  defp partial_size(path) do
    case File.stat(path <> ".partial") do
      {:ok, %{size: size}} -> size
      _ -> 0
    end
  end

  # Waits (bounded) for something another process brings about.
  test "every blob of an image lands verified, with progress, from plain and token registries",
       %{tmp_dir: dir} do
    image = Rig.image(:oci_image)

    for which <- [:plain, :token] do
      cache = if which == :token, do: Registry.new_token_cache()

      for digest <- [image["config"] | image["layers"]] do
        size = image["blob_sizes"][digest]
        path = Path.join(dir, "#{which}-#{String.slice(digest, 7, 64)}")

        assert :ok =
                 Registry.blob_to_file(Rig.registry(which), image["repo"], digest, path,
                   size: size,
                   token_cache: cache,
                   progress: self()
                 )

        assert Pull.sha256(File.read!(path)) == digest
        assert_received {:tank_progress, ^path, ^size, ^size}
        refute File.exists?(path <> ".partial")
        # Already there: :ok with no request, one final report.
        assert :ok = Registry.blob_to_file(Rig.registry(which), image["repo"], digest, path)
      end
    end
  end

  test "errors: a directory that is not there, bytes that do not hash, a missing blob",
       %{tmp_dir: dir} do
    image = Rig.image(:oci_image)
    [layer | _] = image["layers"]
    missing = Path.join([dir, "no-such-dir", "blob"])

    assert {:error, {:io, refused, message}} =
             Registry.blob_to_file(Rig.registry(:plain), image["repo"], layer, missing)

    assert refused =~ "no-such-dir" and message =~ "no-such-dir"

    wrong = Origin.start(fn _ -> {200, [], "not the blob"} end)
    path = Path.join(dir, "blob")

    assert {:error, {:digest_mismatch, :blob}} =
             Registry.blob_to_file(wrong.addr, "a/b", Pull.sha256("the blob"), path)

    assert {:error, {:blob_http, 404}} =
             Registry.blob_to_file(Rig.registry(:plain), image["repo"], Pull.sha256("nope"), path)

    assert File.ls!(dir) == []
  end

  test "a caller that is killed cancels its download: the connection closes, the partial stays",
       %{tmp_dir: dir} do
    blob = :binary.copy("t", 1_000_000)
    me = self()

    origin =
      Origin.start(fn _ ->
        {:partial, 200, [{"content-length", "1000000"}], binary_part(blob, 0, 300_000), me}
      end)

    path = Path.join(dir, "blob")
    caller = spawn(fn -> Registry.blob_to_file(origin.addr, "a/b", Pull.sha256(blob), path) end)
    eventually("the first bytes on disk", fn -> partial_size(path) == 300_000 end, 10_000)
    Process.exit(caller, :kill)
    assert_receive {:origin_client_closed, _}, 1_000
    assert partial_size(path) == 300_000
    refute File.exists?(path)

    # The next call resumes from the partial file.
    served =
      Origin.start(fn %{headers: headers} ->
        case List.keyfind(headers, "range", 0) do
          {"range", "bytes=300000-"} ->
            {206, [{"content-range", "bytes 300000-999999/1000000"}],
             binary_part(blob, 300_000, 700_000)}

          _ ->
            {500, [], "expected a Range request"}
        end
      end)

    assert :ok = Registry.blob_to_file(served.addr, "a/b", Pull.sha256(blob), path, size: 1_000_000)
    assert File.read!(path) == blob
  end

  @tag timeout: 120_000
  test "more downloads at once than the VM has dirty I/O schedulers all make progress",
       %{tmp_dir: dir} do
    count = :erlang.system_info(:dirty_io_schedulers) * 3 + 2
    assert count >= 32
    blob = :binary.copy("m", 200_000)
    me = self()

    origin =
      Origin.start(fn _ ->
        {:partial, 200, [{"content-length", "200000"}], binary_part(blob, 0, 50_000), me}
      end)

    callers =
      for i <- 1..count do
        path = Path.join(dir, "blob-#{i}")
        pid = spawn(fn -> Registry.blob_to_file(origin.addr, "a/b", Pull.sha256(blob), path) end)
        {pid, path}
      end

    # Every one has its first bytes on disk while all are still running.
    eventually(
      "#{count} downloads in flight at once",
      fn -> Enum.all?(callers, fn {_, path} -> partial_size(path) == 50_000 end) end,
      10_000
    )

    assert Enum.all?(callers, fn {pid, _} -> Process.alive?(pid) end)

    for {pid, _} <- callers, do: Process.exit(pid, :kill)

    for _ <- 1..count do
      assert_receive {:origin_client_closed, _}, 5_000
    end
  end
end
