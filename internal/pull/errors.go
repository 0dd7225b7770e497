package pull

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Kind is what went wrong with a pull.
type Kind string

// The kinds of [Error].
const (
	// NoDigest: the reference names a tag, not a digest.
	NoDigest Kind = "no digest"
	// Unreachable: the registry did not answer (DNS, refused, timeout, TLS).
	Unreachable Kind = "registry unreachable"
	// Unauthorized: the registry wants a credential the keychain does
	// not have, or refused the one it has (401, 403).
	Unauthorized Kind = "unauthorized"
	// NotFound: the registry has no manifest or blob of that digest.
	NotFound Kind = "not found"
	// DigestMismatch: the registry served content that does not hash to
	// the digest asked for.
	DigestMismatch Kind = "digest mismatch"
	// NoPlatform: the index has no image for the host platform.
	NoPlatform Kind = "no image for the platform"
	// Unsupported: a manifest accord cannot run (schema 1, nested index,
	// a foreign layer).
	Unsupported Kind = "unsupported"
	// Failed: anything else (the registry answered with an error).
	Failed Kind = "failed"
)

// Error is a failed pull or import: which image, what went wrong, from
// which source, and what to do. The store is as it was before the call.
type Error struct {
	// Image is the reference asked for.
	Image string
	// Kind classifies the failure.
	Kind Kind
	// Source is the registry or mirror repository that failed ("" for
	// a reference or file that is wrong in itself).
	Source string
	// Err is the underlying error.
	Err error
	// Fix says what to do.
	Fix string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "image %s: %s", e.Image, e.Kind)
	if e.Source != "" {
		fmt.Fprintf(&b, " (from %s)", e.Source)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Fix != "" {
		b.WriteString("\n  fix: " + e.Fix)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// sourcesError is the failure of every source of one image: the first
// error that is not "not found" decides the kind (a mirror that lacks the
// image says less than a registry that refused a credential), and the
// message lists every source's error.
func sourcesError(image string, errs []*Error) *Error {
	if len(errs) == 1 {
		return errs[0]
	}
	main := errs[len(errs)-1]
	for _, e := range errs {
		if e.Kind != NotFound && e.Kind != Unreachable {
			main = e
			break
		}
	}
	var parts []error
	for _, e := range errs {
		parts = append(parts, fmt.Errorf("%s: %s: %w", e.Source, e.Kind, e.Err))
	}
	return &Error{Image: image, Kind: main.Kind, Source: main.Source, Err: errors.Join(parts...), Fix: main.Fix}
}

// classify turns an error of go-containerregistry's remote package, met
// while fetching image from source, into an [*Error] with its fix.
// hasCred says whether the keychain had a credential for source.
func classify(image, source, registry string, hasCred bool, err error) *Error {
	e := &Error{Image: image, Source: source, Err: err}
	var te *transport.Error
	switch {
	case errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden):
		e.Kind = Unauthorized
		if hasCred {
			e.Fix = fmt.Sprintf("the credential for %s in the Docker config was refused (HTTP %d): log in again (docker login %s) or fix its entry in $DOCKER_CONFIG/config.json (default ~/.docker/config.json)", registry, te.StatusCode, registry)
		} else {
			e.Fix = fmt.Sprintf("add a credential for %s to the Docker config: docker login %s, or an \"auths\" entry in $DOCKER_CONFIG/config.json (default ~/.docker/config.json)", registry, registry)
		}
	case errors.As(err, &te) && te.StatusCode == http.StatusNotFound, errors.As(err, &te) && hasCode(te, transport.ManifestUnknownErrorCode, transport.BlobUnknownErrorCode, transport.NameUnknownErrorCode):
		e.Kind = NotFound
		e.Fix = "check the repository and digest, or configure a mirror that has it (--registry-mirror FROM=TO), or import it (accord images import FILE)"
	case errors.As(err, &te):
		e.Kind = Failed
		e.Fix = fmt.Sprintf("the registry %s answered HTTP %d: check its state, or configure a mirror (--registry-mirror FROM=TO)", registry, te.StatusCode)
	case isMismatch(err):
		e.Kind = DigestMismatch
		e.Fix = fmt.Sprintf("%s serves other content for this digest: the registry or something between is corrupt or tampered with; pull from a trusted mirror (--registry-mirror) or import a verified copy (accord images import FILE); never re-pin to what it serves without checking", source)
	default:
		e.Kind = Unreachable
		e.Fix = fmt.Sprintf("check that %s is reachable from this host (network, DNS, proxy, TLS), or configure a mirror (--registry-mirror %s=HOST/PATH or $%s), or import the image (accord images import FILE)", registry, shortRegistry(registry), MirrorsEnv)
	}
	return e
}

func hasCode(te *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range te.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

// isMismatch recognises go-containerregistry's verification errors (its
// verify package's types are internal, so by their text) and ours.
func isMismatch(err error) bool {
	var de *digestError
	if errors.As(err, &de) {
		return true
	}
	s := err.Error()
	for _, m := range []string{"does not match requested digest", "error verifying", "does not match expected size"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// digestError is content that does not hash to the digest that names it.
type digestError struct {
	what      string
	want, got string
}

func (e *digestError) Error() string {
	return fmt.Sprintf("%s should have digest %s but has %s", e.what, e.want, e.got)
}

func shortRegistry(r string) string {
	if r == "index.docker.io" {
		return "docker.io"
	}
	return r
}
