package tank_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"tank.example/tank"
)

// fileDigest is "sha256:<hex>" of the file at path, read as a stream (the
// large layer is not held in memory).
func fileDigest(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// badConnections is a SetConnections call that must be refused, and what
// the refusal must say.
type badConnections struct {
	name             string
	perBlob, perHost int
	threshold        int64
	inMessage        string
}

func TestSetConnectionsRefusesBadValues(t *testing.T) {
	cases := []badConnections{
		// Refused by the binding: as unsigned C arguments these would be
		// other numbers (a threshold of -1 a huge one, taken).
		{"negative per blob", -1, 0, 0, "per_blob -1 is negative"},
		{"negative per host", 4, -16, 0, "per_host -16 is negative"},
		{"negative threshold", 0, 0, -1, "threshold -1 is negative"},
		// Refused by libtank, its reason passed on.
		{"per blob past 64", 65, 256, 0, "per_blob 65: at most 64"},
		{"per host past 256", 4, 257, 0, "per_host 257: at most 256"},
		{"per host below per blob", 8, 4, 0, "per_host 4 is below per_blob 8"},
		{"per host below the default per blob", 0, 2, 0, "per_host 2 is below per_blob 4"},
		{"per blob above the default per host", 20, 0, 0, "per_host 16 is below per_blob 20"},
	}
	if strconv.IntSize == 64 {
		// 2^32 + 4 would reach C as 4, and be taken. (A variable: as a
		// constant it would not compile where int is 32 bits.)
		wide := int64(1)<<32 + 4
		cases = append(cases, badConnections{"per blob past 32 bits", int(wide), 16, 0, "past 32 bits"})
	}
	cache := newCache(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			terr := wantTankError(t, cache.SetConnections(c.perBlob, c.perHost, c.threshold),
				tank.ErrBadInput, tank.ReasonBadInput, 0)
			if !strings.Contains(terr.Message, c.inMessage) {
				t.Errorf("message %q, want it to say %q", terr.Message, c.inMessage)
			}
		})
	}
	for _, ok := range [][3]int64{{0, 0, 0}, {1, 1, 1}, {64, 256, 1 << 62}, {16, 0, 0}, {0, 4, 0}} {
		mustSet(t, cache.SetConnections(int(ok[0]), int(ok[1]), ok[2]))
	}
	// A refused setting leaves the cache as usable as before.
	wantOCIImageBlob(t, rig.Info.Plain.Registry, cache)

	var nilCache *tank.Cache
	wantTankError(t, nilCache.SetConnections(4, 16, 0), tank.ErrBadInput, tank.ReasonBadInput, 0)
	closed := tank.NewCache(0)
	closed.Close()
	if err := closed.SetConnections(4, 16, 0); !errors.Is(err, tank.ErrCacheClosed) {
		t.Errorf("SetConnections on a closed cache: %v", err)
	}
}

// Whatever the settings, through the CDN (which honours Range), the large
// layer arrives whole and right: one connection, the default, several
// connections with a threshold below the layer's size, and the most
// connections with every blob over the threshold. (Whether it is faster is
// the benchmark's business, not this test's.)
func TestSetConnectionsKeepsPullsRight(t *testing.T) {
	img := rig.Info.Images.Large
	if img == nil {
		t.Fatalf("the rig has no large image: start it with --large-mib %s", largeMiB)
	}
	layer := img.Layers[0]
	size := img.BlobSizes[layer]
	registry := rig.Info.CDN.Registry
	for _, s := range []struct {
		perBlob, perHost int
		threshold        int64
	}{{1, 0, 0}, {0, 0, 0}, {4, 16, 8 << 20}, {64, 256, 1}} {
		t.Run(fmt.Sprintf("%d per blob, %d per host, threshold %d", s.perBlob, s.perHost, s.threshold), func(t *testing.T) {
			cache := newCache(t)
			mustSet(t, cache.SetConnections(s.perBlob, s.perHost, s.threshold))
			dir := t.TempDir()

			path := filepath.Join(dir, "layer")
			if err := tank.FetchBlobToFile(context.Background(), registry, img.Repo, layer, size, path, cache, nil); err != nil {
				t.Fatalf("FetchBlobToFile: %v", err)
			}
			if got := fileDigest(t, path); got != layer {
				t.Errorf("FetchBlobToFile wrote bytes hashing to %s, want %s", got, layer)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}

			layout := filepath.Join(dir, "layout")
			m, err := tank.Pull(context.Background(), registry+"/"+img.Repo+":"+img.Tag, layout, &tank.PullOptions{Cache: cache})
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			if m.Digest != img.Digest {
				t.Errorf("Pull gave manifest %s, want %s", m.Digest, img.Digest)
			}
			for _, d := range append([]string{img.Config}, img.Layers...) {
				p := blobPath(layout, d)
				if got := fileDigest(t, p); got != d {
					t.Errorf("Pull wrote %s hashing to %s", p, got)
				}
				if st, err := os.Stat(p); err != nil || st.Size() != img.BlobSizes[d] {
					t.Errorf("Pull wrote %s: %v, want %d bytes", p, err, img.BlobSizes[d])
				}
			}
		})
	}
}

// blobConnections is the TCP connections the CDN saw requests for digest on
// since the last rig.Clear.
func blobConnections(t *testing.T, digest string) map[string]bool {
	t.Helper()
	reqs, err := rig.CDNRequests()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		if strings.Contains(r.Path, strings.TrimPrefix(digest, "sha256:")) && r.Connection != nil {
			seen[*r.Connection] = true
		}
	}
	return seen
}

// The settings reach the download: one connection per blob is one TCP
// connection to the CDN for the whole layer, and four are more. (The
// counts come from the rig's CDN log; nothing here is timed.)
func TestSetConnectionsReachTheDownload(t *testing.T) {
	img := rig.Info.Images.Large
	if img == nil {
		t.Fatalf("the rig has no large image: start it with --large-mib %s", largeMiB)
	}
	layer := img.Layers[0]
	for _, s := range []struct {
		perBlob     int
		connections func(n int) bool
		want        string
	}{
		{1, func(n int) bool { return n == 1 }, "exactly 1"},
		// Not at most 4: that bounds connections at once, and the first
		// request's connection may give way to a fresh one.
		{4, func(n int) bool { return n > 1 }, "more than 1"},
	} {
		t.Run(fmt.Sprintf("%d per blob", s.perBlob), func(t *testing.T) {
			cache := newCache(t)
			mustSet(t, cache.SetConnections(s.perBlob, 16, 8<<20))
			if err := rig.Clear(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "layer")
			err := tank.FetchBlobToFile(context.Background(), rig.Info.CDN.Registry, img.Repo, layer,
				img.BlobSizes[layer], path, cache, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(blobConnections(t, layer)); !s.connections(n) {
				t.Errorf("the CDN saw the %d-byte layer over %d connections, want %s",
					img.BlobSizes[layer], n, s.want)
			}
		})
	}
}
