package export

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"sort"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/evidence"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/verify"
)

// exportEvidence writes the provenance, SBOM, signatures and links stored
// beside the artifact that pol trusts; the rest is skipped.
func exportEvidence(ctx context.Context, st store.Store, name string, h ggcrv1.Hash, img ggcrv1.Image, arg string, out *bundleDir, pol *verify.Policy, warn io.Writer) error {
	repo := store.Name(st, name)
	layers := func(suffix string) []store.Layer {
		ls, err := store.Layers(ctx, st, store.AttachmentRef(repo, h, suffix))
		for _, e := range evidence.LayerNotes(suffix, err) {
			fmt.Fprintln(warn, "warning:", e)
		}
		return ls
	}
	sha, err := evidence.ArtifactSHA256(img)
	if err != nil {
		return fmt.Errorf("digesting %s: %w", arg, err)
	}
	att := layers(store.AttSuffix)
	prov, err := evidence.TrustedEnvelopes(att, sha, pol, attest.SLSAProvenanceV1)
	if err != nil {
		return &evidence.InputError{Err: err}
	}
	sb, err := evidence.TrustedEnvelopes(att, sha, pol, attest.SPDXDocument)
	if err != nil {
		return &evidence.InputError{Err: err}
	}
	if len(prov) == 0 {
		return &evidence.InputError{Err: fmt.Errorf("no provenance signed by a trusted key stored for %s\n  fix: build it with 'accord run --key ...', and give that builder's public key (--key) or a policy trusting it (--policy)", arg)}
	}
	if err := out.write("provenance.intoto.jsonl", jsonLines(prov)); err != nil {
		return err
	}
	if len(sb) > 0 {
		if err := exportSBOM(sb, out); err != nil {
			return err
		}
	}
	if err := exportSignatures(layers(store.SigSuffix), h, out, pol); err != nil {
		return err
	}
	links, err := boundLinks(layers(store.LinksSuffix), prov, pol, warn)
	if err != nil {
		return err
	}
	for _, title := range sortedKeys(links) {
		if err := out.write(filepath.Join("links", title), links[title]); err != nil {
			return err
		}
	}
	return nil
}

// exportSBOM writes the trusted SBOM envelopes and the SBOM of the first,
// as SPDX JSON and tag-value.
func exportSBOM(envs [][]byte, out *bundleDir) error {
	if err := out.write("sbom.intoto.jsonl", jsonLines(envs)); err != nil {
		return err
	}
	pred, err := evidence.PredicateOf(envs[0])
	if err != nil {
		return err
	}
	for _, f := range []struct {
		format Format
		file   string
	}{{SPDXJSON, "sbom.spdx.json"}, {SPDXTagValue, "sbom.spdx"}} {
		b, err := EncodeSBOM(pred, f.format)
		if err != nil {
			return err
		}
		if err := out.write(f.file, b); err != nil {
			return err
		}
	}
	return nil
}

// exportSignatures writes the image signatures that a key of pol made
// over h, if any, as signatures.json.
func exportSignatures(sigs []store.Layer, h ggcrv1.Hash, out *bundleDir, pol *verify.Policy) error {
	var list []map[string]string
	for _, l := range sigs {
		ok, err := verify.TrustedSignature(l.Blob, l.Annotations[store.SignatureAnnotation], h.String(), *pol)
		if err != nil {
			return &evidence.InputError{Err: err}
		}
		if ok {
			list = append(list, map[string]string{"payload": base64.StdEncoding.EncodeToString(l.Blob), "signature": l.Annotations[store.SignatureAnnotation], "builder": l.Annotations[store.BuilderAnnotation]})
		}
	}
	if len(list) == 0 {
		return nil
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	return out.write("signatures.json", b)
}

// jsonLines joins envelopes one per line.
func jsonLines(envs [][]byte) []byte {
	var out []byte
	for _, e := range envs {
		out = append(append(out, bytes.TrimSpace(e)...), '\n')
	}
	return out
}

// boundLinks returns the link files of the links bundles that the trusted
// provenance envelopes prov name by digest, as verify uses them, and whose
// every link a key of pol signed. Any other links layer (another build's
// bundle, an edited one, an old single-link layer) is skipped with a
// warning, so the bundle's in-toto links are the artifact's own.
func boundLinks(layers []store.Layer, prov [][]byte, pol *verify.Policy, warn io.Writer) (map[string][]byte, error) {
	named := map[string]bool{}
	for _, e := range prov {
		pred, err := evidence.PredicateOf(e)
		if err != nil {
			return nil, err
		}
		sum, err := attest.ParseProvenance(pred)
		if err != nil {
			return nil, err
		}
		if sum.LinksSHA256 != "" {
			named[sum.LinksSHA256] = true
		}
	}
	keys := trustedKeys(pol)
	out := map[string][]byte{}
	for i, l := range layers {
		sha := attest.SHA256Hex(l.Blob)
		if l.MediaType != store.LinksBundleMediaType || !named[sha] {
			fmt.Fprintf(warn, "warning: links layer %d (sha256:%s) is not a bundle a trusted provenance about the artifact names (skipped)\n", i+1, sha)
			continue
		}
		files, err := attest.ReadLinksBundle(l.Blob)
		if err == nil {
			err = linksSignedAndNew(files, out, keys)
		}
		if err != nil {
			fmt.Fprintf(warn, "warning: links layer %d (sha256:%s): %v (skipped)\n", i+1, sha, err)
			continue
		}
		maps.Copy(out, files)
	}
	return out, nil
}

// linksSignedAndNew checks that every link of files verifies with one of
// keys and that none would replace another bundle's link in have.
func linksSignedAndNew(files, have map[string][]byte, keys [][]byte) error {
	for n, b := range files {
		if err := attest.VerifyLinkSignature(b, keys); err != nil {
			return fmt.Errorf("link %s: %w", n, err)
		}
		if _, dup := have[n]; dup {
			return fmt.Errorf("link %s is also in another bundle", n)
		}
	}
	return nil
}

// trustedKeys returns the public keys (PEM) of p's builders.
func trustedKeys(p *verify.Policy) [][]byte {
	var out [][]byte
	for _, b := range p.Builders {
		out = append(out, b.Key)
	}
	return out
}

func sortedKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
