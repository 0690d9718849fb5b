// Package rigtest starts tank's test rig (target/release/tank-testrig: real
// registries, token issuers and a CDN on 127.0.0.1) for Go tests and talks
// to it over its stdin/stdout.
package rigtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Info is the rig's JSON line (testrig/src/info.rs).
type Info struct {
	Plain     PlainRegistry `json:"plain"`
	Token     TokenRegistry `json:"token"`
	CDN       CDNRegistry   `json:"cdn"`
	BasicAuth struct {
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"basic_auth"`
	Images Images `json:"images"`
}

type PlainRegistry struct {
	Registry string `json:"registry"`
	Storage  string `json:"storage"`
}

type TokenRegistry struct {
	Registry string `json:"registry"`
	Realm    string `json:"realm"`
	Service  string `json:"service"`
	Storage  string `json:"storage"`
}

type CDNRegistry struct {
	Registry string `json:"registry"`
	Realm    string `json:"realm"`
	Service  string `json:"service"`
	CDN      string `json:"cdn"`
	Storage  string `json:"storage"`
}

type Images struct {
	OCIImage    Image `json:"oci_image"`
	OCIIndex    Index `json:"oci_index"`
	DockerImage Image `json:"docker_image"`
	DockerList  Index `json:"docker_list"`
}

// Image is a single-platform image pushed by tag.
type Image struct {
	Repo      string           `json:"repo"`
	Tag       string           `json:"tag"`
	Digest    string           `json:"digest"`
	MediaType string           `json:"media_type"`
	Size      int64            `json:"size"`
	Config    string           `json:"config"`
	Layers    []string         `json:"layers"`
	BlobSizes map[string]int64 `json:"blob_sizes"`
}

// Index is an OCI index or Docker manifest list pushed by tag; its children
// are pushed by digest into the same repository.
type Index struct {
	Repo      string           `json:"repo"`
	Tag       string           `json:"tag"`
	Digest    string           `json:"digest"`
	MediaType string           `json:"media_type"`
	Size      int64            `json:"size"`
	Manifests []Entry          `json:"manifests"`
	BlobSizes map[string]int64 `json:"blob_sizes"`
}

// Entry is one child of an Index.
type Entry struct {
	Platform  string   `json:"platform"` // os/arch[/variant]
	Digest    string   `json:"digest"`
	MediaType string   `json:"media_type"`
	Size      int64    `json:"size"`
	Config    string   `json:"config"`
	Layers    []string `json:"layers"`
}

// Entry returns the child for platform ("os/arch[/variant]").
func (ix *Index) Entry(platform string) (Entry, bool) {
	for _, e := range ix.Manifests {
		if e.Platform == platform {
			return e, true
		}
	}
	return Entry{}, false
}

// TokenRequest is one request the rig's token issuers saw.
type TokenRequest struct {
	Which         string   `json:"which"` // "token" or "cdn"
	Service       *string  `json:"service"`
	Scopes        []string `json:"scopes"`
	Authorization bool     `json:"authorization"`
	Username      *string  `json:"username"`
	Status        int      `json:"status"`
}

// ErrNoCommands means the rig binary does not answer stdin commands.
var ErrNoCommands = errors.New("the rig does not answer stdin commands (token-requests, cdn-requests, clear); rebuild tank-testrig")

// Rig is a running tank-testrig process.
type Rig struct {
	Info Info

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *lockedBuffer

	mu         sync.Mutex // serialises commands
	noCommands bool
	stopOnce   sync.Once
	stopErr    error
}

// Binary is $TANK_TESTRIG, else target/release/tank-testrig in the crate
// this package lives in.
func Binary() string {
	if b := os.Getenv("TANK_TESTRIG"); b != "" {
		return b
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "tank-testrig"
	}
	// examples/go/internal/rigtest/rig.go -> crate root.
	root := filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
	return filepath.Join(root, "target", "release", "tank-testrig")
}

// Start runs the rig binary and waits (up to startTimeout) for its info.
func Start(binary string, startTimeout time.Duration) (*Rig, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("%v: build it with `cargo build --release -p tank -p tank-testrig` from the crate root", err)
	}
	r := &Rig{
		cmd:    exec.Command(binary),
		lines:  make(chan string, 16),
		stderr: &lockedBuffer{tee: os.Getenv("TANK_RIG_VERBOSE") != ""},
	}
	r.cmd.Stderr = r.stderr
	var err error
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", binary, err)
	}
	go func() {
		defer close(r.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
	}()
	select {
	case line, ok := <-r.lines:
		if !ok {
			r.Stop()
			return nil, fmt.Errorf("tank-testrig exited before printing its info:\n%s", r.Stderr())
		}
		if err := json.Unmarshal([]byte(line), &r.Info); err != nil {
			r.Stop()
			return nil, fmt.Errorf("tank-testrig info: %v in %q", err, line)
		}
	case <-time.After(startTimeout):
		r.Stop()
		return nil, fmt.Errorf("tank-testrig printed nothing in %v:\n%s", startTimeout, r.Stderr())
	}
	if r.Info.Plain.Registry == "" || r.Info.Token.Registry == "" {
		r.Stop()
		return nil, fmt.Errorf("tank-testrig info lacks the plain or token registry")
	}
	return r, nil
}

// Stderr is what the rig wrote to stderr so far.
func (r *Rig) Stderr() string { return r.stderr.String() }

// Stop closes the rig's stdin and waits for it to exit (killing it after
// 20 s). Safe to call more than once.
func (r *Rig) Stop() error {
	r.stopOnce.Do(func() {
		r.stdin.Close()
		done := make(chan error, 1)
		go func() { done <- r.cmd.Wait() }()
		select {
		case r.stopErr = <-done:
		case <-time.After(20 * time.Second):
			r.cmd.Process.Kill()
			r.stopErr = fmt.Errorf("tank-testrig did not stop in 20 s; killed: %v", <-done)
		}
	})
	return r.stopErr
}

// Command writes one command line to the rig and returns its one-line JSON
// answer. A rig that does not answer within 5 s is taken to have no command
// protocol (ErrNoCommands) from then on.
func (r *Rig) Command(line string) (json.RawMessage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.noCommands {
		return nil, ErrNoCommands
	}
	if _, err := io.WriteString(r.stdin, line+"\n"); err != nil {
		return nil, fmt.Errorf("writing %q to the rig: %w", line, err)
	}
	select {
	case answer, ok := <-r.lines:
		if !ok {
			return nil, fmt.Errorf("tank-testrig exited:\n%s", r.Stderr())
		}
		var reply struct {
			Error *string `json:"error"`
		}
		if err := json.Unmarshal([]byte(answer), &reply); err != nil {
			return nil, fmt.Errorf("rig answer to %q: %v in %q", line, err, answer)
		}
		if reply.Error != nil {
			return nil, fmt.Errorf("rig answer to %q: %s", line, *reply.Error)
		}
		return json.RawMessage(answer), nil
	case <-time.After(5 * time.Second):
		r.noCommands = true
		return nil, ErrNoCommands
	}
}

// TokenRequests returns every token request logged since the last Clear.
func (r *Rig) TokenRequests() ([]TokenRequest, error) {
	raw, err := r.Command("token-requests")
	if err != nil {
		return nil, err
	}
	var answer struct {
		TokenRequests *[]TokenRequest `json:"token_requests"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, fmt.Errorf("token-requests: %v in %s", err, raw)
	}
	if answer.TokenRequests == nil {
		return nil, fmt.Errorf("token-requests: no token_requests in %s", raw)
	}
	return *answer.TokenRequests, nil
}

