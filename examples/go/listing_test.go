package tank_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"tank.example/tank"
)

// plantFile writes content at rel under the plain registry's storage (CNCF
// distribution's filesystem layout), so that the real registry serves it.
func plantFile(t *testing.T, rel, content string) {
	t.Helper()
	path := filepath.Join(rig.Info.Plain.Storage, "docker", "registry", "v2", rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// plantManifest makes the plain registry serve raw as manifest of repo
// (by digest, and by each of tags), and returns its digest.
func plantManifest(t *testing.T, repo string, raw []byte, tags ...string) string {
	t.Helper()
	digest := sha256Digest(raw)
	hex := strings.TrimPrefix(digest, "sha256:")
	plantFile(t, filepath.Join("blobs", "sha256", hex[:2], hex, "data"), string(raw))
	manifests := filepath.Join("repositories", repo, "_manifests")
	plantFile(t, filepath.Join(manifests, "revisions", "sha256", hex, "link"), digest)
	for _, tag := range tags {
		plantFile(t, filepath.Join(manifests, "tags", tag, "current", "link"), digest)
		plantFile(t, filepath.Join(manifests, "tags", tag, "index", "sha256", hex, "link"), digest)
	}
	return digest
}

// freshRepo is a repository name no other test uses.
func freshRepo(t *testing.T, what string) string {
	t.Helper()
	return fmt.Sprintf("tank/go-%s-%d", what, time.Now().UnixNano())
}

// ociImageRaw is the rig's OCI image manifest, as the registry serves it.
func ociImageRaw(t *testing.T) []byte {
	t.Helper()
	img := rig.Info.Images.OCIImage
	m, err := tank.FetchManifest(rig.Info.Plain.Registry, img.Repo, img.Digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

func sorted(names []string) []string {
	out := append([]string(nil), names...)
	sort.Strings(out)
	return out
}

// pagedOrigin serves the pages of one listing at path: page i answers
// pages[i] and, when there is one, a Link to the next page, written by
// link(i+1). It records the targets it was asked for.
type pagedOrigin struct {
	*httptest.Server
	mu    sync.Mutex
	asked []string
}

func newPagedOrigin(t *testing.T, path, field string, pages [][]string, link func(o *pagedOrigin, next int) string) *pagedOrigin {
	t.Helper()
	o := &pagedOrigin{}
	o.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.asked = append(o.asked, r.URL.RequestURI())
		o.mu.Unlock()
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		page := 0
		fmt.Sscan(r.URL.Query().Get("page"), &page)
		if page >= len(pages) {
			http.NotFound(w, r)
			return
		}
		if page+1 < len(pages) {
			w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, link(o, page+1)))
		}
		body, _ := json.Marshal(map[string]interface{}{"name": "tank/paged", field: pages[page]})
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	// Started once o is whole: the requests come from libtank's threads,
	// which the race detector cannot see order anything.
	o.Start()
	t.Cleanup(o.Close)
	return o
}

func (o *pagedOrigin) addr() string { return strings.TrimPrefix(o.URL, "http://") }

func (o *pagedOrigin) requests() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.asked...)
}

