// Package tank pulls OCI and Docker images from registries: manifests
// (image manifests, OCI indexes, Docker manifest lists) and blobs verified
// against their digest. It wraps libtank, a Rust library with a C ABI,
// through cgo.
//
// Calls block the calling goroutine while libtank's own threads do the I/O;
// call them from as many goroutines as you like. A *Cache shared by the
// calls of one pull earns each bearer token once (concurrent misses share a
// single token request); a nil *Cache means no caching.
//
//	cache := tank.NewCache(0)
//	defer cache.Close()
//	m, err := tank.FetchManifest("ghcr.io", "org/app", "v1.2", cache)
//	if err != nil { ... }
//	for _, l := range m.Layers {
//		b, err := tank.FetchBlobSized("ghcr.io", "org/app", l.Digest, l.Size, cache)
//		...
//	}
//
// A descriptor's digest and size are the registry's word: the calls check
// the bytes against them, but a digest naming a file must be validated
// first (see the package Example).
//
// Pull does all of that for one image reference ("alpine",
// "ghcr.io/org/app:v1.2") and writes the image into an OCI image layout
// directory.
//
// Registries are "host[:port]"; loopback hosts speak plain HTTP and every
// other host HTTPS, and an "http://" or "https://" prefix overrides that.
// Failed calls return a *Error; see the Err* sentinels. A call whose
// progress func panicked returns a *PanicError instead.
//
// Memory: every result is copied into Go memory and the C memory is
// released before the call returns. Go keeps no pointer into C memory
// except a Cache's handle, and C keeps no pointer into Go memory.
package tank

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#include <stdlib.h>
#include "tank.h"
*/
import "C"

