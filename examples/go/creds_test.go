package tank_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tank.example/tank"
	"tank.example/tank/internal/rigtest"
)

// private gives the rig's private repositories and their user, failing
// the test when the rig was started without them.
func private(t *testing.T) *rigtest.Private {
	t.Helper()
	if rig.Info.Private == nil {
		t.Fatal("the rig has no private repositories (info.private); rebuild tank-testrig")
	}
	return rig.Info.Private
}

func tlsInfo(t *testing.T) *rigtest.TLSRegistry {
	t.Helper()
	if rig.Info.TLS == nil || rig.Info.TLS.ClientCertRegistry == "" {
		t.Fatal("the rig has no https or mutual-TLS registry (info.tls); start it with --everything")
	}
	return rig.Info.TLS
}

func newCache(t *testing.T) *tank.Cache {
	t.Helper()
	c := tank.NewCache(time.Minute)
	t.Cleanup(func() { c.Close() })
	return c
}

// wantTankError checks that err is a *tank.Error matching sentinel with
// the given reason (and HTTP status, when not 0), and returns it.
func wantTankError(t *testing.T, err error, sentinel error, reason string, httpStatus int) *tank.Error {
	t.Helper()
	var terr *tank.Error
	if !errors.As(err, &terr) {
		t.Fatalf("got %v (%T), want a *tank.Error matching %v (%s)", err, err, sentinel, reason)
	}
	if !errors.Is(err, sentinel) || terr.Reason != reason || (httpStatus != 0 && terr.HTTPStatus != httpStatus) {
		t.Fatalf("got %v (%+v), want %v with reason %s, HTTP status %d", err, terr, sentinel, reason, httpStatus)
	}
	return terr
}

