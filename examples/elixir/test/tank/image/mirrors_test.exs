defmodule Tank.Image.MirrorsTest do
  @moduledoc """
  `new_token_cache/1`'s `:mirrors` and `:registries_conf`, against the
  rig's plain registry: as the mirror of a registry that has nothing or is
  down, behind mirrors that are down or have nothing, and through a
  registries.conf.
  """
  use ExUnit.Case, async: true

  alias Tank.Image.Registry
  alias Tank.Test.{Origin, Pull, Rig}

  @moduletag :tmp_dir

  # "127.0.0.1:port" of a port nothing listens on: a host that is down.
  defp down do
    {:ok, socket} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
    {:ok, port} = :inet.port(socket)
    :ok = :gen_tcp.close(socket)
    "127.0.0.1:#{port}"
  end

  defp write!(dir, name, contents) do
    path = Path.join(dir, name)
    File.write!(path, contents)
    path
  end

  # The rig's OCI image, manifest by `reference` and config blob, from
  # `registry` through `cache`.
  defp assert_image(registry, cache, reference) do
    image = Rig.image(:oci_image)
    assert {:ok, info, ^cache} = Registry.manifest(registry, image["repo"], reference, cache)
    assert info.digest == image["digest"]
    assert {:ok, config} = Registry.blob(registry, image["repo"], image["config"], cache)
    assert Pull.sha256(config) == image["config"]
  end

  # A registry (or mirror) that answers 404 to everything; a source that is
  # down costs its connect retries (seconds) once per call, so one of
  # these stands in wherever it shows as much.
  defp not_found, do: Origin.start(fn _ -> {404, [], ""} end)

  describe ":mirrors" do
    test "a mirror serves what the registry has not, which is then not asked" do
      {registry, image} = {not_found(), Rig.image(:oci_image)}
      cache = Registry.new_token_cache(mirrors: [{registry.addr, Rig.registry(:plain)}])
      assert_image(registry.addr, cache, image["tag"])
      assert Origin.requests(registry) == []

      assert {:error, {:manifest_http, 404}} =
               Registry.manifest(registry.addr, image["repo"], image["tag"])
    end

    test "a mirror that is down falls back to the registry", %{tmp_dir: dir} do
      {plain, image} = {Rig.registry(:plain), Rig.image(:oci_image)}
      cache = Registry.new_token_cache(mirrors: [{plain, down(), [:pull, :resolve]}])
      layout = Path.join(dir, "layout")

      assert {:ok, %{digest: digest}} =
               Registry.pull("#{plain}/#{image["repo"]}:#{image["tag"]}", layout, token_cache: cache)

      assert digest == image["digest"]
    end

    test "mirrors that answer 404 are asked in order, then the registry" do
      {plain, image} = {Rig.registry(:plain), Rig.image(:oci_image)}
      {first, second} = {not_found(), not_found()}

      cache =
        Registry.new_token_cache(mirrors: [{plain, first.addr}, {plain, second.addr, [:resolve]}])

      assert {:ok, %{digest: digest}, ^cache} =
               Registry.manifest(plain, image["repo"], image["tag"], cache)

      assert digest == image["digest"]
      assert [_ | _] = Origin.requests(first)
      assert [_ | _] = asked = Origin.requests(second)

      # By digest, the resolve-only mirror is not asked.
      assert {:ok, _} = Registry.blob(plain, image["repo"], image["config"], cache)
      assert Origin.requests(second) == asked
    end

    test "a pull-only mirror serves digests, not tags" do
      {registry, image} = {not_found(), Rig.image(:oci_image)}
      cache = Registry.new_token_cache(mirrors: [{registry.addr, Rig.registry(:plain), [:pull]}])
      assert_image(registry.addr, cache, image["digest"])

      assert {:error, {:manifest_http, 404}} =
               Registry.manifest(registry.addr, image["repo"], image["tag"], cache)
    end

    test "bad entries raise ArgumentError naming the option" do
      plain = Rig.registry(:plain)

      for mirrors <- [
            [{plain, "http://mirror.example"}],
            [{plain, ""}],
            [{"", plain}],
            [{plain, plain, []}],
            [{plain, plain, [:push]}],
            [{plain, plain, :pull}],
            [{:plain, plain}],
            [plain],
            :not_a_list
          ] do
        error = assert_raise ArgumentError, fn -> Registry.new_token_cache(mirrors: mirrors) end
        assert error.message =~ "mirror", inspect(mirrors)
      end
    end
  end

  describe ":registries_conf" do
    test "a registry's [[registry.mirror]]", %{tmp_dir: dir} do
      {registry, image} = {down(), Rig.image(:oci_image)}

      conf =
        write!(dir, "registries.conf", """
        [[registry]]
        location = "#{registry}"

        [[registry.mirror]]
        location = "#{Rig.registry(:plain)}"
        """)

      assert_image(registry, Registry.new_token_cache(registries_conf: conf), image["tag"])
    end

    test "a blocked registry is {:bad_input, message} before any request", %{tmp_dir: dir} do
      plain = Rig.registry(:plain)
      image = Rig.image(:oci_image)

      conf =
        write!(dir, "registries.conf", ~s([[registry]]\nlocation = "#{plain}"\nblocked = true\n))

      cache = Registry.new_token_cache(registries_conf: conf)

      assert {:error, {:bad_input, message}} =
               Registry.manifest(plain, image["repo"], image["tag"], cache)

      assert message =~ "blocks the registry"
    end

    test "a malformed or missing file raises ArgumentError naming the file and line",
         %{tmp_dir: dir} do
      bad = write!(dir, "bad.conf", ~s([[registry]]\nlocation = "example.com"\nblocked = "yes"\n))
      error = assert_raise ArgumentError, fn -> Registry.new_token_cache(registries_conf: bad) end
      assert error.message =~ ":registries_conf"
      assert error.message =~ "#{bad}:3"

      missing = Path.join(dir, "missing.conf")

      error =
        assert_raise ArgumentError, fn -> Registry.new_token_cache(registries_conf: missing) end

      assert error.message =~ missing

      for value <- ["", :none, 42] do
        assert_raise ArgumentError, fn -> Registry.new_token_cache(registries_conf: value) end
      end
    end

    test ":default is the containers search, where a missing file is no error" do
      assert is_reference(Registry.new_token_cache(registries_conf: :default))
    end
  end
end
