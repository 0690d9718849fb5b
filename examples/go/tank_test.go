package tank_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"tank.example/tank"
	"tank.example/tank/internal/rigtest"
)

// One rig for the whole package, with every registry it has (creds_test.go
// needs the htpasswd, https and mutual-TLS ones) and a large image (a
// transfer long enough to cancel in its middle), started and stopped by
// TestMain.
var rig *rigtest.Rig

// largeMiB is the size of the rig's large layer.
const largeMiB = "128"

func TestMain(m *testing.M) {
	os.Exit(rigtest.RunTests(m, "tank tests", func(r *rigtest.Rig) { rig = r },
		rigtest.Everything, "--large-mib", largeMiB))
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// registries gives the rig's registries by name, each with a fresh cache
// where it needs tokens (plain also gets a nil cache: no caching).
func registries(t *testing.T) map[string]struct {
	addr  string
	cache *tank.Cache
} {
	t.Helper()
	type reg = struct {
		addr  string
		cache *tank.Cache
	}
	out := map[string]reg{
		"plain": {rig.Info.Plain.Registry, nil},
		"token": {rig.Info.Token.Registry, tank.NewCache(time.Minute)},
		"cdn":   {rig.Info.CDN.Registry, tank.NewCache(time.Minute)},
	}
	t.Cleanup(func() {
		for _, r := range out {
			if err := r.cache.Close(); err != nil {
				t.Error(err)
			}
		}
	})
	return out
}

func wantDescriptor(t *testing.T, what string, d tank.Descriptor, digest string, size int64) {
	t.Helper()
	if d.Digest != digest || d.Size != size {
		t.Errorf("%s: got %s (%d bytes), want %s (%d bytes)", what, d.Digest, d.Size, digest, size)
	}
	if d.MediaType == "" {
		t.Errorf("%s: empty media type", what)
	}
	if d.Platform != nil {
		t.Errorf("%s: unexpected platform %v", what, *d.Platform)
	}
}

// checkImage compares an image manifest with what the rig pushed.
func checkImage(t *testing.T, m *tank.Manifest, digest, mediaType string, size int64,
	config string, layers []string, sizes map[string]int64) {
	t.Helper()
	if m.Digest != digest {
		t.Errorf("digest %s, want %s", m.Digest, digest)
	}
	if m.MediaType != mediaType {
		t.Errorf("media type %q, want %q", m.MediaType, mediaType)
	}
	if int64(len(m.Raw)) != size || sha256Digest(m.Raw) != digest {
		t.Errorf("raw: %d bytes hashing to %s, want %d bytes hashing to %s",
			len(m.Raw), sha256Digest(m.Raw), size, digest)
	}
	var doc struct {
		SchemaVersion int `json:"schemaVersion"`
	}
	if err := json.Unmarshal(m.Raw, &doc); err != nil || doc.SchemaVersion != 2 {
		t.Errorf("raw is not a schema 2 manifest (%v): %.200s", err, m.Raw)
	}
	if m.Config == nil {
		t.Fatalf("no config")
	}
	wantDescriptor(t, "config", *m.Config, config, sizes[config])
	if len(m.Layers) != len(layers) {
		t.Fatalf("%d layers, want %d", len(m.Layers), len(layers))
	}
	for i, l := range m.Layers {
		wantDescriptor(t, fmt.Sprintf("layer %d", i), l, layers[i], sizes[layers[i]])
	}
	if m.Manifests != nil {
		t.Errorf("an image manifest with index entries: %v", m.Manifests)
	}
}

func TestManifestByTagAndDigest(t *testing.T) {
	imgs := map[string]rigtest.Image{
		"oci":    rig.Info.Images.OCIImage,
		"docker": rig.Info.Images.DockerImage,
	}
	for regName, reg := range registries(t) {
		for imgName, img := range imgs {
			for _, by := range []string{"tag", "digest"} {
				ref := img.Tag
				if by == "digest" {
					ref = img.Digest
				}
				t.Run(regName+"/"+imgName+"/"+by, func(t *testing.T) {
					m, err := tank.FetchManifest(reg.addr, img.Repo, ref, reg.cache)
					if err != nil {
						t.Fatal(err)
					}
					checkImage(t, m, img.Digest, img.MediaType, img.Size, img.Config, img.Layers, img.BlobSizes)
				})
			}
		}
	}
}

func TestIndexWithPlatforms(t *testing.T) {
	for name, ix := range map[string]rigtest.Index{
		"oci_index":   rig.Info.Images.OCIIndex,
		"docker_list": rig.Info.Images.DockerList,
	} {
		t.Run(name, func(t *testing.T) {
			m, err := tank.FetchManifest(rig.Info.Plain.Registry, ix.Repo, ix.Tag, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m.Digest != ix.Digest || m.MediaType != ix.MediaType || sha256Digest(m.Raw) != ix.Digest {
				t.Errorf("got %s %q, want %s %q", m.Digest, m.MediaType, ix.Digest, ix.MediaType)
			}
			if m.Config != nil || m.Layers != nil {
				t.Errorf("an index with a config or layers: %v %v", m.Config, m.Layers)
			}
			if len(m.Manifests) != len(ix.Manifests) {
				t.Fatalf("%d entries, want %d", len(m.Manifests), len(ix.Manifests))
			}
			for i, e := range ix.Manifests {
				d := m.Manifests[i]
				if d.Digest != e.Digest || d.MediaType != e.MediaType || d.Size != e.Size {
					t.Errorf("entry %d: %+v, want %+v", i, d, e)
				}
				if d.Platform == nil || d.Platform.String() != e.Platform {
					t.Errorf("entry %d: platform %v, want %s", i, d.Platform, e.Platform)
				}
			}
			want, _ := ix.Entry("linux/arm64/v8")
			for _, p := range []string{"linux/arm64", "linux/arm64/v8"} {
				plat, err := tank.ParsePlatform(p)
				if err != nil {
					t.Fatal(err)
				}
				if d, ok := m.ForPlatform(plat); !ok || d.Digest != want.Digest {
					t.Errorf("ForPlatform(%s) = %v, %v; want %s", p, d.Digest, ok, want.Digest)
				}
			}
			if d, ok := m.ForPlatform(tank.Platform{OS: "plan9", Architecture: "amd64"}); ok {
				t.Errorf("ForPlatform(plan9/amd64) found %v", d)
			}
		})
	}
	// The OCI index's children, each by digest. (The Docker list's arm64
	// child is kept for TestDigestMismatch.)
	ix := rig.Info.Images.OCIIndex
	for _, e := range ix.Manifests {
		t.Run("oci_index/"+e.Platform, func(t *testing.T) {
			m, err := tank.FetchManifest(rig.Info.Plain.Registry, ix.Repo, e.Digest, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, m, e.Digest, e.MediaType, e.Size, e.Config, e.Layers, ix.BlobSizes)
		})
	}
}

func TestBlobVerified(t *testing.T) {
	img := rig.Info.Images.OCIImage
	for regName, reg := range registries(t) {
		t.Run(regName, func(t *testing.T) {
			for _, digest := range append([]string{img.Config}, img.Layers...) {
				b, err := tank.FetchBlob(reg.addr, img.Repo, digest, reg.cache)
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(b)) != img.BlobSizes[digest] || sha256Digest(b) != digest {
					t.Errorf("%s: %d bytes hashing to %s", digest, len(b), sha256Digest(b))
				}
			}
		})
	}
	t.Run("WriteBlob", func(t *testing.T) {
		layer := img.Layers[len(img.Layers)-1]
		var buf bytes.Buffer
		n, err := tank.WriteBlob(&buf, rig.Info.Plain.Registry, img.Repo, layer, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n != img.BlobSizes[layer] || int64(buf.Len()) != n || sha256Digest(buf.Bytes()) != layer {
			t.Errorf("wrote %d bytes (buffer %d) hashing to %s", n, buf.Len(), sha256Digest(buf.Bytes()))
		}
	})
	t.Run("sized", func(t *testing.T) {
		layer := img.Layers[0]
		size := img.BlobSizes[layer]
		b, err := tank.FetchBlobSized(rig.Info.Plain.Registry, img.Repo, layer, size, nil)
		if err != nil || sha256Digest(b) != layer {
			t.Fatalf("right size: %v, %d bytes", err, len(b))
		}
		_, err = tank.FetchBlobSized(rig.Info.Plain.Registry, img.Repo, layer, size-1, nil)
		var te *tank.Error
		if !errors.As(err, &te) || !errors.Is(err, tank.ErrProtocol) || te.Reason != "length_mismatch" {
			t.Fatalf("wrong size: %v", err)
		}
		if _, err := tank.FetchBlobSized(rig.Info.Plain.Registry, img.Repo, layer, -2, nil); !errors.Is(err, tank.ErrBadInput) {
			t.Fatalf("negative size: %v", err)
		}
	})
	t.Run("index child", func(t *testing.T) {
		ix := rig.Info.Images.DockerList
		e, _ := ix.Entry("linux/amd64")
		for _, digest := range append([]string{e.Config}, e.Layers...) {
			b, err := tank.FetchBlob(rig.Info.Plain.Registry, ix.Repo, digest, nil)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(b)) != ix.BlobSizes[digest] || sha256Digest(b) != digest {
				t.Errorf("%s: %d bytes hashing to %s", digest, len(b), sha256Digest(b))
			}
		}
	})
}

// Blob reads from the cdn registry are redirected to a CDN, which must
// never see the registry's token.
func TestCDNNeverSeesToken(t *testing.T) {
	img := rig.Info.Images.OCIImage
	cache := tank.NewCache(time.Minute)
	defer cache.Close()
	if err := rig.Clear(); err != nil {
		t.Fatal(err)
	}
	for _, digest := range img.Layers {
		b, err := tank.FetchBlob(rig.Info.CDN.Registry, img.Repo, digest, cache)
		if err != nil {
			t.Fatal(err)
		}
		if sha256Digest(b) != digest {
			t.Errorf("%s: bytes hash to %s", digest, sha256Digest(b))
		}
	}
	reqs, err := rig.CDNRequests()
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != len(img.Layers) {
		t.Errorf("%d CDN requests, want %d: %+v", len(reqs), len(img.Layers), reqs)
	}
	for _, r := range reqs {
		if r.Authorization {
			t.Errorf("the CDN got an Authorization header: %+v", r)
		}
	}
}

func TestNotFound(t *testing.T) {
	img := rig.Info.Images.OCIImage
	missingBlob := sha256Digest([]byte("no such blob"))
	for regName, reg := range registries(t) {
		t.Run(regName, func(t *testing.T) {
			_, err := tank.FetchManifest(reg.addr, img.Repo, "no-such-tag", reg.cache)
			wantNotFound(t, err, "/v2/"+img.Repo+"/manifests/no-such-tag")
			_, err = tank.FetchManifest(reg.addr, "tank/no-such-repo", "v1", reg.cache)
			wantNotFound(t, err, "/v2/tank/no-such-repo/manifests/v1")
			_, err = tank.FetchBlob(reg.addr, img.Repo, missingBlob, reg.cache)
			wantNotFound(t, err, "/v2/"+img.Repo+"/blobs/"+missingBlob)
			n, err := tank.WriteBlob(failingWriter{t}, reg.addr, img.Repo, missingBlob, reg.cache)
			wantNotFound(t, err, missingBlob)
			if n != 0 {
				t.Errorf("WriteBlob wrote %d bytes", n)
			}
		})
	}
}

func wantNotFound(t *testing.T, err error, inMessage string) {
	t.Helper()
	if !errors.Is(err, tank.ErrNotFound) || !errors.Is(err, tank.ErrHTTP) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	for _, other := range []error{tank.ErrBadInput, tank.ErrDigestMismatch, tank.ErrAuth, tank.ErrUnauthorized, tank.ErrTransport} {
		if errors.Is(err, other) {
			t.Errorf("%v also matches %v", err, other)
		}
	}
	var terr *tank.Error
	if !errors.As(err, &terr) {
		t.Fatalf("%T is not a *tank.Error", err)
	}
	if terr.Status != tank.StatusHTTP || terr.HTTPStatus != 404 || terr.Reason != "http_status" {
		t.Errorf("got %+v", terr)
	}
	if !strings.Contains(terr.Message, inMessage) || !strings.Contains(err.Error(), inMessage) {
		t.Errorf("message %q does not name %q", err, inMessage)
	}
}

type failingWriter struct{ t *testing.T }

func (w failingWriter) Write(p []byte) (int, error) {
	w.t.Errorf("Write called with %d bytes", len(p))
	return 0, errors.New("unexpected write")
}

func TestBadInputSendsNoRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	good := sha256Digest([]byte("x"))
	cases := []struct {
		name                     string
		blob                     bool
		repo, reference, message string
	}{
		{"digest not hex", true, "tank/ok", "sha256:xyz", "digest"},
		{"digest upper case", true, "tank/ok", strings.ToUpper(good[:7]) + strings.ToUpper(good[7:]), "digest"},
		{"digest short", true, "tank/ok", good[:len(good)-1], "digest"},
		{"digest unknown algorithm", true, "tank/ok", "md5:d41d8cd98f00b204e9800998ecf8427e", "digest"},
		{"digest is a tag", true, "tank/ok", "latest", "digest"},
		{"digest empty", true, "tank/ok", "", "digest"},
		{"digest with NUL", true, "tank/ok", good + "\x00", "digest"},
		{"repo upper case", false, "Tank/OK", "v1", "repo"},
		{"repo dot-dot", false, "tank/../etc", "v1", "repo"},
		{"repo empty segment", false, "tank//ok", "v1", "repo"},
		{"repo with NUL", false, "tank/ok\x00/x", "v1", "repo"},
		{"tag with space", false, "tank/ok", "v 1", "reference"},
		{"tag with slash", false, "tank/ok", "v1/../x", "reference"},
		{"blob repo bad", true, "tank/ok ", good, "repo"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			if c.blob {
				_, err = tank.FetchBlob(addr, c.repo, c.reference, nil)
			} else {
				_, err = tank.FetchManifest(addr, c.repo, c.reference, nil)
			}
			if !errors.Is(err, tank.ErrBadInput) {
				t.Fatalf("got %v, want ErrBadInput", err)
			}
			var terr *tank.Error
			if !errors.As(err, &terr) || terr.Status != tank.StatusBadInput || terr.Reason != "bad_input" {
				t.Fatalf("got %#v", err)
			}
			if !strings.Contains(terr.Message, c.message) {
				t.Errorf("message %q does not name %q", terr.Message, c.message)
			}
			if errors.Is(err, tank.ErrNotFound) || errors.Is(err, tank.ErrTransport) {
				t.Errorf("%v matches a network sentinel", err)
			}
		})
	}
	// Any connection a call made has completed its handshake by the time
	// the call returned, so it is waiting in the backlog now.
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
	if conn, err := ln.Accept(); err == nil {
		conn.Close()
		t.Fatalf("a call with bad input connected to %s", addr)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("accept: %v", err)
	}
}

