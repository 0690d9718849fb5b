# The rig: real CNCF distribution registries (plain, token-protected, and one
# that redirects blobs to a CDN), their token issuers and the CDN, all on
# 127.0.0.1, with fixture images pushed, plus `tank/large:v1` with one
# 256 MiB layer and `tank/many:v1` with two 64 MiB layers for the
# responsiveness tests; also an htpasswd registry (`--basic`) and an https
# one that wants a client certificate (`--client-cert`), for the
# credentials tests. It stops when this VM exits (the port closes its stdin).
{:ok, _} = Application.ensure_all_started(:crypto)

Tank.Test.Rig.start!([
  "--basic",
  "--client-cert",
  "--large-mib",
  System.get_env("TANK_TEST_LARGE_MIB", "256"),
  "--many-layers",
  "2x64"
])

# `:slow` tests (the 15 s idle timeout, retried) run with `mix test --include slow`.
ExUnit.start(exclude: [:slow])
