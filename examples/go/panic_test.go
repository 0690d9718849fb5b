package tank_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tank.example/tank"
)

// progressPanic is what the progress funcs below panic with: a value of
// its own type, so the test can tell it came back as it was.
type progressPanic struct{ call string }

// closeWithin fails the test unless cache.Close returns within limit: a
// call that leaked the cache's read lock makes Close wait forever.
func closeWithin(t *testing.T, cache *tank.Cache, limit time.Duration) {
	t.Helper()
	closed := make(chan struct{})
	go func() {
		cache.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(limit):
		t.Errorf("cache.Close did not return in %v: a call kept the cache locked", limit)
	}
}

// catchPanic runs call and turns a panic that escapes it into a test
// failure, so that the test goes on to check what the panic left behind.
func catchPanic(t *testing.T, call func() error) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("the panic escaped the call (through libtank's frames): %v", r)
			err = nil
		}
	}()
	return call()
}

func TestProgressPanicIsTheCallsError(t *testing.T) {
	img := rig.Info.Images.OCIImage
	layer := img.Layers[0]
	calls := map[string]func(cache *tank.Cache, progress func(done, total int64)) error{
		"FetchBlobToFile": func(cache *tank.Cache, progress func(done, total int64)) error {
			path := filepath.Join(t.TempDir(), "blob")
			return tank.FetchBlobToFile(context.Background(), rig.Info.Token.Registry, img.Repo, layer,
				img.BlobSizes[layer], path, cache, progress)
		},
		"Pull": func(cache *tank.Cache, progress func(done, total int64)) error {
			ref := rig.Info.Token.Registry + "/" + img.Repo + ":" + img.Tag
			_, err := tank.Pull(context.Background(), ref, t.TempDir(), &tank.PullOptions{Cache: cache, Progress: progress})
			return err
		},
		"Unpack": func(cache *tank.Cache, progress func(done, total int64)) error {
			layout, _ := handmadeLayout(t, "app:v1", gzipLayer(t, tarEntry{name: "f", body: "x"}))
			return tank.Unpack(context.Background(), layout, "app:v1", filepath.Join(t.TempDir(), "rootfs"),
				&tank.UnpackOptions{Progress: progress})
		},
	}
	for name, call := range calls {
		name, call := name, call
		t.Run(name, func(t *testing.T) {
			cache := tank.NewCache(0)
			reports := 0
			value := progressPanic{call: name}
			err := catchPanic(t, func() error {
				return call(cache, func(done, total int64) {
					reports++
					panic(value)
				})
			})
			if reports != 1 {
				t.Errorf("the progress func ran %d times; after its panic it must not run again", reports)
			}
			var pe *tank.PanicError
			if !errors.As(err, &pe) || pe.Value != value {
				t.Errorf("error %#v, want a *tank.PanicError with the value %v", err, value)
			}
			if err != nil && (!strings.Contains(err.Error(), "progress func panicked") ||
				!strings.Contains(err.Error(), fmt.Sprint(value))) {
				t.Errorf("error %q does not say the progress func panicked with %v", err, value)
			}
			if pe != nil && !strings.Contains(string(pe.Stack), "panic_test.go") {
				t.Errorf("the panic's stack does not name the progress func's file:\n%s", pe.Stack)
			}
			closeWithin(t, cache, time.Minute)
			// The process lives on and libtank still works.
			if _, err := tank.FetchManifest(rig.Info.Token.Registry, img.Repo, img.Tag, nil); err != nil {
				t.Errorf("a call after the panic: %v", err)
			}
		})
	}
}

// A panic with an error value unwraps to it, as errors.Is expects.
func TestProgressPanicErrorUnwrapsItsValue(t *testing.T) {
	img := rig.Info.Images.OCIImage
	layer := img.Layers[0]
	boom := errors.New("boom")
	err := catchPanic(t, func() error {
		return tank.FetchBlobToFile(context.Background(), rig.Info.Plain.Registry, img.Repo, layer,
			img.BlobSizes[layer], filepath.Join(t.TempDir(), "blob"), nil, func(done, total int64) { panic(boom) })
	})
	if !errors.Is(err, boom) {
		t.Errorf("error %v does not match the error the progress func panicked with", err)
	}
}