func TestDigestMismatch(t *testing.T) {
	// Only this test touches the Docker list's arm64 child (its manifest
	// and its first layer), and only in the plain registry's storage.
	ix := rig.Info.Images.DockerList
	arm64, ok := ix.Entry("linux/arm64/v8")
	if !ok {
		t.Fatalf("no linux/arm64/v8 in %+v", ix.Manifests)
	}
	storage := rig.Info.Plain.Storage

	t.Run("blob", func(t *testing.T) {
		layer := arm64.Layers[0]
		if err := rigtest.CorruptBlob(storage, layer); err != nil {
			t.Fatal(err)
		}
		_, err := tank.FetchBlob(rig.Info.Plain.Registry, ix.Repo, layer, nil)
		if !errors.Is(err, tank.ErrDigestMismatch) {
			t.Fatalf("got %v, want ErrDigestMismatch", err)
		}
		var terr *tank.Error
		if !errors.As(err, &terr) || terr.Status != tank.StatusDigestMismatch || terr.Reason != "digest_mismatch" {
			t.Errorf("got %#v", err)
		}
		if errors.Is(err, tank.ErrHTTP) || errors.Is(err, tank.ErrProtocol) {
			t.Errorf("%v matches another sentinel", err)
		}
		// Nothing unverified reaches a writer.
		if _, err := tank.WriteBlob(failingWriter{t}, rig.Info.Plain.Registry, ix.Repo, layer, nil); !errors.Is(err, tank.ErrDigestMismatch) {
			t.Errorf("WriteBlob: got %v, want ErrDigestMismatch", err)
		}
		// The other registries still have the good bytes.
		b, err := tank.FetchBlob(rig.Info.Token.Registry, ix.Repo, layer, nil)
		if err != nil || sha256Digest(b) != layer {
			t.Errorf("token registry: %v", err)
		}
	})

	t.Run("manifest", func(t *testing.T) {
		// Serve the amd64 child's bytes (a valid manifest) under the arm64
		// child's digest.
		amd64, _ := ix.Entry("linux/amd64")
		good, err := os.ReadFile(rigtest.BlobPath(storage, amd64.Digest))
		if err != nil {
			t.Fatal(err)
		}
		path := rigtest.BlobPath(storage, arm64.Digest)
		if err := os.WriteFile(path+".swap", good, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".swap", path); err != nil {
			t.Fatal(err)
		}
		_, err = tank.FetchManifest(rig.Info.Plain.Registry, ix.Repo, arm64.Digest, nil)
		var terr *tank.Error
		if !errors.Is(err, tank.ErrDigestMismatch) || !errors.As(err, &terr) || terr.Reason != "manifest_digest_mismatch" {
			t.Fatalf("got %#v, want ErrDigestMismatch (manifest_digest_mismatch)", err)
		}
	})
}

