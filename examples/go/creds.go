package tank

/*
#include <stdlib.h>
#include <string.h>
#include "tank.h"
*/
import "C"

import (
	"strings"
	"unsafe"
)

// settingArg is one string argument of a settings call.
type settingArg struct {
	name, value string
	// secret: never quoted in an error, and the C copy is wiped after.
	secret bool
	// nullIfEmpty: "" goes to C as NULL (the C call's default).
	nullIfEmpty bool
}

// wipedSecret, when set (by a test), sees each wiped copy before it is
// freed.
var wipedSecret func(copy []byte)

// wipe zeroes the n bytes of a secret's C copy at p, so that the secret
// does not outlive the call in freed memory. (memset through cgo is a call
// the C compiler cannot drop as a dead store before free.)
func wipe(p *C.char, n int) {
	C.memset(unsafe.Pointer(p), 0, C.size_t(n))
	if wipedSecret != nil {
		wipedSecret(unsafe.Slice((*byte)(unsafe.Pointer(p)), n))
	}
}

// set runs one settings call on the cache: the arguments are checked (a
// NUL byte is ErrBadInput, before any C call: C would cut the string
// short there) and copied to C, and the cache is held for the call, so a
// concurrent Close waits and a closed cache is ErrCacheClosed.
func (c *Cache) set(call func(cc *C.TankCache, args []*C.char, cerr **C.TankError) C.TankStatus,
	args ...settingArg) error {
	if c == nil {
		return badInput(ReasonBadInput, "the cache is nil: credentials and trust live in a Cache")
	}
	for _, a := range args {
		if strings.IndexByte(a.value, 0) < 0 {
			continue
		}
		if a.secret {
			return badInput(ReasonBadInput, "%s contains a NUL byte", a.name)
		}
		return badInput(ReasonBadInput, "%s %q contains a NUL byte", a.name, a.value)
	}
	cs := make([]*C.char, len(args))
	defer func() {
		for i, p := range cs {
			if p == nil {
				continue
			}
			if args[i].secret {
				wipe(p, len(args[i].value))
			}
			C.free(unsafe.Pointer(p))
		}
	}()
	for i, a := range args {
		if !(a.nullIfEmpty && a.value == "") {
			cs[i] = C.CString(a.value)
		}
	}
	cc, err := c.acquire()
	if err != nil {
		return err
	}
	defer c.release()
	var cerr *C.TankError
	status := call(cc, cs, &cerr)
	if status != C.TANK_OK {
		return takeError(status, cerr)
	}
	return nil
}

// SetBasicAuth makes calls through the cache to registry send username
// and password: as Basic credentials when the registry challenges with
// Basic, or to the token realm when it challenges with Bearer. registry is
// "host[:port]" as the fetch calls take it (an "http://" or "https://"
// prefix is accepted and ignored; "docker.io", "index.docker.io" and
// "registry-1.docker.io" all name Docker Hub).
//
// It replaces any credential set before for registry and beats anything
// loaded by LoadAuthConfig; calls that start afterwards use it. libtank
// never sends it over plain HTTP except to a loopback registry, never to
// a CDN a blob read is redirected to, and never puts it in an error. An
// empty registry or username, or a NUL byte in any argument, is
// ErrBadInput (and the password is not quoted). The binding's C copy of
// the password is zeroed before it is freed; password itself, a Go string,
// cannot be.
func (c *Cache) SetBasicAuth(registry, username, password string) error {
	return c.set(func(cc *C.TankCache, a []*C.char, e **C.TankError) C.TankStatus {
		return C.tank_cache_set_basic_auth(cc, a[0], a[1], a[2], e)
	},
		settingArg{name: "registry", value: registry},
		settingArg{name: "username", value: username},
		settingArg{name: "password", value: password, secret: true})
}

// SetIdentityToken is SetBasicAuth with an identity (refresh) token, the
// kind `docker login` keeps for registries whose token server speaks
// OAuth2: libtank trades it for access tokens (an OAuth2 POST, or a GET
// with "<token>" as the user name where the server has no OAuth2).
func (c *Cache) SetIdentityToken(registry, token string) error {
	return c.set(func(cc *C.TankCache, a []*C.char, e **C.TankError) C.TankStatus {
		return C.tank_cache_set_identity_token(cc, a[0], a[1], e)
	},
		settingArg{name: "registry", value: registry},
		settingArg{name: "token", value: token, secret: true})
}

// LoadAuthConfig adds the credentials of a docker config.json or podman
// auth.json ("auths" with "auth" or "username"/"password" or
// "identitytoken", "credHelpers", "credsStore") behind any loaded before;
// SetBasicAuth and SetIdentityToken beat them. Credential helpers run when
// a call first needs them, at most once per registry; one that fails makes
// that call fail with ErrAuth and Reason ReasonCredentialHelper.
//
// path "" searches, in order, $REGISTRY_AUTH_FILE,
// $XDG_RUNTIME_DIR/containers/auth.json,
// $XDG_CONFIG_HOME/containers/auth.json (~/.config/containers/auth.json),
// $DOCKER_CONFIG/config.json (~/.docker/config.json), skipping those that
// do not exist, when it is called. A missing or malformed file given by
// path (or by $REGISTRY_AUTH_FILE) is ErrBadInput with Reason
// ReasonAuthConfig; the message names the file and holds no secret.
func (c *Cache) LoadAuthConfig(path string) error {
	return c.set(func(cc *C.TankCache, a []*C.char, e **C.TankError) C.TankStatus {
		return C.tank_cache_load_auth_config(cc, a[0], e)
	}, settingArg{name: "path", value: path, nullIfEmpty: true})
}

