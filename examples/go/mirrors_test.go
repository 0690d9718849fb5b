package tank_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tank.example/tank"
)

// closedAddr is "127.0.0.1:port" of a port nothing listens on: a mirror
// or registry that is down (connection refused).
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// silentListener is a registry address that must see no connection: it
// fails the test at cleanup if one was made.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer ln.Close()
		// Every call is synchronous, so a connection it made is queued
		// by now: accepting with a deadline already past finds it.
		ln.(*net.TCPListener).SetDeadline(time.Now())
		if c, err := ln.Accept(); err == nil {
			c.Close()
			t.Errorf("%s was connected to", ln.Addr())
		}
	})
	return ln.Addr().String()
}

// notFoundOrigin is a registry (or mirror) that answers 404 to
// everything, and counts what it was asked.
type notFoundOrigin struct {
	*httptest.Server
	asked atomic.Int64
}

func newNotFoundOrigin(t *testing.T) *notFoundOrigin {
	t.Helper()
	o := &notFoundOrigin{}
	o.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.asked.Add(1)
		http.NotFound(w, r)
	}))
	// Started once o is whole: the requests come from libtank's threads,
	// which the race detector cannot see order anything.
	o.Start()
	t.Cleanup(o.Close)
	return o
}

func (o *notFoundOrigin) addr() string { return strings.TrimPrefix(o.URL, "http://") }

func wantOCIImage(t *testing.T, registry string, cache *tank.Cache, ref string) {
	t.Helper()
	img := rig.Info.Images.OCIImage
	m, err := tank.FetchManifest(registry, img.Repo, ref, cache)
	if err != nil {
		t.Fatalf("manifest %s from %s: %v", ref, registry, err)
	}
	checkImage(t, m, img.Digest, img.MediaType, img.Size, img.Config, img.Layers, img.BlobSizes)
}

func wantOCIImageBlob(t *testing.T, registry string, cache *tank.Cache) {
	t.Helper()
	img := rig.Info.Images.OCIImage
	b, err := tank.FetchBlobSized(registry, img.Repo, img.Layers[0], img.BlobSizes[img.Layers[0]], cache)
	if err != nil || sha256Digest(b) != img.Layers[0] {
		t.Fatalf("layer from %s: %v", registry, err)
	}
}

// A source that is down costs its connect retries (seconds) once per
// call, so the tests keep those calls few; a registry that answers 404
// stands in for one that cannot serve wherever that shows as much.
func TestAddMirror(t *testing.T) {
	plain := rig.Info.Plain.Registry
	img := rig.Info.Images.OCIImage

	t.Run("the mirror serves what the registry has not", func(t *testing.T) {
		registry := newNotFoundOrigin(t)
		cache := newCache(t)
		mustSet(t, cache.AddMirror(registry.addr(), plain, tank.MirrorPull|tank.MirrorResolve))
		wantOCIImage(t, registry.addr(), cache, img.Tag)
		wantOCIImageBlob(t, registry.addr(), cache)
		if n := registry.asked.Load(); n != 0 {
			t.Errorf("the registry was asked %d times; its mirror had everything", n)
		}
		_, err := tank.FetchManifest(registry.addr(), img.Repo, img.Tag, newCache(t))
		wantTankError(t, err, tank.ErrNotFound, tank.ReasonHTTPStatus, 404)
	})

	t.Run("a mirror that is down falls back to the registry", func(t *testing.T) {
		cache := newCache(t)
		mustSet(t, cache.AddMirror(plain, closedAddr(t), tank.MirrorPull|tank.MirrorResolve))
		wantOCIImage(t, plain, cache, img.Tag)
		layout := filepath.Join(t.TempDir(), "layout")
		m, err := tank.Pull(context.Background(), plain+"/"+img.Repo+":"+img.Tag, layout, &tank.PullOptions{Cache: cache})
		if err != nil || m.Digest != img.Digest {
			t.Fatalf("pull: %v", err)
		}
	})

	t.Run("a mirror that answers 404 falls back to the registry, in order", func(t *testing.T) {
		first, second := newNotFoundOrigin(t), newNotFoundOrigin(t)
		cache := newCache(t)
		mustSet(t, cache.AddMirror(plain, first.addr(), tank.MirrorPull|tank.MirrorResolve))
		mustSet(t, cache.AddMirror(plain, second.addr(), tank.MirrorResolve))
		wantOCIImage(t, plain, cache, img.Tag)
		if first.asked.Load() == 0 || second.asked.Load() == 0 {
			t.Errorf("mirrors asked %d and %d times, want both asked", first.asked.Load(), second.asked.Load())
		}
		// By digest, the resolve-only mirror is not asked.
		before := second.asked.Load()
		wantOCIImageBlob(t, plain, cache)
		if second.asked.Load() != before {
			t.Errorf("a resolve-only mirror was asked for a blob")
		}
	})

	t.Run("a pull-only mirror is not asked for tags", func(t *testing.T) {
		registry := newNotFoundOrigin(t)
		cache := newCache(t)
		mustSet(t, cache.AddMirror(registry.addr(), plain, tank.MirrorPull))
		wantOCIImage(t, registry.addr(), cache, img.Digest)
		_, err := tank.FetchManifest(registry.addr(), img.Repo, img.Tag, cache)
		wantTankError(t, err, tank.ErrNotFound, tank.ReasonHTTPStatus, 404)
	})

	t.Run("bad input", func(t *testing.T) {
		cache := newCache(t)
		for _, c := range []struct {
			name, registry, mirror string
			caps                   tank.MirrorCapability
			inMessage              string
		}{
			{"no capability", plain, plain, 0, "capabilities"},
			{"unknown capability", plain, plain, tank.MirrorPull | 4, "capabilities"},
			{"plain http to a remote host", "docker.io", "http://mirror.example", tank.MirrorPull, "mirror"},
			{"empty mirror", "docker.io", "", tank.MirrorPull, "mirror"},
			{"empty registry", "", plain, tank.MirrorPull, "registry"},
			{"NUL in mirror", "docker.io", "mirror.example\x00x", tank.MirrorPull, "mirror"},
		} {
			t.Run(c.name, func(t *testing.T) {
				terr := wantTankError(t, cache.AddMirror(c.registry, c.mirror, c.caps),
					tank.ErrBadInput, tank.ReasonBadInput, 0)
				if !strings.Contains(terr.Message, c.inMessage) {
					t.Errorf("message %q does not name %s", terr.Message, c.inMessage)
				}
			})
		}
		// A rejected mirror is not kept: the registry alone still works.
		wantOCIImage(t, plain, cache, img.Tag)
		var nilCache *tank.Cache
		wantTankError(t, nilCache.AddMirror(plain, plain, tank.MirrorPull), tank.ErrBadInput, tank.ReasonBadInput, 0)
		closed := tank.NewCache(0)
		closed.Close()
		if err := closed.AddMirror(plain, plain, tank.MirrorPull); !errors.Is(err, tank.ErrCacheClosed) {
			t.Errorf("AddMirror on a closed cache: %v", err)
		}
	})
}

