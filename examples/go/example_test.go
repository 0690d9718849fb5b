package tank_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"runtime"

	"tank.example/tank"
)

// Pull the host's image out of a multi-platform index, one token for all
// the calls.
func Example() {
	const registry, repo = "registry.example:5000", "org/app"
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
	config, err := tank.FetchBlob(registry, repo, m.Config.Digest, cache)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("config: %d bytes\n", len(config))
	for _, l := range m.Layers {
		f, err := os.Create(l.Digest[len("sha256:"):] + ".tar.gz")
		if err != nil {
			log.Fatal(err)
		}
		if _, err := tank.WriteBlob(f, registry, repo, l.Digest, cache); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
}

func ExampleError() {
	_, err := tank.FetchManifest("registry.example:5000", "org/app", "no-such-tag", nil)
	var terr *tank.Error
	switch {
	case errors.Is(err, tank.ErrNotFound):
		fmt.Println("no such tag")
	case errors.Is(err, tank.ErrDigestMismatch):
		fmt.Println("corrupt content")
	case errors.As(err, &terr):
		fmt.Println(terr.Status, terr.Reason, terr.HTTPStatus, terr.Message)
	}
}