// CDNRequest is one request the rig's CDN saw.
type CDNRequest struct {
	Method        string `json:"method"`
	Path          string `json:"path"`
	Authorization bool   `json:"authorization"`
	Status        int    `json:"status"`
}

// CDNRequests returns every CDN request logged since the last Clear.
func (r *Rig) CDNRequests() ([]CDNRequest, error) {
	raw, err := r.Command("cdn-requests")
	if err != nil {
		return nil, err
	}
	var answer struct {
		CDNRequests *[]CDNRequest `json:"cdn_requests"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, fmt.Errorf("cdn-requests: %v in %s", err, raw)
	}
	if answer.CDNRequests == nil {
		return nil, fmt.Errorf("cdn-requests: no cdn_requests in %s", raw)
	}
	return *answer.CDNRequests, nil
}

// Clear empties the rig's request logs.
func (r *Rig) Clear() error {
	raw, err := r.Command("clear")
	if err != nil {
		return err
	}
	var answer struct {
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil || !answer.OK {
		return fmt.Errorf("clear: rig answered %s", raw)
	}
	return nil
}

// BlobPath is where a registry's storage keeps a blob's bytes.
func BlobPath(storage, digest string) string {
	algo, hex, _ := strings.Cut(digest, ":")
	return filepath.Join(storage, "docker", "registry", "v2", "blobs", algo, hex[:2], hex, "data")
}

// CorruptBlob replaces a blob's bytes in one registry's storage with as many
// different bytes. The rig hard-links one copy of each blob into every
// registry, so the file is replaced (renamed over), never written in
// place: the other registries keep the good bytes.
func CorruptBlob(storage, digest string) error {
	path := BlobPath(storage, digest)
	good, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	bad := make([]byte, len(good))
	for i, b := range good {
		bad[i] = ^b
	}
	tmp := path + ".corrupt"
	if err := os.WriteFile(tmp, bad, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	tee bool
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tee {
		os.Stderr.Write(p)
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// RunTests starts a rig, hands it to use, runs the package's tests and
// stops the rig; it returns the exit code for TestMain. Both test packages
// share it so that start-up, shutdown and failure reporting are the same.
func RunTests(m *testing.M, name string, use func(*Rig)) (code int) {
	r, err := Start(Binary(), 90*time.Second)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot start the rig: %v\n", name, err)
		return 1
	}
	use(r)
	defer func() {
		if err := r.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: the rig did not stop cleanly: %v\n", name, err)
			code = 1
		}
		if code != 0 {
			fmt.Fprintf(os.Stderr, "--- tank-testrig stderr:\n%s", r.Stderr())
		}
	}()
	return m.Run()
}
