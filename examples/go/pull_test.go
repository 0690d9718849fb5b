package tank_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"tank.example/tank"
	"tank.example/tank/internal/rigtest"
)

// goroutineID is the number runtime.Stack gives the running goroutine.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	// "goroutine 18 [running]:\n..."
	f := strings.Fields(string(buf))
	if len(f) < 2 || f[0] != "goroutine" {
		return "?"
	}
	return f[1]
}

// progressLog records a call's progress reports, and whether any came on
// a goroutine other than the one that made it.
type progressLog struct {
	caller    string
	reports   [][2]int64
	elsewhere []string
}

func newProgressLog() *progressLog { return &progressLog{caller: goroutineID()} }

func (p *progressLog) report(done, total int64) {
	if g := goroutineID(); g != p.caller {
		p.elsewhere = append(p.elsewhere, g)
	}
	p.reports = append(p.reports, [2]int64{done, total})
}

// check wants reports on the calling goroutine, none beyond total, and a
// last one of (total, total).
func (p *progressLog) check(t *testing.T, total int64) {
	t.Helper()
	if len(p.elsewhere) != 0 {
		t.Errorf("progress ran on goroutines %v, not the caller's %s", p.elsewhere, p.caller)
	}
	if n := len(p.reports); n == 0 || p.reports[n-1] != [2]int64{total, total} {
		t.Errorf("progress %v, want a last (%d, %d)", p.reports, total, total)
	}
	for _, r := range p.reports {
		if r[0] < 0 || r[0] > total || (r[1] != total && r[1] != 0) {
			t.Errorf("progress report %v out of (0..%d, %d)", r, total, total)
		}
	}
}

// imageBytes is the sum of an index entry's config and layer sizes.
func imageBytes(ix rigtest.Index, e rigtest.Entry) int64 {
	total := ix.BlobSizes[e.Config]
	for _, l := range e.Layers {
		total += ix.BlobSizes[l]
	}
	return total
}

func multiarch(t *testing.T, platform string) (rigtest.Index, rigtest.Entry) {
	t.Helper()
	ix := rig.Info.Images.OCIIndex
	e, ok := ix.Entry(platform)
	if !ok {
		t.Fatalf("no %s in the rig's OCI index: %+v", platform, ix.Manifests)
	}
	return ix, e
}

// layoutIndex is an OCI layout's index.json.
type layoutIndex struct {
	SchemaVersion int    `json:"schemaVersion"`
	MediaType     string `json:"mediaType"`
	Manifests     []struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations"`
	} `json:"manifests"`
}

func readLayoutIndex(t *testing.T, layout string) layoutIndex {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ix layoutIndex
	if err := json.Unmarshal(b, &ix); err != nil {
		t.Fatalf("index.json: %v in %s", err, b)
	}
	if ix.SchemaVersion != 2 || ix.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("index.json is not an OCI index: %s", b)
	}
	return ix
}