// 64 goroutines share one cache and pull the same image from the token
// registry at once. Goroutines move between OS threads around the blocking
// C calls, so this would catch thread-local error state; every 4th also
// asks for a missing tag, so errors and results interleave. The cache must
// make them all share one token request.
func TestSharedCacheManyGoroutines(t *testing.T) {
	const goroutines = 64
	img := rig.Info.Images.OCIImage
	reg := rig.Info.Token.Registry
	cache := tank.NewCache(time.Minute)
	defer cache.Close()
	if err := rig.Clear(); err != nil {
		t.Fatal(err)
	}

	pull := func(i int) error {
		if i%4 == 0 {
			_, err := tank.FetchManifest(reg, img.Repo, fmt.Sprintf("missing-%d", i), cache)
			var terr *tank.Error
			if !errors.As(err, &terr) || terr.HTTPStatus != 404 ||
				!strings.Contains(terr.Message, fmt.Sprintf("/manifests/missing-%d", i)) {
				return fmt.Errorf("missing tag: got %v", err)
			}
		}
		m, err := tank.FetchManifest(reg, img.Repo, img.Tag, cache)
		if err != nil {
			return err
		}
		if m.Digest != img.Digest || sha256Digest(m.Raw) != img.Digest {
			return fmt.Errorf("manifest %s", m.Digest)
		}
		for _, d := range append([]tank.Descriptor{*m.Config}, m.Layers...) {
			runtime.Gosched()
			b, err := tank.FetchBlob(reg, img.Repo, d.Digest, cache)
			if err != nil {
				return err
			}
			if sha256Digest(b) != d.Digest || int64(len(b)) != d.Size {
				return fmt.Errorf("blob %s: %d bytes hashing to %s", d.Digest, len(b), sha256Digest(b))
			}
		}
		return nil
	}
	run := func() {
		start := make(chan struct{})
		errs := make(chan error, goroutines)
		var wg sync.WaitGroup
		for i := 0; i < goroutines; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				if err := pull(i); err != nil {
					errs <- fmt.Errorf("goroutine %d: %w", i, err)
				}
			}(i)
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}

	run()
	reqs, err := rig.TokenRequests()
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 1 {
		t.Fatalf("%d token requests, want exactly 1: %+v", len(reqs), reqs)
	}
	r := reqs[0]
	wantScope := "repository:" + img.Repo + ":pull"
	if r.Which != "token" || r.Status != 200 || r.Authorization || len(r.Scopes) != 1 || r.Scopes[0] != wantScope {
		t.Errorf("token request %+v, want an anonymous %s from the token registry answered 200", r, wantScope)
	}

	// A second wave reuses the cached token.
	run()
	if reqs, err = rig.TokenRequests(); err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 1 {
		t.Errorf("%d token requests after a second wave, want still 1: %+v", len(reqs), reqs)
	}
}

