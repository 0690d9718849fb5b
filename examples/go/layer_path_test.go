package tank_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"tank.example/tank"
)

// hostileManifest is an image manifest whose layer digests are paths. No
// real registry serves one (they check descriptors on push), hence a
// hand-written server.
const hostileManifest = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
  "layers": [
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:../../escape", "size": 1},
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:/etc/passwd", "size": 1},
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:44136FA355B3678A1146AD16F7E8649E94FB4FC21FE77E8310C060F61CAAFF8A", "size": 1}
  ]
}`

// The Example's layerPath is what stands between a registry's descriptor
// and a file name: digests reach Go as the registry wrote them.
func TestLayerPathRefusesDigestsThatAreNotSHA256Hex(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/manifests/v1") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Write([]byte(hostileManifest))
	}))
	defer srv.Close()
	registry := strings.TrimPrefix(srv.URL, "http://")
	m, err := tank.FetchManifest(registry, "org/app", "v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, l := range m.Layers {
		if path, err := layerPath(dir, l); err == nil {
			t.Errorf("layerPath took digest %q as a file name: %s", l.Digest, path)
		}
	}
	good := tank.Descriptor{Digest: m.Config.Digest, Size: 2}
	path, err := layerPath(dir, good)
	want := filepath.Join(dir, good.Digest[len("sha256:"):]+".tar.gz")
	if err != nil || path != want {
		t.Errorf("layerPath(%q) = %q, %v; want %q", good.Digest, path, err, want)
	}
}