// checkLayout wants index.json to hold exactly the images named in want
// (name -> the index entry pulled for it), and every blob of theirs in
// blobs/sha256, whole; and no partial download left.
func checkLayout(t *testing.T, layout string, ix rigtest.Index, want map[string]rigtest.Entry) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(layout, "oci-layout"))
	var marker struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err != nil || json.Unmarshal(b, &marker) != nil || marker.Version != "1.0.0" {
		t.Errorf("oci-layout: %v, %q", err, b)
	}
	got := readLayoutIndex(t, layout)
	if len(got.Manifests) != len(want) {
		t.Errorf("index.json has %d entries, want %d: %+v", len(got.Manifests), len(want), got.Manifests)
	}
	for _, m := range got.Manifests {
		name := m.Annotations["org.opencontainers.image.ref.name"]
		e, ok := want[name]
		if !ok {
			t.Errorf("index.json entry for %q, want only %v", name, want)
			continue
		}
		if m.Digest != e.Digest || m.Size != e.Size || m.MediaType != e.MediaType {
			t.Errorf("index.json entry for %s: %s %s (%d bytes), want %s %s (%d bytes)",
				name, m.MediaType, m.Digest, m.Size, e.MediaType, e.Digest, e.Size)
		}
	}
	for _, e := range want {
		sizes := map[string]int64{e.Digest: e.Size}
		for _, d := range append([]string{e.Config}, e.Layers...) {
			sizes[d] = ix.BlobSizes[d]
		}
		for digest, size := range sizes {
			b, err := os.ReadFile(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
			if err != nil {
				t.Errorf("blob %s: %v", digest, err)
				continue
			}
			if int64(len(b)) != size || sha256Digest(b) != digest {
				t.Errorf("blob %s: %d bytes hashing to %s, want %d bytes", digest, len(b), sha256Digest(b), size)
			}
		}
	}
	filepath.Walk(layout, func(path string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(path, ".partial") {
			t.Errorf("left behind: %s", path)
		}
		return nil
	})
}

func TestPull(t *testing.T) {
	ix, arm64 := multiarch(t, "linux/arm64/v8")
	total := imageBytes(ix, arm64)
	for regName, reg := range registries(t) {
		t.Run(regName, func(t *testing.T) {
			layout := filepath.Join(t.TempDir(), "layout")
			ref := reg.addr + "/" + ix.Repo + ":" + ix.Tag
			progress := newProgressLog()
			m, err := tank.Pull(context.Background(), ref, layout, &tank.PullOptions{
				Platform: "linux/arm64",
				Cache:    reg.cache,
				Progress: progress.report,
			})
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, m, arm64.Digest, arm64.MediaType, arm64.Size, arm64.Config, arm64.Layers, ix.BlobSizes)
			checkLayout(t, layout, ix, map[string]rigtest.Entry{ref: arm64})
			progress.check(t, total)
		})
	}
}

// A second pull into the same layout fetches no blob; a pull of another
// platform under the same name replaces the entry and keeps the blobs.
func TestPullAgain(t *testing.T) {
	ix, arm64 := multiarch(t, "linux/arm64/v8")
	_, amd64 := multiarch(t, "linux/amd64")
	cache := tank.NewCache(time.Minute)
	defer cache.Close()
	layout := t.TempDir()
	ref := rig.Info.CDN.Registry + "/" + ix.Repo + ":" + ix.Tag
	pull := func(platform string) {
		t.Helper()
		if err := rig.Clear(); err != nil {
			t.Fatal(err)
		}
		if _, err := tank.Pull(context.Background(), ref, layout, &tank.PullOptions{Platform: platform, Cache: cache, Jobs: 1}); err != nil {
			t.Fatal(err)
		}
	}
	cdnRequests := func() []rigtest.CDNRequest {
		t.Helper()
		reqs, err := rig.CDNRequests()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			if r.Authorization {
				t.Errorf("the CDN got an Authorization header: %+v", r)
			}
		}
		return reqs
	}

	pull("linux/arm64/v8")
	if reqs := cdnRequests(); len(reqs) != 1+len(arm64.Layers) {
		t.Errorf("first pull: %d CDN requests, want one per blob (%d): %+v", len(reqs), 1+len(arm64.Layers), reqs)
	}
	progress := newProgressLog()
	if err := rig.Clear(); err != nil {
		t.Fatal(err)
	}
	m, err := tank.Pull(context.Background(), ref, layout, &tank.PullOptions{Platform: "linux/arm64/v8", Cache: cache, Progress: progress.report})
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != arm64.Digest {
		t.Errorf("second pull: %s, want %s", m.Digest, arm64.Digest)
	}
	if reqs := cdnRequests(); len(reqs) != 0 {
		t.Errorf("second pull fetched blobs already there: %+v", reqs)
	}
	progress.check(t, imageBytes(ix, arm64))
	checkLayout(t, layout, ix, map[string]rigtest.Entry{ref: arm64})

	pull("linux/amd64")
	checkLayout(t, layout, ix, map[string]rigtest.Entry{ref: amd64})
	// The arm64 blobs stay.
	for _, d := range append([]string{arm64.Digest, arm64.Config}, arm64.Layers...) {
		if _, err := os.Stat(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))); err != nil {
			t.Errorf("arm64 blob gone: %v", err)
		}
	}
}

