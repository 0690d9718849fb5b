package tank_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"tank.example/tank"
)

func TestFetchBlobToFile(t *testing.T) {
	img := rig.Info.Images.OCIImage
	for regName, reg := range registries(t) {
		t.Run(regName, func(t *testing.T) {
			dir := t.TempDir()
			for i, digest := range append([]string{img.Config}, img.Layers...) {
				size := img.BlobSizes[digest]
				given := size
				if i == 0 {
					given = -1 // unknown
				}
				path := filepath.Join(dir, digest[len("sha256:"):])
				var reports [][2]int64
				err := tank.FetchBlobToFile(context.Background(), reg.addr, img.Repo, digest, given, path, reg.cache,
					func(done, total int64) { reports = append(reports, [2]int64{done, total}) })
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(path)
				if err != nil || sha256Digest(b) != digest {
					t.Fatalf("%s: %v, %d bytes hashing to %s", digest, err, len(b), sha256Digest(b))
				}
				if len(reports) == 0 || reports[len(reports)-1] != [2]int64{size, size} {
					t.Errorf("%s: progress %v, want a last (%d, %d)", digest, reports, size, size)
				}
				// Already there: nothing to do, one final report.
				reports = nil
				if err := tank.FetchBlobToFile(context.Background(), reg.addr, img.Repo, digest, given, path, reg.cache,
					func(done, total int64) { reports = append(reports, [2]int64{done, total}) }); err != nil {
					t.Fatal(err)
				}
				if len(reports) != 1 {
					t.Errorf("%s: second call reported %v", digest, reports)
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			sort.Strings(names)
			if len(names) != 1+len(img.Layers) {
				t.Errorf("files left: %v", names)
			}
		})
	}
}

func TestFetchBlobToFileErrors(t *testing.T) {
	img := rig.Info.Images.OCIImage
	layer := img.Layers[0]
	missing := filepath.Join(t.TempDir(), "no-such-dir", "blob")
	err := tank.FetchBlobToFile(context.Background(), rig.Info.Plain.Registry, img.Repo, layer, -1, missing, nil, nil)
	var te *tank.Error
	if !errors.Is(err, tank.ErrIO) || !errors.As(err, &te) || te.Status != tank.StatusIO || te.Reason != "io" {
		t.Fatalf("missing directory: %v", err)
	}
	if err := tank.FetchBlobToFile(context.Background(), rig.Info.Plain.Registry, img.Repo, layer, -1, "", nil, nil); !errors.Is(err, tank.ErrBadInput) {
		t.Fatalf("empty path: %v", err)
	}
	if err := tank.FetchBlobToFile(context.Background(), rig.Info.Plain.Registry, img.Repo, layer, -1, "a\x00b", nil, nil); !errors.Is(err, tank.ErrBadInput) {
		t.Fatalf("NUL in path: %v", err)
	}
}

// stalled accepts connections and never answers them.
func stalled(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			select {
			case <-done:
				c.Close()
				return
			default:
				conns = append(conns, c)
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		l.Close()
	})
	return l.Addr().String()
}

func TestContextEndsCallsWithinHalfASecond(t *testing.T) {
	addr := stalled(t)
	digest := sha256Digest([]byte("x"))
	calls := map[string]func(ctx context.Context) error{
		"manifest": func(ctx context.Context) error {
			_, err := tank.FetchManifestContext(ctx, addr, "a/b", "v1", nil)
			return err
		},
		"blob": func(ctx context.Context) error {
			_, err := tank.FetchBlobContext(ctx, addr, "a/b", digest, nil)
			return err
		},
		"blob sized": func(ctx context.Context) error {
			_, err := tank.FetchBlobSizedContext(ctx, addr, "a/b", digest, 1, nil)
			return err
		},
		"to file": func(ctx context.Context) error {
			return tank.FetchBlobToFile(ctx, addr, "a/b", digest, -1, filepath.Join(t.TempDir(), "blob"), nil, nil)
		},
	}
	for name, call := range calls {
		call := call
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			started := time.Now()
			err := call(ctx)
			took := time.Since(started)
			if !errors.Is(err, tank.ErrCancelled) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("deadline: %v", err)
			}
			if took > 200*time.Millisecond+500*time.Millisecond {
				t.Errorf("the call took %v after a 200ms deadline", took)
			}
			gone, stop := context.WithCancel(context.Background())
			stop()
			if err := call(gone); !errors.Is(err, tank.ErrCancelled) || !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled before the call: %v", err)
			}
		})
	}
}
