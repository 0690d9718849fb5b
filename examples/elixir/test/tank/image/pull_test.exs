defmodule Tank.Image.PullTest do
  @moduledoc """
  The original module's own pull flow, and what a token cache saves. These
  count the rig's token requests, so they run with no other test at once.
  """
  use ExUnit.Case, async: false

  alias Tank.Image.Registry
  alias Tank.Test.{Pull, Rig}

  @scope "repository:tank/multiarch:pull"

  setup do
    Rig.clear()
    :ok
  end

  test "the pull flow: index → linux/amd64 → manifest by digest → config and layers, one token request" do
    index = Rig.image(:oci_index)
    amd64 = Enum.find(index["manifests"], &(&1["platform"] == "linux/amd64"))
    cache = Registry.new_token_cache()

    pull = Pull.pull!(Rig.registry(:token), index["repo"], index["tag"], cache)

    assert pull.index.digest == index["digest"]
    assert pull.image.digest == amd64["digest"]
    assert pull.image.media_type == amd64["media_type"]
    assert Enum.map(pull.blobs, &elem(&1, 0)) == [amd64["config"] | amd64["layers"]]

    for {digest, bytes} <- pull.blobs do
      assert Pull.sha256(bytes) == digest
      assert byte_size(bytes) == index["blob_sizes"][digest]
    end

    assert [token_request] = Rig.token_requests()

    assert %{
             "which" => "token",
             "service" => "tank-rig",
             "scopes" => [@scope],
             "authorization" => false,
             "status" => 200
           } = token_request

    # The same cache, threaded into a second pull, needs no new token.
    Pull.pull!(Rig.registry(:token), index["repo"], index["tag"], cache)
    assert length(Rig.token_requests()) == 1
  end

  test "a nil cache: every call runs the handshake again" do
    index = Rig.image(:oci_index)
    pull = Pull.pull!(Rig.registry(:token), index["repo"], index["tag"], nil)
    calls = 2 + length(pull.blobs)

    requests = Rig.token_requests()
    assert length(requests) == calls
    assert Enum.all?(requests, &(&1["scopes"] == [@scope] and &1["status"] == 200))
  end

  test "the default argument is nil: no caching" do
    image = Rig.image(:oci_image)
    registry = Rig.registry(:token)
    {:ok, _, nil} = Registry.manifest(registry, image["repo"], image["tag"])
    {:ok, _} = Registry.blob(registry, image["repo"], image["config"])
    assert length(Rig.token_requests()) == 2
  end

  test "a cache keys tokens by registry and repository" do
    cache = Registry.new_token_cache()

    for name <- [:oci_image, :oci_index, :oci_image, :oci_index] do
      image = Rig.image(name)
      {:ok, _, ^cache} = Registry.manifest(Rig.registry(:token), image["repo"], image["tag"], cache)
    end

    scopes = Rig.token_requests() |> Enum.map(& &1["scopes"]) |> Enum.sort()
    assert scopes == [["repository:tank/multiarch:pull"], ["repository:tank/oci-image:pull"]]
  end

  test ":ttl: a token outlives its cache's TTL only by a new handshake" do
    image = Rig.image(:oci_image)
    registry = Rig.registry(:token)
    short = Registry.new_token_cache(ttl: 300)
    long = Registry.new_token_cache()

    for cache <- [short, long] do
      {:ok, _, ^cache} = Registry.manifest(registry, image["repo"], image["tag"], cache)
    end

    Process.sleep(400)

    for cache <- [short, long] do
      {:ok, _, ^cache} = Registry.manifest(registry, image["repo"], image["tag"], cache)
    end

    # One each at first, then one more for the short cache only.
    assert length(Rig.token_requests()) == 3
  end
end
