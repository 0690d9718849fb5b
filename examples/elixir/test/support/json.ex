defmodule Tank.Test.JSON do
  @moduledoc """
  A small, strict JSON decoder for the tests (the project has no
  dependencies): the rig's info and replies, and an independent decoding of
  manifests to check the NIF's `json` against. Objects become maps with
  string keys, integers integers, other numbers floats, `null` nil.
  """

  @spec decode!(binary()) :: term()
  def decode!(text) when is_binary(text) do
    {value, rest} = value(skip_ws(text))

    case skip_ws(rest) do
      "" ->
        value

      other ->
        raise ArgumentError, "trailing data after JSON: #{inspect(String.slice(other, 0, 20))}"
    end
  end

  defp skip_ws(<<c, rest::binary>>) when c in [?\s, ?\t, ?\n, ?\r], do: skip_ws(rest)
  defp skip_ws(rest), do: rest

  defp value("{" <> rest), do: object(skip_ws(rest), %{})
  defp value("[" <> rest), do: array(skip_ws(rest), [])
  defp value("\"" <> rest), do: string(rest, [])
  defp value("true" <> rest), do: {true, rest}
  defp value("false" <> rest), do: {false, rest}
  defp value("null" <> rest), do: {nil, rest}
  defp value(<<c, _::binary>> = text) when c == ?- or c in ?0..?9, do: number(text)

  defp value(other),
    do: raise(ArgumentError, "unexpected JSON: #{inspect(String.slice(other, 0, 20))}")

  defp object("}" <> rest, acc), do: {acc, rest}

  defp object("\"" <> rest, acc) do
    {key, rest} = string(rest, [])
    ":" <> rest = skip_ws(rest)
    {val, rest} = value(skip_ws(rest))
    acc = Map.put(acc, key, val)

    case skip_ws(rest) do
      "," <> rest -> object(skip_ws(rest), acc)
      "}" <> rest -> {acc, rest}
    end
  end

  defp array("]" <> rest, []), do: {[], rest}

  defp array(text, acc) do
    {val, rest} = value(text)

    case skip_ws(rest) do
      "," <> rest -> array(skip_ws(rest), [val | acc])
      "]" <> rest -> {Enum.reverse([val | acc]), rest}
    end
  end

  defp string("\"" <> rest, acc), do: {IO.iodata_to_binary(Enum.reverse(acc)), rest}

  defp string("\\u" <> <<hex::binary-4, rest::binary>>, acc) do
    code = String.to_integer(hex, 16)

    if code in 0xD800..0xDBFF do
      "\\u" <> <<low::binary-4, rest::binary>> = rest
      low = String.to_integer(low, 16)
      string(rest, [<<0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)::utf8>> | acc])
    else
      string(rest, [<<code::utf8>> | acc])
    end
  end

  defp string("\\" <> <<c, rest::binary>>, acc) do
    char =
      case c do
        ?" -> "\""
        ?\\ -> "\\"
        ?/ -> "/"
        ?b -> "\b"
        ?f -> "\f"
        ?n -> "\n"
        ?r -> "\r"
        ?t -> "\t"
      end

    string(rest, [char | acc])
  end

  defp string(<<c, rest::binary>>, acc) when c >= 0x20, do: string(rest, [c | acc])

  defp number(text) do
    [token] = Regex.run(~r/\A-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/, text)
    rest = binary_part(text, byte_size(token), byte_size(text) - byte_size(token))

    value =
      if token =~ ~r/[.eE]/ do
        {f, ""} = Float.parse(token)
        f
      else
        String.to_integer(token)
      end

    {value, rest}
  end
end