// holdsNone fails when any secret appears in what err says.
func holdsNone(t *testing.T, err error, secrets ...string) {
	t.Helper()
	var terr *tank.Error
	said := err.Error()
	if errors.As(err, &terr) {
		said += "\n" + terr.Message + "\n" + terr.Body
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(said, s) {
			t.Errorf("the error gives away the secret %q: %s", s, said)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// writeJSON writes v as JSON into a file in a fresh directory.
func writeJSON(t *testing.T, name string, v interface{}) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, name, string(b))
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustSet(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("setting: %v", err)
	}
}

// tokenRequests returns the token requests since the last rig.Clear.
func tokenRequests(t *testing.T) []rigtest.TokenRequest {
	t.Helper()
	reqs, err := rig.TokenRequests()
	if err != nil {
		t.Fatal(err)
	}
	return reqs
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// fetchPrivate fetches the private copy of the OCI image from the token
// registry and checks its digest.
func fetchPrivate(t *testing.T, cache *tank.Cache) {
	t.Helper()
	p := private(t)
	img := rig.Info.Images.OCIImage
	m, err := tank.FetchManifest(rig.Info.Token.Registry, p.OCIImage, img.Tag, cache)
	if err != nil {
		t.Fatalf("private manifest: %v", err)
	}
	if m.Digest != img.Digest || sha256Digest(m.Raw) != img.Digest {
		t.Fatalf("private manifest %s, want %s", m.Digest, img.Digest)
	}
}

func TestPrivateRepositoryNeedsCredentials(t *testing.T) {
	p := private(t)
	reg := rig.Info.Token.Registry
	img := rig.Info.Images.OCIImage

	t.Run("anonymous", func(t *testing.T) {
		// The anonymous token carries no actions on private/*: the
		// registry's 401, not a token-handshake failure.
		for _, cache := range []*tank.Cache{nil, newCache(t)} {
			_, err := tank.FetchManifest(reg, p.OCIImage, img.Tag, cache)
			terr := wantTankError(t, err, tank.ErrUnauthorized, "http_status", 401)
			if !errors.Is(err, tank.ErrHTTP) || errors.Is(err, tank.ErrAuth) || errors.Is(err, tank.ErrNotFound) {
				t.Errorf("%v: want ErrHTTP and neither ErrAuth nor ErrNotFound", err)
			}
			if !strings.Contains(terr.Message, "/v2/"+p.OCIImage+"/manifests/"+img.Tag) {
				t.Errorf("message %q does not name the manifest URL", terr.Message)
			}
			_, err = tank.FetchBlob(reg, p.OCIImage, img.Config, cache)
			wantTankError(t, err, tank.ErrUnauthorized, "http_status", 401)
		}
		// The public copy still comes anonymously.
		if _, err := tank.FetchManifest(reg, img.Repo, img.Tag, nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("password", func(t *testing.T) {
		cache := newCache(t)
		mustSet(t, cache.SetBasicAuth(reg, p.Username, p.Password))
		if err := rig.Clear(); err != nil {
			t.Fatal(err)
		}
		fetchPrivate(t, cache)
		for _, d := range append([]string{img.Config}, img.Layers...) {
			b, err := tank.FetchBlobSized(reg, p.OCIImage, d, img.BlobSizes[d], cache)
			if err != nil {
				t.Fatal(err)
			}
			if sha256Digest(b) != d {
				t.Errorf("%s: bytes hash to %s", d, sha256Digest(b))
			}
		}
		// One token for alice, earned with her password on a GET, reused
		// by the blob reads.
		reqs := tokenRequests(t)
		if len(reqs) != 1 {
			t.Fatalf("%d token requests, want 1: %+v", len(reqs), reqs)
		}
		r := reqs[0]
		if r.Method != "GET" || str(r.Username) != p.Username || str(r.Subject) != p.Username || r.Status != 200 {
			t.Errorf("token request %+v (user %s, subject %s), want alice's GET answered 200",
				r, str(r.Username), str(r.Subject))
		}
	})

	t.Run("identity token", func(t *testing.T) {
		cache := newCache(t)
		mustSet(t, cache.SetIdentityToken(reg, p.IdentityToken))
		if err := rig.Clear(); err != nil {
			t.Fatal(err)
		}
		fetchPrivate(t, cache)
		reqs := tokenRequests(t)
		if len(reqs) != 1 {
			t.Fatalf("%d token requests, want 1: %+v", len(reqs), reqs)
		}
		r := reqs[0]
		if r.Method != "POST" || str(r.GrantType) != "refresh_token" || str(r.Subject) != p.Username || r.Status != 200 {
			t.Errorf("token request %+v (grant %s, subject %s), want an OAuth2 refresh_token POST for alice",
				r, str(r.GrantType), str(r.Subject))
		}
	})

	t.Run("later setting replaces", func(t *testing.T) {
		cache := newCache(t)
		mustSet(t, cache.SetBasicAuth(reg, p.Username, "not-her-password"))
		mustSet(t, cache.SetBasicAuth(reg, p.Username, p.Password))
		fetchPrivate(t, cache)
		// A scheme prefix names the same registry.
		cache = newCache(t)
		mustSet(t, cache.SetBasicAuth("http://"+reg, p.Username, p.Password))
		fetchPrivate(t, cache)
	})

	t.Run("refused", func(t *testing.T) {
		cache := newCache(t)
		mustSet(t, cache.SetBasicAuth(reg, p.Username, "wrong-password-1234"))
		if err := rig.Clear(); err != nil {
			t.Fatal(err)
		}
		_, err := tank.FetchManifest(reg, p.OCIImage, img.Tag, cache)
		wantTankError(t, err, tank.ErrAuth, "token_request_failed", 401)
		holdsNone(t, err, "wrong-password-1234", b64(p.Username+":wrong-password-1234"), p.Password)
		if reqs := tokenRequests(t); len(reqs) != 1 {
			t.Errorf("%d token requests for refused credentials, want 1: %+v", len(reqs), reqs)
		}

		cache = newCache(t)
		mustSet(t, cache.SetIdentityToken(reg, "wrong-refresh-token-5678"))
		_, err = tank.FetchManifest(reg, p.OCIImage, img.Tag, cache)
		if !errors.Is(err, tank.ErrAuth) {
			t.Fatalf("wrong identity token: got %v, want ErrAuth", err)
		}
		holdsNone(t, err, "wrong-refresh-token-5678", p.IdentityToken)
	})
}

func TestBasicAuthRegistry(t *testing.T) {
	basic := rig.Info.BasicRegistry
	if basic == nil {
		t.Fatal("the rig has no htpasswd registry (info.basic_registry); start it with --everything")
	}
	img := rig.Info.Images.DockerImage

	_, err := tank.FetchManifest(basic.Registry, img.Repo, img.Tag, newCache(t))
	wantTankError(t, err, tank.ErrUnauthorized, "http_status", 401)

	cache := newCache(t)
	mustSet(t, cache.SetBasicAuth(basic.Registry, basic.Username, basic.Password))
	m, err := tank.FetchManifest(basic.Registry, img.Repo, img.Tag, cache)
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, m, img.Digest, img.MediaType, img.Size, img.Config, img.Layers, img.BlobSizes)
	layer := img.Layers[0]
	path := filepath.Join(t.TempDir(), "layer")
	if err := tank.FetchBlobToFile(context.Background(), basic.Registry, img.Repo, layer, img.BlobSizes[layer], path, cache, nil); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || sha256Digest(b) != layer {
		t.Fatalf("layer file: %v, hashing to %s", err, sha256Digest(b))
	}
	// Basic credentials are the registry's: they earn nothing elsewhere.
	_, err = tank.FetchManifest(rig.Info.Token.Registry, private(t).OCIImage, img.Tag, cache)
	wantTankError(t, err, tank.ErrUnauthorized, "http_status", 401)

	wrong := newCache(t)
	mustSet(t, wrong.SetBasicAuth(basic.Registry, basic.Username, "not-bobs-password-42"))
	_, err = tank.FetchManifest(basic.Registry, img.Repo, img.Tag, wrong)
	wantTankError(t, err, tank.ErrUnauthorized, "http_status", 401)
	holdsNone(t, err, "not-bobs-password-42", b64(basic.Username+":not-bobs-password-42"), basic.Password)
}

func TestLoadAuthConfig(t *testing.T) {
	p := private(t)
	reg := rig.Info.Token.Registry
	img := rig.Info.Images.OCIImage

	t.Run("docker config.json", func(t *testing.T) {
		auths := map[string]interface{}{
			reg: map[string]string{"auth": b64(p.Username + ":" + p.Password)},
		}
		if b := rig.Info.BasicRegistry; b != nil {
			auths[b.Registry] = map[string]string{"username": b.Username, "password": b.Password}
		}
		path := writeJSON(t, "config.json", map[string]interface{}{"auths": auths})
		cache := newCache(t)
		mustSet(t, cache.LoadAuthConfig(path))
		if err := rig.Clear(); err != nil {
			t.Fatal(err)
		}
		fetchPrivate(t, cache)
		reqs := tokenRequests(t)
		if len(reqs) != 1 || str(reqs[0].Username) != p.Username {
			t.Errorf("token requests %+v, want one as alice", reqs)
		}
		if b := rig.Info.BasicRegistry; b != nil {
			if _, err := tank.FetchManifest(b.Registry, img.Repo, img.Tag, cache); err != nil {
				t.Errorf("htpasswd registry with bob from the file: %v", err)
			}
		}
	})

	t.Run("identity token from the file, explicit settings win", func(t *testing.T) {
		path := writeJSON(t, "auth.json", map[string]interface{}{"auths": map[string]interface{}{
			reg: map[string]string{"identitytoken": p.IdentityToken},
		}})
		cache := newCache(t)
		mustSet(t, cache.LoadAuthConfig(path))
		if err := rig.Clear(); err != nil {
			t.Fatal(err)
		}
		fetchPrivate(t, cache)
		if reqs := tokenRequests(t); len(reqs) != 1 || reqs[0].Method != "POST" {
			t.Errorf("token requests %+v, want one OAuth2 POST", reqs)
		}

		wrong := writeJSON(t, "wrong.json", map[string]interface{}{"auths": map[string]interface{}{
			reg: map[string]string{"auth": b64(p.Username + ":wrong")},
		}})
		cache = newCache(t)
		mustSet(t, cache.LoadAuthConfig(wrong))
		_, err := tank.FetchManifest(reg, p.OCIImage, img.Tag, cache)
		wantTankError(t, err, tank.ErrAuth, "token_request_failed", 401)
		mustSet(t, cache.SetBasicAuth(reg, p.Username, p.Password))
		fetchPrivate(t, cache)
	})

	t.Run("standard search", func(t *testing.T) {
		// "" is the standard search, REGISTRY_AUTH_FILE first. (This is
		// the one test that sets the environment; none runs in parallel.)
		path := writeJSON(t, "auth.json", map[string]interface{}{"auths": map[string]interface{}{
			reg: map[string]string{"auth": b64(p.Username + ":" + p.Password)},
		}})
		t.Setenv("REGISTRY_AUTH_FILE", path)
		cache := newCache(t)
		mustSet(t, cache.LoadAuthConfig(""))
		fetchPrivate(t, cache)

		missing := filepath.Join(t.TempDir(), "no-such-auth.json")
		t.Setenv("REGISTRY_AUTH_FILE", missing)
		err := newCache(t).LoadAuthConfig("")
		terr := wantTankError(t, err, tank.ErrBadInput, tank.ReasonAuthConfig, 0)
		if !strings.Contains(terr.Message, "no-such-auth.json") {
			t.Errorf("message %q does not name the file", terr.Message)
		}
	})

	t.Run("bad files", func(t *testing.T) {
		const secret = "hunter2-secret-without-colon"
		for name, body := range map[string]string{
			// Valid JSON, but "auth" decodes to no user:password pair.
			"bad-auth.json": `{"auths": {"` + reg + `": {"auth": "` + b64(secret) + `"}}}`,
			// Not JSON, with a secret in it.
			"not-json.json":      `{"auths": {"` + reg + `": {"auth": "` + b64("alice:"+secret) + `"`,
			"not-an-object.json": `["` + secret + `"]`,
		} {
			t.Run(name, func(t *testing.T) {
				path := writeFile(t, name, body)
				cache := newCache(t)
				err := cache.LoadAuthConfig(path)
				terr := wantTankError(t, err, tank.ErrBadInput, tank.ReasonAuthConfig, 0)
				if terr.Status != tank.StatusBadInput || !strings.Contains(terr.Message, name) {
					t.Errorf("%+v: message does not name %s", terr, name)
				}
				holdsNone(t, err, secret, b64(secret), b64("alice:"+secret))
				// Nothing of it was kept.
				_, err = tank.FetchManifest(reg, p.OCIImage, img.Tag, cache)
				wantTankError(t, err, tank.ErrUnauthorized, "http_status", 401)
			})
		}
		missing := filepath.Join(t.TempDir(), "missing.json")
		err := newCache(t).LoadAuthConfig(missing)
		terr := wantTankError(t, err, tank.ErrBadInput, tank.ReasonAuthConfig, 0)
		if !strings.Contains(terr.Message, "missing.json") {
			t.Errorf("message %q does not name the file", terr.Message)
		}
	})

	t.Run("credential helper that cannot run", func(t *testing.T) {
		const helper = "tank-go-test-no-such-helper"
		path := writeJSON(t, "config.json", map[string]interface{}{"credsStore": helper})
		cache := newCache(t)
		// The helper runs when a call needs credentials, not now.
		mustSet(t, cache.LoadAuthConfig(path))
		_, err := tank.FetchManifest(reg, img.Repo, img.Tag, cache)
		terr := wantTankError(t, err, tank.ErrAuth, tank.ReasonCredentialHelper, 0)
		if !strings.Contains(terr.Message, helper) {
			t.Errorf("message %q does not name the helper", terr.Message)
		}
	})
}

func TestTrustCAFile(t *testing.T) {
	tls := tlsInfo(t)
	img := rig.Info.Images.OCIImage
	registry := "https://" + tls.Registry
	other := "https://" + tls.RedirectingRegistry
	// Nothing in the environment names the rig's CA (it is made when the
	// rig starts): only TrustCAFile can make it trusted.

	t.Run("untrusted", func(t *testing.T) {
		_, err := tank.FetchManifest(registry, img.Repo, img.Tag, newCache(t))
		wantTankError(t, err, tank.ErrTransport, "tls", 0)
		_, err = tank.FetchManifest(registry, img.Repo, img.Tag, nil)
		wantTankError(t, err, tank.ErrTransport, "tls", 0)
	})

	t.Run("one registry", func(t *testing.T) {
		cache := newCache(t)
		mustSet(t, cache.TrustCAFile(registry, tls.CAPEM))
		m, err := tank.FetchManifest(registry, img.Repo, img.Tag, cache)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, m, img.Digest, img.MediaType, img.Size, img.Config, img.Layers, img.BlobSizes)
		b, err := tank.FetchBlobSized(registry, img.Repo, img.Config, img.BlobSizes[img.Config], cache)
		if err != nil || sha256Digest(b) != img.Config {
			t.Fatalf("config blob over TLS: %v", err)
		}
		// Trust for one registry is not trust for another.
		_, err = tank.FetchManifest(other, img.Repo, img.Tag, cache)
		wantTankError(t, err, tank.ErrTransport, "tls", 0)
		// Nor for other caches.
		_, err = tank.FetchManifest(registry, img.Repo, img.Tag, newCache(t))
		wantTankError(t, err, tank.ErrTransport, "tls", 0)
	})

	t.Run("every registry", func(t *testing.T) {
		cache := newCache(t)
		mustSet(t, cache.TrustCAFile("", tls.CAPEM))
		for _, r := range []string{registry, other} {
			if _, err := tank.FetchManifest(r, img.Repo, img.Tag, cache); err != nil {
				t.Errorf("%s: %v", r, err)
			}
		}
	})

	t.Run("bad PEM", func(t *testing.T) {
		junk := writeFile(t, "junk.pem", "not a certificate\n")
		err := newCache(t).TrustCAFile("", junk)
		terr := wantTankError(t, err, tank.ErrBadInput, tank.ReasonCertificate, 0)
		if !strings.Contains(terr.Message, "junk.pem") {
			t.Errorf("message %q does not name the file", terr.Message)
		}
		// A key is not a certificate.
		err = newCache(t).TrustCAFile(registry, tls.ClientKeyPEM)
		wantTankError(t, err, tank.ErrBadInput, tank.ReasonCertificate, 0)
		missing := filepath.Join(t.TempDir(), "missing-ca.pem")
		err = newCache(t).TrustCAFile("", missing)
		if !errors.Is(err, tank.ErrBadInput) || !strings.Contains(err.Error(), "missing-ca.pem") {
			t.Errorf("missing PEM file: got %v, want ErrBadInput naming it", err)
		}
	})

	t.Run("https token registry with an http realm", func(t *testing.T) {
		tt := rig.Info.TLSToken
		if tt == nil {
			t.Fatal("the rig has no tls_token registry; start it with --everything")
		}
		p := private(t)
		cache := newCache(t)
		mustSet(t, cache.TrustCAFile("", tt.CAPEM))
		mustSet(t, cache.SetBasicAuth("https://"+tt.Registry, p.Username, p.Password))
		if err := rig.Clear(); err != nil {
			t.Fatal(err)
		}
		// The password would go in clear to the realm: tank refuses.
		_, err := tank.FetchManifest("https://"+tt.Registry, p.OCIImage, img.Tag, cache)
		wantTankError(t, err, tank.ErrAuth, "invalid_realm", 0)
		holdsNone(t, err, p.Password)
		for _, r := range tokenRequests(t) {
			if r.Which == "tls-token" {
				t.Errorf("a token request reached the http realm: %+v", r)
			}
		}
	})
}

func TestLoadCertsDir(t *testing.T) {
	tls := tlsInfo(t)
	img := rig.Info.Images.OCIImage
	mtls := "https://" + tls.ClientCertRegistry

	t.Run("untrusted server", func(t *testing.T) {
		// tank refuses the server's certificate before the server can ask
		// for one. (TestMutualTLSWithoutClientCertificate has the server
		// refuse tank.)
		_, err := tank.FetchManifest(mtls, img.Repo, img.Tag, newCache(t))
		wantTankError(t, err, tank.ErrTransport, "tls", 0)
	})

	t.Run("certs dir", func(t *testing.T) {
		cache := newCache(t)
		mustSet(t, cache.LoadCertsDir(tls.CertsDir))
		m, err := tank.FetchManifest(mtls, img.Repo, img.Tag, cache)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, m, img.Digest, img.MediaType, img.Size, img.Config, img.Layers, img.BlobSizes)
		layer := img.Layers[len(img.Layers)-1]
		path := filepath.Join(t.TempDir(), "layer")
		if err := tank.FetchBlobToFile(context.Background(), mtls, img.Repo, layer, img.BlobSizes[layer], path, cache, nil); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(path); err != nil || sha256Digest(b) != layer {
			t.Fatalf("layer file: %v, hashing to %s", err, sha256Digest(b))
		}
		// The directory's ca.crt files trust the other https registries.
		if _, err := tank.FetchManifest("https://"+tls.Registry, img.Repo, img.Tag, cache); err != nil {
			t.Errorf("https registry through certs.d: %v", err)
		}
	})

	t.Run("client.cert without client.key", func(t *testing.T) {
		dir := t.TempDir()
		host := filepath.Join(dir, tls.ClientCertRegistry)
		if err := os.Mkdir(host, 0o755); err != nil {
			t.Fatal(err)
		}
		cert, err := os.ReadFile(tls.ClientCertPEM)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(host, "client.cert"), cert, 0o600); err != nil {
			t.Fatal(err)
		}
		ca, err := os.ReadFile(tls.CAPEM)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(host, "ca.crt"), ca, 0o600); err != nil {
			t.Fatal(err)
		}
		cache := newCache(t)
		err = cache.LoadCertsDir(dir)
		terr := wantTankError(t, err, tank.ErrBadInput, tank.ReasonCertificate, 0)
		if !strings.Contains(terr.Message, "key") {
			t.Errorf("message %q does not say the key is missing", terr.Message)
		}
		// Nothing from the directory was kept, its ca.crt included.
		_, err = tank.FetchManifest("https://"+tls.ClientCertRegistry, img.Repo, img.Tag, cache)
		wantTankError(t, err, tank.ErrTransport, "tls", 0)
	})

	t.Run("missing dir", func(t *testing.T) {
		err := newCache(t).LoadCertsDir(filepath.Join(t.TempDir(), "no-such-certs.d"))
		wantTankError(t, err, tank.ErrBadInput, tank.ReasonCertificate, 0)
	})

	t.Run("default dirs", func(t *testing.T) {
		err := newCache(t).LoadCertsDir("")
		exists := false
		for _, d := range []string{"/etc/containerd/certs.d", "/etc/containers/certs.d", "/etc/docker/certs.d"} {
			if _, statErr := os.Stat(d); statErr == nil {
				exists = true
			}
		}
		if !exists && err != nil {
			t.Errorf("no default certs dir exists, yet: %v", err)
		}
		if exists {
			t.Logf("with this machine's certs dirs: %v", err)
		}
	})
}

