defmodule Tank.Test.Storage do
  @moduledoc """
  Plants content straight into a registry's filesystem storage (the layout
  of CNCF distribution's filesystem driver), so the real registry serves
  bytes that do not match the digest it serves them under. Each planted
  digest is new, so nothing else the tests fetch is disturbed.
  """
  alias Tank.Test.Rig

  @doc "Makes `registry` serve `bytes` as blob `digest` of `repo`."
  def plant_blob(which, repo, "sha256:" <> hex = digest, bytes) do
    write_data(which, hex, bytes)
    write(Path.join([repos(which), repo, "_layers/sha256", hex, "link"]), digest)
  end

  @doc "Makes `registry` serve `bytes` as manifest `digest` of `repo`."
  def plant_manifest(which, repo, "sha256:" <> hex = digest, bytes) do
    write_data(which, hex, bytes)
    write(Path.join([repos(which), repo, "_manifests/revisions/sha256", hex, "link"]), digest)
  end

  @doc """
  Makes `registry` serve `bytes` as manifest of `repo` by its digest and
  by each of `tags`; returns the digest.
  """
  def plant_tagged(which, repo, bytes, tags) do
    "sha256:" <> hex = digest = Tank.Test.Pull.sha256(bytes)
    plant_manifest(which, repo, digest, bytes)

    for tag <- tags do
      tag_dir = Path.join([repos(which), repo, "_manifests/tags", tag])
      write(Path.join([tag_dir, "current/link"]), digest)
      write(Path.join([tag_dir, "index/sha256", hex, "link"]), digest)
    end

    digest
  end

  defp write_data(which, hex, bytes) do
    prefix = binary_part(hex, 0, 2)

    write(
      Path.join([Rig.storage(which), "docker/registry/v2/blobs/sha256", prefix, hex, "data"]),
      bytes
    )
  end

  defp repos(which), do: Path.join(Rig.storage(which), "docker/registry/v2/repositories")

  defp write(path, content) do
    File.mkdir_p!(Path.dirname(path))
    File.write!(path, content)
  end
end
