package artifact

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/store"
)

// NameError is an output whose name accord refuses to store under: not an
// image reference accord accepts, or a tag accord reserves for what it
// stores beside artifacts. Stored under such a name, an artifact could take
// the place of another artifact's signatures, attestations or links.
type NameError struct {
	Task, Hint, URI string
	Err             error
}

func (e *NameError) Error() string {
	fix := "announce the image as REGISTRY/REPOSITORY or REGISTRY/REPOSITORY:TAG (lower case, no digest, a tag not starting with sha256- nor ending in .sig, .att, .links, .released or .sbom), e.g. -p image=registry.example/org/app"
	if e.Hint != "" && !strings.HasSuffix(e.Hint, "IMAGE_URL") {
		fix = "write the file under a plain name (no ':' or '@') in the workspace"
	}
	return fmt.Sprintf("task %q announced %s %q: %v: refusing to store it\n  fix: %s", e.Task, e.Hint, e.URI, e.Err, fix)
}

func (e *NameError) Unwrap() error { return e.Err }

// reservedTag matches the tags of what accord (and cosign) store beside an
// artifact: sha256-<hex>.sig, .att, .links, .released, .sbom; any tag
// naming a digest (sha256-..., sha512-...) is reserved whatever follows.
var reservedTag = regexp.MustCompile(`^sha[0-9]+-|\.(sig|att|links|released|sbom)$`)

// CheckImageName checks an image name a task announces (IMAGE_URL, the
// go-image pipeline's image param): an image reference by name, optionally
// with a tag, never with a digest, and never with a tag accord reserves.
func CheckImageName(ref string) error {
	if ref == "" {
		return fmt.Errorf("empty image name")
	}
	if strings.ContainsAny(ref, "@ \t\r\n") || strings.HasPrefix(ref, "-") {
		return fmt.Errorf("%q is not an image name: no digest ('@'), whitespace or leading '-'", ref)
	}
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return fmt.Errorf("%q is not an image reference: %w", ref, err)
	}
	if t, ok := r.(name.Tag); ok && reservedTag.MatchString(t.TagStr()) {
		return fmt.Errorf("tag %q is reserved for the signatures, attestations and links accord stores beside artifacts", t.TagStr())
	}
	return nil
}

// checkFileName checks the name a file artifact is stored under (the base
// name of the path a task announced).
func checkFileName(n string) error {
	switch {
	case n == "" || n == "." || n == ".." || n == "/":
		return fmt.Errorf("%q names no file", n)
	case strings.ContainsAny(n, ":@"):
		return fmt.Errorf("file name %q contains ':' or '@', which would read as a tag or digest in the store", n)
	case strings.IndexFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return fmt.Errorf("file name %q contains control characters", n)
	}
	return nil
}

// checkName checks the name an output would be stored under.
func checkName(o engine.Output) error {
	var err error
	if o.Kind == engine.Image {
		err = CheckImageName(o.URI)
	} else {
		err = checkFileName(fileName(o.URI))
	}
	if err != nil {
		return &NameError{Task: o.Task, Hint: o.Hint, URI: o.URI, Err: err}
	}
	return nil
}

// checkRegistry refuses, before anything is stored, an image whose name
// is in a registry the store may not push to.
func checkRegistry(st store.Store, o engine.Output) error {
	if o.Kind != engine.Image {
		return nil
	}
	if err := store.CheckName(st, o.URI); err != nil {
		return fmt.Errorf("task %q result %s announced image %q, and nothing of this build is stored: %w", o.Task, o.Hint, o.URI, err)
	}
	return nil
}
