package tank

/*
#include "tank.h"
*/
import "C"

import "context"

// UnpackOptions are Unpack's optional settings; the zero value (or a nil
// *UnpackOptions) means the defaults: rootless, and rootfs must not exist.
type UnpackOptions struct {
	// KeepOwners takes owners and groups from the layers (lchown, numeric
	// ids; user names are ignored), makes device nodes and applies every
	// xattr (security.capability included). It needs root: without it
	// the call fails with ErrBadInput before any work. Without
	// KeepOwners, files belong to the caller, device nodes are skipped
	// (FIFOs are made) and only user.* xattrs are applied.
	KeepOwners bool
	// Replace replaces an existing rootfs: the new tree is built beside
	// it and swapped in whole, then the old one is removed, so rootfs is
	// always either the old tree or the new one. Without Replace an
	// existing rootfs is an error matching ErrIO that names it.
	Replace bool
	// Progress, when not nil, is called on the calling goroutine with the
	// layer bytes read so far and the layers' total size, as in
	// FetchBlobToFile: at most every 100 ms, and once with done == total
	// before a nil return. If it panics, Unpack is cancelled and returns
	// a *PanicError.
	Progress func(done, total int64)
}

// unpackFlags is the TANK_UNPACK_* bits for the two settings.
func unpackFlags(keepOwners, replace bool) C.uint32_t {
	var flags C.uint32_t
	if keepOwners {
		flags |= C.TANK_UNPACK_KEEP_OWNERS
	}
	if replace {
		flags |= C.TANK_UNPACK_REPLACE
	}
	return flags
}

// Unpack unpacks the image image of the OCI image layout layout (one that
// Pull, skopeo or umoci wrote) into the new directory rootfs: a root
// filesystem to run.
//
// image is an index.json entry's org.opencontainers.image.ref.name exactly
// as written (Pull writes the normalized Reference.Name; skopeo writes
// what it was given), else a reference that normalizes to one ("alpine"
// finds "docker.io/library/alpine:latest"), or the digest "sha256:..." of
// an entry's image manifest. An image that names an index, or nothing, is
// an error matching ErrBadInput whose message lists the names the layout
// has.
//
// The layers are applied in order, each read once: decompressed (tar,
// gzip or zstd, OCI or Docker media types) and applied as it streams, with
// its digest and its diff_id checked in the same pass. Whiteouts and
// opaque directories remove what the layers below put there. No entry
// lands outside rootfs: links met on the way resolve as if rootfs were
// "/". A layer that cannot be applied is an error matching ErrLayer (see
// its Reason* constants); a blob that does not match its digest matches
// ErrDigestMismatch.
//
// The tree is built in a temporary sibling of rootfs and renamed into
// place once every layer is applied; on any failure, and when ctx ends
// (within 500 ms, an error matching ErrCancelled and ctx.Err()), the
// temporary tree is removed before Unpack returns, and rootfs is as it
// was.
func Unpack(ctx context.Context, layout, image, rootfs string, opts *UnpackOptions) error {
	if opts == nil {
		opts = &UnpackOptions{}
	}
	args, err := newCArgs("layout", layout, "image", image, "rootfs", rootfs)
	if err != nil {
		return err
	}
	defer args.free()
	var cerr *C.TankError
	cancel := newCanceller(ctx)
	defer cancel.stop()
	report := newProgressFn(opts.Progress, cancel)
	defer report.release()
	status := C.tank_unpack(args[0], args[1], args[2], unpackFlags(opts.KeepOwners, opts.Replace),
		cancel.ptr, report.fn, report.user, &cerr)
	if status != C.TANK_OK {
		return report.outcome(cancel.fail(status, cerr))
	}
	return report.outcome(nil)
}
