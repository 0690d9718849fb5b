package tank_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"tank.example/tank"
	"tank.example/tank/internal/rigtest"
)

// Media types of the layouts the tests write by hand.
const (
	ociManifest  = "application/vnd.oci.image.manifest.v1+json"
	ociIndex     = "application/vnd.oci.image.index.v1+json"
	ociConfig    = "application/vnd.oci.image.config.v1+json"
	ociLayerTar  = "application/vnd.oci.image.layer.v1.tar"
	ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
	refNameKey   = "org.opencontainers.image.ref.name"
)

// tarEntry is one entry of a tar made by hand; the zero typ is a regular
// file and the zero mode 0644.
type tarEntry struct {
	name     string
	typ      byte
	body     string
	mode     int64
	uid, gid int
	link     string
}

// makeTar writes entries as they are: archive/tar's writer, unlike its
// reader, takes names such as "../escape".
func makeTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Linkname: e.link, ModTime: time.Unix(1700000000, 0),
		}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := w.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if _, err := io.WriteString(w, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// layer is a layer blob with the diff_id its config gives it.
type layer struct {
	mediaType string
	blob      []byte
	diffID    string
}

// gzipLayer is a tar+gzip layer of entries with its right diff_id.
func gzipLayer(t *testing.T, entries ...tarEntry) layer {
	t.Helper()
	raw := makeTar(t, entries...)
	return layer{mediaType: ociLayerGzip, blob: gzipBytes(t, raw), diffID: sha256Digest(raw)}
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// blobPath is where a layout keeps the blob digest.
func blobPath(layout, digest string) string {
	return filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

func writeBlob(t *testing.T, layout, mediaType string, b []byte) descriptor {
	t.Helper()
	d := descriptor{MediaType: mediaType, Digest: sha256Digest(b), Size: int64(len(b))}
	if err := os.MkdirAll(filepath.Join(layout, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blobPath(layout, d.Digest), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func writeJSONBlob(t *testing.T, layout, mediaType string, v interface{}) descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return writeBlob(t, layout, mediaType, b)
}

// writeImage writes the layers, their config and the image manifest into
// layout's blobs and returns the manifest's descriptor.
func writeImage(t *testing.T, layout string, layers ...layer) descriptor {
	t.Helper()
	diffIDs := []string{}
	descs := []descriptor{}
	for _, l := range layers {
		descs = append(descs, writeBlob(t, layout, l.mediaType, l.blob))
		diffIDs = append(diffIDs, l.diffID)
	}
	config := writeJSONBlob(t, layout, ociConfig, map[string]interface{}{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"rootfs":       map[string]interface{}{"type": "layers", "diff_ids": diffIDs},
	})
	return writeJSONBlob(t, layout, ociManifest, map[string]interface{}{
		"schemaVersion": 2,
		"mediaType":     ociManifest,
		"config":        config,
		"layers":        descs,
	})
}

// writeIndexJSON writes layout's oci-layout and an index.json of the
// entries given, by name.
func writeIndexJSON(t *testing.T, layout string, entries map[string]descriptor) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(layout, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	sort.Strings(names)
	manifests := []descriptor{}
	for _, name := range names {
		d := entries[name]
		d.Annotations = map[string]string{refNameKey: name}
		manifests = append(manifests, d)
	}
	b, err := json.Marshal(map[string]interface{}{"schemaVersion": 2, "mediaType": ociIndex, "manifests": manifests})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(layout, "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// handmadeLayout is a new OCI layout holding one image of layers under
// name, and that image's manifest descriptor.
func handmadeLayout(t *testing.T, name string, layers ...layer) (string, descriptor) {
	t.Helper()
	layout := t.TempDir()
	m := writeImage(t, layout, layers...)
	writeIndexJSON(t, layout, map[string]descriptor{name: m})
	return layout, m
}

// rootfsIn is a rootfs path alone in a new directory, so that anything an
// unpack leaves beside it (a temporary tree, an entry that escaped) shows.
func rootfsIn(t *testing.T) (dir, rootfs string) {
	dir = t.TempDir()
	return dir, filepath.Join(dir, "rootfs")
}

// names lists dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// wantOnly fails unless dir holds exactly want (by name).
func wantOnly(t *testing.T, dir string, want ...string) {
	t.Helper()
	got := names(t, dir)
	sort.Strings(want)
	if want == nil {
		want = []string{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

// tree is what a rootfs holds: regular files by path (content),
// directories by path, and the permission bits of both.
type tree struct {
	files map[string]string
	dirs  map[string]bool
	modes map[string]os.FileMode
}

func newTree() tree {
	return tree{files: map[string]string{}, dirs: map[string]bool{}, modes: map[string]os.FileMode{}}
}

// permBits are the mode bits an unpack keeps.
const permBits = os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky

// readTree reads rootfs, failing on anything but regular files and
// directories (the rig's images have nothing else).
func readTree(t *testing.T, rootfs string) tree {
	t.Helper()
	got := newTree()
	err := filepath.Walk(rootfs, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(rootfs, p)
		if err != nil || rel == "." {
			return err
		}
		got.modes[rel] = info.Mode() & permBits
		switch {
		case info.IsDir():
			got.dirs[rel] = true
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got.files[rel] = string(b)
		default:
			t.Errorf("%s: unexpected %v", rel, info.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// layerReader opens a layer blob of layout as the tar it holds.
func layerReader(t *testing.T, layout string, d tank.Descriptor) io.Reader {
	t.Helper()
	b, err := os.ReadFile(blobPath(layout, d.Digest))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.HasSuffix(d.MediaType, "gzip"):
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("layer %s: %v", d.Digest, err)
		}
		return r
	case strings.HasSuffix(d.MediaType, ".tar") || strings.HasSuffix(d.MediaType, "diff.tar"):
		return bytes.NewReader(b)
	}
	t.Fatalf("layer %s: media type %s is not one these tests read", d.Digest, d.MediaType)
	return nil
}

// wantTree is what unpacking m's layers gives, worked out here from the
// tars: files and directories in order, and ".wh." whiteouts removing
// what the layers below put at their name (the rig's images have no
// opaque directories or links).
func wantTree(t *testing.T, layout string, m *tank.Manifest) tree {
	t.Helper()
	want := newTree()
	remove := func(p string) {
		delete(want.files, p)
		delete(want.dirs, p)
		delete(want.modes, p)
		for k := range want.modes {
			if strings.HasPrefix(k, p+"/") {
				delete(want.files, k)
				delete(want.dirs, k)
				delete(want.modes, k)
			}
		}
	}
	for _, l := range m.Layers {
		r := tar.NewReader(layerReader(t, layout, l))
		for {
			h, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", l.Digest, err)
			}
			name := path.Clean(strings.TrimPrefix(h.Name, "./"))
			dir, base := path.Split(name)
			if strings.HasPrefix(base, ".wh.") {
				if base == ".wh..wh..opq" {
					t.Fatalf("layer %s: an opaque directory, which wantTree does not handle", l.Digest)
				}
				remove(path.Join(dir, strings.TrimPrefix(base, ".wh.")))
				continue
			}
			want.modes[name] = h.FileInfo().Mode() & permBits
			switch h.Typeflag {
			case tar.TypeDir:
				want.dirs[name] = true
			case tar.TypeReg:
				b, err := io.ReadAll(r)
				if err != nil {
					t.Fatal(err)
				}
				want.files[name] = string(b)
			default:
				t.Fatalf("layer %s: entry %s of type %c, which wantTree does not handle", l.Digest, name, h.Typeflag)
			}
		}
	}
	return want
}

// checkTree wants rootfs to be what m's layers in layout make.
func checkTree(t *testing.T, layout string, m *tank.Manifest, rootfs string) {
	t.Helper()
	want, got := wantTree(t, layout, m), readTree(t, rootfs)
	if len(want.files) == 0 {
		t.Fatalf("the image has no files: nothing to check")
	}
	if !reflect.DeepEqual(got.dirs, want.dirs) {
		t.Errorf("directories %v, want %v", got.dirs, want.dirs)
	}
	if !reflect.DeepEqual(got.modes, want.modes) {
		t.Errorf("modes %v, want %v", got.modes, want.modes)
	}
	for p, content := range want.files {
		if c, ok := got.files[p]; !ok {
			t.Errorf("%s missing", p)
		} else if c != content {
			t.Errorf("%s: %d bytes that differ from the layer's %d", p, len(c), len(content))
		}
	}
	for p := range got.files {
		if _, ok := want.files[p]; !ok {
			t.Errorf("%s should not be there", p)
		}
	}
}

// layerBytes is the sum of m's layer sizes: Unpack's progress total.
func layerBytes(m *tank.Manifest) int64 {
	var total int64
	for _, l := range m.Layers {
		total += l.Size
	}
	return total
}

// pulled is an image of the rig pulled into a new layout: what Unpack
// starts from.
func pulled(t *testing.T, img rigtest.Image) (layout, ref string, m *tank.Manifest) {
	t.Helper()
	layout = t.TempDir()
	ref = rig.Info.Plain.Registry + "/" + img.Repo + ":" + img.Tag
	m, err := tank.Pull(context.Background(), ref, layout, nil)
	if err != nil {
		t.Fatal(err)
	}
	return layout, ref, m
}

func rigImages() map[string]rigtest.Image {
	return map[string]rigtest.Image{"oci": rig.Info.Images.OCIImage, "docker": rig.Info.Images.DockerImage}
}

func TestUnpack(t *testing.T) {
	for name, img := range rigImages() {
		img := img
		t.Run(name, func(t *testing.T) {
			layout, ref, m := pulled(t, img)
			dir, rootfs := rootfsIn(t)
			progress := newProgressLog()
			if err := tank.Unpack(context.Background(), layout, ref, rootfs, &tank.UnpackOptions{Progress: progress.report}); err != nil {
				t.Fatal(err)
			}
			checkTree(t, layout, m, rootfs)
			progress.check(t, layerBytes(m))
			wantOnly(t, dir, "rootfs")
		})
	}
	// The rig's OCI image has a whiteout: bulk.bin of the layers below is
	// gone, data.bin of the last layer is there.
	layout, ref, _ := pulled(t, rig.Info.Images.OCIImage)
	_, rootfs := rootfsIn(t)
	if err := tank.Unpack(context.Background(), layout, ref, rootfs, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(rootfs, "usr/share/tank/bulk.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("whited-out usr/share/tank/bulk.bin: %v", err)
	}
	if info, err := os.Stat(filepath.Join(rootfs, "opt/tank/data.bin")); err != nil || info.Size() != 300*1024 {
		t.Errorf("opt/tank/data.bin: %v, %v", info, err)
	}
}

// An image is named by its index.json name, a reference that normalizes
// to it, or its manifest's digest.
func TestUnpackImageNames(t *testing.T) {
	l := gzipLayer(t, tarEntry{name: "etc/os-release", body: "ID=handmade\n"})
	layout, m := handmadeLayout(t, "docker.io/library/alpine:latest", l)
	for _, image := range []string{"docker.io/library/alpine:latest", "alpine", "docker.io/alpine:latest", m.Digest} {
		_, rootfs := rootfsIn(t)
		if err := tank.Unpack(context.Background(), layout, image, rootfs, nil); err != nil {
			t.Errorf("Unpack %q: %v", image, err)
			continue
		}
		if b, err := os.ReadFile(filepath.Join(rootfs, "etc/os-release")); err != nil || string(b) != "ID=handmade\n" {
			t.Errorf("Unpack %q: etc/os-release %q, %v", image, b, err)
		}
	}
}

func TestPullRootfs(t *testing.T) {
	for name, img := range rigImages() {
		img := img
		t.Run(name, func(t *testing.T) {
			layout := t.TempDir()
			dir, rootfs := rootfsIn(t)
			ref := rig.Info.Token.Registry + "/" + img.Repo + ":" + img.Tag
			cache := tank.NewCache(time.Minute)
			defer cache.Close()
			progress := newProgressLog()
			m, err := tank.Pull(context.Background(), ref, layout, &tank.PullOptions{
				Cache: cache, Jobs: 2, Progress: progress.report, Rootfs: rootfs,
			})
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, m, img.Digest, img.MediaType, img.Size, img.Config, img.Layers, img.BlobSizes)
			checkTree(t, layout, m, rootfs)
			wantOnly(t, dir, "rootfs")
			// Each blob byte counts once downloaded and once applied.
			var blobs int64
			for _, d := range append([]string{img.Config}, img.Layers...) {
				blobs += img.BlobSizes[d]
			}
			progress.check(t, 2*blobs)
			// The layout has the image under its name (a Docker
			// manifest is written as the OCI one it converts to).
			got := readLayoutIndex(t, layout)
			if len(got.Manifests) != 1 || got.Manifests[0].Annotations[refNameKey] != ref {
				t.Errorf("index.json %+v, want one entry, for %s", got.Manifests, ref)
			}
		})
	}
}

// A rootfs that exists is refused unless the call may replace it; then the
// new tree takes its place whole and the old one is gone.
func TestUnpackReplace(t *testing.T) {
	oldLayout, _ := handmadeLayout(t, "old:v1", gzipLayer(t, tarEntry{name: "old-only", body: "old\n"}, tarEntry{name: "both", body: "old\n"}))
	newLayout, _ := handmadeLayout(t, "new:v1", gzipLayer(t, tarEntry{name: "both", body: "new\n"}))
	wantFiles := func(rootfs string, want map[string]string) {
		t.Helper()
		if got := readTree(t, rootfs).files; !reflect.DeepEqual(got, want) {
			t.Errorf("%s holds %v, want %v", rootfs, got, want)
		}
	}
	old := map[string]string{"old-only": "old\n", "both": "old\n"}

	t.Run("Unpack", func(t *testing.T) {
		dir, rootfs := rootfsIn(t)
		if err := tank.Unpack(context.Background(), oldLayout, "old:v1", rootfs, nil); err != nil {
			t.Fatal(err)
		}
		err := tank.Unpack(context.Background(), newLayout, "new:v1", rootfs, nil)
		var terr *tank.Error
		if !errors.Is(err, tank.ErrIO) || !errors.As(err, &terr) || !strings.Contains(terr.Message, rootfs) {
			t.Fatalf("unpack over an existing rootfs: %v, want ErrIO naming %s", err, rootfs)
		}
		wantFiles(rootfs, old)
		wantOnly(t, dir, "rootfs")
		if err := tank.Unpack(context.Background(), newLayout, "new:v1", rootfs, &tank.UnpackOptions{Replace: true}); err != nil {
			t.Fatal(err)
		}
		wantFiles(rootfs, map[string]string{"both": "new\n"})
		wantOnly(t, dir, "rootfs")
	})
	t.Run("Pull", func(t *testing.T) {
		img := rig.Info.Images.DockerImage
		ref := rig.Info.Plain.Registry + "/" + img.Repo + ":" + img.Tag
		dir, rootfs := rootfsIn(t)
		if err := tank.Unpack(context.Background(), oldLayout, "old:v1", rootfs, nil); err != nil {
			t.Fatal(err)
		}
		layout := t.TempDir()
		_, err := tank.Pull(context.Background(), ref, layout, &tank.PullOptions{Rootfs: rootfs})
		if !errors.Is(err, tank.ErrIO) {
			t.Fatalf("pull over an existing rootfs: %v, want ErrIO", err)
		}
		wantFiles(rootfs, old)
		m, err := tank.Pull(context.Background(), ref, layout, &tank.PullOptions{Rootfs: rootfs, ReplaceRootfs: true})
		if err != nil {
			t.Fatal(err)
		}
		checkTree(t, layout, m, rootfs)
		wantOnly(t, dir, "rootfs")
	})
}

// Layers that cannot be applied: each fails with its own reason (or the
// digest mismatch), and nothing is left at rootfs or beside it.
func TestUnpackLayerErrors(t *testing.T) {
	good := makeTar(t, tarEntry{name: "etc/hostname", body: "tank\n"})
	cases := []struct {
		name   string
		layers func(t *testing.T) []layer
		// spoil, when not nil, changes the layout after it was written.
		spoil   func(t *testing.T, layout string, m descriptor)
		want    error
		reason  string
		message string
	}{
		{
			name: "entry that climbs out",
			layers: func(t *testing.T) []layer {
				return []layer{gzipLayer(t, tarEntry{name: "etc/hostname", body: "tank\n"}, tarEntry{name: "../escape", body: "out\n"})}
			},
			want: tank.ErrLayer, reason: tank.ReasonUnsafePath, message: "escape",
		},
		{
			name: "hard link to a file outside",
			layers: func(t *testing.T) []layer {
				return []layer{gzipLayer(t, tarEntry{name: "passwd", typ: tar.TypeLink, link: "../../../../etc/passwd"})}
			},
			want: tank.ErrLayer, reason: tank.ReasonUnsafePath, message: "passwd",
		},
		{
			name: "not gzip",
			layers: func(t *testing.T) []layer {
				return []layer{{mediaType: ociLayerGzip, blob: good, diffID: sha256Digest(good)}}
			},
			want: tank.ErrLayer, reason: tank.ReasonBadLayer,
		},
		{
			name: "wrong diff_id",
			layers: func(t *testing.T) []layer {
				return []layer{{mediaType: ociLayerTar, blob: good, diffID: sha256Digest([]byte("something else"))}}
			},
			want: tank.ErrLayer, reason: tank.ReasonDiffIDMismatch,
		},
		{
			name: "unknown media type",
			layers: func(t *testing.T) []layer {
				return []layer{{mediaType: "application/vnd.example.layer.v1.tar+lz4", blob: good, diffID: sha256Digest(good)}}
			},
			want: tank.ErrLayer, reason: tank.ReasonUnsupportedMediaType, message: "application/vnd.example.layer.v1.tar+lz4",
		},
		{
			name: "blob that does not match its digest",
			layers: func(t *testing.T) []layer {
				return []layer{{mediaType: ociLayerTar, blob: good, diffID: sha256Digest(good)}}
			},
			spoil: func(t *testing.T, layout string, m descriptor) {
				var man struct{ Layers []descriptor }
				b, err := os.ReadFile(blobPath(layout, m.Digest))
				if err != nil || json.Unmarshal(b, &man) != nil || len(man.Layers) == 0 {
					t.Fatalf("manifest %s: %v %s", m.Digest, err, b)
				}
				spoilt := bytes.Replace(good, []byte("tank\n"), []byte("knat\n"), 1)
				if err := os.WriteFile(blobPath(layout, man.Layers[len(man.Layers)-1].Digest), spoilt, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: tank.ErrDigestMismatch,
		},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			// The layers go on top of a good one, so the unpack has
			// started a tree when it fails.
			layers := append([]layer{gzipLayer(t, tarEntry{name: "bin/sh", body: "#!\n", mode: 0o755})}, c.layers(t)...)
			layout, m := handmadeLayout(t, "hostile:v1", layers...)
			if c.spoil != nil {
				c.spoil(t, layout, m)
			}
			dir, rootfs := rootfsIn(t)
			err := tank.Unpack(context.Background(), layout, "hostile:v1", rootfs, nil)
			var terr *tank.Error
			if !errors.Is(err, c.want) || !errors.As(err, &terr) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if c.reason != "" && (terr.Reason != c.reason || terr.Status != tank.StatusLayer) {
				t.Errorf("got %s (%s), want %s (%s)", terr.Status, terr.Reason, tank.StatusLayer, c.reason)
			}
			if !strings.Contains(terr.Message, c.message) {
				t.Errorf("message %q does not name %q", terr.Message, c.message)
			}
			if c.want != tank.ErrLayer && errors.Is(err, tank.ErrLayer) {
				t.Errorf("%v matches ErrLayer", err)
			}
			// Nothing at rootfs, no temporary tree beside it, and nothing
			// climbed out of it into the directories above.
			wantOnly(t, dir)
			for _, above := range []string{filepath.Dir(dir), layout} {
				if _, err := os.Lstat(filepath.Join(above, "escape")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s/escape: %v", above, err)
				}
			}
		})
	}
}

func TestUnpackBadInput(t *testing.T) {
	layout, m := handmadeLayout(t, "app:v1", gzipLayer(t, tarEntry{name: "f", body: "x"}))
	// An index entry: an image manifest only is unpacked.
	nested := writeJSONBlob(t, layout, ociIndex, map[string]interface{}{
		"schemaVersion": 2, "mediaType": ociIndex, "manifests": []descriptor{m},
	})
	writeIndexJSON(t, layout, map[string]descriptor{"app:v1": m, "multi:v1": nested})
	dir, rootfs := rootfsIn(t)
	cases := []struct {
		name, layout, image, rootfs string
		message                     string
	}{
		{"empty layout", "", "app:v1", rootfs, "layout"},
		{"empty image", layout, "", rootfs, "image"},
		{"empty rootfs", layout, "app:v1", "", "rootfs"},
		{"NUL in layout", layout + "\x00", "app:v1", rootfs, "layout"},
		{"NUL in image", layout, "app:v1\x00", rootfs, "image"},
		{"NUL in rootfs", layout, "app:v1", rootfs + "\x00", "rootfs"},
		{"no such image", layout, "other:v1", rootfs, "app:v1"},
		{"an index", layout, "multi:v1", rootfs, "multi:v1"},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			progress := newProgressLog()
			err := tank.Unpack(context.Background(), c.layout, c.image, c.rootfs, &tank.UnpackOptions{Progress: progress.report})
			var terr *tank.Error
			if !errors.Is(err, tank.ErrBadInput) || !errors.As(err, &terr) {
				t.Fatalf("got %v, want ErrBadInput", err)
			}
			if !strings.Contains(terr.Message, c.message) {
				t.Errorf("message %q does not name %q", terr.Message, c.message)
			}
			if len(progress.reports) != 0 {
				t.Errorf("progress %v for a call that did nothing", progress.reports)
			}
			wantOnly(t, dir)
		})
	}
	t.Run("Pull flags without a rootfs", func(t *testing.T) {
		ref := rig.Info.Plain.Registry + "/tank/oci-image:v1"
		for _, opts := range []tank.PullOptions{{KeepOwners: true}, {ReplaceRootfs: true}} {
			_, err := tank.Pull(context.Background(), ref, t.TempDir(), &opts)
			if !errors.Is(err, tank.ErrBadInput) {
				t.Errorf("Pull with %+v: %v, want ErrBadInput", opts, err)
			}
		}
	})
}

// Owners come from the layer with KeepOwners (root only); else files are
// the caller's.
func TestUnpackKeepOwners(t *testing.T) {
	layout, _ := handmadeLayout(t, "owned:v1", gzipLayer(t,
		tarEntry{name: "home/", typ: tar.TypeDir, mode: 0o755, uid: 1234, gid: 2345},
		tarEntry{name: "home/owned", body: "mine\n", uid: 1234, gid: 2345}))
	owner := func(p string) (int, int) {
		t.Helper()
		info, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := info.Sys().(*syscall.Stat_t)
		return int(st.Uid), int(st.Gid)
	}
	_, rootfs := rootfsIn(t)
	if err := tank.Unpack(context.Background(), layout, "owned:v1", rootfs, nil); err != nil {
		t.Fatal(err)
	}
	if uid, gid := owner(filepath.Join(rootfs, "home/owned")); uid != os.Geteuid() || gid != os.Getegid() {
		t.Errorf("rootless: home/owned is %d:%d, want the caller's %d:%d", uid, gid, os.Geteuid(), os.Getegid())
	}

	dir, rootfs := rootfsIn(t)
	err := tank.Unpack(context.Background(), layout, "owned:v1", rootfs, &tank.UnpackOptions{KeepOwners: true})
	if os.Geteuid() != 0 {
		if !errors.Is(err, tank.ErrBadInput) {
			t.Errorf("KeepOwners without root: %v, want ErrBadInput", err)
		}
		wantOnly(t, dir)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"home", "home/owned"} {
		if uid, gid := owner(filepath.Join(rootfs, p)); uid != 1234 || gid != 2345 {
			t.Errorf("KeepOwners: %s is %d:%d, want the layer's 1234:2345", p, uid, gid)
		}
	}
}

func TestUnpackContext(t *testing.T) {
	const grace = 500 * time.Millisecond
	t.Run("cancelled before", func(t *testing.T) {
		layout, ref, _ := pulled(t, rig.Info.Images.OCIImage)
		dir, rootfs := rootfsIn(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := tank.Unpack(ctx, layout, ref, rootfs, nil)
		var terr *tank.Error
		if !errors.Is(err, tank.ErrCancelled) || !errors.Is(err, context.Canceled) ||
			!errors.As(err, &terr) || terr.Status != tank.StatusCancelled {
			t.Fatalf("got %v, want ErrCancelled and context.Canceled", err)
		}
		wantOnly(t, dir)
	})
	// In the middle of a large layer: the call ends within 500 ms of the
	// cancel, and once it has returned tank has stopped: the temporary
	// tree is gone and nothing comes back.
	for _, call := range []string{"Unpack", "Pull"} {
		call := call
		t.Run("cancelled during "+call, func(t *testing.T) {
			img := rig.Info.Images.Large
			if img == nil {
				t.Fatalf("the rig has no large image: start it with --large-mib %s", largeMiB)
			}
			ref := rig.Info.Plain.Registry + "/" + img.Repo + ":" + img.Tag
			layout := t.TempDir()
			dir, rootfs := rootfsIn(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// Pull's progress counts the blobs downloaded, then applied:
			// past half of it the unpack has begun.
			from := func(all int64) int64 { return 0 }
			if call == "Pull" {
				from = func(all int64) int64 { return all / 2 }
			}
			var cancelledAt time.Time
			var doneAt, total int64 = -1, 0
			progress := func(done, all int64) {
				if cancelledAt.IsZero() && done > from(all) && done < all {
					cancelledAt, doneAt, total = time.Now(), done, all
					cancel()
				}
			}
			var err error
			if call == "Unpack" {
				if _, err := tank.Pull(context.Background(), ref, layout, nil); err != nil {
					t.Fatal(err)
				}
				err = tank.Unpack(ctx, layout, ref, rootfs, &tank.UnpackOptions{Progress: progress})
			} else {
				_, err = tank.Pull(ctx, ref, layout, &tank.PullOptions{Rootfs: rootfs, Progress: progress})
			}
			returned := time.Now()
			atReturn := names(t, dir)
			if !errors.Is(err, tank.ErrCancelled) || !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled at %d of %d bytes: %v, want ErrCancelled", doneAt, total, err)
			}
			if cancelledAt.IsZero() {
				t.Fatalf("no progress report in the middle of the unpack: nothing to cancel in the middle of")
			}
			if took := returned.Sub(cancelledAt); took > grace {
				t.Errorf("%s returned %v after the cancel", call, took)
			}
			if len(atReturn) != 0 {
				t.Errorf("at return %s holds %q, want nothing", dir, atReturn)
			}
			// Nothing should happen from here on; 300 ms is far longer
			// than a writer finishing a file takes.
			time.Sleep(300 * time.Millisecond)
			wantOnly(t, dir)
		})
	}
}

// Pull an image and unpack it into a root filesystem to run, replacing the
// one an earlier version left; then the same in one call, layers applied
// while later ones download.
func ExampleUnpack() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const layout = "/var/lib/images"
	if _, err := tank.Pull(ctx, "registry.example:5000/org/app:v1.2", layout, nil); err != nil {
		fmt.Println(err)
		return
	}
	err := tank.Unpack(ctx, layout, "registry.example:5000/org/app:v1.2", "/var/lib/rootfs/app", &tank.UnpackOptions{
		Replace:  true,
		Progress: func(done, total int64) { fmt.Printf("\r%d/%d layer bytes", done, total) },
	})
	var terr *tank.Error
	if errors.Is(err, tank.ErrLayer) && errors.As(err, &terr) {
		// Reason is tank.ReasonUnsafePath, ReasonBadLayer, ...; the
		// message names the layer and the entry.
		fmt.Println("a layer cannot be applied:", terr.Reason, terr.Message)
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}

	m, err := tank.Pull(ctx, "registry.example:5000/org/app:v1.3", layout, &tank.PullOptions{
		Rootfs:        "/var/lib/rootfs/app",
		ReplaceRootfs: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("\n%s unpacked: %d layers\n", m.Digest, len(m.Layers))
}
