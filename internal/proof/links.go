package proof

import (
	"errors"
	"fmt"
	"path"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/store"
)

// ReadLinks returns the in-toto link files (file name to content) of the
// layers of a .links attachment: bundles, and single links named by their
// title annotation. A layer that cannot be read is skipped; the error
// returned names each one, alongside the links of the others. These links
// are not bound to any provenance: verification selects bundles by the
// digest a trusted provenance names instead (package verify).
func ReadLinks(layers []store.Layer) (map[string][]byte, error) {
	out := map[string][]byte{}
	var errs []error
	for i, l := range layers {
		switch l.MediaType {
		case store.LinksBundleMediaType:
			files, err := attest.ReadLinksBundle(l.Blob)
			if err != nil {
				errs = append(errs, fmt.Errorf("links layer %d (sha256:%s, says builder %q): %w", i+1, attest.SHA256Hex(l.Blob), l.Annotations[store.BuilderAnnotation], err))
				continue
			}
			for n, b := range files {
				out[n] = b
			}
		default:
			if t := path.Base(l.Annotations["org.opencontainers.image.title"]); t != "" && t != "." && t != "/" {
				out[t] = l.Blob
			}
		}
	}
	return out, errors.Join(errs...)
}