func TestCacheClose(t *testing.T) {
	img := rig.Info.Images.OCIImage
	cache := tank.NewCache(0)
	if _, err := tank.FetchManifest(rig.Info.Token.Registry, img.Repo, img.Tag, cache); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cache.Close(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := cache.Close(); err != nil {
		t.Error(err)
	}
	_, err := tank.FetchManifest(rig.Info.Token.Registry, img.Repo, img.Tag, cache)
	if !errors.Is(err, tank.ErrCacheClosed) || !errors.Is(err, tank.ErrBadInput) {
		t.Errorf("after Close: got %v, want ErrCacheClosed", err)
	}
	_, err = tank.FetchBlob(rig.Info.Token.Registry, img.Repo, img.Config, cache)
	if !errors.Is(err, tank.ErrCacheClosed) {
		t.Errorf("after Close: got %v, want ErrCacheClosed", err)
	}
	var nilCache *tank.Cache
	if err := nilCache.Close(); err != nil {
		t.Error(err)
	}

	// Close waits for the calls using the cache instead of freeing it
	// under them.
	cache = tank.NewCache(time.Minute)
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			_, err := tank.FetchBlob(rig.Info.Token.Registry, img.Repo, img.Layers[0], cache)
			if errors.Is(err, tank.ErrCacheClosed) {
				err = nil // started after Close: fine
			}
			errs <- err
		}()
	}
	cache.Close()
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestFinalizerFreesForgottenCaches(t *testing.T) {
	const forgotten = 1000
	before := tank.LiveCaches()
	for i := 0; i < forgotten; i++ {
		tank.NewCache(time.Duration(i) * time.Millisecond)
	}
	if live := tank.LiveCaches(); live < before+forgotten {
		t.Fatalf("%d live caches after making %d more than %d", live, forgotten, before)
	}
	// Finalizers run on their own goroutine some time after a collection
	// found their objects unreachable: collect until they have all run.
	// (Caches other tests forgot may go too, hence at most before.)
	deadline := time.Now().Add(time.Minute)
	for tank.LiveCaches() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d forgotten caches still live after a minute of collections",
				tank.LiveCaches()-before, forgotten)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

