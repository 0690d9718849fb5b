package tank_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"runtime"

	"tank.example/tank"
)

// sha256Hex matches the digests this program lets name a file.
var sha256Hex = regexp.MustCompile(`^sha256:([0-9a-f]{64})$`)

// layerPath is where layer d goes in dir. A descriptor's digest is the
// registry's word, checked against nothing yet: a digest such as
// "sha256:../../.bashrc" must not name a file, so it is validated before
// it is used in a path.
func layerPath(dir string, d tank.Descriptor) (string, error) {
	m := sha256Hex.FindStringSubmatch(d.Digest)
	if m == nil {
		return "", fmt.Errorf("layer digest %q is not sha256:<64 lowercase hex>", d.Digest)
	}
	return filepath.Join(dir, m[1]+".tar.gz"), nil
}

// Pull the host's image out of a multi-platform index into a directory,
// one token for all the calls, every blob bounded by its descriptor's size
// and verified against its digest.
func Example() {
	const registry, repo, dir = "registry.example:5000", "org/app", "layers"
	ctx := context.Background()
	cache := tank.NewCache(0)
	defer cache.Close()

	m, err := tank.FetchManifest(registry, repo, "v1.2", cache)
	if err != nil {
		log.Fatal(err)
	}
	if m.Manifests != nil { // an index: pick an entry
		d, ok := m.ForPlatform(tank.Platform{OS: "linux", Architecture: runtime.GOARCH})
		if !ok {
			log.Fatalf("no linux/%s image in %s", runtime.GOARCH, m.Digest)
		}
		if m, err = tank.FetchManifest(registry, repo, d.Digest, cache); err != nil {
			log.Fatal(err)
		}
	}
	if m.Config == nil {
		log.Fatalf("%s is not an image manifest", m.Digest)
	}
	config, err := tank.FetchBlobSized(registry, repo, m.Config.Digest, m.Config.Size, cache)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("config: %d bytes\n", len(config))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}
	for _, l := range m.Layers {
		path, err := layerPath(dir, l)
		if err != nil {
			log.Fatal(err)
		}
		// Streamed to the file, never more than l.Size bytes, resumable.
		if err := tank.FetchBlobToFile(ctx, registry, repo, l.Digest, l.Size, path, cache, nil); err != nil {
			log.Fatal(err)
		}
	}
}
