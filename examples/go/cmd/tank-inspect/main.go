// Command tank-inspect fetches a manifest with libtank and prints it and its
// descriptors as JSON.
//
//	tank-inspect 127.0.0.1:5000/tank/multiarch:latest
//	tank-inspect -platform linux/arm64 ghcr.io/org/app@sha256:...
//	tank-inspect -raw localhost:5000 tank/app v1 > manifest.json
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"tank.example/tank"
)

const usage = `usage: tank-inspect [flags] REGISTRY/REPOSITORY[:TAG|@DIGEST]
       tank-inspect [flags] REGISTRY REPOSITORY REFERENCE

Fetches a manifest and prints it as JSON: media type, digest, size, and the
config and layers of an image or the entries (with platforms) of an index.
REGISTRY is host[:port], optionally prefixed by http:// or https://; the tag
defaults to "latest".

Flags:
`

// output is what tank-inspect prints.
type output struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Reference  string `json:"reference"`
	// Index is the index the manifest was picked from with -platform.
	Index *indexRef `json:"index,omitempty"`
	// Size is the manifest's size in bytes.
	Size int `json:"size"`
	*tank.Manifest
}

type indexRef struct {
	MediaType string         `json:"mediaType"`
	Digest    string         `json:"digest"`
	Platform  *tank.Platform `json:"platform"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("tank-inspect", flag.ContinueOnError)
	flags.SetOutput(stderr)
	platform := flags.String("platform", "", "for an index, inspect the entry for `os/arch[/variant]` instead")
	raw := flags.Bool("raw", false, "print the manifest's bytes as the registry sent them")
	flags.Usage = func() {
		fmt.Fprint(stderr, usage)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var registry, repo, ref string
	switch flags.NArg() {
	case 1:
		var err error
		if registry, repo, ref, err = parseImage(flags.Arg(0)); err != nil {
			fmt.Fprintln(stderr, "tank-inspect:", err)
			return 2
		}
	case 3:
		registry, repo, ref = flags.Arg(0), flags.Arg(1), flags.Arg(2)
	default:
		flags.Usage()
		return 2
	}
	var want *tank.Platform
	if *platform != "" {
		p, err := tank.ParsePlatform(*platform)
		if err != nil {
			fmt.Fprintln(stderr, "tank-inspect:", err)
			return 2
		}
		want = &p
	}

	cache := tank.NewCache(0)
	defer cache.Close()
	m, err := tank.FetchManifest(registry, repo, ref, cache)
	if err != nil {
		fmt.Fprintln(stderr, "tank-inspect:", err)
		return 1
	}
	out := output{Registry: registry, Repository: repo, Reference: ref}
	if want != nil && m.Manifests != nil {
		d, ok := m.ForPlatform(*want)
		if !ok {
			fmt.Fprintf(stderr, "tank-inspect: %s/%s:%s (%s) has no entry for %s\n", registry, repo, ref, m.Digest, want)
			return 1
		}
		out.Index = &indexRef{MediaType: m.MediaType, Digest: m.Digest, Platform: d.Platform}
		if m, err = tank.FetchManifest(registry, repo, d.Digest, cache); err != nil {
			fmt.Fprintln(stderr, "tank-inspect:", err)
			return 1
		}
	}
	if *raw {
		if _, err := stdout.Write(m.Raw); err != nil {
			fmt.Fprintln(stderr, "tank-inspect:", err)
			return 1
		}
		return 0
	}
	out.Manifest = m
	out.Size = len(m.Raw)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(stderr, "tank-inspect:", err)
		return 1
	}
	return 0
}

// parseImage splits "[scheme://]host[:port]/repo[:tag][@digest]". The first
// path segment is always the registry: there is no default registry.
func parseImage(s string) (registry, repo, ref string, err error) {
	scheme := ""
	for _, p := range []string{"http://", "https://"} {
		if strings.HasPrefix(s, p) {
			scheme, s = p, s[len(p):]
		}
	}
	slash := strings.IndexByte(s, '/')
	if slash <= 0 || slash == len(s)-1 {
		return "", "", "", fmt.Errorf("%q is not REGISTRY/REPOSITORY[:TAG|@DIGEST]", scheme+s)
	}
	registry, repo = scheme+s[:slash], s[slash+1:]
	if at := strings.LastIndexByte(repo, '@'); at >= 0 {
		repo, ref = repo[:at], repo[at+1:]
		// repo:tag@digest: the digest wins.
		if colon := strings.LastIndexByte(repo, ':'); colon > strings.LastIndexByte(repo, '/') {
			repo = repo[:colon]
		}
	} else if colon := strings.LastIndexByte(repo, ':'); colon > strings.LastIndexByte(repo, '/') {
		repo, ref = repo[:colon], repo[colon+1:]
	} else {
		ref = "latest"
	}
	return registry, repo, ref, nil
}
