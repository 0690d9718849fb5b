defmodule Tank.Image.ReasonsTest do
  @moduledoc """
  The reason atoms `Tank.Image.Registry`'s types name are tank's reason ids,
  as include/tank.h's generated table lists them, so the two cannot drift.
  """
  use ExUnit.Case, async: true

  @header Path.expand("../../../../../include/tank.h", __DIR__)

  # include/tank.h's table: under " * Reason ids", a status line is
  # " *   TANK_ERR_...", a reason line " *     id  text", and a deeper indent
  # continues the text. Returns %{status => [id atom]}.
  defp header_reasons do
    @header
    |> File.read!()
    |> String.split("\n")
    |> Enum.drop_while(&(not String.starts_with?(&1, " * Reason ids")))
    |> Enum.drop(1)
    |> Enum.take_while(&Regex.match?(~r/^ \*\s{3,}\S/, &1))
    |> Enum.reduce({%{}, nil}, fn line, {table, status} ->
      cond do
        m = Regex.run(~r/^ \*   (TANK_ERR_\w+)$/, line) ->
          {Map.put(table, Enum.at(m, 1), []), Enum.at(m, 1)}

        m = Regex.run(~r/^ \*     ([a-z_]+)/, line) ->
          {Map.update!(table, status, &(&1 ++ [String.to_atom(Enum.at(m, 1))])), status}

        true ->
          {table, status}
      end
    end)
    |> elem(0)
  end

  # The atoms of a union type of Tank.Image.Registry.
  defp type_atoms(name) do
    {:ok, types} = Code.Typespec.fetch_types(Tank.Image.Registry)

    [members] =
      for {:type, {^name, {:type, _, :union, members}, []}} <- types, do: members

    for {:atom, _, atom} <- members, do: atom
  end

  test "the header's table is read" do
    table = header_reasons()
    assert table |> Map.values() |> List.flatten() |> length() >= 30
    assert :http_status in table["TANK_ERR_HTTP"]
  end

  test "layer_reason/0 is every reason of TANK_ERR_LAYER" do
    assert Enum.sort(type_atoms(:layer_reason)) == Enum.sort(header_reasons()["TANK_ERR_LAYER"])
  end

  # The NIF gives every other status a shape of its own; these reach
  # `{:request_failed, detail}` with their reason in the detail, and so does
  # manifest_digest_mismatch (only a blob's digest_mismatch has a shape).
  test "failure_reason/0 is every reason that reaches {:request_failed, detail}" do
    table = header_reasons()

    expected =
      ["TANK_ERR_TRANSPORT", "TANK_ERR_AUTH", "TANK_ERR_PROTOCOL", "TANK_ERR_INTERNAL"]
      |> Enum.flat_map(&Map.fetch!(table, &1))
      |> Kernel.++([:manifest_digest_mismatch])

    assert :manifest_digest_mismatch in table["TANK_ERR_DIGEST_MISMATCH"]
    assert Enum.sort(type_atoms(:failure_reason)) == Enum.sort(expected)
  end
end
