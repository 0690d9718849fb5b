defmodule Tank.Image.ListingTest do
  @moduledoc """
  `tags/3` and `referrers/4` against the rig's plain and token registries
  (content planted in the plain registry's storage where a test needs its
  own), and a scripted origin for pages a real registry will not make.
  """
  use ExUnit.Case, async: true

  alias Tank.Image.Registry
  alias Tank.Test.{JSON, Origin, Pull, Rig, Storage}

  @oci_manifest "application/vnd.oci.image.manifest.v1+json"
  @oci_index "application/vnd.oci.image.index.v1+json"
  @oci_empty "application/vnd.oci.empty.v1+json"
  @sbom "application/vnd.example.sbom+json"
  @signature "application/vnd.example.signature"

  defp fresh_repo(what), do: "tank/elixir-#{what}-#{System.unique_integer([:positive])}"

  # The rig's OCI image manifest, as the registry serves it.
  defp image_raw do
    image = Rig.image(:oci_image)
    {:ok, info, nil} = Registry.manifest(Rig.registry(:plain), image["repo"], image["digest"])
    info.raw
  end

  describe "tags/3" do
    test "every tag of a repository, as a list of strings" do
      repo = fresh_repo("tags")
      tags = ["a1", "b2", "latest", "v1.0.0"]
      Storage.plant_tagged(:plain, repo, image_raw(), tags)

      assert {:ok, listed} = Registry.tags(Rig.registry(:plain), repo)
      assert Enum.sort(listed) == tags
    end

    test "through the token handshake, with a cache" do
      image = Rig.image(:oci_image)
      cache = Registry.new_token_cache()
      assert {:ok, listed} = Registry.tags(Rig.registry(:token), image["repo"], token_cache: cache)
      assert image["tag"] in listed
    end

    test "an unknown repository is {:tags_http, 404}" do
      assert {:error, {:tags_http, 404}} = Registry.tags(Rig.registry(:plain), fresh_repo("none"))
    end

    test "several pages, in page order, by relative and absolute links" do
      pages = %{"0" => ["p1a", "p1b"], "1" => ["p2a"], "2" => ["p3a"]}

      origin =
        Origin.start(fn %{path: path, host: host} ->
          page = URI.decode_query(URI.parse(path).query || "")["page"] || "0"

          link =
            case page do
              "0" -> [{"link", ~s(</v2/tank/paged/tags/list?n=2&page=1>; rel="next")}]
              "1" -> [{"link", ~s(<http://#{host}/v2/tank/paged/tags/list?page=2>; rel="next")}]
              "2" -> []
            end

          body =
            ~s({"name":"tank/paged","tags":[) <>
              Enum.map_join(pages[page], ",", &~s("#{&1}")) <> "]}"

          {200, [{"content-type", "application/json"} | link], body}
        end)

      assert {:ok, ["p1a", "p1b", "p2a", "p3a"]} = Registry.tags(origin.addr, "tank/paged")
      assert [first | _] = requested = Enum.map(Origin.requests(origin), & &1.path)
      assert length(requested) == 3
      assert first =~ "n="
    end

    test "a link to another host is refused: {:request_failed, %{reason: :invalid_next_link}}" do
      elsewhere = Origin.start(fn _ -> {200, [], ~s({"name":"tank/paged","tags":["x"]})} end)

      origin =
        Origin.start(fn _ ->
          {200, [{"link", ~s(<#{elsewhere.url}/v2/tank/paged/tags/list>; rel="next")}],
           ~s({"name":"tank/paged","tags":["a"]})}
        end)

      assert {:error, {:request_failed, %{reason: :invalid_next_link, kind: :protocol}}} =
               Registry.tags(origin.addr, "tank/paged")

      assert Origin.requests(elsewhere) == []
    end

    test "bad input before any request" do
      origin = Origin.start(fn _ -> {500, [], "the tripwire was hit"} end)

      for {call, says} <- [
            {fn -> Registry.tags(origin.addr, "Tank/Upper") end, "repo"},
            {fn -> Registry.tags(origin.addr, :repo) end, "repo"},
            {fn -> Registry.tags(origin.addr, "tank/x", token_cache: :nope) end, "token_cache"},
            {fn -> Registry.tags(origin.addr, "tank/x", timeout: 0) end, "timeout"}
          ] do
        assert {:error, {:bad_input, message}} = call.()
        assert message =~ says
      end

      assert_raise ArgumentError, fn -> Registry.tags(origin.addr, "tank/x", page: 2) end
      assert Origin.requests(origin) == []
    end
  end

  # An OCI 1.1 artifact of `type` whose subject is `subject`, planted in
  # `repo`; returns its index entry as the fallback tag lists it.
  defp plant_artifact(repo, type, subject, subject_size, note) do
    empty = "{}"
    empty_digest = Pull.sha256(empty)
    Storage.plant_blob(:plain, repo, empty_digest, empty)
    descriptor = ~s({"mediaType":"#{@oci_empty}","digest":"#{empty_digest}","size":2})

    raw =
      ~s({"schemaVersion":2,"mediaType":"#{@oci_manifest}","artifactType":"#{type}",) <>
        ~s("config":#{descriptor},"layers":[#{descriptor}],) <>
        ~s("subject":{"mediaType":"#{@oci_manifest}","digest":"#{subject}","size":#{subject_size}},) <>
        ~s("annotations":{"org.example.note":"#{note}"}})

    digest = Storage.plant_tagged(:plain, repo, raw, [])

    %{
      "mediaType" => @oci_manifest,
      "digest" => digest,
      "size" => byte_size(raw),
      "artifactType" => type,
      "annotations" => %{"org.example.note" => note}
    }
  end

  defp entry_json(entry) do
    ~s({"mediaType":"#{entry["mediaType"]}","digest":"#{entry["digest"]}",) <>
      ~s("size":#{entry["size"]},"artifactType":"#{entry["artifactType"]}",) <>
      ~s("annotations":{"org.example.note":"#{entry["annotations"]["org.example.note"]}"}})
  end

  describe "referrers/4" do
    setup do
      plain = Rig.registry(:plain)
      repo = fresh_repo("referrers")
      raw = image_raw()
      subject = Storage.plant_tagged(:plain, repo, raw, ["v1"])
      sbom = plant_artifact(repo, @sbom, subject, byte_size(raw), "the sbom")
      signature = plant_artifact(repo, @signature, subject, byte_size(raw), "the signature")

      index =
        ~s({"schemaVersion":2,"mediaType":"#{@oci_index}","manifests":[) <>
          entry_json(sbom) <> "," <> entry_json(signature) <> "]}"

      "sha256:" <> hex = subject
      index_digest = Storage.plant_tagged(:plain, repo, index, ["sha256-" <> hex])

      %{
        plain: plain,
        repo: repo,
        subject: subject,
        index: index,
        index_digest: index_digest,
        sbom: sbom,
        signature: signature
      }
    end

    test "the fallback tag's index where the registry has no Referrers API", c do
      cache = Registry.new_token_cache()
      assert {:ok, info} = Registry.referrers(c.plain, c.repo, c.subject, token_cache: cache)
      assert info |> Map.keys() |> Enum.sort() == [:digest, :json, :media_type, :raw]
      assert info.digest == c.index_digest
      assert info.raw == c.index
      assert info.json == JSON.decode!(c.index)
      assert info.json["manifests"] == [c.sbom, c.signature]
    end

    test "only one artifact type: a re-encoded index with its own digest", c do
      assert {:ok, info} = Registry.referrers(c.plain, c.repo, c.subject, artifact_type: @signature)
      assert info.json["manifests"] == [c.signature]
      assert info.digest == Pull.sha256(info.raw)
      assert info.digest != c.index_digest

      assert {:ok, %{json: %{"manifests" => []}}} =
               Registry.referrers(c.plain, c.repo, c.subject,
                 artifact_type: "application/vnd.example.none"
               )
    end

    test "none: an empty OCI index", c do
      image = Rig.image(:oci_image)
      assert {:ok, info} = Registry.referrers(c.plain, image["repo"], image["config"])
      assert info.media_type == @oci_index
      assert %{"schemaVersion" => 2, "manifests" => []} = info.json
      assert info.json == JSON.decode!(info.raw)
    end

    test "the digest is checked before any request", c do
      origin = Origin.start(fn _ -> {500, [], "the tripwire was hit"} end)

      for digest <- ["v1", "sha256:abc", "", nil] do
        assert {:error, {:bad_input, message}} = Registry.referrers(origin.addr, c.repo, digest)
        assert message =~ "digest"
      end

      assert {:error, {:bad_input, _}} =
               Registry.referrers(origin.addr, c.repo, c.subject, artifact_type: "")

      assert {:error, {:bad_input, _}} =
               Registry.referrers(origin.addr, c.repo, c.subject, artifact_type: :sbom)

      assert Origin.requests(origin) == []
    end
  end
end
