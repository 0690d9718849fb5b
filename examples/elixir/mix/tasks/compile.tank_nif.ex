defmodule Mix.Tasks.Compile.TankNif do
  @moduledoc """
  Builds the Rust NIF in `native/` with cargo and copies it to
  `priv/native/libtank_nif.so`, where `Tank.Native` loads it.

  The NIF crate (`tank_nif`) is a member of the repository's Cargo
  workspace, so it shares the workspace's `Cargo.lock` and `target/`
  directory. cargo runs from the workspace root as

      cargo build --release -p tank -p tank-testrig -p tank_nif

  That package set is the repository's usual release build
  (`-p tank -p tank-testrig`) plus the NIF: cargo unifies dependency
  features over the packages it builds, and building `tank_nif` alone would
  build `tank` with slightly different features and rebuild it every time
  the two commands alternate. The superset changes none of the shared
  features, so both stay fresh. It also builds `tank-testrig`, the
  registries the tests start.

  cargo decides what is stale; the copy happens only when the library
  changed, and replaces the file by a rename so a VM that has the old one
  loaded is never handed a half-written file.

  Environment: `CARGO` (the cargo binary, default `cargo`),
  `TANK_NIF_SKIP_CARGO=1` (use the library already in `priv/native`).
  """
  use Mix.Task.Compiler

  @packages ["tank", "tank-testrig", "tank_nif"]
  @library "libtank_nif.so"

  @impl Mix.Task.Compiler
  def run(_args) do
    destination = destination()

    if System.get_env("TANK_NIF_SKIP_CARGO") in ["1", "true"] do
      if File.exists?(destination) do
        {:noop, []}
      else
        Mix.raise("TANK_NIF_SKIP_CARGO is set but #{destination} does not exist")
      end
    else
      built = cargo_build!()
      install(built, destination)
    end
  end

  @impl Mix.Task.Compiler
  def clean do
    File.rm_rf!(Path.dirname(destination()))
    :ok
  end

  @doc "The repository root: the Cargo workspace this project sits in."
  def workspace_root, do: Path.expand("../..", project_dir())

  defp project_dir, do: Path.dirname(Mix.Project.project_file())

  defp destination, do: Path.join([project_dir(), "priv", "native", @library])

  defp cargo_build! do
    cargo = System.get_env("CARGO", "cargo")

    unless System.find_executable(cargo) do
      Mix.raise(
        "cargo (#{cargo}) not found: the Tank NIF is Rust; install a Rust toolchain " <>
          "(https://rustup.rs) and run mix again"
      )
    end

    args =
      ["build", "--release", "--message-format=json-render-diagnostics"] ++
        Enum.flat_map(@packages, &["-p", &1])

    Mix.shell().info("==> tank_nif: cargo #{Enum.join(args, " ")} (in #{workspace_root()})")
    # stdout: one JSON message per line (parsed below); stderr: cargo's
    # progress and rendered diagnostics, straight to the terminal.
    {out, status} = System.cmd(cargo, args, cd: workspace_root())

    if status != 0 do
      Mix.raise("cargo build of the Tank NIF failed (exit status #{status}); see the errors above")
    end

    artifact(out) ||
      Mix.raise("cargo built the workspace but reported no #{@library} artifact")
  end

  # The path of the tank_nif cdylib in cargo's compiler-artifact message.
  # (No JSON library here: the message is matched, not parsed.)
  defp artifact(out) do
    out
    |> String.split("\n")
    |> Enum.filter(&(&1 =~ ~s("reason":"compiler-artifact") and &1 =~ ~s("name":"tank_nif")))
    |> Enum.find_value(fn line ->
      case Regex.run(~r/"filenames":\[([^\]]*)\]/, line) do
        [_, list] ->
          ~r/"([^"]*\/#{Regex.escape(@library)})"/
          |> Regex.run(list, capture: :all_but_first)
          |> then(&(&1 && hd(&1)))

        nil ->
          nil
      end
    end)
  end

  defp install(built, destination) do
    new = File.read!(built)

    if File.read(destination) == {:ok, new} do
      {:noop, []}
    else
      File.mkdir_p!(Path.dirname(destination))
      partial = destination <> ".partial"
      File.write!(partial, new)
      File.rename!(partial, destination)
      Mix.shell().info("==> tank_nif: installed #{Path.relative_to_cwd(destination)}")
      {:ok, []}
    end
  end
end