// TrustCAFile makes calls through the cache to registry trust the CA
// certificates in the PEM file pemPath, beside the system's roots;
// registry "" means every registry. A file with no certificate is
// ErrBadInput with Reason ReasonCertificate. A cache with trust of its
// own uses HTTP clients of its own; SSL_CERT_FILE and the like are not
// needed.
func (c *Cache) TrustCAFile(registry, pemPath string) error {
	return c.set(func(cc *C.TankCache, a []*C.char, e **C.TankError) C.TankStatus {
		return C.tank_cache_trust_ca_file(cc, a[0], a[1], e)
	},
		settingArg{name: "registry", value: registry, nullIfEmpty: true},
		settingArg{name: "pem_path", value: pemPath})
}

// LoadCertsDir loads a certs directory as docker and podman lay it out:
// <dir>/<host[:port]>/*.crt are CAs for that registry, and X.cert with
// X.key its client certificate (mutual TLS); and as containerd does:
// <host_port_> names and each directory's hosts.toml (ca, client and
// skip_verify for the hosts it names). dir "" loads /etc/containerd/certs.d,
// /etc/containers/certs.d, then /etc/docker/certs.d, where they exist. A
// certificate without its key, or a file that is not PEM, is ErrBadInput
// with Reason ReasonCertificate, and nothing from dir is kept.
func (c *Cache) LoadCertsDir(dir string) error {
	return c.set(func(cc *C.TankCache, a []*C.char, e **C.TankError) C.TankStatus {
		return C.tank_cache_load_certs_dir(cc, a[0], e)
	}, settingArg{name: "dir", value: dir, nullIfEmpty: true})
}

// MirrorCapability says what a mirror may be asked (AddMirror): the C
// API's TANK_MIRROR_* flags, combined with |.
type MirrorCapability uint32

const (
	// MirrorPull: blobs, and manifests by digest.
	MirrorPull MirrorCapability = C.TANK_MIRROR_PULL
	// MirrorResolve: tags, resolved to manifests.
	MirrorResolve MirrorCapability = C.TANK_MIRROR_RESOLVE
)

// AddMirror makes calls through the cache ask mirror for registry's
// repositories before the registry itself, for what caps allows
// (MirrorPull, MirrorResolve or both; at least one). mirror is
// "https://host[:port][/ns...]" or "host[:port][/ns...]": https, or plain
// http for a loopback host ("http://" is refused for any other); a path
// is the namespace the mirror keeps the registry's repositories under
// ("mirror.example/hub" serves docker.io's library/alpine as
// hub/library/alpine).
//
// Mirrors of one registry are tried in the order they were added, before
// those of LoadRegistriesConf and LoadCertsDir's hosts.toml, and the
// registry last: a mirror that cannot be reached, answers 404, 429 or 5xx,
// or serves bytes that do not match their digest is left for the next
// source, and one that could not be reached is skipped for the rest of the
// call. A mirror authenticates with the credentials set for its own host,
// never the registry's. A bad registry, mirror or caps is ErrBadInput.
func (c *Cache) AddMirror(registry, mirror string, caps MirrorCapability) error {
	return c.set(func(cc *C.TankCache, a []*C.char, e **C.TankError) C.TankStatus {
		return C.tank_cache_add_mirror(cc, a[0], a[1], C.uint32_t(caps), e)
	},
		settingArg{name: "registry", value: registry},
		settingArg{name: "mirror", value: mirror})
}

// LoadRegistriesConf reads a containers-registries.conf(5) file (version
// 2) with its drop-in directories, replacing what an earlier call loaded:
// prefixes, locations, insecure, blocked, mirror-by-digest-only and
// [[registry.mirror]] apply to calls that start afterwards. A blocked
// registry is ErrBadInput with Reason ReasonBlocked, before any request.
// Short names keep Docker's normalization: unqualified-search-registries,
// short-name-mode and aliases are read, not used.
//
// path "" is the default search: $HOME/.config/containers/registries.conf
// if it exists, else /etc/containers/registries.conf, then the
// registries.conf.d directories in the man page's order; a missing
// default file is not an error. A missing named file, or a malformed one,
// is ErrBadInput with Reason ReasonRegistriesConf, the message naming the
// file and the line.
func (c *Cache) LoadRegistriesConf(path string) error {
	return c.set(func(cc *C.TankCache, a []*C.char, e **C.TankError) C.TankStatus {
		return C.tank_cache_load_registries_conf(cc, a[0], e)
	}, settingArg{name: "path", value: path, nullIfEmpty: true})
}
