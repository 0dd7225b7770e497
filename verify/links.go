package verify

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	intoto "github.com/in-toto/in-toto-golang/in_toto"

	"github.com/accord-build/accord/attest"
)

// bundle is a stored links bundle that trusted provenance names.
type bundle struct {
	index int // in the bundles given, 0-based (the first of equal ones)
	sha   string
	blob  []byte
	// by are the trusted provenances about the artifact that name it.
	by []*attestation
}

// selectBundles keeps the link bundles a trusted provenance about the
// artifact names by digest; every other bundle is a note. A bundle of
// another build, of another artifact or edited in the store has another
// digest, so it cannot stand in for the artifact's own links.
func selectBundles(blobs [][]byte, about []*attestation) ([]bundle, []string) {
	named := map[string][]*attestation{}
	for _, a := range about {
		if a.prov.LinksSHA256 != "" {
			named[a.prov.LinksSHA256] = append(named[a.prov.LinksSHA256], a)
		}
	}
	var out []bundle
	var notes []string
	seen := map[string]bool{}
	for i, b := range blobs {
		sha := attest.SHA256Hex(b)
		switch {
		case named[sha] == nil:
			notes = append(notes, fmt.Sprintf("links bundle %d (sha256:%s) is not named by any trusted provenance about the artifact: ignored", i+1, sha))
		case seen[sha]:
		default:
			seen[sha] = true
			out = append(out, bundle{index: i, sha: sha, blob: b, by: named[sha]})
		}
	}
	return out, notes
}

// layoutCheck verifies, with in-toto-golang, the links of the bundles that
// trusted provenance about the artifact names, and only those whose
// provenance records the pipeline the layout was generated for; then it
// requires the artifact among the final products of the pipeline, so the
// links are the links of the build that made these bytes. early, when
// not nil, is the same verification started before the provenance was in
// ([StartLinks]); its outcome is used only for these very bundles.
func layoutCheck(bundles []bundle, about []*attestation, layout, ownerKey []byte, artifactSHA string, early *EarlyLinks) Check {
	fail := func(format string, args ...any) Check { return Check{CheckLayout, false, fmt.Sprintf(format, args...)} }
	mb, pipeline, err := loadLayout(layout)
	if err != nil {
		return fail("%v", err)
	}
	if len(about) == 0 {
		return fail("no trusted provenance about the artifact to take the links from")
	}
	use, other := ofPipeline(bundles, pipeline)
	if len(use) == 0 {
		if len(other) > 0 {
			return fail("the layout was generated for pipeline %s, but the trusted provenance names links of another pipeline (%s)", pipeline, strings.Join(other, "; "))
		}
		return fail("no stored links bundle is named by a trusted provenance about the artifact (the provenance names %s)", strings.Join(namedLinks(about), ", "))
	}
	out := early.outcome(use, layout, ownerKey)
	if out == nil {
		o := verifyBundles(use, mb, ownerKey)
		out = &o
	}
	if out.err != nil {
		return fail("%v", out.err)
	}
	if p := productWith(out.final, artifactSHA); p != "" {
		return Check{CheckLayout, true, fmt.Sprintf("%d step links of pipeline %s satisfy the layout; the artifact is their final product %s", out.files, pipeline, p)}
	}
	return fail("the links satisfy the layout, but the artifact sha256:%s is not among the pipeline's final products: they are the links of another build", artifactSHA)
}

// ofPipeline splits the bundles into those trusted provenance of the
// pipeline names, and a description of the others.
func ofPipeline(bundles []bundle, pipeline string) (use []bundle, other []string) {
	for _, b := range bundles {
		if b.pipelines()[pipeline] {
			use = append(use, b)
		} else {
			other = append(other, fmt.Sprintf("sha256:%s of pipeline %s", b.sha, strings.Join(sortedKeys(b.pipelines()), ", ")))
		}
	}
	return use, other
}

// layoutBundles returns the indices (in Evidence.LinkBundles) of the
// bundles the layout check reads: those of the layout's pipeline.
func layoutBundles(bundles []bundle, layout []byte) []int {
	_, pipeline, err := loadLayout(layout)
	if err != nil {
		return nil
	}
	use, _ := ofPipeline(bundles, pipeline)
	var out []int
	for _, b := range use {
		out = append(out, b.index)
	}
	return out
}

// loadLayout reads a signed layout and the pipeline digest it names.
func loadLayout(layout []byte) (*intoto.Metablock, string, error) {
	var mb intoto.Metablock
	if err := json.Unmarshal(layout, &mb); err != nil {
		return nil, "", fmt.Errorf("layout: %w", err)
	}
	raw, err := json.Marshal(mb.Signed)
	if err != nil {
		return nil, "", fmt.Errorf("layout: %w", err)
	}
	var l intoto.Layout
	if err := json.Unmarshal(raw, &l); err != nil || l.Type != "layout" {
		return nil, "", fmt.Errorf("layout is not a signed in-toto layout")
	}
	pipeline, err := attest.LayoutPipelineDigest(l)
	if err != nil {
		return nil, "", err
	}
	return &mb, pipeline, nil
}

func (b bundle) pipelines() map[string]bool {
	out := map[string]bool{}
	for _, a := range b.by {
		out[a.prov.PipelineDigest] = true
	}
	return out
}

// mergeBundles reads the bundles into one set of link files; two bundles
// may not disagree on a file.
func mergeBundles(bs []bundle) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, b := range bs {
		fs, err := attest.ReadLinksBundle(b.blob)
		if err != nil {
			return nil, fmt.Errorf("links bundle sha256:%s, named by trusted provenance: %w", b.sha, err)
		}
		for n, c := range fs {
			if old, ok := files[n]; ok && string(old) != string(c) {
				return nil, fmt.Errorf("two links bundles hold different %s", n)
			}
			files[n] = c
		}
	}
	return files, nil
}

// productWith returns a final product path (the first in order) with the
// sha256 hex, or "".
func productWith(final map[string]string, sha string) string {
	var ps []string
	for p, h := range final {
		if h == sha {
			ps = append(ps, p)
		}
	}
	sort.Strings(ps)
	if len(ps) == 0 {
		return ""
	}
	return ps[0]
}

func namedLinks(as []*attestation) []string {
	var out []string
	for _, a := range as {
		if a.prov.LinksSHA256 == "" {
			out = append(out, "no links bundle")
		} else {
			out = append(out, "sha256:"+a.prov.LinksSHA256)
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// bytesCheck: every blob of the artifact's manifest matches its digest
// and size.
func bytesCheck(blobs []Blob) Check {
	var bad []string
	for _, b := range blobs {
		if b.Problem != "" {
			bad = append(bad, fmt.Sprintf("%s %s: %s", b.Role, b.Digest, b.Problem))
		}
	}
	if len(bad) > 0 {
		return Check{CheckArtifactBytes, false, "the stored artifact is not the bytes its manifest names: " + strings.Join(bad, "; ")}
	}
	return Check{CheckArtifactBytes, true, fmt.Sprintf("%d blobs (manifest, config, layers) match their digests and sizes", len(blobs))}
}
