defmodule Tank.Image.RegistryTest do
  @moduledoc """
  The contracts of `Tank.Image.Registry`, against the rig's real registries
  (and, for faults a registry will not produce, a scripted origin).
  Token-request counting lives in the `async: false` modules.
  """
  use ExUnit.Case, async: true

  alias Tank.Image.Registry
  alias Tank.Test.{JSON, Origin, Pull, Rig, Storage}

  @oci_index "application/vnd.oci.image.index.v1+json"
  @oci_manifest "application/vnd.oci.image.manifest.v1+json"
  @docker_manifest "application/vnd.docker.distribution.manifest.v2+json"
  @docker_list "application/vnd.docker.distribution.manifest.list.v2+json"

  defp fresh_digest(seed),
    do: Pull.sha256("tank elixir test #{seed} #{System.unique_integer([:positive])}")

  describe "manifest/4" do
    test "an OCI index by tag: media type, digest, raw bytes, decoded JSON, cache echoed" do
      image = Rig.image(:oci_index)

      for which <- [:plain, :token], cache <- [nil, Registry.new_token_cache()] do
        assert {:ok, info, returned} =
                 Registry.manifest(Rig.registry(which), image["repo"], image["tag"], cache)

        # The very term that was passed in.
        assert returned === cache
        assert info |> Map.keys() |> Enum.sort() == [:digest, :json, :media_type, :raw]
        assert info.media_type == @oci_index
        assert info.digest == image["digest"]
        assert is_binary(info.raw) and byte_size(info.raw) == image["size"]
        assert Pull.sha256(info.raw) == image["digest"]
        # The NIF's terms equal an independent decoding of the raw bytes.
        assert info.json == JSON.decode!(info.raw)
        assert info.json["schemaVersion"] === 2
        assert info.json["mediaType"] == @oci_index

        platforms =
          for m <- info.json["manifests"] do
            assert is_integer(m["size"])

            Enum.join(
              Enum.reject(
                [m["platform"]["os"], m["platform"]["architecture"], m["platform"]["variant"]],
                &is_nil/1
              ),
              "/"
            )
          end

        assert platforms == Enum.map(image["manifests"], & &1["platform"])
        assert "linux/amd64" in platforms and "unknown/unknown" in platforms
      end
    end

    test "an image manifest by tag and by digest; Docker schema 2 and manifest list" do
      registry = Rig.registry(:plain)

      for {name, type} <- [
            oci_image: @oci_manifest,
            docker_image: @docker_manifest,
            docker_list: @docker_list
          ] do
        image = Rig.image(name)

        for reference <- [image["tag"], image["digest"]] do
          assert {:ok, info, nil} = Registry.manifest(registry, image["repo"], reference)
          assert info.media_type == type
          assert info.digest == image["digest"]
          assert Pull.sha256(info.raw) == image["digest"]
          assert info.json == JSON.decode!(info.raw)
        end
      end

      image = Rig.image(:oci_image)
      {:ok, info, nil} = Registry.manifest(registry, image["repo"], image["tag"])
      assert info.json["config"]["digest"] == image["config"]
      assert Enum.map(info.json["layers"], & &1["digest"]) == image["layers"]
      assert Enum.all?(info.json["layers"], &(is_integer(&1["size"]) and &1["size"] > 0))
    end

    test "JSON of every kind becomes the Elixir terms the original produced" do
      body =
        ~s({"schemaVersion":2,"mediaType":"#{@oci_manifest}","int":42,"neg":-7,) <>
          ~s("u64":18446744073709551615,"float":1.5,"exp":2e3,"t":true,"f":false,"n":null,) <>
          ~s("s":"caf\\u00e9 \\"q\\" \\ud83d\\ude00","empty":{},"list":[1,"two",[3],{"k":[]}]})

      origin = Origin.start(fn _ -> {200, [{"content-type", @oci_manifest}], body} end)
      assert {:ok, info, nil} = Registry.manifest(origin.addr, "tank/json", "v1")
      assert info.raw == body
      assert info.digest == Pull.sha256(body)

      assert info.json == %{
               "schemaVersion" => 2,
               "mediaType" => @oci_manifest,
               "int" => 42,
               "neg" => -7,
               "u64" => 18_446_744_073_709_551_615,
               "float" => 1.5,
               "exp" => 2.0e3,
               "t" => true,
               "f" => false,
               "n" => nil,
               "s" => "café \"q\" 😀",
               "empty" => %{},
               "list" => [1, "two", [3], %{"k" => []}]
             }

      assert is_float(info.json["exp"])
      assert info.json == JSON.decode!(body)
    end

    test "the media type falls back to the JSON's mediaType when there is no Content-Type" do
      body = ~s({"schemaVersion":2,"mediaType":"#{@docker_list}","manifests":[]})
      origin = Origin.start(fn _ -> {200, [], body} end)

      assert {:ok, %{media_type: @docker_list, json: %{"manifests" => []}}, nil} =
               Registry.manifest(origin.addr, "tank/json", "v1")
    end
  end

  describe "blob/4" do
    test "the config and every layer, verified, through each kind of registry" do
      image = Rig.image(:oci_image)
      cache = Registry.new_token_cache()

      for which <- [:plain, :token, :cdn], digest <- [image["config"] | image["layers"]] do
        assert {:ok, bytes} = Registry.blob(Rig.registry(which), image["repo"], digest, cache)
        assert is_binary(bytes)
        assert byte_size(bytes) == image["blob_sizes"][digest]
        assert Pull.sha256(bytes) == digest
      end

      # The CDN never sees the registry's token.
      cdn = Rig.cdn_requests()
      assert cdn != []
      refute Enum.any?(cdn, & &1["authorization"])
    end

    test "default token_cache is nil" do
      image = Rig.image(:oci_image)
      assert {:ok, bytes} = Registry.blob(Rig.registry(:token), image["repo"], image["config"])
      assert Pull.sha256(bytes) == image["config"]
    end
  end

  test "the module keeps the original's @moduledoc, and every function has @doc and @spec" do
    # function_exported?/3 does not load a module; whether an earlier test
    # happened to call it must not decide this one.
    Code.ensure_loaded!(Registry)
    assert {:docs_v1, _, :elixir, _, %{"en" => moduledoc}, _, docs} = Code.fetch_docs(Registry)

    assert moduledoc =~ "token_cache"
    {:ok, specs} = Code.Typespec.fetch_specs(Registry)
    specced = for {{name, arity}, _} <- specs, do: {name, arity}

    for {name, arities} <- [
          manifest: [3, 4, 5],
          blob: [3, 4, 5],
          new_token_cache: [0, 1],
          tags: [2, 3],
          referrers: [3, 4]
        ] do
      assert Enum.any?(docs, &match?({{:function, ^name, _}, _, _, %{"en" => _}, _}, &1)),
             "#{name} has no @doc"

      assert {name, List.last(arities)} in specced, "#{name} has no @spec"
      assert Enum.all?(arities, &function_exported?(Registry, name, &1))
    end
  end

  describe "new_token_cache/1" do
    test "makes a reference; :ttl is validated" do
      assert is_reference(Registry.new_token_cache())
      assert is_reference(Registry.new_token_cache(ttl: 1_000))
      assert is_reference(Registry.new_token_cache(ttl: 0))
      assert_raise ArgumentError, fn -> Registry.new_token_cache(ttl: -1) end
      assert_raise ArgumentError, fn -> Registry.new_token_cache(ttl: "60s") end
      assert_raise ArgumentError, fn -> Registry.new_token_cache(tll: 5) end
    end
  end

  describe "errors" do
    test "{:bad_input, message} before any request is sent" do
      origin = Origin.start(fn _ -> {500, [], "the tripwire was hit"} end)
      reg = origin.addr
      cache = Registry.new_token_cache()

      for {call, pattern} <- [
            {fn -> Registry.blob(reg, "tank/x", "sha256:zz", cache) end, "digest"},
            {fn -> Registry.blob(reg, "tank/x", "md5:" <> String.duplicate("0", 32)) end, "digest"},
            {fn -> Registry.blob(reg, "tank/x", "sha256:" <> String.duplicate("A", 64)) end,
             "digest"},
            {fn -> Registry.manifest(reg, "tank/../etc", "v1") end, "repo"},
            {fn -> Registry.manifest(reg, "Tank/Upper", "v1") end, "repo"},
            {fn -> Registry.manifest(reg, "tank/x", "v 1", cache) end, "tag"},
            {fn -> Registry.manifest(reg, "tank/x", "") end, ""},
            {fn -> Registry.manifest("", "tank/x", "v1") end, ""},
            {fn -> Registry.manifest(:localhost, "tank/x", "v1") end, "registry"},
            {fn -> Registry.manifest(reg, ~c"tank/x", "v1") end, "repo"},
            {fn -> Registry.blob(reg, "tank/x", nil) end, "digest"},
            {fn -> Registry.manifest(reg, <<0xFF, 0xFE>>, "v1") end, "UTF-8"},
            {fn -> Registry.manifest(reg, "tank/x", "v1", :not_a_cache) end, "token_cache"},
            {fn -> Registry.blob(reg, "tank/x", Pull.sha256("x"), make_ref()) end, "token_cache"},
            {fn -> Tank.Native.manifest(make_ref(), reg, "tank/x", "v1", 42) end, "token_cache"},
            {fn -> Tank.Native.blob(make_ref(), reg, "tank/x", 7, nil, nil, 1024) end, "digest"},
            {fn -> Tank.Native.blob(make_ref(), reg, "tank/x", Pull.sha256("x"), nil, nil, -1) end,
             "max_size"},
            {fn -> Registry.blob_to_file(reg, "tank/x", Pull.sha256("x"), ~c"/tmp/x") end, "path"},
            {fn -> Registry.blob_to_file(reg, "tank/x", Pull.sha256("x"), "") end, "path"},
            {fn -> Registry.blob_to_file(reg, "tank/x", "sha256:zz", "/tmp/x") end, "digest"},
            {fn -> Registry.blob_to_file(reg, "tank/x", Pull.sha256("x"), "/tmp/x", size: -1) end,
             "size"},
            {fn ->
               Registry.blob_to_file(reg, "tank/x", Pull.sha256("x"), "/tmp/x", progress: :me)
             end, "progress"},
            {fn ->
               Tank.Native.blob_to_file(
                 make_ref(),
                 reg,
                 "tank/x",
                 Pull.sha256("x"),
                 "/tmp/x",
                 "1",
                 nil,
                 nil
               )
             end, "size"}
          ] do
        assert {:error, {:bad_input, message}} = call.()
        assert is_binary(message) and message =~ pattern
      end

      assert Origin.requests(origin) == []
    end

    test "{:manifest_http, status}: unknown tag and unknown repository, with and without auth" do
      for which <- [:plain, :token], cache <- [nil, Registry.new_token_cache()] do
        registry = Rig.registry(which)

        assert {:error, {:manifest_http, 404}} =
                 Registry.manifest(registry, "tank/multiarch", "no-such-tag", cache)

        assert {:error, {:manifest_http, 404}} =
                 Registry.manifest(registry, "tank/nothing-here", "v1", cache)
      end
    end

    test "{:blob_http, status}: unknown blob" do
      for which <- [:plain, :token, :cdn] do
        assert {:error, {:blob_http, 404}} =
                 Registry.blob(Rig.registry(which), "tank/multiarch", fresh_digest("404"))
      end
    end

    test "{:digest_mismatch, :blob}: the registry serves bytes that do not hash to the digest" do
      for which <- [:plain, :token] do
        digest = fresh_digest("blob")
        Storage.plant_blob(which, "tank/oci-image", digest, "these bytes are not the digest's")

        assert {:error, {:digest_mismatch, :blob}} =
                 Registry.blob(Rig.registry(which), "tank/oci-image", digest)
      end
    end

    test "{:request_failed, %{reason: :manifest_digest_mismatch}}: manifest bytes differ from the digest asked for" do
      image = Rig.image(:oci_image)
      {:ok, info, nil} = Registry.manifest(Rig.registry(:plain), image["repo"], image["tag"])
      # Still a valid manifest for the registry, but not the content of `digest`.
      digest = fresh_digest("manifest")
      Storage.plant_manifest(:plain, image["repo"], digest, info.raw <> "\n")

      assert {:error, {:request_failed, detail}} =
               Registry.manifest(Rig.registry(:plain), image["repo"], digest)

      assert %{reason: :manifest_digest_mismatch, kind: :digest_mismatch, message: message} = detail
      assert message =~ digest
      refute Map.has_key?(detail, :status)
    end

    test "{:request_failed, _} from the token endpoint carries :status and :body" do
      origin =
        Origin.start(fn
          %{path: "/token" <> _} ->
            {403, [{"content-type", "application/json"}], ~s({"errors":[{"code":"DENIED"}]})}

          request ->
            {401,
             [{"www-authenticate", ~s(Bearer realm="http://#{request.host}/token",service="svc")}],
             ""}
        end)

      assert {:error, {:request_failed, detail}} =
               Registry.manifest(origin.addr, "tank/x", "v1", Registry.new_token_cache())

      assert %{
               reason: :token_request_failed,
               kind: :auth,
               status: 403,
               body: body,
               message: message
             } = detail

      assert body =~ "DENIED"
      assert message =~ "/token"
    end

    test "{:request_failed, _} for every other failure, with the reason as an atom" do
      cases = [
        missing_realm: fn %{path: _} ->
          {401, [{"www-authenticate", ~s(Bearer service="svc")}], ""}
        end,
        no_token_in_response: fn
          %{path: "/token" <> _} ->
            {200, [], ~s({"nothing":"here"})}

          request ->
            {401, [{"www-authenticate", ~s(Bearer realm="http://#{request.host}/token")}], ""}
        end,
        invalid_manifest_json: fn _ ->
          {200, [{"content-type", @oci_manifest}], "this is not JSON"}
        end,
        invalid_content_digest_header: fn _ ->
          {200, [{"docker-content-digest", "md5:abc"}], ~s({"schemaVersion":2})}
        end,
        too_many_redirects: fn %{path: path} -> {302, [{"location", path}], ""} end
      ]

      for {reason, script} <- cases do
        origin = Origin.start(script)

        result = Registry.manifest(origin.addr, "tank/x", "v1")
        assert {:error, {:request_failed, detail}} = result, "#{reason}: got #{inspect(result)}"

        assert detail.reason == reason
        assert is_atom(detail.kind) and is_binary(detail.message)
      end
    end

    test "{:request_failed, %{reason: :connect}} when nothing listens (after the retries)" do
      {:ok, socket} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
      {:ok, port} = :inet.port(socket)
      :ok = :gen_tcp.close(socket)

      assert {:error, {:request_failed, %{reason: :connect, kind: :transport, message: message}}} =
               Registry.blob("127.0.0.1:#{port}", "tank/x", Pull.sha256("x"))

      assert message =~ "127.0.0.1:#{port}"
    end

    @tag :slow
    @tag timeout: 180_000
    test "{:request_failed, %{reason: :timeout}} when the registry goes silent" do
      origin = Origin.start(fn _ -> :stall end)

      assert {:error, {:request_failed, %{reason: :timeout}}} =
               Registry.manifest(origin.addr, "tank/x", "v1")
    end

    test "a panic inside the NIF is an error tuple, and the VM carries on" do
      assert {:error, {:request_failed, %{reason: :panic, kind: :internal, message: message}}} =
               Tank.Native.debug_panic()

      assert message =~ "panic"
      image = Rig.image(:oci_image)
      assert {:ok, _, nil} = Registry.manifest(Rig.registry(:plain), image["repo"], image["tag"])
    end
  end
end
