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

// Info is the rig's JSON line (testrig/src/info.rs). The pointer fields
// are nil when the rig was started without the registries they describe
// (Everything starts them all).
type Info struct {
	Plain PlainRegistry `json:"plain"`
	Token TokenRegistry `json:"token"`
	CDN   CDNRegistry   `json:"cdn"`
	// TLS: the https registries (on by default).
	TLS *TLSRegistry `json:"tls"`
	// TLSToken: an https token registry whose realm is plain http
	// (--tls-token).
	TLSToken *TLSTokenRegistry `json:"tls_token"`
	// BasicRegistry: the htpasswd (Basic auth) registry (--basic).
	BasicRegistry *BasicRegistry `json:"basic_registry"`
	// Private: the token registries' private/* repositories and the user
	// who may pull them.
	Private *Private `json:"private"`
	// BasicAuth is the user the token issuers give push to.
	BasicAuth struct {
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"basic_auth"`
	Images Images `json:"images"`
}

// Everything is the flag that starts every registry the rig has (--basic,
// --client-cert and --tls-token on top of the default ones).
const Everything = "--everything"

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

// TLSRegistry describes the https registries: no auth, the plain
// registry's storage, a server certificate for 127.0.0.1 and localhost
// signed by the rig's own CA (in no system store). Pull from them as
// "https://" + Registry.
type TLSRegistry struct {
	Registry string `json:"registry"`
	// RedirectingRegistry redirects every blob read to CDN, an http:// URL
	// a client must refuse to follow.
	RedirectingRegistry string `json:"redirecting_registry"`
	CDN                 string `json:"cdn"`
	CDNRealm            string `json:"cdn_realm"`
	// CAPEM is the path of the CA certificate (PEM) to trust.
	CAPEM   string `json:"ca_pem"`
	Storage string `json:"storage"`
	// CertsDir is a docker/podman certs.d directory: <host:port>/ca.crt
	// for every https registry (127.0.0.1 and localhost), plus client.cert
	// and client.key for ClientCertRegistry.
	CertsDir string `json:"certs_dir"`
	// ClientCertRegistry requires a client certificate signed by
	// ClientCAPEM (--client-cert); "" without it. The *PEM fields are paths.
	ClientCertRegistry string `json:"client_cert_registry"`
	ClientCAPEM        string `json:"client_ca_pem"`
	ClientCertPEM      string `json:"client_cert_pem"`
	ClientKeyPEM       string `json:"client_key_pem"`
}

// TLSTokenRegistry is an https registry with token auth whose realm is
// plain http: the token registry's storage (private repositories
// included) and its users.
type TLSTokenRegistry struct {
	Registry string `json:"registry"`
	Realm    string `json:"realm"`
	Service  string `json:"service"`
	CAPEM    string `json:"ca_pem"`
	Storage  string `json:"storage"`
}

// BasicRegistry is a registry with htpasswd auth: no or wrong credentials
// draw 401 with a Basic challenge. Its storage holds every fixture.
type BasicRegistry struct {
	Registry string `json:"registry"`
	Realm    string `json:"realm"`
	Username string `json:"username"`
	Password string `json:"password"`
	Htpasswd string `json:"htpasswd"`
	Storage  string `json:"storage"`
}

// Private describes the token registries' private repositories: the four
// standard fixtures again under Prefix, with the same tags and digests.
// Anonymous tokens get no actions on them (the registry answers 401);
// Username's tokens get pull.
type Private struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// IdentityToken is Username's identity (refresh) token.
	IdentityToken         string `json:"identity_token"`
	IdentityTokenUsername string `json:"identity_token_username"`
	Prefix                string `json:"prefix"`
	OCIImage              string `json:"oci_image"`
	OCIIndex              string `json:"oci_index"`
	DockerImage           string `json:"docker_image"`
	DockerList            string `json:"docker_list"`
}

type Images struct {
	OCIImage    Image `json:"oci_image"`
	OCIIndex    Index `json:"oci_index"`
	DockerImage Image `json:"docker_image"`
	DockerList  Index `json:"docker_list"`
	// Large is tank/large:v1, one generated layer of --large-mib MiB; nil
	// without that flag.
	Large *Image `json:"large"`
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
	Which         string   `json:"which"`  // "token", "cdn" or "tls-token"
	Method        string   `json:"method"` // "GET", or "POST" for OAuth2
	Service       *string  `json:"service"`
	Scopes        []string `json:"scopes"`
	Authorization bool     `json:"authorization"`
	Username      *string  `json:"username"` // the Basic user name sent
	Account       *string  `json:"account"`
	GrantType     *string  `json:"grant_type"` // POST: "password" or "refresh_token"
	ClientID      *string  `json:"client_id"`
	Offline       bool     `json:"offline"`
	Subject       *string  `json:"subject"` // whom the issued token is for; nil when anonymous
	Status        int      `json:"status"`
}

// ErrNoCommands means the rig binary does not answer stdin commands.
var ErrNoCommands = errors.New("the rig does not answer stdin commands (token-requests, cdn-requests, clear); rebuild tank-testrig")

// ErrAttached means the rig is another process's (Attach): its commands
// are that process's to send.
var ErrAttached = errors.New("the rig was attached from " + EnvInfo + ": it takes no commands from this process")

// EnvInfo is the environment variable through which a test process hands
// its rig to a child test process it runs (see ChildEnv): RunTests in the
// child attaches to that rig instead of starting one.
const EnvInfo = "TANK_RIG_INFO"

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

// Start runs the rig binary with args (its flags, e.g. Everything) and
// waits (up to startTimeout) for its info.
func Start(binary string, startTimeout time.Duration, args ...string) (*Rig, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("%v: build it with `cargo build --release -p tank -p tank-testrig` from the crate root", err)
	}
	r := &Rig{
		cmd:    exec.Command(binary, args...),
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
	for _, a := range args {
		if a != Everything {
			continue
		}
		i := &r.Info
		if i.TLS == nil || i.TLS.ClientCertRegistry == "" || i.TLS.CertsDir == "" ||
			i.TLSToken == nil || i.BasicRegistry == nil || i.Private == nil {
			r.Stop()
			return nil, fmt.Errorf("tank-testrig %s: its info lacks a registry (tls, its client-cert one, tls_token, basic_registry or private); rebuild tank-testrig", Everything)
		}
	}
	return r, nil
}

// Attach gives a Rig for a rig another process started, from its info
// JSON: the registries work, commands (Command, Clear, ...) return
// ErrAttached, Stop does nothing.
func Attach(infoJSON string) (*Rig, error) {
	r := &Rig{stderr: &lockedBuffer{}}
	if err := json.Unmarshal([]byte(infoJSON), &r.Info); err != nil {
		return nil, fmt.Errorf("%s: %v", EnvInfo, err)
	}
	if r.Info.Plain.Registry == "" || r.Info.Token.Registry == "" {
		return nil, fmt.Errorf("%s lacks the plain or token registry", EnvInfo)
	}
	return r, nil
}

// ChildEnv is the environment entry ("TANK_RIG_INFO=...") that makes a
// child test process attach to this rig.
func (r *Rig) ChildEnv() (string, error) {
	b, err := json.Marshal(r.Info)
	if err != nil {
		return "", err
	}
	return EnvInfo + "=" + string(b), nil
}

// Stderr is what the rig wrote to stderr so far.
func (r *Rig) Stderr() string { return r.stderr.String() }

// Stop closes the rig's stdin and waits for it to exit (killing it after
// 20 s). Safe to call more than once.
func (r *Rig) Stop() error {
	r.stopOnce.Do(func() {
		if r.cmd == nil {
			return // attached: the rig is another process's
		}
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
	if r.cmd == nil {
		return nil, ErrAttached
	}
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
	Method        string  `json:"method"`
	Path          string  `json:"path"`
	Authorization bool    `json:"authorization"`
	Username      *string `json:"username"`  // a Basic user name, if one was sent
	CDNToken      bool    `json:"cdn_token"` // the CDN's own token was sent
	Status        int     `json:"status"`
	// Connection is the client's "addr:port": one per TCP connection.
	Connection *string `json:"connection"`
	Range      *string `json:"range"` // the Range header as sent
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

// RunTests starts a rig with args (its flags), hands it to use, runs the
// package's tests and stops the rig; it returns the exit code for
// TestMain. Both test packages share it so that start-up, shutdown and
// failure reporting are the same.
//
// With EnvInfo set, it attaches to that rig instead (a child process run
// by a test of the same package).
func RunTests(m *testing.M, name string, use func(*Rig), args ...string) (code int) {
	var r *Rig
	var err error
	if info := os.Getenv(EnvInfo); info != "" {
		r, err = Attach(info)
	} else {
		r, err = Start(Binary(), 90*time.Second, args...)
	}
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
		if code != 0 && r.cmd != nil {
			fmt.Fprintf(os.Stderr, "--- tank-testrig stderr:\n%s", r.Stderr())
		}
	}()
	return m.Run()
}
