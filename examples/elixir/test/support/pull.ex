defmodule Tank.Test.Pull do
  @moduledoc """
  The original `Tank.Image.pull/2` flow, as the callers of
  `Tank.Image.Registry` run it: the manifest of a tag; if it is an index,
  the `linux/amd64` entry and its manifest by digest; then the config blob
  and every layer blob, all with one token cache.
  """
  alias Tank.Image.Registry

  @doc "Returns `%{index: info | nil, image: info, blobs: [{digest, bytes}]}` or raises."
  def pull!(registry, repo, tag, cache) do
    {:ok, top, ^cache} = Registry.manifest(registry, repo, tag, cache)

    {index, image} =
      case top.json do
        %{"manifests" => entries} ->
          entry =
            Enum.find(
              entries,
              &(&1["platform"]["os"] == "linux" and &1["platform"]["architecture"] == "amd64")
            )

          {:ok, image, ^cache} = Registry.manifest(registry, repo, entry["digest"], cache)
          {top, image}

        _ ->
          {nil, top}
      end

    digests = [image.json["config"]["digest"] | Enum.map(image.json["layers"], & &1["digest"])]

    blobs =
      for digest <- digests do
        {:ok, bytes} = Registry.blob(registry, repo, digest, cache)
        {digest, bytes}
      end

    %{index: index, image: image, blobs: blobs}
  end

  def sha256(bytes), do: "sha256:" <> Base.encode16(:crypto.hash(:sha256, bytes), case: :lower)
end