func TestTags(t *testing.T) {
	plain := rig.Info.Plain.Registry
	img := rig.Info.Images.OCIImage

	t.Run("every tag of a repository", func(t *testing.T) {
		repo := freshRepo(t, "tags")
		want := []string{"a1", "b2", "latest", "v1.0.0"}
		plantManifest(t, repo, ociImageRaw(t), want...)
		got, err := tank.Tags(plain, repo, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sorted(got), want) {
			t.Errorf("tags %v, want %v", got, want)
		}
	})

	t.Run("through the token handshake", func(t *testing.T) {
		got, err := tank.Tags(rig.Info.Token.Registry, img.Repo, newCache(t))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, tag := range got {
			found = found || tag == img.Tag
		}
		if !found {
			t.Errorf("tags %v lack %s", got, img.Tag)
		}
	})

	t.Run("an unknown repository is not found", func(t *testing.T) {
		_, err := tank.Tags(plain, freshRepo(t, "nothing"), nil)
		wantTankError(t, err, tank.ErrNotFound, tank.ReasonHTTPStatus, 404)
	})

	t.Run("several pages, relative and absolute links", func(t *testing.T) {
		pages := [][]string{{"p1a", "p1b"}, {"p2a"}, {"p3a", "p3b"}, {}}
		o := newPagedOrigin(t, "/v2/tank/paged/tags/list", "tags", pages, func(o *pagedOrigin, next int) string {
			rel := fmt.Sprintf("/v2/tank/paged/tags/list?n=2&page=%d", next)
			if next%2 == 0 {
				return o.URL + rel
			}
			return rel
		})
		got, err := tank.Tags(o.addr(), "tank/paged", nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"p1a", "p1b", "p2a", "p3a", "p3b"}; !reflect.DeepEqual(got, want) {
			t.Errorf("tags %v, want %v (in page order)", got, want)
		}
		asked := o.requests()
		if len(asked) != len(pages) || !strings.Contains(asked[0], "n=") {
			t.Errorf("asked %v: want one request a page, the first with n=", asked)
		}
	})

	t.Run("a link to another host or back to a page read", func(t *testing.T) {
		elsewhere := newPagedOrigin(t, "/v2/tank/paged/tags/list", "tags", [][]string{{"x"}}, nil)
		for name, link := range map[string]func(o *pagedOrigin, next int) string{
			"another host": func(o *pagedOrigin, next int) string {
				return elsewhere.URL + "/v2/tank/paged/tags/list?page=0"
			},
			"a loop": func(o *pagedOrigin, next int) string {
				return "/v2/tank/paged/tags/list?page=0"
			},
		} {
			t.Run(name, func(t *testing.T) {
				o := newPagedOrigin(t, "/v2/tank/paged/tags/list", "tags", [][]string{{"a"}, {"b"}}, link)
				_, err := tank.Tags(o.addr(), "tank/paged", nil)
				wantTankError(t, err, tank.ErrProtocol, tank.ReasonInvalidNextLink, 0)
			})
		}
		if asked := elsewhere.requests(); len(asked) != 0 {
			t.Errorf("the other host was asked %v", asked)
		}
	})

	t.Run("bad input before any request", func(t *testing.T) {
		quiet := silentListener(t)
		for _, repo := range []string{"Tank/Upper", "tank/../etc", "", "tank/x\x00"} {
			_, err := tank.Tags(quiet, repo, nil)
			wantTankError(t, err, tank.ErrBadInput, tank.ReasonBadInput, 0)
		}
	})

	t.Run("a cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := tank.TagsContext(ctx, plain, img.Repo, nil)
		if !errors.Is(err, tank.ErrCancelled) || !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want ErrCancelled and context.Canceled", err)
		}
	})
}

