package tank_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"tank.example/tank"
)

// fileSizes maps every regular file under dir to its size.
func fileSizes(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	sizes := map[string]int64{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		sizes[path] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sizes
}

// When a call returns, libtank has stopped touching its files: a caller
// may delete, move or inspect them, or exit, at once. Cancelled in the
// middle of a large layer, FetchBlobToFile's partial file and Pull's
// ingest files must not change after the return (grow, or lose their lock
// file).
func TestCancelledCallsLeaveTheirFilesAsTheyAreAtReturn(t *testing.T) {
	img := rig.Info.Images.Large
	if img == nil {
		t.Fatalf("the rig has no large image: start it with --large-mib %s", largeMiB)
	}
	layer := img.Layers[0]
	size := img.BlobSizes[layer]
	calls := map[string]func(ctx context.Context, dir string, progress func(done, total int64)) error{
		"FetchBlobToFile": func(ctx context.Context, dir string, progress func(done, total int64)) error {
			return tank.FetchBlobToFile(ctx, rig.Info.Plain.Registry, img.Repo, layer, size,
				filepath.Join(dir, "blob"), nil, progress)
		},
		"Pull": func(ctx context.Context, dir string, progress func(done, total int64)) error {
			ref := rig.Info.Plain.Registry + "/" + img.Repo + ":" + img.Tag
			_, err := tank.Pull(ctx, ref, dir, &tank.PullOptions{Progress: progress})
			return err
		},
	}
	for name, call := range calls {
		call := call
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cancelledAt := int64(-1)
			err := call(ctx, dir, func(done, total int64) {
				if done > 0 && cancelledAt < 0 {
					cancelledAt = done
					cancel()
				}
			})
			atReturn := fileSizes(t, dir)
			if !errors.Is(err, tank.ErrCancelled) {
				t.Fatalf("cancelled at %d bytes of a %d-byte layer, the call returned %v", cancelledAt, size, err)
			}
			if cancelledAt <= 0 || cancelledAt >= size {
				t.Fatalf("cancelled at %d bytes of %d: not in the middle of the layer", cancelledAt, size)
			}
			// Nothing should happen from here on; 300 ms is far longer
			// than a writer draining its queue takes.
			time.Sleep(300 * time.Millisecond)
			if later := fileSizes(t, dir); !reflect.DeepEqual(atReturn, later) {
				t.Errorf("files at return %v, 300 ms later %v: libtank changed them after the call returned", atReturn, later)
			}
		})
	}
}
