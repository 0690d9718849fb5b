defmodule Tank.Image.TimeoutTest do
  @moduledoc """
  Every wait for the NIF's answer is bounded: `manifest/5` and `blob/5` by
  `:timeout` (the whole call), `blob_to_file/5` and `pull/3` by
  `:idle_timeout` (silence: no answer and no progress). Past the bound the
  call is cancelled (its connection closes) and the caller gets
  `{:request_failed, %{reason: :timeout}}` with nothing left in its
  mailbox. Scripted origins stand in for a server that goes silent, which
  a real registry will not do on demand.
  """
  use ExUnit.Case, async: true
  import Tank.Test.Wait

  alias Tank.Image.Registry
  alias Tank.Test.{Origin, Pull}

  @moduletag :tmp_dir

  # The core's own idle timeout (15 s) would end these calls too; returning
  # well before it shows the caller's bound acted.
  @core_idle_ms 15_000

  defp elapsed_ms(fun) do
    start = System.monotonic_time(:millisecond)
    result = fun.()
    {result, System.monotonic_time(:millisecond) - start}
  end

  # A server that sends a response head and `prefix` of a `length`-byte
  # body, then says nothing; the test hears when the client hangs up.
  defp silent_origin(length, prefix) do
    me = self()
    Origin.start(fn _ -> {:partial, 200, [{"content-length", "#{length}"}], prefix, me} end)
  end

  test "manifest/5 and blob/5: :timeout bounds the call; it is cancelled and the caller goes on" do
    origin = silent_origin(1_000, "{")

    {result, ms} =
      elapsed_ms(fn -> Registry.manifest(origin.addr, "a/b", "v1", nil, timeout: 300) end)

    assert {:error, {:request_failed, %{reason: :timeout, kind: :transport, message: message}}} =
             result

    assert message =~ "300 ms"
    assert ms >= 300 and ms < @core_idle_ms
    assert_receive {:origin_client_closed, _}, 5_000

    {result, ms} =
      elapsed_ms(fn -> Registry.blob(origin.addr, "a/b", Pull.sha256("x"), nil, timeout: 300) end)

    assert {:error, {:request_failed, %{reason: :timeout, kind: :transport}}} = result
    assert ms >= 300 and ms < @core_idle_ms
    assert_receive {:origin_client_closed, _}, 5_000

    # The answer to the cancelled call was taken out of the mailbox.
    refute_received _
  end

  test "blob_to_file/5: :idle_timeout ends a download gone silent; the partial stays",
       %{tmp_dir: dir} do
    blob = :binary.copy("s", 1_000_000)
    origin = silent_origin(1_000_000, binary_part(blob, 0, 300_000))
    path = Path.join(dir, "blob")

    {result, ms} =
      elapsed_ms(fn ->
        Registry.blob_to_file(origin.addr, "a/b", Pull.sha256(blob), path, idle_timeout: 500)
      end)

    assert {:error, {:request_failed, %{reason: :timeout, message: message}}} = result
    assert message =~ "500 ms"
    assert ms >= 500 and ms < @core_idle_ms
    assert_receive {:origin_client_closed, _}, 5_000
    assert File.stat!(path <> ".partial").size == 300_000
    refute File.exists?(path)
    refute_received _
  end

  @tag timeout: 60_000
  test "blob_to_file/5: :idle_timeout counts silence, not the whole download", %{tmp_dir: dir} do
    pieces = for i <- 1..20, do: :binary.copy(<<i>>, 50_000)
    blob = IO.iodata_to_binary(pieces)
    # 20 pieces 200 ms apart: 4 s in all, never 2 s without a byte.
    origin = Origin.start(fn _ -> {:trickle, 200, [], pieces, 200} end)
    path = Path.join(dir, "blob")

    {result, ms} =
      elapsed_ms(fn ->
        Registry.blob_to_file(origin.addr, "a/b", Pull.sha256(blob), path, idle_timeout: 2_000)
      end)

    assert result == :ok
    assert ms > 2_000
    assert File.read!(path) == blob
  end

  test "pull/3: :idle_timeout ends a pull whose registry goes silent", %{tmp_dir: dir} do
    origin = silent_origin(1_000, "{")

    {result, ms} =
      elapsed_ms(fn ->
        Registry.pull("#{origin.addr}/a/b:v1", Path.join(dir, "oci"), idle_timeout: 500)
      end)

    assert {:error, {:request_failed, %{reason: :timeout}}} = result
    assert ms >= 500 and ms < @core_idle_ms
    assert_receive {:origin_client_closed, _}, 5_000
    refute_received _
  end

  test "a caller that exits cancels its manifest/5 or blob/5 call: the connection closes" do
    origin = silent_origin(1_000, "{")

    for call <- [
          fn -> Registry.manifest(origin.addr, "a/b", "v1") end,
          fn -> Registry.blob(origin.addr, "a/b", Pull.sha256("x")) end
        ] do
      caller = spawn(call)
      # The request is in once the origin logged it.
      n = length(Origin.requests(origin)) + 1
      eventually("request #{n}", fn -> length(Origin.requests(origin)) >= n end, 10_000)
      Process.exit(caller, :kill)
      assert_receive {:origin_client_closed, _}, 5_000
    end
  end

  test "bad bounds are {:bad_input, message} before any request", %{tmp_dir: dir} do
    origin = Origin.start(fn _ -> {500, [], ""} end)
    digest = Pull.sha256("x")

    for bad <- [0, -1, :infinity, 1.5, nil, 4_294_967_296] do
      assert {:error, {:bad_input, _}} =
               Registry.manifest(origin.addr, "a/b", "v1", nil, timeout: bad)

      assert {:error, {:bad_input, _}} =
               Registry.blob(origin.addr, "a/b", digest, nil, timeout: bad)

      assert {:error, {:bad_input, _}} =
               Registry.blob_to_file(origin.addr, "a/b", digest, Path.join(dir, "f"),
                 idle_timeout: bad
               )

      assert {:error, {:bad_input, _}} =
               Registry.pull("#{origin.addr}/a/b:v1", Path.join(dir, "oci"), idle_timeout: bad)
    end

    assert Origin.requests(origin) == []
  end
end