// The Cache a pull is given is the one it uses: one token for a pull and
// none for the next.
func TestPullUsesTheCache(t *testing.T) {
	ix, _ := multiarch(t, "linux/arm/v7")
	cache := tank.NewCache(time.Minute)
	defer cache.Close()
	ref := rig.Info.Token.Registry + "/" + ix.Repo + ":" + ix.Tag
	if err := rig.Clear(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := tank.Pull(context.Background(), ref, t.TempDir(), &tank.PullOptions{Platform: "linux/arm", Cache: cache}); err != nil {
			t.Fatal(err)
		}
		reqs, err := rig.TokenRequests()
		if err != nil {
			t.Fatal(err)
		}
		if len(reqs) != 1 {
			t.Fatalf("after pull %d: %d token requests, want 1: %+v", i+1, len(reqs), reqs)
		}
	}
	cache.Close()
	_, err := tank.Pull(context.Background(), ref, t.TempDir(), &tank.PullOptions{Cache: cache})
	if !errors.Is(err, tank.ErrCacheClosed) {
		t.Errorf("closed cache: got %v, want ErrCacheClosed", err)
	}
}

// nil options: the host's platform, without a cache or progress.
func TestPullHostPlatform(t *testing.T) {
	ix := rig.Info.Images.OCIIndex
	ref := rig.Info.Plain.Registry + "/" + ix.Repo + ":" + ix.Tag
	layout := t.TempDir()
	host := map[string]string{"amd64": "linux/amd64", "arm64": "linux/arm64/v8", "arm": "linux/arm/v7"}[runtime.GOARCH]
	m, err := tank.Pull(context.Background(), ref, layout, nil)
	if runtime.GOOS != "linux" || host == "" {
		if !errors.Is(err, tank.ErrBadInput) {
			t.Fatalf("%s/%s is not in the index: got %v, %v", runtime.GOOS, runtime.GOARCH, m, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	e, _ := ix.Entry(host)
	if m.Digest != e.Digest {
		t.Errorf("pulled %s, want the %s image %s", m.Digest, host, e.Digest)
	}
	checkLayout(t, layout, ix, map[string]rigtest.Entry{ref: e})
}

func TestPullNoMatchingPlatform(t *testing.T) {
	ix := rig.Info.Images.OCIIndex
	ref := rig.Info.Plain.Registry + "/" + ix.Repo + ":" + ix.Tag
	layout := filepath.Join(t.TempDir(), "layout")
	m, err := tank.Pull(context.Background(), ref, layout, &tank.PullOptions{Platform: "linux/s390x"})
	var terr *tank.Error
	if !errors.Is(err, tank.ErrBadInput) || !errors.As(err, &terr) || terr.Reason != "no_matching_platform" {
		t.Fatalf("got %v, %#v; want ErrBadInput (no_matching_platform)", m, err)
	}
	if terr.Status != tank.StatusBadInput || errors.Is(err, tank.ErrCancelled) || errors.Is(err, tank.ErrNotFound) {
		t.Errorf("got %#v", terr)
	}
	for _, p := range []string{"linux/amd64", "linux/arm64/v8", "linux/arm/v7"} {
		if !strings.Contains(terr.Message, p) {
			t.Errorf("message %q does not name %s", terr.Message, p)
		}
	}
	// Nothing was added to the layout.
	if _, err := os.Stat(filepath.Join(layout, "index.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("index.json after a failed pull: %v", err)
	}
}

func TestPullBadInput(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	good := addr + "/tank/ok:v1"
	dir := t.TempDir()
	cases := []struct {
		name, reference, layout string
		opts                    tank.PullOptions
		message                 string
	}{
		{"empty reference", "", dir, tank.PullOptions{}, "empty"},
		{"upper-case repository", addr + "/Tank/ok:v1", dir, tank.PullOptions{}, "Tank"},
		{"bad digest", addr + "/tank/ok@sha256:short", dir, tank.PullOptions{}, "digest"},
		{"NUL in reference", good + "\x00", dir, tank.PullOptions{}, "reference"},
		{"empty layout", good, "", tank.PullOptions{}, "layout"},
		{"NUL in layout", good, dir + "\x00x", tank.PullOptions{}, "layout"},
		{"platform without arch", good, dir, tank.PullOptions{Platform: "linux"}, "platform"},
		{"platform of four parts", good, dir, tank.PullOptions{Platform: "linux/arm/v7/x"}, "platform"},
		{"NUL in platform", good, dir, tank.PullOptions{Platform: "linux/amd64\x00"}, "platform"},
		{"negative jobs", good, dir, tank.PullOptions{Jobs: -1}, "jobs"},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			progress := newProgressLog()
			c.opts.Progress = progress.report
			// Bad input is refused before any request; were it not, the
			// listener would never answer and this ends the call.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m, err := tank.Pull(ctx, c.reference, c.layout, &c.opts)
			var terr *tank.Error
			if !errors.Is(err, tank.ErrBadInput) || !errors.As(err, &terr) || terr.Reason != "bad_input" {
				t.Fatalf("got %v, %#v; want ErrBadInput", m, err)
			}
			if !strings.Contains(terr.Message, c.message) {
				t.Errorf("message %q does not name %q", terr.Message, c.message)
			}
			if len(progress.reports) != 0 {
				t.Errorf("progress %v for a call that did nothing", progress.reports)
			}
		})
	}
	// As in TestBadInputSendsNoRequest: a connection would be waiting now.
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
	if conn, err := ln.Accept(); err == nil {
		conn.Close()
		t.Fatalf("a pull with bad input connected to %s", addr)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("accept: %v", err)
	}
}

func TestPullLayoutNotWritable(t *testing.T) {
	ix := rig.Info.Images.OCIIndex
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := rig.Info.Plain.Registry + "/" + ix.Repo + ":" + ix.Tag
	_, err := tank.Pull(context.Background(), ref, filepath.Join(file, "layout"), &tank.PullOptions{Platform: "linux/amd64"})
	var terr *tank.Error
	if !errors.Is(err, tank.ErrIO) || !errors.As(err, &terr) || !strings.Contains(terr.Message, file) {
		t.Fatalf("got %v, want ErrIO naming %s", err, file)
	}
}

func TestPullContext(t *testing.T) {
	ref := stalled(t) + "/tank/stalled:v1"
	const deadline, grace = 200 * time.Millisecond, 500 * time.Millisecond
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		started := time.Now()
		m, err := tank.Pull(ctx, ref, t.TempDir(), &tank.PullOptions{Platform: "linux/amd64"})
		took := time.Since(started)
		if !errors.Is(err, tank.ErrCancelled) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, %v; want ErrCancelled and DeadlineExceeded", m, err)
		}
		if errors.Is(err, context.Canceled) {
			t.Errorf("%v matches context.Canceled", err)
		}
		if took > deadline+grace {
			t.Errorf("the pull took %v after a %v deadline", took, deadline)
		}
	})
	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		started := time.Now()
		m, err := tank.Pull(ctx, ref, t.TempDir(), nil)
		took := time.Since(started)
		var terr *tank.Error
		if !errors.Is(err, tank.ErrCancelled) || !errors.Is(err, context.Canceled) ||
			!errors.As(err, &terr) || terr.Status != tank.StatusCancelled {
			t.Fatalf("got %v, %v; want ErrCancelled and context.Canceled", m, err)
		}
		if took > deadline+grace {
			t.Errorf("a pull with a context already cancelled took %v", took)
		}
	})
}

