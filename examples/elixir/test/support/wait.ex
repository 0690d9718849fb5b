defmodule Tank.Test.Wait do
  @moduledoc """
  Waiting for an event the tests cannot be told of (a file appearing, a
  request reaching an origin): checked every 5 ms, with an end.
  """

  @doc "Returns `:ok` once `fun.()` is true; fails naming `what` after `within_ms`."
  def eventually(what, fun, within_ms \\ 30_000) do
    until(what, fun, System.monotonic_time(:millisecond) + within_ms)
  end

  defp until(what, fun, deadline) do
    cond do
      fun.() ->
        :ok

      System.monotonic_time(:millisecond) > deadline ->
        ExUnit.Assertions.flunk("timed out waiting for #{what}")

      true ->
        Process.sleep(5)
        until(what, fun, deadline)
    end
  end
end