func TestCatalog(t *testing.T) {
	images := rig.Info.Images
	fixtures := []string{images.OCIImage.Repo, images.OCIIndex.Repo, images.DockerImage.Repo, images.DockerList.Repo}

	t.Run("the plain registry's repositories", func(t *testing.T) {
		got, err := tank.Catalog(rig.Info.Plain.Registry, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, repo := range fixtures {
			if !contains(got, repo) {
				t.Errorf("catalog %v lacks %s", got, repo)
			}
		}
	})

	t.Run("the token registry opens it to its users only", func(t *testing.T) {
		registry := rig.Info.Token.Registry
		_, err := tank.Catalog(registry, newCache(t))
		if !errors.Is(err, tank.ErrUnauthorized) && !errors.Is(err, tank.ErrAuth) {
			t.Errorf("anonymous catalog: %v, want a refusal", err)
		}
		p := private(t)
		cache := newCache(t)
		mustSet(t, cache.SetBasicAuth(registry, p.Username, p.Password))
		got, err := tank.CatalogContext(context.Background(), registry, cache)
		if err != nil {
			t.Fatal(err)
		}
		for _, repo := range append(fixtures, p.OCIImage) {
			if !contains(got, repo) {
				t.Errorf("catalog %v lacks %s", got, repo)
			}
		}
	})

	t.Run("several pages", func(t *testing.T) {
		pages := [][]string{{"a/one", "a/two"}, {"b/three"}}
		o := newPagedOrigin(t, "/v2/_catalog", "repositories", pages, func(o *pagedOrigin, next int) string {
			return fmt.Sprintf("/v2/_catalog?n=2&page=%d", next)
		})
		got, err := tank.Catalog(o.addr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"a/one", "a/two", "b/three"}; !reflect.DeepEqual(got, want) {
			t.Errorf("catalog %v, want %v", got, want)
		}
	})
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// Media and artifact types of the artifacts planted (ociManifest and
// ociIndex are unpack_test.go's).
const (
	ociEmpty = "application/vnd.oci.empty.v1+json"
	sbomType = "application/vnd.example.sbom+json"
	sigType  = "application/vnd.example.signature"
)

// plantArtifact plants an OCI 1.1 artifact of artifactType in repo whose
// subject is subject (size bytes), and returns its index entry.
func plantArtifact(t *testing.T, repo, artifactType, subject string, size int, note string) map[string]interface{} {
	t.Helper()
	empty := []byte("{}")
	emptyDigest := sha256Digest(empty)
	hex := strings.TrimPrefix(emptyDigest, "sha256:")
	plantFile(t, filepath.Join("blobs", "sha256", hex[:2], hex, "data"), string(empty))
	plantFile(t, filepath.Join("repositories", repo, "_layers", "sha256", hex, "link"), emptyDigest)
	annotations := map[string]string{"org.example.note": note}
	raw, err := json.Marshal(map[string]interface{}{
		"schemaVersion": 2,
		"mediaType":     ociManifest,
		"artifactType":  artifactType,
		"config":        map[string]interface{}{"mediaType": ociEmpty, "digest": emptyDigest, "size": 2},
		"layers":        []interface{}{map[string]interface{}{"mediaType": ociEmpty, "digest": emptyDigest, "size": 2}},
		"subject":       map[string]interface{}{"mediaType": ociManifest, "digest": subject, "size": size},
		"annotations":   annotations,
	})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]interface{}{
		"mediaType":    ociManifest,
		"digest":       plantManifest(t, repo, raw),
		"size":         len(raw),
		"artifactType": artifactType,
		"annotations":  annotations,
	}
}

func TestReferrers(t *testing.T) {
	plain := rig.Info.Plain.Registry
	subjectRaw := ociImageRaw(t)
	repo := freshRepo(t, "referrers")
	subject := plantManifest(t, repo, subjectRaw, "v1")
	sbom := plantArtifact(t, repo, sbomType, subject, len(subjectRaw), "the sbom")
	sig := plantArtifact(t, repo, sigType, subject, len(subjectRaw), "the signature")
	fallback := "sha256-" + strings.TrimPrefix(subject, "sha256:")
	indexRaw, err := json.Marshal(map[string]interface{}{
		"schemaVersion": 2,
		"mediaType":     ociIndex,
		"manifests":     []interface{}{sbom, sig},
	})
	if err != nil {
		t.Fatal(err)
	}
	indexDigest := plantManifest(t, repo, indexRaw, fallback)

	t.Run("the fallback tag where the registry has no Referrers API", func(t *testing.T) {
		m, err := tank.Referrers(plain, repo, subject, "", newCache(t))
		if err != nil {
			t.Fatal(err)
		}
		if m.Digest != indexDigest || string(m.Raw) != string(indexRaw) {
			t.Errorf("got %s %.200s, want the fallback tag's index %s", m.Digest, m.Raw, indexDigest)
		}
		if len(m.Manifests) != 2 {
			t.Fatalf("%d referrers, want 2: %+v", len(m.Manifests), m.Manifests)
		}
		for i, want := range []map[string]interface{}{sbom, sig} {
			d := m.Manifests[i]
			if d.Digest != want["digest"] || d.ArtifactType != want["artifactType"] || d.MediaType != ociManifest {
				t.Errorf("referrer %d: %+v, want %v", i, d, want)
			}
			if !reflect.DeepEqual(d.Annotations, want["annotations"]) {
				t.Errorf("referrer %d: annotations %v, want %v", i, d.Annotations, want["annotations"])
			}
		}
		// Each referrer is a manifest of its own, subject and all.
		art, err := tank.FetchManifest(plain, repo, m.Manifests[0].Digest, nil)
		if err != nil {
			t.Fatal(err)
		}
		if art.ArtifactType != sbomType || art.Subject == nil || art.Subject.Digest != subject {
			t.Errorf("artifact %+v: want type %s, subject %s", art, sbomType, subject)
		}
	})

	t.Run("only one artifact type", func(t *testing.T) {
		m, err := tank.ReferrersContext(context.Background(), plain, repo, subject, sigType, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Manifests) != 1 || m.Manifests[0].Digest != sig["digest"] {
			t.Fatalf("referrers %+v, want only %v", m.Manifests, sig["digest"])
		}
		if m.Digest != sha256Digest(m.Raw) || m.Digest == indexDigest {
			t.Errorf("a filtered index is re-encoded with its own digest: %s over %.200s", m.Digest, m.Raw)
		}
		none, err := tank.Referrers(plain, repo, subject, "application/vnd.example.none", nil)
		if err != nil || len(none.Manifests) != 0 {
			t.Errorf("an absent type: %v, %+v", err, none)
		}
	})

	t.Run("none: an empty index", func(t *testing.T) {
		img := rig.Info.Images.OCIImage
		m, err := tank.Referrers(plain, img.Repo, img.Config, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Manifests) != 0 || m.MediaType != ociIndex {
			t.Errorf("got %+v, want an empty OCI index", m)
		}
		var doc struct {
			SchemaVersion int               `json:"schemaVersion"`
			Manifests     []json.RawMessage `json:"manifests"`
		}
		if err := json.Unmarshal(m.Raw, &doc); err != nil || doc.SchemaVersion != 2 || doc.Manifests == nil || len(doc.Manifests) != 0 {
			t.Errorf("raw %q (%v): want an index with an empty manifests list", m.Raw, err)
		}
	})

	t.Run("the digest is checked before any request", func(t *testing.T) {
		quiet := silentListener(t)
		for _, digest := range []string{"v1", "sha256:abc", "", subject + "\x00"} {
			_, err := tank.Referrers(quiet, repo, digest, "", nil)
			wantTankError(t, err, tank.ErrBadInput, tank.ReasonBadInput, 0)
		}
	})
}