import (
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Version is libtank's version, e.g. "1.0.0".
func Version() string {
	return C.GoString(C.tank_version())
}

// Platform is what an index entry says it runs on.
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

// String formats the platform as "os/architecture[/variant]".
func (p Platform) String() string {
	if p.Variant == "" {
		return p.OS + "/" + p.Architecture
	}
	return p.OS + "/" + p.Architecture + "/" + p.Variant
}

// ParsePlatform parses "os/architecture[/variant]".
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Platform{}, fmt.Errorf("tank: platform %q is not os/architecture[/variant]", s)
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// Descriptor points at content: an image's config or a layer, or an index
// entry (which has a Platform when the index gives one). Fields the
// registry's JSON left out are empty.
type Descriptor struct {
	MediaType string    `json:"mediaType"`
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	Platform  *Platform `json:"platform,omitempty"`
	// ArtifactType is OCI 1.1's artifactType (a referrer, an artifact's
	// index entry), or "".
	ArtifactType string `json:"artifactType,omitempty"`
	// Annotations are the descriptor's annotations; nil when it has none.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Manifest is a fetched manifest: an image manifest (Config and Layers set)
// or an index / manifest list (Manifests set).
type Manifest struct {
	// MediaType is the Content-Type as sent, else the JSON's mediaType,
	// else the OCI image manifest type.
	MediaType string `json:"mediaType"`
	// Digest is "sha256:<hex>" (or sha512 when the registry says so), the
	// digest of Raw.
	Digest string `json:"digest"`
	// Raw holds the bytes exactly as the registry sent them. It is left
	// out of JSON encodings: it is itself the JSON document.
	Raw []byte `json:"-"`
	// Config is an image manifest's config; nil for an index.
	Config *Descriptor `json:"config,omitempty"`
	// Layers are an image manifest's layers, in order.
	Layers []Descriptor `json:"layers,omitempty"`
	// Manifests are an index's entries, with their platforms.
	Manifests []Descriptor `json:"manifests,omitempty"`
	// ArtifactType is the manifest's own artifactType (an OCI 1.1
	// artifact), or "".
	ArtifactType string `json:"artifactType,omitempty"`
	// Annotations are the manifest's own annotations; nil when none.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Subject is the manifest this one refers to (a referrer's), or nil.
	Subject *Descriptor `json:"subject,omitempty"`
}

// ForPlatform returns the first index entry for p. OS and Architecture must
// match; Variant too unless p.Variant is empty.
func (m *Manifest) ForPlatform(p Platform) (Descriptor, bool) {
	for _, d := range m.Manifests {
		if d.Platform == nil || d.Platform.OS != p.OS || d.Platform.Architecture != p.Architecture {
			continue
		}
		if p.Variant == "" || d.Platform.Variant == p.Variant {
			return d, true
		}
	}
	return Descriptor{}, false
}

// DefaultTTL is the longest a cached token lives when NewCache is given 0.
const DefaultTTL = 60 * time.Second

// Cache is a bearer-token cache shared by the calls of one pull, keyed by
// registry and repository. It is safe for concurrent use. Close it when
// done; a finalizer frees a forgotten one, but do not rely on it.
//
// Close waits for calls already using the cache to return; calls made
// after Close fail with ErrCacheClosed.
type Cache struct {
	mu  sync.RWMutex
	ptr *C.TankCache // nil once closed
}

// liveCaches counts the libtank caches made and not yet freed, so that a
// test can see the finalizer free the forgotten ones.
var liveCaches atomic.Int64

// NewCache makes a token cache whose tokens live at most ttl (less when the
// token issuer says so). A ttl of 0 or less means DefaultTTL; ttl is
// rounded up to whole milliseconds.
func NewCache(ttl time.Duration) *Cache {
	var p *C.TankCache
	if ttl <= 0 {
		p = C.tank_cache_new()
	} else {
		ms := uint64((ttl + time.Millisecond - 1) / time.Millisecond)
		p = C.tank_cache_new_with_ttl(C.uint64_t(ms))
	}
	if p == nil {
		panic("tank: tank_cache_new returned NULL (out of memory)")
	}
	liveCaches.Add(1)
	c := &Cache{ptr: p}
	runtime.SetFinalizer(c, (*Cache).Close)
	return c
}

// Close frees the cache. It waits for calls using the cache to return, is
// idempotent, and always returns nil. Closing a nil *Cache is a no-op.
func (c *Cache) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ptr != nil {
		C.tank_cache_free(c.ptr)
		liveCaches.Add(-1)
		c.ptr = nil
		runtime.SetFinalizer(c, nil)
	}
	return nil
}

// acquire read-locks the cache for the length of one C call and returns
// its handle (nil for a nil *Cache). After a nil error, defer release: a
// lock left held makes Close wait forever.
func (c *Cache) acquire() (*C.TankCache, error) {
	if c == nil {
		return nil, nil
	}
	c.mu.RLock()
	if c.ptr == nil {
		c.mu.RUnlock()
		return nil, badInput(reasonCacheClosed, "cache used after Close")
	}
	return c.ptr, nil
}

func (c *Cache) release() {
	if c != nil {
		c.mu.RUnlock()
	}
}

// cArgs holds the C copies of a call's string arguments.
type cArgs []*C.char

// newCArgs checks and copies named arguments (name, value, name, value,
// ...). C strings end at the first NUL, so a Go string holding one would
// be silently cut short: it is rejected instead, like any other bad
// argument, before any request.
func newCArgs(nv ...string) (cArgs, error) {
	a := make(cArgs, len(nv)/2)
	for i := range a {
		name, value := nv[2*i], nv[2*i+1]
		if strings.IndexByte(value, 0) >= 0 {
			return nil, badInput(ReasonBadInput, "%s %q contains a NUL byte", name, value)
		}
	}
	for i := range a {
		a[i] = C.CString(nv[2*i+1])
	}
	return a, nil
}

func (a cArgs) free() {
	for i, p := range a {
		C.free(unsafe.Pointer(p))
		a[i] = nil
	}
}

// FetchManifest fetches repo:reference from registry. reference is a tag or
// a digest ("sha256:<64 hex>"); a digest is checked against the bytes.
// cache may be nil.
func FetchManifest(registry, repo, reference string, cache *Cache) (*Manifest, error) {
	return FetchManifestContext(context.Background(), registry, repo, reference, cache)
}

// FetchManifestContext is FetchManifest with a context: when ctx is
// cancelled or expires the call ends within 500 ms, and its error matches
// both ErrCancelled and ctx.Err() (context.Canceled or
// context.DeadlineExceeded) under errors.Is.
func FetchManifestContext(ctx context.Context, registry, repo, reference string, cache *Cache) (*Manifest, error) {
	args, err := newCArgs("registry", registry, "repo", repo, "reference", reference)
	if err != nil {
		return nil, err
	}
	defer args.free()
	cc, err := cache.acquire()
	if err != nil {
		return nil, err
	}
	defer cache.release()
	var out C.TankManifest
	var cerr *C.TankError
	cancel := newCanceller(ctx)
	defer cancel.stop()
	status := C.tank_manifest_with(args[0], args[1], args[2], cc, cancel.ptr, &out, &cerr)
	if status != C.TANK_OK {
		return nil, cancel.fail(status, cerr)
	}
	defer C.tank_manifest_release(&out)
	return copyManifest(&out)
}

// copyManifest copies everything m points at into Go memory.
func copyManifest(m *C.TankManifest) (*Manifest, error) {
	out := &Manifest{
		MediaType:    goString(m.media_type),
		Digest:       goString(m.digest),
		Raw:          copyBytes(m.raw, m.raw_len),
		ArtifactType: goString(m.artifact_type),
		Annotations:  copyAnnotations(m.annotations, m.annotations_len),
	}
	var err error
	if m.config != nil {
		var d Descriptor
		if d, err = copyDescriptor(m.config); err != nil {
			return nil, err
		}
		out.Config = &d
	}
	if m.subject != nil {
		var d Descriptor
		if d, err = copyDescriptor(m.subject); err != nil {
			return nil, err
		}
		out.Subject = &d
	}
	if out.Layers, err = copyDescriptors(m.layers, m.layers_len); err != nil {
		return nil, err
	}
	if out.Manifests, err = copyDescriptors(m.manifests, m.manifests_len); err != nil {
		return nil, err
	}
	return out, nil
}

func copyDescriptors(p *C.TankDescriptor, n C.size_t) ([]Descriptor, error) {
	if n == 0 || p == nil {
		return nil, nil
	}
	in := unsafe.Slice(p, int(n))
	out := make([]Descriptor, len(in))
	for i := range in {
		d, err := copyDescriptor(&in[i])
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

func copyDescriptor(d *C.TankDescriptor) (Descriptor, error) {
	out := Descriptor{
		MediaType:    goString(d.media_type),
		Digest:       goString(d.digest),
		ArtifactType: goString(d.artifact_type),
		Annotations:  copyAnnotations(d.annotations, d.annotations_len),
	}
	if uint64(d.size) > math.MaxInt64 {
		// The OCI spec makes size an int64; libtank hands out a uint64.
		return Descriptor{}, &Error{
			Status:  StatusProtocol,
			Reason:  ReasonInvalidManifestJSON,
			Message: fmt.Sprintf("descriptor %s has size %d, beyond int64", out.Digest, uint64(d.size)),
		}
	}
	out.Size = int64(d.size)
	// libtank sets os and architecture (possibly to "") whenever the JSON
	// has a platform object.
	if d.os != nil || d.architecture != nil {
		out.Platform = &Platform{
			OS:           goString(d.os),
			Architecture: goString(d.architecture),
			Variant:      goString(d.variant),
		}
	}
	return out, nil
}

// copyAnnotations copies n key/value pairs laid out key, value, key,
// value... (libtank's annotations); nil for none.
func copyAnnotations(p **C.char, n C.size_t) map[string]string {
	if n == 0 || p == nil {
		return nil
	}
	flat := unsafe.Slice(p, 2*int(n))
	out := make(map[string]string, int(n))
	for i := 0; i < len(flat); i += 2 {
		out[goString(flat[i])] = goString(flat[i+1])
	}
	return out
}

// borrow views n bytes of C memory at p as a slice, without copying. The
// slice is valid only until that memory is released.
func borrow(p *C.uint8_t, n C.size_t) []byte {
	if n == 0 || p == nil {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

// copyBytes copies n bytes at p into Go memory. Unlike C.GoBytes it takes a
// size_t, so it works for buffers over 2 GiB.
func copyBytes(p *C.uint8_t, n C.size_t) []byte {
	out := make([]byte, int(n))
	copy(out, borrow(p, n))
	return out
}

// unknownSize asks fetchBlob for tank_blob rather than tank_blob_sized.
const unknownSize = -1

// fetchBlob runs tank_blob, or tank_blob_sized when size is not
// unknownSize. On success the caller owns the returned C buffer and must
// call C.tank_bytes_release on it.
func fetchBlob(ctx context.Context, registry, repo, digest string, size int64, cache *Cache) (C.TankBytes, error) {
	var out C.TankBytes
	if size < 0 && size != unknownSize {
		return out, &Error{Status: StatusBadInput, Reason: ReasonBadInput, Message: fmt.Sprintf("size %d is negative", size)}
	}
	args, err := newCArgs("registry", registry, "repo", repo, "digest", digest)
	if err != nil {
		return out, err
	}
	defer args.free()
	cc, err := cache.acquire()
	if err != nil {
		return out, err
	}
	defer cache.release()
	var cerr *C.TankError
	var status C.TankStatus
	cancel := newCanceller(ctx)
	defer cancel.stop()
	if size == unknownSize {
		status = C.tank_blob_with(args[0], args[1], args[2], cc, cancel.ptr, &out, &cerr)
	} else {
		status = C.tank_blob_sized_with(args[0], args[1], args[2], C.uint64_t(size), cc, cancel.ptr, &out, &cerr)
	}
	if status != C.TANK_OK {
		return out, cancel.fail(status, cerr)
	}
	return out, nil
}

// FetchBlob fetches the blob digest from repo on registry, verified against
// the digest while it arrives. digest must be "sha256:" + 64 or "sha512:" +
// 128 lowercase hex digits, else ErrBadInput before any request. cache may
// be nil.
//
// libtank holds the whole blob in memory and this copies it once into Go
// memory, so a blob of N bytes briefly takes 2N, and N is whatever the
// registry sends: when the size is known (a Descriptor's), use
// FetchBlobSized, and for a layer, FetchBlobToFile.
func FetchBlob(registry, repo, digest string, cache *Cache) ([]byte, error) {
	return FetchBlobContext(context.Background(), registry, repo, digest, cache)
}

// FetchBlobContext is FetchBlob with a context, as FetchManifestContext.
func FetchBlobContext(ctx context.Context, registry, repo, digest string, cache *Cache) ([]byte, error) {
	return fetchBlobCopy(ctx, registry, repo, digest, unknownSize, cache)
}

// FetchBlobSized is FetchBlob for a blob whose size the caller knows (a
// Descriptor's Size): the blob must be exactly that long, and libtank
// never reads past it, so an untrusted registry cannot make it buffer more.
// A wrong size is a *Error with Status StatusProtocol and Reason
// "length_mismatch".
func FetchBlobSized(registry, repo, digest string, size int64, cache *Cache) ([]byte, error) {
	return FetchBlobSizedContext(context.Background(), registry, repo, digest, size, cache)
}

// FetchBlobSizedContext is FetchBlobSized with a context, as
// FetchManifestContext.
func FetchBlobSizedContext(ctx context.Context, registry, repo, digest string, size int64, cache *Cache) ([]byte, error) {
	if size < 0 {
		return nil, &Error{Status: StatusBadInput, Reason: ReasonBadInput, Message: fmt.Sprintf("size %d is negative", size)}
	}
	return fetchBlobCopy(ctx, registry, repo, digest, size, cache)
}

func fetchBlobCopy(ctx context.Context, registry, repo, digest string, size int64, cache *Cache) ([]byte, error) {
	b, err := fetchBlob(ctx, registry, repo, digest, size, cache)
	if err != nil {
		return nil, err
	}
	defer C.tank_bytes_release(&b)
	return copyBytes(b.data, b.len), nil
}

// WriteBlob fetches a blob as FetchBlob does and writes it to w straight
// from libtank's buffer, without copying it into Go memory. Like every
// io.Writer, w must not keep the slice it is given. It returns the number
// of bytes written; a write error is returned as is (not as a *Error).
//
// It has no size bound: libtank buffers whatever the registry sends. To
// write a layer to a file, use FetchBlobToFile with the descriptor's size.
func WriteBlob(w io.Writer, registry, repo, digest string, cache *Cache) (int64, error) {
	b, err := fetchBlob(context.Background(), registry, repo, digest, unknownSize, cache)
	if err != nil {
		return 0, err
	}
	defer C.tank_bytes_release(&b)
	p := borrow(b.data, b.len)
	if len(p) == 0 {
		return 0, nil
	}
	n, err := w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return int64(n), err
}

// FetchBlobToFile fetches the blob digest into the file at path, verified
// against the digest as it is written; memory stays flat for any size.
// size is the descriptor's size, or any negative number when unknown.
//
// The bytes go to path + ".partial" and are renamed to path once verified
// and flushed. A call that fails after bytes arrived (a dropped connection,
// a cancelled ctx) leaves the partial file, and the next call for path
// resumes from it; a path that already holds the blob is not fetched
// again; two calls for one path at once download it once. A local file
// that cannot be written is an error matching ErrIO.
//
// progress, when not nil, is called on the calling goroutine with the bytes
// so far and the total (0 while unknown): at most every 100 ms while bytes
// arrive, and once with done == total before a nil return. If it panics,
// the call is cancelled and returns a *PanicError. ctx works as in
// FetchManifestContext.
func FetchBlobToFile(ctx context.Context, registry, repo, digest string, size int64, path string,
	cache *Cache, progress func(done, total int64)) error {
	args, err := newCArgs("registry", registry, "repo", repo, "digest", digest)
	if err != nil {
		return err
	}
	defer args.free()
	if strings.IndexByte(path, 0) >= 0 {
		return badInput(ReasonBadInput, "path %q contains a NUL byte", path)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	csize := C.uint64_t(C.TANK_SIZE_UNKNOWN)
	if size >= 0 {
		csize = C.uint64_t(size)
	}
	cc, err := cache.acquire()
	if err != nil {
		return err
	}
	defer cache.release()
	var cerr *C.TankError
	cancel := newCanceller(ctx)
	defer cancel.stop()
	report := newProgressFn(progress, cancel)
	defer report.release()
	status := C.tank_blob_to_file(args[0], args[1], args[2], csize, cpath, cc, cancel.ptr, report.fn, report.user, &cerr)
	if status != C.TANK_OK {
		return report.outcome(cancel.fail(status, cerr))
	}
	return report.outcome(nil)
}
