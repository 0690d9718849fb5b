package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"tank.example/tank/internal/rigtest"
)

var rig *rigtest.Rig

func TestMain(m *testing.M) {
	os.Exit(rigtest.RunTests(m, "tank-inspect tests", func(r *rigtest.Rig) { rig = r }))
}

func inspect(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

type printed struct {
	Registry, Repository, Reference string
	Index                           *struct{ MediaType, Digest string }
	MediaType, Digest               string
	Size                            int
	Config                          *struct {
		MediaType, Digest string
		Size              int64
	}
	Layers    []struct{ MediaType, Digest string }
	Manifests []struct {
		Digest   string
		Platform struct{ OS, Architecture, Variant string }
	}
}

func decode(t *testing.T, s string) printed {
	t.Helper()
	var p printed
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%v in %s", err, s)
	}
	return p
}

func TestImage(t *testing.T) {
	img := rig.Info.Images.OCIImage
	reg := rig.Info.Token.Registry
	for _, args := range [][]string{
		{reg + "/" + img.Repo + ":" + img.Tag},
		{"http://" + reg + "/" + img.Repo + "@" + img.Digest},
		{reg, img.Repo, img.Tag},
	} {
		code, out, errOut := inspect(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		p := decode(t, out)
		if p.Digest != img.Digest || p.MediaType != img.MediaType || int64(p.Size) != img.Size ||
			p.Repository != img.Repo || p.Config == nil || p.Config.Digest != img.Config ||
			p.Config.Size != img.BlobSizes[img.Config] || len(p.Layers) != len(img.Layers) {
			t.Errorf("%v: printed %s", args, out)
		}
	}
}

func TestIndexAndPlatform(t *testing.T) {
	ix := rig.Info.Images.OCIIndex
	ref := rig.Info.Plain.Registry + "/" + ix.Repo + ":" + ix.Tag
	code, out, errOut := inspect(t, ref)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	p := decode(t, out)
	if p.Digest != ix.Digest || len(p.Manifests) != len(ix.Manifests) || p.Config != nil {
		t.Fatalf("printed %s", out)
	}
	for i, e := range ix.Manifests {
		pl := p.Manifests[i].Platform
		got := pl.OS + "/" + pl.Architecture
		if pl.Variant != "" {
			got += "/" + pl.Variant
		}
		if got != e.Platform || p.Manifests[i].Digest != e.Digest {
			t.Errorf("entry %d: %s %s, want %s %s", i, got, p.Manifests[i].Digest, e.Platform, e.Digest)
		}
	}

	code, out, errOut = inspect(t, "-platform", "linux/arm/v7", ref)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want, _ := ix.Entry("linux/arm/v7")
	p = decode(t, out)
	if p.Index == nil || p.Index.Digest != ix.Digest || p.Digest != want.Digest || p.Config.Digest != want.Config {
		t.Errorf("printed %s", out)
	}

	code, _, errOut = inspect(t, "-platform", "plan9/amd64", ref)
	if code != 1 || !strings.Contains(errOut, "no entry for plan9/amd64") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

func TestRaw(t *testing.T) {
	img := rig.Info.Images.DockerImage
	code, out, errOut := inspect(t, "-raw", rig.Info.Plain.Registry, img.Repo, img.Digest)
	if code != 0 || int64(len(out)) != img.Size || !strings.Contains(out, img.Config) {
		t.Errorf("exit %d (%s): %d bytes", code, errOut, len(out))
	}
}

func TestFailures(t *testing.T) {
	img := rig.Info.Images.OCIImage
	code, out, errOut := inspect(t, rig.Info.Plain.Registry+"/"+img.Repo+":nope")
	if code != 1 || out != "" || !strings.Contains(errOut, "404") || !strings.Contains(errOut, "http_status") {
		t.Errorf("missing tag: exit %d: %q %q", code, out, errOut)
	}
	for _, args := range [][]string{{}, {"just-a-host"}, {"a", "b"}, {"-platform", "linux", "h/r"}} {
		if code, _, _ := inspect(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

func TestParseImage(t *testing.T) {
	for in, want := range map[string][3]string{
		"localhost:5000/a/b":                 {"localhost:5000", "a/b", "latest"},
		"localhost:5000/a/b:v1":              {"localhost:5000", "a/b", "v1"},
		"https://ghcr.io/o/r@sha256:ab":      {"https://ghcr.io", "o/r", "sha256:ab"},
		"ghcr.io/o/r:v2@sha256:ab":           {"ghcr.io", "o/r", "sha256:ab"},
		"http://127.0.0.1:1/x:y":             {"http://127.0.0.1:1", "x", "y"},
		"registry.example:443/deep/repo/x:1": {"registry.example:443", "deep/repo/x", "1"},
	} {
		r, p, ref, err := parseImage(in)
		if err != nil || [3]string{r, p, ref} != want {
			t.Errorf("parseImage(%q) = %q %q %q %v, want %q", in, r, p, ref, err, want)
		}
	}
}