// The mutual-TLS registry refuses a handshake without a client
// certificate. The test runs in child processes of its own (attached to
// this process's rig): the server's refusal can arrive while libtank
// writes, and a SIGPIPE raised on a thread of libtank's own kills a Go
// program (Go ignores SIGPIPE only on its own threads), here the whole
// test binary.
func TestMutualTLSWithoutClientCertificate(t *testing.T) {
	tls := tlsInfo(t)
	img := rig.Info.Images.OCIImage
	mtls := "https://" + tls.ClientCertRegistry
	if os.Getenv(rigtest.EnvInfo) == "" {
		runInChild(t, 4)
		return
	}
	// The server is trusted, but wants a client certificate tank lacks.
	// Whether one of libtank's threads is writing when the refusal comes
	// is a matter of timing: a few tries, in a few processes, make a
	// SIGPIPE likely if one can happen.
	var cache *tank.Cache
	for try := 0; try < 5; try++ {
		cache = newCache(t)
		mustSet(t, cache.TrustCAFile("", tls.CAPEM))
		start := time.Now()
		_, err := tank.FetchManifest(mtls, img.Repo, img.Tag, cache)
		var terr *tank.Error
		if !errors.Is(err, tank.ErrTransport) || !errors.As(err, &terr) {
			t.Fatalf("got %v, want ErrTransport", err)
		}
		t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
		// With TLS 1.3 the server's refusal (an alert, or the connection
		// closed) comes after the client's side of the handshake is done,
		// with the request: "tls" or, from an older libtank,
		// "request_failed" (after retries).
		if terr.Reason != "tls" && terr.Reason != "request_failed" {
			t.Errorf("reason %q, want tls or request_failed", terr.Reason)
		}
	}
	// With the certs directory's client certificate, the same registry
	// answers.
	mustSet(t, cache.LoadCertsDir(tls.CertsDir))
	if _, err := tank.FetchManifest(mtls, img.Repo, img.Tag, cache); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
}