func TestLoadRegistriesConf(t *testing.T) {
	plain := rig.Info.Plain.Registry
	img := rig.Info.Images.OCIImage

	t.Run("a mirror of a registry that is down (never asked: the mirror has it)", func(t *testing.T) {
		down := closedAddr(t)
		conf := writeFile(t, "registries.conf", fmt.Sprintf(`
[[registry]]
location = %q

[[registry.mirror]]
location = %q
`, down, plain))
		cache := newCache(t)
		mustSet(t, cache.LoadRegistriesConf(conf))
		wantOCIImage(t, down, cache, img.Tag)
		wantOCIImageBlob(t, down, cache)
	})

	t.Run("a prefix whose location is another registry", func(t *testing.T) {
		conf := writeFile(t, "registries.conf", fmt.Sprintf(`
[[registry]]
prefix = "tank-conf.invalid/mirrored"
location = %q
`, plain+"/"+strings.SplitN(img.Repo, "/", 2)[0]))
		cache := newCache(t)
		mustSet(t, cache.LoadRegistriesConf(conf))
		m, err := tank.FetchManifest("tank-conf.invalid", "mirrored/"+strings.SplitN(img.Repo, "/", 2)[1], img.Digest, cache)
		if err != nil {
			t.Fatal(err)
		}
		if m.Digest != img.Digest {
			t.Errorf("digest %s, want %s", m.Digest, img.Digest)
		}
	})

	t.Run("blocked, then replaced by a later load", func(t *testing.T) {
		quiet := silentListener(t)
		conf := writeFile(t, "registries.conf", fmt.Sprintf(`
[[registry]]
location = %q
blocked = true
`, quiet))
		cache := newCache(t)
		mustSet(t, cache.LoadRegistriesConf(conf))
		_, err := tank.FetchManifest(quiet, img.Repo, img.Tag, cache)
		wantTankError(t, err, tank.ErrBadInput, tank.ReasonBlocked, 0)

		blockedPlain := writeFile(t, "registries.conf", fmt.Sprintf("[[registry]]\nlocation = %q\nblocked = true\n", plain))
		mustSet(t, cache.LoadRegistriesConf(blockedPlain))
		_, err = tank.FetchManifest(plain, img.Repo, img.Tag, cache)
		wantTankError(t, err, tank.ErrBadInput, tank.ReasonBlocked, 0)
		mustSet(t, cache.LoadRegistriesConf(writeFile(t, "registries.conf", "")))
		wantOCIImage(t, plain, cache, img.Tag)
	})

	t.Run("a malformed file names the file and the line", func(t *testing.T) {
		conf := writeFile(t, "registries.conf", "[[registry]]\nlocation = \"example.com\"\nblocked = \"yes\"\n")
		cache := newCache(t)
		terr := wantTankError(t, cache.LoadRegistriesConf(conf), tank.ErrBadInput, tank.ReasonRegistriesConf, 0)
		if !strings.Contains(terr.Message, conf+":3") {
			t.Errorf("message %q does not name %s:3", terr.Message, conf)
		}
		// Nothing of it is kept.
		wantOCIImage(t, plain, cache, img.Tag)
	})

	t.Run("a missing named file", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nowhere.conf")
		terr := wantTankError(t, newCache(t).LoadRegistriesConf(missing), tank.ErrBadInput, tank.ReasonRegistriesConf, 0)
		if !strings.Contains(terr.Message, missing) {
			t.Errorf("message %q does not name %s", terr.Message, missing)
		}
	})

	t.Run("empty path is the default search, not a file named empty", func(t *testing.T) {
		// $HOME's file comes first in the search: a missing one is no error.
		t.Setenv("HOME", t.TempDir())
		cache := newCache(t)
		if err := cache.LoadRegistriesConf(""); err != nil {
			t.Fatalf("default search: %v", err)
		}
		wantOCIImage(t, plain, cache, img.Tag)
	})

	t.Run("bad input", func(t *testing.T) {
		wantTankError(t, newCache(t).LoadRegistriesConf("a\x00b"), tank.ErrBadInput, tank.ReasonBadInput, 0)
		var nilCache *tank.Cache
		wantTankError(t, nilCache.LoadRegistriesConf(""), tank.ErrBadInput, tank.ReasonBadInput, 0)
	})
}
