package proof

import (
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/accord-build/accord/attest"
)

// PlatformImageDependency names the resolved dependency that records,
// for a step image pinned by an image index, the manifest of the
// platform's image that ran: its URI is the index's (oci://REPO@INDEX),
// its digest the platform manifest's. The index itself is a "step image"
// dependency like any step image.
const PlatformImageDependency = "step image platform manifest"

// platformDependencies lists, once each and sorted, the platform
// manifests the run's steps resolved their index-pinned images to.
func platformDependencies(in *Input) []attest.Dependency {
	if in.Result == nil {
		return nil
	}
	seen := map[string]string{}
	for _, t := range in.Result.Tasks {
		for _, s := range t.Steps {
			d, err := name.NewDigest(s.Image)
			if err != nil || s.ImageDigest == "" || s.ImageDigest == d.DigestStr() {
				continue
			}
			seen["oci://"+d.Context().Name()+"@"+d.DigestStr()] = s.ImageDigest
		}
	}
	uris := make([]string, 0, len(seen))
	for u := range seen {
		uris = append(uris, u)
	}
	sort.Strings(uris)
	var deps []attest.Dependency
	for _, u := range uris {
		deps = append(deps, attest.Dependency{Name: PlatformImageDependency, URI: u,
			Digest: map[string]string{"sha256": strings.TrimPrefix(seen[u], "sha256:")}})
	}
	return deps
}
