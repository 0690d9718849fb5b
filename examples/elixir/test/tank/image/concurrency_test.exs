defmodule Tank.Image.ConcurrencyTest do
  @moduledoc """
  Many processes at once, large downloads, and the garbage collector.

  `manifest/4` and `blob/4` hold no scheduler while they wait on the
  network (the NIF starts the work and the answer comes as a message), so
  the VM's schedulers stay free: a timer process keeps
  ticking on time, and the normal schedulers' own wall-time statistics show
  them idle. (The timer is measured with OS time, so other programs loading
  the machine can delay it; the scheduler statistics cannot be fooled that
  way, and a NIF that blocked a normal scheduler would fail both.)
  """
  use ExUnit.Case, async: false

  alias Tank.Image.Registry
  alias Tank.Test.{Pull, Rig}

  @tick_ms 10
  # How late the timer may wake: a NIF holding a normal scheduler would
  # delay it by the whole download, while a download that keeps both of a
  # small machine's cores busy (tank hashing, the registry serving) can
  # delay any thread's wake-up by a good part of it under the VM's default
  # flags. So the bound is half the download, at least this many ms;
  # TANK_TEST_MAX_LATE_MS sets a fixed bound instead.
  @min_late_ms 50
  @fixed_late_ms System.get_env("TANK_TEST_MAX_LATE_MS")
  # OS time is noisy: the best of this many runs counts.
  @attempts 3

  setup do
    Rig.clear()
    :ok
  end

  @tag timeout: 120_000
  test "16 processes pulling at once with one token cache: all succeed, one token request" do
    index = Rig.image(:oci_index)
    registry = Rig.registry(:token)
    cache = Registry.new_token_cache()

    results =
      1..16
      |> Enum.map(fn _ ->
        Task.async(fn -> Pull.pull!(registry, index["repo"], index["tag"], cache) end)
      end)
      |> Task.await_many(60_000)

    assert length(results) == 16

    for pull <- results do
      assert pull.index.digest == index["digest"]
      assert length(pull.blobs) == 3

      for {digest, bytes} <- pull.blobs do
        assert Pull.sha256(bytes) == digest
      end
    end

    # Single flight: sixteen concurrent misses shared one token request.
    assert [%{"scopes" => ["repository:tank/multiarch:pull"], "status" => 200}] =
             Rig.token_requests()
  end

  @tag timeout: 300_000
  test "during a large blob download the normal schedulers stay idle and a timer ticks on time" do
    image = Rig.image(:large)
    [layer] = image["layers"]
    size = image["blob_sizes"][layer]
    downloads = 1
    before = Tank.Native.resource_counts()
    :erlang.system_flag(:scheduler_wall_time, true)

    runs =
      Enum.reduce_while(1..@attempts, [], fn attempt, runs ->
        run = large_downloads(image, layer, downloads)
        IO.puts("\n    attempt #{attempt}: #{inspect(Map.drop(run, [:digests, :counts]))}")
        assert run.digests == List.duplicate({size, layer}, downloads)
        # Each download held a zero-copy buffer of the blob's size...
        assert run.counts.buffers >= before.buffers + downloads
        assert run.counts.buffer_bytes >= before.buffer_bytes + downloads * size
        # ...while no scheduler, normal or dirty, was held: the NIF only
        # started the download, and the answer came as a message.
        assert run.normal_busy < 0.25
        assert run.dirty_io_busy_schedulers < 0.25
        runs = [run | runs]
        if on_time?(run), do: {:halt, runs}, else: {:cont, runs}
      end)

    best = Enum.min_by(runs, &(&1.timer.max_ms - late_bound(&1)))

    assert on_time?(best),
           "the timer fell #{best.timer.max_ms} ms behind during a #{best.elapsed_ms} ms download " <>
             "(bound #{late_bound(best)} ms) in the best of #{length(runs)} attempts"

    # The buffers went with the processes that held the binaries.
    assert eventually(fn -> Tank.Native.resource_counts().buffers <= before.buffers end)
  end

  @tag timeout: 300_000
  @tag :tmp_dir
  test "2 x schedulers downloads of 64 MiB to disk at once: a 10 ms ticker is never 50 ms late",
       %{tmp_dir: dir} do
    image = Rig.image(:many)
    layers = image["layers"]
    count = 2 * System.schedulers_online()
    registry = Rig.registry(:plain)

    runs =
      Enum.reduce_while(1..@attempts, [], fn attempt, runs ->
        paths = for i <- 1..count, do: Path.join(dir, "#{attempt}-#{i}")
        ticker = start_ticker()
        started = System.monotonic_time(:millisecond)

        results =
          paths
          |> Enum.with_index()
          |> Enum.map(fn {path, i} ->
            layer = Enum.at(layers, rem(i, length(layers)))
            size = image["blob_sizes"][layer]

            Task.async(fn ->
              Registry.blob_to_file(registry, image["repo"], layer, path, size: size)
            end)
          end)
          |> Task.await_many(120_000)

        run = %{
          timer: stop_ticker(ticker),
          elapsed_ms: System.monotonic_time(:millisecond) - started,
          downloads: count
        }

        IO.puts("\n    attempt #{attempt}: #{inspect(run)}")
        assert Enum.all?(results, &(&1 == :ok)), inspect(results)
        Enum.each(paths, &File.rm!/1)
        runs = [run | runs]
        if run.timer.max_ms <= 50, do: {:halt, runs}, else: {:cont, runs}
      end)

    best = Enum.min_by(runs, & &1.timer.max_ms)

    assert best.timer.max_ms <= 50,
           "the ticker fell #{best.timer.max_ms} ms behind during #{best.downloads} downloads " <>
             "(#{best.elapsed_ms} ms) in the best of #{length(runs)} attempts"
  end

  test "token caches are freed by the garbage collector once unreferenced" do
    before = Tank.Native.resource_counts().token_caches
    parent = self()

    {pid, ref} =
      spawn_monitor(fn ->
        caches = for _ <- 1..100, do: Registry.new_token_cache(ttl: 1_000)
        send(parent, {:alive, Tank.Native.resource_counts().token_caches})

        receive do
          :exit -> length(caches)
        end
      end)

    # Making 100 caches is quick, but a busy 2-core machine may hold the
    # process back for longer than assert_receive's default 100 ms.
    assert_receive {:alive, alive}, 10_000
    assert alive >= before + 100
    send(pid, :exit)
    assert_receive {:DOWN, ^ref, :process, ^pid, :normal}, 10_000
    assert eventually(fn -> Tank.Native.resource_counts().token_caches <= before end)

    # One still referenced survives the collections and keeps working.
    kept = Registry.new_token_cache()
    assert eventually(fn -> Tank.Native.resource_counts().token_caches == before + 1 end)
    image = Rig.image(:oci_image)

    assert {:ok, _, ^kept} =
             Registry.manifest(Rig.registry(:token), image["repo"], image["tag"], kept)
  end

  defp late_bound(run) do
    case @fixed_late_ms do
      nil -> max(@min_late_ms, div(run.elapsed_ms, 2))
      ms -> String.to_integer(ms)
    end
  end

  defp on_time?(run), do: run.timer.max_ms < late_bound(run)

  # `downloads` processes fetch the large blob (one shared cache) while a
  # timer ticks.
  defp large_downloads(image, layer, downloads) do
    registry = Rig.registry(:token)
    large_cache = Registry.new_token_cache()
    parent = self()
    ticker = start_ticker()
    wall_before = :erlang.statistics(:scheduler_wall_time_all)
    started = System.monotonic_time(:millisecond)

    # Each download runs in its own process, so its binary dies with it.
    large =
      for _ <- 1..downloads do
        spawn_monitor(fn ->
          {:ok, bytes} = Registry.blob(registry, image["repo"], layer, large_cache)
          send(parent, {:large, self(), bytes, Tank.Native.resource_counts()})

          receive do
            :digest -> send(parent, {:digest, self(), {byte_size(bytes), Pull.sha256(bytes)}})
          end
        end)
      end

    counts =
      for {pid, _} <- large do
        assert_receive {:large, ^pid, _bytes, counts}, 120_000
        counts
      end

    elapsed = System.monotonic_time(:millisecond) - started
    wall_after = :erlang.statistics(:scheduler_wall_time_all)
    timer = stop_ticker(ticker)

    # Hashing 256 MiB happens after the measurement.
    digests =
      for {pid, ref} <- large do
        send(pid, :digest)
        assert_receive {:digest, ^pid, digest}, 60_000
        assert_receive {:DOWN, ^ref, :process, ^pid, :normal}, 10_000
        digest
      end

    Map.merge(wall_time(wall_before, wall_after), %{
      elapsed_ms: elapsed,
      timer: timer,
      digests: digests,
      counts: Enum.max_by(counts, & &1.buffers)
    })
  end

  # Busy fraction of the normal schedulers, and how many dirty I/O
  # schedulers' worth of busy time the window held.
  defp wall_time(before, after_) do
    normal = :erlang.system_info(:schedulers)
    dirty_cpu = :erlang.system_info(:dirty_cpu_schedulers)

    deltas =
      for {{id, a0, t0}, {id, a1, t1}} <- Enum.zip(Enum.sort(before), Enum.sort(after_)) do
        {if(id <= normal,
           do: :normal,
           else: if(id <= normal + dirty_cpu, do: :dirty_cpu, else: :dirty_io)
         ), a1 - a0, t1 - t0}
      end

    sum = fn class, pick ->
      deltas |> Enum.filter(&(elem(&1, 0) == class)) |> Enum.map(pick) |> Enum.sum()
    end

    normal_total = sum.(:normal, &elem(&1, 2))
    window = normal_total / normal

    %{
      normal_busy: Float.round(sum.(:normal, &elem(&1, 1)) / normal_total, 3),
      dirty_io_busy_schedulers: Float.round(sum.(:dirty_io, &elem(&1, 1)) / window, 2)
    }
  end

  # A process that sleeps @tick_ms at a time on a normal scheduler and
  # records how late its latest wake-up was.
  defp start_ticker do
    spawn_link(fn -> tick(System.monotonic_time(:microsecond), 0, 0) end)
  end

  defp tick(last, ticks, max_late_us) do
    receive do
      {:stop, from} -> send(from, {:ticker, %{ticks: ticks, max_ms: div(max_late_us, 1000)}})
    after
      @tick_ms ->
        now = System.monotonic_time(:microsecond)
        tick(now, ticks + 1, max(max_late_us, now - last - @tick_ms * 1000))
    end
  end

  defp stop_ticker(ticker) do
    send(ticker, {:stop, self()})

    receive do
      {:ticker, late} -> late
    after
      5_000 -> flunk("the timer process did not answer")
    end
  end

  defp eventually(check, tries \\ 50) do
    Enum.reduce_while(1..tries, false, fn _, _ ->
      for pid <- Process.list(), do: :erlang.garbage_collect(pid)

      if check.() do
        {:halt, true}
      else
        Process.sleep(20)
        {:cont, false}
      end
    end)
  end
end
