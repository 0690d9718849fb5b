package tank

/*
#include <stdlib.h>
#include "tank.h"
*/
import "C"

import (
	"context"
	"unsafe"
)

// Tags lists every tag of repo on registry, in the order the registry
// gives them, following its pages (Link: <...>; rel="next", relative or
// absolute, on the registry's own origin only). cache may be nil.
//
// A repository the registry does not know matches ErrNotFound. A Link to
// another origin or back to a page already read is ErrProtocol with
// Reason ReasonInvalidNextLink; a page over 4 MiB, or a listing past
// 100000 pages or 10000000 names, ReasonListTooLarge; a page that is
// neither the spec's JSON nor Docker Hub's, ReasonInvalidList.
func Tags(registry, repo string, cache *Cache) ([]string, error) {
	return TagsContext(context.Background(), registry, repo, cache)
}

// TagsContext is Tags with a context, as FetchManifestContext.
func TagsContext(ctx context.Context, registry, repo string, cache *Cache) ([]string, error) {
	args, err := newCArgs("registry", registry, "repo", repo)
	if err != nil {
		return nil, err
	}
	defer args.free()
	return listStrings(ctx, cache, func(cc *C.TankCache, cancel *C.TankCancel, out *C.TankStrings, cerr **C.TankError) C.TankStatus {
		return C.tank_tags(args[0], args[1], cc, cancel, out, cerr)
	})
}

// Catalog lists every repository name of registry's catalog (GET
// /v2/_catalog), pages and errors as for Tags. The catalog is asked with
// the credentials cache holds for the registry as a whole; a registry
// that does not open its catalog to the caller (Docker Hub opens it to no
// one) answers an HTTP error, most often 401 (ErrUnauthorized).
func Catalog(registry string, cache *Cache) ([]string, error) {
	return CatalogContext(context.Background(), registry, cache)
}

// CatalogContext is Catalog with a context, as FetchManifestContext.
func CatalogContext(ctx context.Context, registry string, cache *Cache) ([]string, error) {
	args, err := newCArgs("registry", registry)
	if err != nil {
		return nil, err
	}
	defer args.free()
	return listStrings(ctx, cache, func(cc *C.TankCache, cancel *C.TankCancel, out *C.TankStrings, cerr **C.TankError) C.TankStatus {
		return C.tank_catalog(args[0], cc, cancel, out, cerr)
	})
}

// listStrings runs one listing call with the cache held and ctx watched,
// and copies its strings into Go memory.
func listStrings(ctx context.Context, cache *Cache,
	call func(*C.TankCache, *C.TankCancel, *C.TankStrings, **C.TankError) C.TankStatus) ([]string, error) {
	cc, err := cache.acquire()
	if err != nil {
		return nil, err
	}
	defer cache.release()
	var out C.TankStrings
	var cerr *C.TankError
	cancel := newCanceller(ctx)
	defer cancel.stop()
	if status := call(cc, cancel.ptr, &out, &cerr); status != C.TANK_OK {
		return nil, cancel.fail(status, cerr)
	}
	defer C.tank_strings_release(&out)
	names := make([]string, int(out.len))
	if out.len > 0 {
		for i, p := range unsafe.Slice(out.items, int(out.len)) {
			names[i] = goString(p)
		}
	}
	return names, nil
}

// Referrers finds the manifests whose subject is digest in repo on
// registry (signatures, SBOMs, attestations), as an OCI image index:
// from the Referrers API (GET /v2/<repo>/referrers/<digest>), else, where
// the registry has none, from the referrers tag "sha256-<hex>" OCI 1.1
// clients push beside it, else an empty index (Manifests nil). Each
// entry's ArtifactType and Annotations are set.
//
// artifactType "" gives every referrer; else only those of that
// artifactType (the registry is asked to filter, and libtank checks every
// entry whether the registry says it did or not). Raw is the index as
// the registry sent it, or as libtank re-encoded it when entries were
// dropped (Digest is then its own). digest must be a digest
// ("sha256:<hex>"): anything else is ErrBadInput before any request.
// cache may be nil.
func Referrers(registry, repo, digest, artifactType string, cache *Cache) (*Manifest, error) {
	return ReferrersContext(context.Background(), registry, repo, digest, artifactType, cache)
}

// ReferrersContext is Referrers with a context, as FetchManifestContext.
func ReferrersContext(ctx context.Context, registry, repo, digest, artifactType string, cache *Cache) (*Manifest, error) {
	args, err := newCArgs("registry", registry, "repo", repo, "digest", digest, "artifact type", artifactType)
	if err != nil {
		return nil, err
	}
	defer args.free()
	// "" means every type: C's NULL (C refuses an empty string).
	artifact := args[3]
	if artifactType == "" {
		artifact = nil
	}
	cc, err := cache.acquire()
	if err != nil {
		return nil, err
	}
	defer cache.release()
	var out C.TankManifest
	var cerr *C.TankError
	cancel := newCanceller(ctx)
	defer cancel.stop()
	status := C.tank_referrers(args[0], args[1], args[2], artifact, cc, cancel.ptr, &out, &cerr)
	if status != C.TANK_OK {
		return nil, cancel.fail(status, cerr)
	}
	defer C.tank_manifest_release(&out)
	return copyManifest(&out)
}