// Pulls into one layout at once: blobs two of them want arrive once and
// whole, and index.json loses no entry.
func TestPullConcurrentIntoOneLayout(t *testing.T) {
	ix, arm64 := multiarch(t, "linux/arm64/v8")
	_, amd64 := multiarch(t, "linux/amd64")
	reg := rig.Info.Plain.Registry + "/" + ix.Repo
	byTag := reg + ":" + ix.Tag
	byDigest := reg + "@" + ix.Digest
	both := reg + ":" + ix.Tag + "@" + ix.Digest
	pulls := []struct {
		ref, platform string
		want          rigtest.Entry
	}{
		{byTag, "linux/arm64", arm64},
		{byDigest, "linux/aarch64", arm64},
		{both, "linux/amd64", amd64},
		{byTag, "linux/arm64/v8", arm64},
	}
	layout := filepath.Join(t.TempDir(), "layout")
	cache := tank.NewCache(time.Minute)
	defer cache.Close()
	start := make(chan struct{})
	errs := make(chan error, len(pulls))
	var wg sync.WaitGroup
	for i, p := range pulls {
		wg.Add(1)
		go func(i int, ref, platform string, want rigtest.Entry) {
			defer wg.Done()
			<-start
			progress := newProgressLog()
			m, err := tank.Pull(context.Background(), ref, layout, &tank.PullOptions{
				Platform: platform, Cache: cache, Jobs: 2, Progress: progress.report,
			})
			switch {
			case err != nil:
				errs <- fmt.Errorf("pull %d (%s, %s): %w", i, ref, platform, err)
			case m.Digest != want.Digest:
				errs <- fmt.Errorf("pull %d (%s, %s): got %s, want %s", i, ref, platform, m.Digest, want.Digest)
			case len(progress.elsewhere) != 0:
				errs <- fmt.Errorf("pull %d: progress on goroutines %v", i, progress.elsewhere)
			case len(progress.reports) == 0 || progress.reports[len(progress.reports)-1] != [2]int64{imageBytes(ix, want), imageBytes(ix, want)}:
				errs <- fmt.Errorf("pull %d: progress %v, want a last (%d, %[3]d)", i, progress.reports, imageBytes(ix, want))
			}
		}(i, p.ref, p.platform, p.want)
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkLayout(t, layout, ix, map[string]rigtest.Entry{byTag: arm64, byDigest: arm64, both: amd64})
}

func wantRef(registry, repository, tag, digest, name string) tank.Reference {
	return tank.Reference{Registry: registry, Repository: repository, Tag: tag, Digest: digest, Name: name}
}

func TestParseReference(t *testing.T) {
	const d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	const hub = "registry-1.docker.io"
	good := []struct {
		in   string
		want tank.Reference
	}{
		{"alpine", wantRef(hub, "library/alpine", "latest", "", "docker.io/library/alpine:latest")},
		{"alpine:3.19", wantRef(hub, "library/alpine", "3.19", "", "docker.io/library/alpine:3.19")},
		{"docker.io/alpine", wantRef(hub, "library/alpine", "latest", "", "docker.io/library/alpine:latest")},
		{"index.docker.io/library/alpine:edge", wantRef(hub, "library/alpine", "edge", "", "docker.io/library/alpine:edge")},
		{"bitnami/redis", wantRef(hub, "bitnami/redis", "latest", "", "docker.io/bitnami/redis:latest")},
		{"localhost:5000", wantRef(hub, "library/localhost", "5000", "", "docker.io/library/localhost:5000")},
		{"localhost/x", wantRef("localhost", "x", "latest", "", "localhost/x:latest")},
		{"localhost:5000/x@" + d, wantRef("localhost:5000", "x", "", d, "localhost:5000/x@"+d)},
		{"alpine:3@" + d, wantRef(hub, "library/alpine", "3", d, "docker.io/library/alpine:3@"+d)},
		{"GHCR.io/o/r:1.2", wantRef("ghcr.io", "o/r", "1.2", "", "ghcr.io/o/r:1.2")},
		{"quay.io/a/b/c/d", wantRef("quay.io", "a/b/c/d", "latest", "", "quay.io/a/b/c/d:latest")},
		{"[::1]:5000/x:y", wantRef("[::1]:5000", "x", "y", "", "[::1]:5000/x:y")},
		{"http://127.0.0.1:5000/tank/multiarch", wantRef("http://127.0.0.1:5000", "tank/multiarch", "latest", "", "127.0.0.1:5000/tank/multiarch:latest")},
		{"https://myreg/x:v1", wantRef("https://myreg", "x", "v1", "", "myreg/x:v1")},
	}
	for _, c := range good {
		got, err := tank.ParseReference(c.in)
		if err != nil {
			t.Errorf("ParseReference(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseReference(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}

	bad := []struct{ in, says string }{
		{"", "empty"},
		{"UPPER/x", "UPPER"},
		{"ghcr.io/Owner/r", "Owner"},
		{"a//b", `component ""`},
		{"x:tag@sha256:short", "digest"},
		{"x@md5:abc", "digest"},
		{"x:", "empty tag"},
		{"x:.hidden", "tag"},
		{"x:" + strings.Repeat("t", 129), "at most 128"},
		{"a b", "whitespace"},
		{"ftp://host/x", "only http"},
		{"http://alpine", "scheme must be followed"},
		{"host:99999/x", "host:99999"},
		{"x\x00y", "NUL"},
	}
	for _, c := range bad {
		got, err := tank.ParseReference(c.in)
		var terr *tank.Error
		if !errors.Is(err, tank.ErrBadInput) || !errors.As(err, &terr) || terr.Reason != "bad_input" {
			t.Errorf("ParseReference(%q) = %+v, %#v; want ErrBadInput", c.in, got, err)
			continue
		}
		if got != (tank.Reference{}) {
			t.Errorf("ParseReference(%q) returned %+v with its error", c.in, got)
		}
		if !strings.Contains(terr.Message, c.says) {
			t.Errorf("ParseReference(%q): message %q does not say %q", c.in, terr.Message, c.says)
		}
	}

	// What it gives is what FetchManifest takes.
	ix := rig.Info.Images.OCIIndex
	r, err := tank.ParseReference(rig.Info.Plain.Registry + "/" + ix.Repo)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tank.FetchManifest(r.Registry, r.Repository, r.Tag, nil)
	if err != nil || m.Digest != ix.Digest {
		t.Fatalf("FetchManifest(%+v): %v, %v; want %s", r, m, err, ix.Digest)
	}
}

// Pull one platform's image of a multi-platform reference into an OCI
// layout, with a deadline and progress.
func ExamplePull() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cache := tank.NewCache(0)
	defer cache.Close()
	m, err := tank.Pull(ctx, "registry.example:5000/org/app:v1.2", "/var/lib/images/app", &tank.PullOptions{
		Platform: "linux/arm64",
		Cache:    cache,
		Progress: func(done, total int64) { fmt.Printf("\r%d/%d bytes", done, total) },
	})
	var terr *tank.Error
	if errors.As(err, &terr) && terr.Reason == "no_matching_platform" {
		fmt.Println(terr.Message) // names the platforms the index has
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("\n%s: %d layers\n", m.Digest, len(m.Layers))
}

func ExampleParseReference() {
	r, err := tank.ParseReference("alpine")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %s %s %q\n%s\n", r.Registry, r.Repository, r.Tag, r.Digest, r.Name)
	// Output:
	// registry-1.docker.io library/alpine latest ""
	// docker.io/library/alpine:latest
}
