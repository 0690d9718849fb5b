defmodule Tank.Test.Origin do
  @moduledoc """
  A scripted HTTP/1.1 origin on 127.0.0.1 for faults a real registry will
  not produce on demand (a failing token endpoint, a challenge without a
  realm, a broken manifest, a redirect loop). Each connection serves one
  request: the script gets `%{method, path, headers, host}` and returns the
  response as `{status, headers, body}`, or `:stall` (say nothing, keep the
  connection open), or `{:partial, status, headers, prefix, watcher}` (send
  the head and `prefix`, then nothing; `watcher` gets
  `{:origin_client_closed, path}` when the client closes the connection), or
  `{:endless, status, headers, piece, watcher}` (a chunked body of `piece`
  after `piece`, for as long as the client reads; then `watcher` hears
  `{:origin_client_closed, path}`), or `{:trickle, status, headers, pieces,
  every_ms}` (each piece `every_ms` after the one before, then close).
  Linked to the test process that starts it.
  """

  def start(script) when is_function(script, 1) do
    {:ok, listener} =
      :gen_tcp.listen(0, [:binary, active: false, reuseaddr: true, ip: {127, 0, 0, 1}, backlog: 64])

    {:ok, port} = :inet.port(listener)
    {:ok, log} = Agent.start_link(fn -> [] end)

    acceptor =
      spawn_link(fn ->
        accept(listener, script, log)
      end)

    :ok = :gen_tcp.controlling_process(listener, acceptor)
    %{addr: "127.0.0.1:#{port}", url: "http://127.0.0.1:#{port}", log: log}
  end

  @doc "The requests served so far, oldest first."
  def requests(%{log: log}), do: log |> Agent.get(& &1) |> Enum.reverse()

  defp accept(listener, script, log) do
    case :gen_tcp.accept(listener) do
      {:ok, socket} ->
        # Linked: when the test ends, the acceptor and every connection go.
        pid = spawn_link(fn -> serve(socket, script, log) end)
        :ok = :gen_tcp.controlling_process(socket, pid)
        send(pid, :go)
        accept(listener, script, log)

      {:error, _} ->
        :ok
    end
  end

  defp serve(socket, script, log) do
    receive do
      :go -> :ok
    end

    with {:ok, head} <- read_head(socket, "") do
      request = parse(head)
      Agent.update(log, &[request | &1])

      case script.(request) do
        :stall ->
          Process.sleep(:infinity)

        {:partial, status, headers, prefix, watcher} ->
          # The head and the first bytes, then silence; `watcher` hears
          # when the client hangs up.
          :gen_tcp.send(socket, response(status, headers, prefix))
          _ = :gen_tcp.recv(socket, 0, :infinity)
          send(watcher, {:origin_client_closed, request.path})

        {:endless, status, headers, piece, watcher} ->
          head = response(status, [{"transfer-encoding", "chunked"} | headers], "")
          chunk = [Integer.to_string(byte_size(piece), 16), "\r\n", piece, "\r\n"]

          with :ok <- :gen_tcp.send(socket, head), do: send_forever(socket, chunk)
          send(watcher, {:origin_client_closed, request.path})

        {:trickle, status, headers, pieces, every_ms} ->
          length = pieces |> Enum.map(&byte_size/1) |> Enum.sum()
          :gen_tcp.send(socket, response(status, [{"content-length", "#{length}"} | headers], ""))

          Enum.reduce_while(pieces, :ok, fn piece, :ok ->
            # The pace is what the test is about, not a wait for an event.
            Process.sleep(every_ms)
            {if(:gen_tcp.send(socket, piece) == :ok, do: :cont, else: :halt), :ok}
          end)

          :gen_tcp.close(socket)

        {status, headers, body} ->
          :gen_tcp.send(socket, response(status, headers, body))
          :gen_tcp.close(socket)
      end
    end
  end

  defp send_forever(socket, chunk) do
    with :ok <- :gen_tcp.send(socket, chunk), do: send_forever(socket, chunk)
  end

  defp read_head(socket, acc) do
    if String.contains?(acc, "\r\n\r\n") do
      {:ok, acc}
    else
      case :gen_tcp.recv(socket, 0, 10_000) do
        {:ok, data} -> read_head(socket, acc <> data)
        error -> error
      end
    end
  end

  defp parse(head) do
    [request_line | header_lines] =
      head |> String.split("\r\n\r\n", parts: 2) |> hd() |> String.split("\r\n")

    [method, target | _] = String.split(request_line, " ")

    headers =
      for line <- header_lines, [k, v] = String.split(line, ":", parts: 2) do
        {String.downcase(k), String.trim(v)}
      end

    host = Enum.find_value(headers, fn {k, v} -> if k == "host", do: v end)
    %{method: method, path: target, headers: headers, host: host}
  end

  @doc """
  An HTTP/1.1 response with Content-Length (unless given, or the body is
  chunked) and Connection: close.
  """
  def response(status, headers, body) do
    headers =
      if List.keymember?(headers, "content-length", 0) or
           List.keymember?(headers, "transfer-encoding", 0),
         do: headers,
         else: [{"content-length", Integer.to_string(IO.iodata_length(body))} | headers]

    [
      "HTTP/1.1 #{status} X\r\n",
      Enum.map(headers, fn {k, v} -> [k, ": ", v, "\r\n"] end),
      "connection: close\r\n\r\n",
      body
    ]
  end
end