// runInChild runs the calling test alone in a child process attached to
// this process's rig (runs times, one after the other), for tests whose
// failure could take the process down with it, and fails with the child's
// output when it fails, saying so when a signal killed it.
func runInChild(t *testing.T, runs int) {
	t.Helper()
	env, err := rig.ChildEnv()
	if err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= runs; run++ {
		cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v", "-test.timeout=5m")
		cmd.Env = append(os.Environ(), env)
		out, err := cmd.CombinedOutput()
		if err != nil {
			failedChild(t, cmd, run, err, out)
		}
		t.Logf("child process %d/%d:\n%s", run, runs, out)
	}
}

func failedChild(t *testing.T, cmd *exec.Cmd, run int, err error, out []byte) {
	t.Helper()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("the child process running %s was killed by signal %d (%v): libtank raised it on a thread of its own, and "+
			"a C or Go host that does not ignore it dies (child process %d):\n%s", t.Name(), int(ws.Signal()), ws.Signal(), run, out)
	}
	t.Fatalf("child process %d: %v\n%s", run, err, out)
}

func TestSettingsRejectBadInput(t *testing.T) {
	p := private(t)
	reg := rig.Info.Token.Registry
	img := rig.Info.Images.OCIImage
	cache := newCache(t)

	// Each would set something that works if C got the string cut at the
	// NUL; the fetch below shows that nothing was set.
	cases := []struct {
		name, arg string
		call      func() error
		secret    string
	}{
		{"registry", "registry", func() error { return cache.SetBasicAuth(reg+"\x00x", p.Username, p.Password) }, ""},
		{"username", "username", func() error { return cache.SetBasicAuth(reg, p.Username+"\x00x", p.Password) }, ""},
		{"password", "password", func() error { return cache.SetBasicAuth(reg, p.Username, p.Password+"\x00x") }, p.Password},
		{"token", "token", func() error { return cache.SetIdentityToken(reg, p.IdentityToken+"\x00x") }, p.IdentityToken},
		{"token registry", "registry", func() error { return cache.SetIdentityToken(reg+"\x00", p.IdentityToken) }, ""},
		{"auth file", "path", func() error {
			good := writeJSON(t, "auth.json", map[string]interface{}{"auths": map[string]interface{}{
				reg: map[string]string{"auth": b64(p.Username + ":" + p.Password)},
			}})
			return cache.LoadAuthConfig(good + "\x00.bak")
		}, ""},
		{"CA registry", "registry", func() error { return cache.TrustCAFile("\x00", tlsInfo(t).CAPEM) }, ""},
		{"CA file", "pem_path", func() error { return cache.TrustCAFile("", tlsInfo(t).CAPEM+"\x00") }, ""},
		{"certs dir", "dir", func() error { return cache.LoadCertsDir(tlsInfo(t).CertsDir + "\x00") }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			terr := wantTankError(t, err, tank.ErrBadInput, "bad_input", 0)
			if !strings.Contains(terr.Message, c.arg) || !strings.Contains(terr.Message, "NUL") {
				t.Errorf("message %q does not name %s and the NUL byte", terr.Message, c.arg)
			}
			holdsNone(t, err, c.secret)
		})
	}
	_, err := tank.FetchManifest(reg, p.OCIImage, img.Tag, cache)
	wantTankError(t, err, tank.ErrUnauthorized, "http_status", 401)
	for _, r := range []string{"https://" + tlsInfo(t).Registry, "https://" + tlsInfo(t).ClientCertRegistry} {
		_, err = tank.FetchManifest(r, img.Repo, img.Tag, cache)
		wantTankError(t, err, tank.ErrTransport, "tls", 0)
	}

	// Empty strings C refuses: it says which.
	for arg, call := range map[string]func() error{
		"registry": func() error { return cache.SetBasicAuth("", p.Username, p.Password) },
		"username": func() error { return cache.SetBasicAuth(reg, "", p.Password) },
		"token":    func() error { return cache.SetIdentityToken(reg, "") },
		"pem_path": func() error { return cache.TrustCAFile(reg, "") },
	} {
		err := call()
		terr := wantTankError(t, err, tank.ErrBadInput, "bad_input", 0)
		if !strings.Contains(terr.Message, arg) {
			t.Errorf("empty %s: message %q does not name it", arg, terr.Message)
		}
	}

	// A nil cache has nowhere to keep settings; a closed one is closed.
	var nilCache *tank.Cache
	for _, err := range []error{
		nilCache.SetBasicAuth(reg, p.Username, p.Password),
		nilCache.SetIdentityToken(reg, p.IdentityToken),
		nilCache.LoadAuthConfig(""),
		nilCache.TrustCAFile("", tlsInfo(t).CAPEM),
		nilCache.LoadCertsDir(""),
	} {
		wantTankError(t, err, tank.ErrBadInput, "bad_input", 0)
	}
	closed := tank.NewCache(0)
	closed.Close()
	for _, err := range []error{
		closed.SetBasicAuth(reg, p.Username, p.Password),
		closed.SetIdentityToken(reg, p.IdentityToken),
		closed.LoadAuthConfig(""),
		closed.TrustCAFile("", tlsInfo(t).CAPEM),
		closed.LoadCertsDir(tlsInfo(t).CertsDir),
	} {
		if !errors.Is(err, tank.ErrCacheClosed) || !errors.Is(err, tank.ErrBadInput) {
			t.Errorf("closed cache: got %v, want ErrCacheClosed", err)
		}
	}
}

