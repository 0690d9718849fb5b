defmodule Tank.Image.BlobSizeTest do
  @moduledoc """
  `blob/5`'s `:size` and `:max_size`: a blob in memory is never longer than
  the caller allows, whatever the server sends. `async: false`: the memory
  test reads the VM's resident size, which other tests' downloads would
  move.
  """
  use ExUnit.Case, async: false

  alias Tank.Image.Registry
  alias Tank.Test.{Origin, Pull, Rig}

  @mib 1024 * 1024

  # The OS process's resident memory: the NIF's buffers are not the VM's
  # own allocations, so :erlang.memory/0 would not see them.
  defp rss do
    [_, kib] = Regex.run(~r/VmRSS:\s+(\d+) kB/, File.read!("/proc/self/status"))
    String.to_integer(kib) * 1024
  end

  # Runs `call` in another process while sampling the resident size; a
  # call that lets memory grow past `abort_above` is killed (which cancels
  # it) and the test fails. Returns the call's result and the peak seen.
  defp with_peak_rss(call, abort_above, deadline_ms \\ 60_000) do
    task = Task.async(call)
    deadline = System.monotonic_time(:millisecond) + deadline_ms
    watch(task, abort_above, deadline, rss())
  end

  defp watch(task, abort_above, deadline, peak) do
    case Task.yield(task, 10) do
      {:ok, result} ->
        {result, max(peak, rss())}

      nil ->
        now = rss()

        cond do
          now > abort_above ->
            Task.shutdown(task, :brutal_kill)
            flunk("the VM's resident memory grew to #{div(now, @mib)} MiB during the call")

          System.monotonic_time(:millisecond) > deadline ->
            Task.shutdown(task, :brutal_kill)
            flunk("the call did not return in time")

          true ->
            watch(task, abort_above, deadline, max(peak, now))
        end
    end
  end

  @tag timeout: 120_000
  test "without :size, an endless chunked body is too_large past :max_size, and memory stays flat" do
    me = self()
    piece = :binary.copy("e", 64 * 1024)
    origin = Origin.start(fn _ -> {:endless, 200, [], piece, me} end)
    cap = 16 * @mib
    :erlang.garbage_collect()
    baseline = rss()

    {result, peak} =
      with_peak_rss(
        fn -> Registry.blob(origin.addr, "a/b", Pull.sha256("x"), nil, max_size: cap) end,
        baseline + cap + 512 * @mib
      )

    assert {:error, {:request_failed, %{reason: :too_large, kind: :protocol, message: message}}} =
             result

    assert message =~ "#{cap}"
    # The cap, the HTTP stack's buffers and the VM's own noise; a call that
    # buffered on would have passed this at wire speed.
    assert peak - baseline < cap + 64 * @mib,
           "resident memory rose #{div(peak - baseline, @mib)} MiB over a #{div(cap, @mib)} MiB cap"

    # The call stopped reading: the connection is closed.
    assert_receive {:origin_client_closed, _}, 10_000
  end

  test "a Content-Length past :max_size, or a :size past it, is too_large before the body is read" do
    origin = Origin.start(fn _ -> {200, [{"content-length", "1000001"}], ""} end)

    assert {:error, {:request_failed, %{reason: :too_large, kind: :protocol}}} =
             Registry.blob(origin.addr, "a/b", Pull.sha256("x"), nil, max_size: 1_000_000)

    assert length(Origin.requests(origin)) == 1

    assert {:error, {:request_failed, %{reason: :too_large}}} =
             Registry.blob(origin.addr, "a/b", Pull.sha256("x"), nil,
               size: 1_000_001,
               max_size: 1_000_000
             )

    assert length(Origin.requests(origin)) == 1
  end

  test ":size against the rig: the right size is the blob, a wrong one a length mismatch" do
    image = Rig.image(:oci_image)
    cache = Registry.new_token_cache()

    for which <- [:plain, :token], digest <- [image["config"] | image["layers"]] do
      size = image["blob_sizes"][digest]
      registry = Rig.registry(which)

      assert {:ok, bytes} = Registry.blob(registry, image["repo"], digest, cache, size: size)
      assert byte_size(bytes) == size and Pull.sha256(bytes) == digest

      # max_size bounds a sized blob too: exactly the size is allowed.
      assert {:ok, ^bytes} =
               Registry.blob(registry, image["repo"], digest, cache, size: size, max_size: size)

      for wrong <- [size - 1, size + 1] do
        assert {:error, {:request_failed, %{reason: :length_mismatch, kind: :protocol}}} =
                 Registry.blob(registry, image["repo"], digest, cache, size: wrong)
      end
    end
  end

  test "bad :size and :max_size values are {:bad_input, message} before any request" do
    origin = Origin.start(fn _ -> {500, [], ""} end)
    digest = Pull.sha256("x")

    for opts <- [[size: -1], [size: "1"], [max_size: -1], [max_size: 1.5], [max_size: nil]] do
      assert {:error, {:bad_input, _}} = Registry.blob(origin.addr, "a/b", digest, nil, opts)
    end

    assert Origin.requests(origin) == []
  end
end
