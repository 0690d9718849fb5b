defmodule Tank.Test.Rig do
  @moduledoc """
  The rig (`tank-testrig`, built by `mix compile` with the NIF): real CNCF
  distribution registries, token issuers and a CDN on 127.0.0.1. This
  process owns the Port; the rig stops when the port closes its stdin (on
  `stop/0`, or when the VM exits).

  While it runs, a line on its stdin is a query answered by one JSON line:
  `token-requests`, `cdn-requests`, `clear`.
  """
  use GenServer

  @start_timeout 120_000
  @query_timeout 10_000

  def start!(args) do
    case GenServer.start(__MODULE__, args, name: __MODULE__, timeout: @start_timeout) do
      {:ok, _pid} -> info()
      {:error, reason} -> raise "cannot start tank-testrig: #{inspect(reason)}"
    end
  end

  def stop, do: GenServer.stop(__MODULE__)

  @doc "The rig's info (see testrig/src/info.rs) as decoded JSON."
  def info, do: :persistent_term.get({__MODULE__, :info})

  @doc "`\"127.0.0.1:PORT\"` of the `plain`, `token` or `cdn` registry."
  def registry(which), do: info()[to_string(which)]["registry"]

  @doc "The filesystem storage root of a registry."
  def storage(which), do: info()[to_string(which)]["storage"]

  def image(name), do: info()["images"][to_string(name)]

  @doc """
  The token registries' private repositories (`private/...`, the standard
  fixtures' twins, same digests) and the one user who may pull them:
  `info.private` (`username`, `password`, `identity_token`, `oci_image`, ...).
  """
  def private, do: info()["private"]

  @doc "The htpasswd registry (`--basic`): `registry`, `username`, `password`."
  def basic_registry, do: info()["basic_registry"]

  @doc """
  The https registries: `registry`, `client_cert_registry` (`--client-cert`),
  `ca_pem` (the rig's CA) and `certs_dir` (`<host:port>/ca.crt`, and
  `client.cert` / `client.key` for the client-cert registry).
  """
  def tls, do: info()["tls"]

  @doc "Every token request since the start or the last `clear/0`."
  def token_requests, do: query("token-requests")["token_requests"]

  @doc "Every CDN request since the start or the last `clear/0`."
  def cdn_requests, do: query("cdn-requests")["cdn_requests"]

  def clear, do: %{"ok" => true} = query("clear")

  defp query(command), do: GenServer.call(__MODULE__, {:query, command}, @query_timeout)

  @doc "The rig binary: `$TANK_TESTRIG`, else the workspace's release build."
  def binary do
    System.get_env("TANK_TESTRIG") ||
      Path.join(Mix.Tasks.Compile.TankNif.workspace_root(), "target/release/tank-testrig")
  end

  @impl true
  def init(args) do
    path = binary()

    unless File.regular?(path) do
      raise "no rig binary at #{path}: run `mix compile` (it builds the rig with the NIF), " <>
              "or `cargo build --release -p tank -p tank-testrig` in the repository root"
    end

    port =
      Port.open({:spawn_executable, path}, [
        :binary,
        :exit_status,
        {:line, 1_000_000},
        args: args
      ])

    line = read_line(port, @start_timeout)
    info = Tank.Test.JSON.decode!(line)
    :persistent_term.put({__MODULE__, :info}, info)
    {:ok, %{port: port}}
  end

  @impl true
  def handle_call({:query, command}, _from, %{port: port} = state) do
    true = Port.command(port, command <> "\n")
    {:reply, Tank.Test.JSON.decode!(read_line(port, @query_timeout)), state}
  end

  @impl true
  def handle_info({port, {:exit_status, status}}, %{port: port} = state) do
    {:stop, {:rig_exited, status}, state}
  end

  @impl true
  def terminate(_reason, %{port: port}) do
    if Port.info(port), do: Port.close(port)
    :ok
  end

  defp read_line(port, timeout, acc \\ []) do
    receive do
      {^port, {:data, {:eol, chunk}}} -> IO.iodata_to_binary(Enum.reverse([chunk | acc]))
      {^port, {:data, {:noeol, chunk}}} -> read_line(port, timeout, [chunk | acc])
      {^port, {:exit_status, status}} -> raise "tank-testrig exited with status #{status}"
    after
      timeout -> raise "tank-testrig did not answer within #{timeout} ms"
    end
  end
end
