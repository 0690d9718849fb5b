defmodule Tank.Image.CredentialsTest do
  @moduledoc """
  `new_token_cache/1`'s `:credentials`, `:auth_config`, `:ca_files` and
  `:certs_dir`, and `manifest/4`, `blob/4`, `blob_to_file/5` and `pull/3`
  using them, against the rig's real registries: the token registries'
  `private/*` repositories (alice, by password or identity token), the
  htpasswd registry (bob), the https registry (the rig's own CA) and the
  one that wants a client certificate. `async: false`: it reads the rig's
  token log.
  """
  use ExUnit.Case, async: false

  alias Tank.Image.Registry
  alias Tank.Test.{JSON, Pull, Rig}

  @moduletag :tmp_dir

  setup do
    Rig.clear()
    :ok
  end

  # The public fixture `name` under the private prefix: same tag, digests.
  defp private_image(name) do
    image = Rig.image(name)
    %{image | "repo" => Rig.private()[to_string(name)]}
  end

  defp alice, do: {Rig.private()["username"], Rig.private()["password"]}

  # Every call that takes a cache, each through `cache`: the manifest by
  # tag, the config blob into memory, the first layer into a file, and the
  # whole image into a layout. Returns the four results, keyed by call.
  defp fetch_all(registry, image, cache, dir) do
    layer = hd(image["layers"])
    file = Path.join(dir, "layer-#{System.unique_integer([:positive])}")
    layout = Path.join(dir, "layout-#{System.unique_integer([:positive])}")
    reference = "#{registry}/#{image["repo"]}:#{image["tag"]}"

    %{
      manifest: Registry.manifest(registry, image["repo"], image["tag"], cache),
      blob: Registry.blob(registry, image["repo"], image["config"], cache),
      blob_to_file:
        with :ok <-
               Registry.blob_to_file(registry, image["repo"], layer, file,
                 size: image["blob_sizes"][layer],
                 token_cache: cache
               ) do
          {:ok, Pull.sha256(File.read!(file))}
        end,
      pull:
        with {:ok, info} <- Registry.pull(reference, layout, token_cache: cache) do
          {:ok, info, JSON.decode!(File.read!(Path.join(layout, "index.json")))}
        end
    }
  end

  # What fetch_all/4 gives when every call worked, checked against the
  # rig's digests.
  defp assert_all_fetched(results, image, cache) do
    layer = hd(image["layers"])
    assert {:ok, info, ^cache} = results.manifest
    assert info.digest == image["digest"]
    assert {:ok, config} = results.blob
    assert Pull.sha256(config) == image["config"]
    assert results.blob_to_file == {:ok, layer}
    assert {:ok, pulled, index} = results.pull
    assert pulled.digest == image["digest"]
    assert [%{"digest" => digest}] = index["manifests"]
    assert digest == image["digest"]
  end

  # Every token request the rig's issuers saw for `repo` since setup.
  defp token_requests_for(repo) do
    scope = "repository:#{repo}:pull"
    Enum.filter(Rig.token_requests(), &(scope in &1["scopes"]))
  end

  defp write!(dir, name, contents) do
    path = Path.join(dir, name)
    File.write!(path, contents)
    path
  end

  describe "private repositories on the token registries" do
    test "anonymously: {:manifest_http, 401} and {:blob_http, 401}, with or without a cache",
         %{tmp_dir: dir} do
      image = private_image(:oci_image)

      for which <- [:token, :cdn], cache <- [nil, Registry.new_token_cache()] do
        results = fetch_all(Rig.registry(which), image, cache, dir)

        # The issuer hands out a token with no actions on private/*, the
        # registry refuses it: the final status, as SPEC section 3 maps it.
        assert results == %{
                 manifest: {:error, {:manifest_http, 401}},
                 blob: {:error, {:blob_http, 401}},
                 blob_to_file: {:error, {:blob_http, 401}},
                 pull: {:error, {:manifest_http, 401}}
               }
      end

      # The same repositories' public twins need nothing.
      public = Rig.image(:oci_image)
      assert_all_fetched(fetch_all(Rig.registry(:token), public, nil, dir), public, nil)
    end

    test "alice by password: every call works, on the token and the CDN registries",
         %{tmp_dir: dir} do
      image = private_image(:oci_image)
      {username, _} = alice()

      for which <- [:token, :cdn] do
        registry = Rig.registry(which)
        cache = Registry.new_token_cache(credentials: [{registry, alice()}])
        assert_all_fetched(fetch_all(registry, image, cache, dir), image, cache)
      end

      # Her user name went to the realm by Basic auth on the token GET.
      requests = token_requests_for(image["repo"])
      assert requests != []

      assert Enum.all?(
               requests,
               &(&1["method"] == "GET" and &1["authorization"] == true and
                   &1["username"] == username and &1["status"] == 200)
             )
    end

    test "alice by identity token: an OAuth2 refresh-token grant, and every call works",
         %{tmp_dir: dir} do
      image = private_image(:oci_index)
      # An index: pull/3 takes the host's platform out of it; fetch_all's
      # blobs are those of the linux/amd64 image.
      amd64 = Enum.find(image["manifests"], &(&1["platform"] == "linux/amd64"))
      token = Rig.private()["identity_token"]
      registry = Rig.registry(:token)
      cache = Registry.new_token_cache(credentials: [{registry, {:identity_token, token}}])

      assert {:ok, index, ^cache} = Registry.manifest(registry, image["repo"], image["tag"], cache)

      assert index.digest == image["digest"]

      assert {:ok, manifest, ^cache} =
               Registry.manifest(registry, image["repo"], amd64["digest"], cache)

      assert manifest.digest == amd64["digest"]
      assert {:ok, config} = Registry.blob(registry, image["repo"], amd64["config"], cache)
      assert Pull.sha256(config) == amd64["config"]

      assert [request | _] = token_requests_for(image["repo"])

      assert %{"method" => "POST", "grant_type" => "refresh_token", "status" => 200} = request

      # Without it, the same cache shape is anonymous and refused.
      assert {:error, {:manifest_http, 401}} =
               Registry.manifest(registry, image["repo"], image["tag"], Registry.new_token_cache())

      # blob_to_file/5 and pull/3 as well, on the single-platform twin.
      single = private_image(:oci_image)
      assert_all_fetched(fetch_all(registry, single, cache, dir), single, cache)
    end

    test "a wrong password: the realm's 401, and neither message nor body holds the password" do
      image = private_image(:oci_image)
      registry = Rig.registry(:token)
      wrong = "wrong-" <> Rig.private()["password"]
      cache = Registry.new_token_cache(credentials: [{registry, {"alice", wrong}}])

      assert {:error, {:request_failed, detail}} =
               Registry.manifest(registry, image["repo"], image["tag"], cache)

      assert %{reason: :token_request_failed, kind: :auth, status: 401} = detail
      refute detail.message =~ wrong
      refute Map.get(detail, :body, "") =~ wrong
      refute inspect(detail) =~ Base.encode64("alice:" <> wrong)
    end

    test "credentials are per registry: alice's for another registry are not sent" do
      image = private_image(:oci_image)
      cache = Registry.new_token_cache(credentials: [{Rig.registry(:cdn), alice()}])

      assert {:error, {:manifest_http, 401}} =
               Registry.manifest(Rig.registry(:token), image["repo"], image["tag"], cache)

      assert Enum.all?(token_requests_for(image["repo"]), &(&1["authorization"] == false))
    end
  end

  describe "the htpasswd registry" do
    test "bob by Basic auth; anonymously or with a wrong password {:manifest_http, 401}",
         %{tmp_dir: dir} do
      basic = Rig.basic_registry()
      registry = basic["registry"]
      image = Rig.image(:oci_image)

      for cache <- [
            nil,
            Registry.new_token_cache(),
            Registry.new_token_cache(
              credentials: [{registry, {basic["username"], "x" <> basic["password"]}}]
            )
          ] do
        assert fetch_all(registry, image, cache, dir) == %{
                 manifest: {:error, {:manifest_http, 401}},
                 blob: {:error, {:blob_http, 401}},
                 blob_to_file: {:error, {:blob_http, 401}},
                 pull: {:error, {:manifest_http, 401}}
               }
      end

      cache =
        Registry.new_token_cache(credentials: [{registry, {basic["username"], basic["password"]}}])

      assert_all_fetched(fetch_all(registry, image, cache, dir), image, cache)
    end
  end

  describe ":auth_config" do
    test "a docker config.json: auth (base64), username/password and identitytoken entries",
         %{tmp_dir: dir} do
      private = Rig.private()
      basic = Rig.basic_registry()
      {username, password} = alice()

      config =
        write!(dir, "config.json", ~s"""
        {
          "auths": {
            "#{Rig.registry(:token)}": {"auth": "#{Base.encode64(username <> ":" <> password)}"},
            "http://#{Rig.registry(:cdn)}": {"identitytoken": "#{private["identity_token"]}"},
            "#{basic["registry"]}": {"username": "#{basic["username"]}", "password": "#{basic["password"]}"}
          }
        }
        """)

      cache = Registry.new_token_cache(auth_config: config)
      image = private_image(:oci_image)

      assert_all_fetched(fetch_all(Rig.registry(:token), image, cache, dir), image, cache)
      assert_all_fetched(fetch_all(Rig.registry(:cdn), image, cache, dir), image, cache)
      public = Rig.image(:oci_image)
      assert_all_fetched(fetch_all(basic["registry"], public, cache, dir), public, cache)

      # Each registry's realm was asked as its entry says: alice's password
      # on the token GET, her identity token in a refresh-token POST.
      asked =
        image["repo"]
        |> token_requests_for()
        |> Enum.map(&{&1["which"], &1["method"], &1["username"] || &1["grant_type"]})
        |> Enum.uniq()
        |> Enum.sort()

      assert asked == [{"cdn", "POST", "refresh_token"}, {"token", "GET", username}]

      # :credentials beat the file: a wrong password set explicitly is used.
      overridden =
        Registry.new_token_cache(
          auth_config: config,
          credentials: [{Rig.registry(:token), {username, "wrong"}}]
        )

      assert {:error, {:request_failed, %{reason: :token_request_failed, status: 401}}} =
               Registry.manifest(Rig.registry(:token), image["repo"], image["tag"], overridden)
    end

    test "a malformed auth file raises ArgumentError naming the file, never the password",
         %{tmp_dir: dir} do
      {username, password} = alice()
      registry = Rig.registry(:token)
      no_colon = Base.encode64(username <> password)

      for {name, contents, says} <- [
            # Cut short after the password.
            {"truncated.json",
             ~s({"auths": {"#{registry}": {"username": "#{username}", "password": "#{password}"}}),
             "not JSON"},
            # base64 of a user name and password without the colon.
            {"no-colon.json", ~s({"auths": {"#{registry}": {"auth": "#{no_colon}"}}}),
             "user:password"},
            {"array.json", ~s({"auths": ["#{password}"]}), "not an object"}
          ] do
        path = write!(dir, name, contents)

        error = assert_raise ArgumentError, fn -> Registry.new_token_cache(auth_config: path) end

        assert error.message =~ path
        assert error.message =~ says
        assert error.message =~ ":auth_config"
        refute error.message =~ password
        refute error.message =~ no_colon
      end

      missing = Path.join(dir, "missing.json")
      error = assert_raise ArgumentError, fn -> Registry.new_token_cache(auth_config: missing) end
      assert error.message =~ missing
    end

    test ":default searches the standard places; $REGISTRY_AUTH_FILE must exist",
         %{tmp_dir: dir} do
      {username, password} = alice()
      registry = Rig.registry(:token)
      image = private_image(:oci_image)
      docker_config = Path.join(dir, "docker")
      File.mkdir_p!(docker_config)

      write!(docker_config, "config.json", ~s"""
      {"auths": {"#{registry}": {"auth": "#{Base.encode64(username <> ":" <> password)}"}}}
      """)

      # The search reads the OS environment the VM started with (OTP keeps
      # System.put_env/2 to itself), so each case runs in a VM of its own,
      # started with the environment it needs and nothing from this host's
      # own auth files.
      env = [
        {"HOME", Path.join(dir, "home")},
        {"XDG_RUNTIME_DIR", Path.join(dir, "run")},
        {"XDG_CONFIG_HOME", Path.join(dir, "config")},
        {"DOCKER_CONFIG", docker_config},
        {"REGISTRY_AUTH_FILE", nil}
      ]

      assert manifests_in_fresh_vm(env, nil, [{registry, image}]) == [{:ok, image["digest"]}]

      missing = Path.join(dir, "missing-auth.json")
      env = List.keyreplace(env, "REGISTRY_AUTH_FILE", 0, {"REGISTRY_AUTH_FILE", missing})
      assert {:raised, message} = manifests_in_fresh_vm(env, nil, [{registry, image}])
      assert message =~ ":auth_config"
      assert message =~ missing
    end

    test "credHelpers: a helper's answer is used; a failing helper is {:request_failed, %{reason: :credential_helper}}",
         %{tmp_dir: dir} do
      {username, password} = alice()
      registry = Rig.registry(:token)
      basic = Rig.basic_registry()["registry"]
      bin = Path.join(dir, "bin")
      File.mkdir_p!(bin)

      # docker's protocol: `get`, the server on stdin, JSON on stdout.
      helper =
        write!(bin, "docker-credential-tankrig", """
        #!/bin/sh
        read -r server
        if [ "$server" = "#{registry}" ]; then
          printf '{"ServerURL":"%s","Username":"#{username}","Secret":"#{password}"}' "$server"
        else
          echo "credentials not found in native keychain"; exit 1
        fi
        """)

      broken =
        write!(bin, "docker-credential-tankbroken", """
        #!/bin/sh
        echo "the keychain is locked" >&2; exit 3
        """)

      File.chmod!(helper, 0o755)
      File.chmod!(broken, 0o755)

      config =
        write!(dir, "helpers.json", ~s"""
        {"credHelpers": {"#{registry}": "tankrig", "#{basic}": "tankbroken"},
         "credsStore": "tankrig"}
        """)

      env = [{"PATH", bin <> ":" <> System.get_env("PATH", "/usr/bin:/bin")}]
      image = private_image(:oci_image)
      public = Rig.image(:oci_image)

      digest = image["digest"]

      results =
        manifests_in_fresh_vm(env, config, [
          # credHelpers: tankrig has alice for the token registry.
          {registry, image},
          # credsStore: tankrig has nothing for the CDN registry.
          {Rig.registry(:cdn), image},
          # credHelpers: tankbroken fails.
          {basic, public}
        ])

      assert match?(
               [
                 {:ok, ^digest},
                 {:error, {:manifest_http, 401}},
                 {:error, {:request_failed, %{reason: :credential_helper, kind: :auth}}}
               ],
               results
             ),
             "got: " <> inspect(results, pretty: true)

      {:error, {:request_failed, detail}} = List.last(results)
      assert detail.message =~ "docker-credential-tankbroken"
      # Its first line of stderr says why.
      assert detail.message =~ "the keychain is locked"
      refute detail.message =~ password
    end
  end

  # In a fresh VM with the OS environment `env`: a cache made with
  # `auth_config: :default` (`auth_config` nil) or that path, then through
  # it the manifest of each `{registry, image}`. The results in order, each
  # `{:ok, digest}` or the error; or `{:raised, message}`.
  defp manifests_in_fresh_vm(env, auth_config, fetches) do
    script = """
    [auth_config | fetches] = System.argv()
    auth_config = if auth_config == ":default", do: :default, else: auth_config

    result =
      try do
        cache = Tank.Image.Registry.new_token_cache(auth_config: auth_config)

        fetches
        |> Enum.chunk_every(3)
        |> Enum.map(fn [registry, repo, tag] ->
          case Tank.Image.Registry.manifest(registry, repo, tag, cache) do
            {:ok, info, _} -> {:ok, info.digest}
            error -> error
          end
        end)
      rescue
        e in ArgumentError -> {:raised, e.message}
      end

    IO.write(Base.encode64(:erlang.term_to_binary(result)))
    """

    ebin = Path.dirname(:code.which(Registry))

    fetches =
      Enum.flat_map(fetches, fn {registry, image} -> [registry, image["repo"], image["tag"]] end)

    args = ["-pa", ebin, "-e", script, auth_config || ":default" | fetches]
    {out, 0} = System.cmd(System.find_executable("elixir"), args, env: env)
    out |> String.trim() |> Base.decode64!() |> :erlang.binary_to_term()
  end

  describe "TLS trust" do
    test ":ca_files with the rig's CA: the https registry works, without SSL_CERT_FILE",
         %{tmp_dir: dir} do
      tls = Rig.tls()
      ca = tls["ca_pem"]
      # Loopback speaks plain HTTP unless told otherwise.
      registry = "https://" <> tls["registry"]
      image = Rig.image(:oci_image)
      # Nothing in the environment makes the VM trust the rig's CA.
      refute System.get_env("SSL_CERT_FILE") == ca

      untrusted = fetch_all(registry, image, Registry.new_token_cache(), dir)

      for {call, result} <- untrusted do
        assert match?({:error, {:request_failed, %{reason: :tls, kind: :transport}}}, result),
               "#{call}: #{inspect(result)}"
      end

      # The CA for another registry is no use here.
      other = Registry.new_token_cache(ca_files: [{tls["redirecting_registry"], ca}])

      assert {:error, {:request_failed, %{reason: :tls}}} =
               fetch_all(registry, image, other, dir).manifest

      for ca_files <- [[{tls["registry"], ca}], [{registry, ca}], [{:all, ca}]] do
        cache = Registry.new_token_cache(ca_files: ca_files)
        assert_all_fetched(fetch_all(registry, image, cache, dir), image, cache)
      end
    end

    test ":certs_dir: the registry that wants a client certificate works, and so does plain https",
         %{tmp_dir: dir} do
      tls = Rig.tls()
      image = Rig.image(:oci_image)
      # The certs directory has <host:port>/ca.crt for every https registry,
      # and client.cert + client.key for the one that wants them.
      cache = Registry.new_token_cache(certs_dir: tls["certs_dir"])

      for registry <- [tls["client_cert_registry"], tls["registry"]] do
        registry = "https://" <> registry
        assert_all_fetched(fetch_all(registry, image, cache, dir), image, cache)
      end
    end

    test "a client certificate with a key not its own: {:bad_input, message} once a call needs it",
         %{tmp_dir: dir} do
      tls = Rig.tls()
      host = tls["client_cert_registry"]
      image = Rig.image(:oci_image)
      entry = Path.join([dir, "certs.d", host])
      File.mkdir_p!(entry)
      File.cp!(tls["ca_pem"], Path.join(entry, "ca.crt"))
      File.cp!(tls["client_cert_pem"], Path.join(entry, "client.cert"))
      other_key = :public_key.generate_key({:namedCurve, :secp256r1})
      pem = :public_key.pem_encode([:public_key.pem_entry_encode(:ECPrivateKey, other_key)])
      File.write!(Path.join(entry, "client.key"), pem)

      # Both files are PEM, so the directory loads ...
      cache = Registry.new_token_cache(certs_dir: Path.join(dir, "certs.d"))

      # ... and the mismatch shows when a call first connects there.
      assert {:error, {:bad_input, message}} =
               Registry.manifest("https://" <> host, image["repo"], image["tag"], cache)

      assert message =~ "client certificate"
      refute message =~ "PRIVATE KEY"
    end

    test "no client certificate: {:request_failed, %{reason: :tls}}, as for an untrusted server",
         %{tmp_dir: dir} do
      tls = Rig.tls()
      registry = "https://" <> tls["client_cert_registry"]
      image = Rig.image(:oci_image)
      # The server's CA trusted, but no client certificate to show: the
      # server refuses the handshake (TLS 1.3 alert certificate_required),
      # which no retry can change.
      no_identity = Registry.new_token_cache(ca_files: [{:all, tls["ca_pem"]}])
      results = fetch_all(registry, image, no_identity, dir)

      assert Enum.all?(
               results,
               &match?({_, {:error, {:request_failed, %{reason: :tls, kind: :transport}}}}, &1)
             ),
             "expected every call to fail with reason :tls, got:\n" <>
               Enum.map_join(results, "\n", fn {call, result} ->
                 "  #{call}: #{inspect(result)}"
               end)
    end

    test "bad PEM files and certs directories raise ArgumentError naming the file",
         %{tmp_dir: dir} do
      not_pem = write!(dir, "not.pem", "not a certificate\n")

      error =
        assert_raise ArgumentError, fn -> Registry.new_token_cache(ca_files: [{:all, not_pem}]) end

      assert error.message =~ not_pem
      assert error.message =~ ":ca_files"

      missing = Path.join(dir, "missing.pem")

      error =
        assert_raise ArgumentError, fn ->
          Registry.new_token_cache(ca_files: [{"127.0.0.1:5000", missing}])
        end

      assert error.message =~ missing

      # A client certificate without its key: nothing from the dir is kept.
      host = Path.join([dir, "certs.d", "127.0.0.1:5000"])
      File.mkdir_p!(host)
      File.cp!(Rig.tls()["ca_pem"], Path.join(host, "client.cert"))

      error =
        assert_raise ArgumentError, fn ->
          Registry.new_token_cache(certs_dir: Path.join(dir, "certs.d"))
        end

      assert error.message =~ Path.join(host, "client.cert")
      assert error.message =~ ":certs_dir"

      nowhere = Path.join(dir, "no-such-dir")
      error = assert_raise ArgumentError, fn -> Registry.new_token_cache(certs_dir: nowhere) end
      assert error.message =~ nowhere
    end
  end

  describe "option shapes" do
    test "bad values raise ArgumentError, as :ttl does; a bad credential is never shown" do
      secret = "s3cret-#{System.unique_integer([:positive])}"

      for opts <- [
            [credentials: {"r.example", {"u", secret}}],
            [credentials: [{"r.example", {"u", String.to_charlist(secret)}}]],
            [credentials: [{"r.example", {:u, secret}}]],
            [credentials: [{"r.example", {"", secret}}]],
            [credentials: [{"r.example", {:identity_token, ""}}]],
            [credentials: [{"r.example", {:token, secret}}]],
            [credentials: [{:"r.example", {"u", secret}}]],
            [credentials: [{"", {"u", secret}}]],
            [credentials: [{"r.example", "u", secret}]],
            [credentials: [secret]]
          ] do
        error = assert_raise ArgumentError, fn -> Registry.new_token_cache(opts) end
        assert error.message =~ ":credentials"
        refute error.message =~ secret
      end

      for opts <- [
            [auth_config: ""],
            [auth_config: :home],
            [auth_config: ~c"/etc/auth.json"],
            [certs_dir: 7],
            [ca_files: "/etc/ca.pem"],
            [ca_files: [{:every, "/etc/ca.pem"}]],
            [ca_files: [{"r.example", nil}]],
            [ttl: -1],
            [unknown: 1]
          ] do
        assert_raise ArgumentError, fn -> Registry.new_token_cache(opts) end
      end
    end

    test "a registry outside the grammar raises ArgumentError from the core; the password is not in it" do
      secret = "s3cret-#{System.unique_integer([:positive])}"

      error =
        assert_raise ArgumentError, fn ->
          Registry.new_token_cache(credentials: [{"bad host!", {"u", secret}}])
        end

      assert error.message =~ ":credentials"
      assert error.message =~ "bad host!"
      refute error.message =~ secret

      assert_raise ArgumentError, fn ->
        Registry.new_token_cache(ca_files: [{"bad host!", Rig.tls()["ca_pem"]}])
      end
    end

    test "empty settings are a plain cache; a password may be empty" do
      assert is_reference(
               Registry.new_token_cache(
                 credentials: [],
                 ca_files: [],
                 auth_config: nil,
                 certs_dir: nil
               )
             )

      assert is_reference(Registry.new_token_cache(credentials: [{"r.example", {"u", ""}}]))
    end
  end
end