func TestErrorMatching(t *testing.T) {
	if got := tank.StatusHTTP.String(); got != "TANK_ERR_HTTP" {
		t.Errorf("StatusHTTP.String() = %q", got)
	}
	if got := tank.StatusLayer.String(); got != "TANK_ERR_LAYER" {
		t.Errorf("StatusLayer.String() = %q", got)
	}
	if got := tank.Status(99).String(); got != "TANK_UNKNOWN_STATUS" {
		t.Errorf("Status(99).String() = %q", got)
	}
	cases := []struct {
		err  *tank.Error
		want []error
	}{
		{&tank.Error{Status: tank.StatusHTTP, HTTPStatus: 404}, []error{tank.ErrHTTP, tank.ErrNotFound}},
		{&tank.Error{Status: tank.StatusHTTP, HTTPStatus: 401}, []error{tank.ErrHTTP, tank.ErrUnauthorized}},
		{&tank.Error{Status: tank.StatusHTTP, HTTPStatus: 500}, []error{tank.ErrHTTP}},
		// A token endpoint answering 404 is an auth failure, not a missing image.
		{&tank.Error{Status: tank.StatusAuth, HTTPStatus: 404}, []error{tank.ErrAuth}},
		{&tank.Error{Status: tank.StatusBadInput}, []error{tank.ErrBadInput}},
		{&tank.Error{Status: tank.StatusDigestMismatch}, []error{tank.ErrDigestMismatch}},
		{&tank.Error{Status: tank.StatusTransport}, []error{tank.ErrTransport}},
		{&tank.Error{Status: tank.StatusProtocol}, []error{tank.ErrProtocol}},
		{&tank.Error{Status: tank.StatusInternal}, []error{tank.ErrInternal}},
		{&tank.Error{Status: tank.StatusLayer, Reason: tank.ReasonUnsafePath}, []error{tank.ErrLayer}},
		{&tank.Error{Status: tank.StatusIO}, []error{tank.ErrIO}},
		{&tank.Error{Status: tank.StatusCancelled}, []error{tank.ErrCancelled}},
	}
	all := []error{tank.ErrBadInput, tank.ErrHTTP, tank.ErrNotFound, tank.ErrUnauthorized,
		tank.ErrDigestMismatch, tank.ErrTransport, tank.ErrAuth, tank.ErrProtocol,
		tank.ErrInternal, tank.ErrCacheClosed, tank.ErrLayer, tank.ErrIO, tank.ErrCancelled}
	for _, c := range cases {
		wrapped := fmt.Errorf("pulling: %w", c.err)
		for _, s := range all {
			want := false
			for _, w := range c.want {
				want = want || w == s
			}
			if got := errors.Is(wrapped, s); got != want {
				t.Errorf("errors.Is(%+v, %v) = %v", c.err, s, got)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	if v := tank.Version(); v == "" || strings.Count(v, ".") < 2 {
		t.Errorf("Version() = %q", v)
	}
}