// Settings, fetches and Close from many goroutines at once: every call
// either works or finds the cache closed, none waits on another forever,
// and -race sees no race. It runs in a child process: calls stuck for good
// inside libtank would hold its runtime's threads, and every later call
// of the process would hang too.
func TestSettingsConcurrentWithFetchesAndClose(t *testing.T) {
	if os.Getenv(rigtest.EnvInfo) == "" {
		runInChild(t, 1)
		return
	}
	p := private(t)
	tls := tlsInfo(t)
	reg := rig.Info.Token.Registry
	img := rig.Info.Images.OCIImage
	const goroutines = 24
	for round := 0; round < 6; round++ {
		cache := tank.NewCache(time.Minute)
		mustSet(t, cache.SetBasicAuth(reg, p.Username, p.Password))
		start := make(chan struct{})
		errs := make(chan error, goroutines)
		var wg sync.WaitGroup
		for i := 0; i < goroutines; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				var err error
				switch i % 4 {
				case 0:
					err = cache.SetBasicAuth(reg, p.Username, p.Password)
				case 1:
					err = cache.TrustCAFile("", tls.CAPEM)
				case 2:
					err = cache.LoadCertsDir(tls.CertsDir)
				default:
					_, err = tank.FetchManifest(reg, p.OCIImage, img.Tag, cache)
				}
				if err != nil && !errors.Is(err, tank.ErrCacheClosed) {
					errs <- err
				}
			}(i)
		}
		if round%2 == 1 {
			// Close in the middle of it all.
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				cache.Close()
			}()
		}
		done := make(chan struct{})
		go func() {
			wg.Wait()
			cache.Close()
			close(done)
		}()
		close(start)
		// Each call takes milliseconds; a minute means they are stuck
		// (inside libtank: every goroutine still running is in a C call,
		// and the cache stays open for them).
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("round %d: settings, fetches and Close on one cache did not all return within a minute: "+
				"a deadlock in libtank (SIGQUIT the test binary for the goroutines stuck in C)", round)
		}
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

// The C copies the binding makes of a password and an identity token are
// zeroed before they are freed. (The Go strings cannot be; see README.)
func TestSecretCopiesAreWipedBeforeFree(t *testing.T) {
	var seen [][]byte
	stop := tank.WatchWipedSecrets(func(b []byte) { seen = append(seen, append([]byte(nil), b...)) })
	defer stop()
	cache := tank.NewCache(0)
	defer cache.Close()
	password, token := "correct horse battery staple", "an-identity-token-0123456789"
	if err := cache.SetBasicAuth(rig.Info.BasicRegistry.Registry, "alice", password); err != nil {
		t.Fatal(err)
	}
	if err := cache.SetIdentityToken(rig.Info.Token.Registry, token); err != nil {
		t.Fatal(err)
	}
	want := []int{len(password), len(token)}
	if len(seen) != len(want) {
		t.Fatalf("saw %d secret copies freed, want %d", len(seen), len(want))
	}
	for i, b := range seen {
		if len(b) != want[i] || strings.Trim(string(b), "\x00") != "" {
			t.Errorf("secret copy %d was freed holding %q, want %d zero bytes", i, b, want[i])
		}
	}
}
