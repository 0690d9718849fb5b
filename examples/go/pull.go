package tank

/*
#include <stdlib.h>
#include "tank.h"
*/
import "C"

import (
	"context"
	"math"
	"strings"
	"unsafe"
)

// Reference is an image reference as people write it ("alpine",
// "ghcr.io/org/app:1.2", "localhost:5000/x@sha256:..."), split and
// normalized as Docker does. Fields that are absent are "".
type Reference struct {
	// Registry is the host to contact, as FetchManifest takes it:
	// "registry-1.docker.io" for Docker Hub, "ghcr.io", "localhost:5000",
	// with the reference's "http://" or "https://" prefix when it had one.
	Registry string
	// Repository is the full repository path, "library/alpine" for
	// "alpine".
	Repository string
	// Tag is "latest" when the reference gave neither a tag nor a digest,
	// "" when it gave only a digest.
	Tag string
	// Digest is "sha256:<hex>", or "".
	Digest string
	// Name is the normalized reference as people read it, without a
	// scheme: "docker.io/library/alpine:latest". Pull files the image
	// under this name in the layout's index.json.
	Name string
}

// ParseReference parses s with Docker's normalization, without any
// request. A malformed reference is a *Error matching ErrBadInput whose
// message names what is wrong.
func ParseReference(s string) (Reference, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return Reference{}, badInput(ReasonBadInput, "reference %q contains a NUL byte", s)
	}
	cs := C.CString(s)
	defer C.free(unsafe.Pointer(cs))
	var out C.TankReference
	var cerr *C.TankError
	if status := C.tank_reference_parse(cs, &out, &cerr); status != C.TANK_OK {
		return Reference{}, takeError(status, cerr)
	}
	defer C.tank_reference_release(&out)
	return Reference{
		Registry:   goString(out.registry),
		Repository: goString(out.repository),
		Tag:        goString(out.tag),
		Digest:     goString(out.digest),
		Name:       goString(out.name),
	}, nil
}

// PullOptions are Pull's optional settings; the zero value (or a nil
// *PullOptions) means the defaults.
type PullOptions struct {
	// Platform picks the image out of an index: "os/arch[/variant]", e.g.
	// "linux/arm64" or "linux/arm/v7"; "" means this host's. Aliases are
	// normalized (aarch64 is arm64, which means arm64/v8) and attestation
	// entries never match.
	Platform string
	// Jobs is how many blobs download at once; 0 means 4.
	Jobs int
	// Cache is the token cache to use; nil still earns a single token for
	// the whole pull.
	Cache *Cache
	// Progress, when not nil, is called on the calling goroutine with the
	// bytes so far over all of the image's blobs (config and layers) and
	// their total, as in FetchBlobToFile: at most every 100 ms while bytes
	// arrive, and once with done == total before a nil return. With a
	// Rootfs each blob byte counts twice, once downloaded and once
	// applied, of twice the image's blob bytes. If it panics, Pull is
	// cancelled and returns a *PanicError.
	Progress func(done, total int64)
	// Rootfs, when not "", is a directory to unpack the image into, as
	// Unpack does: each layer is applied as soon as it and every layer
	// below it are in the layout, while the later ones still download.
	// The directory must not exist unless ReplaceRootfs is set.
	Rootfs string
	// KeepOwners is UnpackOptions.KeepOwners for Rootfs (needs root).
	KeepOwners bool
	// ReplaceRootfs is UnpackOptions.Replace for Rootfs: an existing
	// Rootfs is replaced whole.
	ReplaceRootfs bool
}

// Pull pulls the image reference ("alpine", "ghcr.io/org/app:1.2",
// "localhost:5000/x@sha256:...", see ParseReference) into the OCI image
// layout directory layout, creating it when missing, and returns the image
// manifest it pulled (for an index, the entry for opts.Platform).
//
// The config and layers arrive opts.Jobs at once, each verified against
// its digest, into layout/blobs/<alg>/<hex>; partial downloads wait in
// layout/ingest and resume on the next pull, and blobs already in the
// layout are not fetched again. index.json gets one entry for the image,
// annotated with the reference's normalized name (Reference.Name) as
// org.opencontainers.image.ref.name, replacing any entry of that name; it
// is written last, in one step, so a failed pull leaves the layout valid.
//
// With opts.Rootfs the image is also unpacked into that directory, as
// Unpack does (its errors included), layers applied while later ones
// still download.
//
// An index without an image for the platform is a *Error matching
// ErrBadInput with Reason "no_matching_platform", whose message names the
// platforms the index has. ctx works as in FetchManifestContext.
func Pull(ctx context.Context, reference, layout string, opts *PullOptions) (*Manifest, error) {
	if opts == nil {
		opts = &PullOptions{}
	}
	if opts.Jobs < 0 || int64(opts.Jobs) > math.MaxUint32 {
		return nil, badInput(ReasonBadInput, "jobs %d is not between 0 and %d", opts.Jobs, uint32(math.MaxUint32))
	}
	if opts.Rootfs == "" && (opts.KeepOwners || opts.ReplaceRootfs) {
		// Without a rootfs they would be silently ignored.
		return nil, badInput(ReasonBadInput, "KeepOwners and ReplaceRootfs need a Rootfs")
	}
	args, err := newCArgs("reference", reference, "layout", layout, "platform", opts.Platform, "rootfs", opts.Rootfs)
	if err != nil {
		return nil, err
	}
	defer args.free()
	var platform *C.char // NULL: the host's
	if opts.Platform != "" {
		platform = args[2]
	}
	cc, err := opts.Cache.acquire()
	if err != nil {
		return nil, err
	}
	defer opts.Cache.release()
	var out C.TankManifest
	var cerr *C.TankError
	cancel := newCanceller(ctx)
	defer cancel.stop()
	report := newProgressFn(opts.Progress, cancel)
	defer report.release()
	var status C.TankStatus
	if opts.Rootfs == "" {
		status = C.tank_pull(args[0], args[1], platform, C.uint32_t(opts.Jobs), cc, cancel.ptr,
			report.fn, report.user, &out, &cerr)
	} else {
		status = C.tank_pull_unpack(args[0], args[1], args[3], platform, C.uint32_t(opts.Jobs),
			unpackFlags(opts.KeepOwners, opts.ReplaceRootfs), cc, cancel.ptr,
			report.fn, report.user, &out, &cerr)
	}
	if status != C.TANK_OK {
		return nil, report.outcome(cancel.fail(status, cerr))
	}
	defer C.tank_manifest_release(&out)
	if err := report.outcome(nil); err != nil {
		return nil, err
	}
	return copyManifest(&out)
}
