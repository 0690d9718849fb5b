# The NIF is built by a custom Mix compiler (mix/tasks/compile.tank_nif.ex):
# rustler's own Mix integration is a Hex package, and this project has no
# Hex dependencies at all, so `mix test` needs nothing but Debian's `elixir`
# and `erlang-dev` (and cargo). It lives outside lib/ because a project
# cannot use a compiler it has not compiled yet.
Code.require_file("mix/tasks/compile.tank_nif.ex", __DIR__)

defmodule Tank.MixProject do
  use Mix.Project

  def project do
    [
      app: :tank,
      version: "0.1.0",
      elixir: "~> 1.14",
      compilers: [:tank_nif] ++ Mix.compilers(),
      elixirc_paths: elixirc_paths(Mix.env()),
      start_permanent: false,
      deps: []
    ]
  end

  def application do
    [extra_applications: [:logger] ++ test_applications(Mix.env())]
  end

  # The tests check blob digests with :crypto and make a key with
  # :public_key; the library needs nothing.
  defp test_applications(:test), do: [:crypto, :public_key]
  defp test_applications(_), do: []

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]
end
