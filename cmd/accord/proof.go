package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/spf13/cobra"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/artifact"
	"github.com/accord-build/accord/internal/engine/local"
	"github.com/accord-build/accord/internal/proof"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/pipelines"
	"github.com/accord-build/accord/sbom"
	"github.com/accord-build/accord/verify"
)

// resolveArtifact finds ARTIFACT in the store: a stored name
// ("accord.dev/examples/hello", "hello") or NAME@sha256:<manifest digest>.
func resolveArtifact(ctx context.Context, st store.Store, arg string) (string, ggcrv1.Hash, error) {
	name, dg, hasDigest := strings.Cut(arg, "@")
	if hasDigest {
		h, err := ggcrv1.NewHash(dg)
		if err != nil {
			return "", h, err
		}
		if _, err := st.Image(ctx, h); err == nil {
			return name, h, nil
		}
		// A file artifact's digest is the file's: find the stored
		// artifact under its name, or formerly under it, whose file has
		// that digest.
		if l, ok := st.(*store.Layout); ok {
			all, _ := l.ResolveAll(name)
			for _, sh := range all {
				if img, err := st.Image(ctx, sh); err == nil {
					if m, err := img.Manifest(); err == nil && len(m.Layers) == 1 && m.Layers[0].Digest == h {
						return name, sh, nil
					}
				}
			}
		}
		return name, h, nil
	}
	l, ok := st.(*store.Layout)
	if !ok {
		return "", ggcrv1.Hash{}, fmt.Errorf("%q: give the artifact as NAME@sha256:<digest> for a registry store", arg)
	}
	h, err := l.Resolve(arg)
	if err != nil {
		return "", ggcrv1.Hash{}, fmt.Errorf("%w\n  fix: use a name 'accord run' printed, or NAME@sha256:<digest>", err)
	}
	return arg, h, nil
}

// attestations returns the DSSE envelopes stored for the artifact with the
// given predicate type. A layer that cannot be read (over the size limit,
// not matching its digest) is skipped with a note on warn, so it cannot hide
// the others; err is for an attachment that cannot be read at all.
func attestations(ctx context.Context, st store.Store, name string, h ggcrv1.Hash, predicateType string, warn io.Writer) ([][]byte, error) {
	layers, err := store.Layers(ctx, st, store.AttachmentRef(store.Name(st, name), h, store.AttSuffix))
	if err != nil && len(layers) == 0 {
		return nil, err
	}
	for _, n := range layerNotes("attestation", err) {
		fmt.Fprintln(warn, "note:", n)
	}
	var out [][]byte
	for _, l := range layers {
		if l.Annotations[store.PredicateTypeAnnotation] == predicateType {
			out = append(out, l.Blob)
		}
	}
	return out, nil
}

func newSBOMCmd() *cobra.Command {
	var storeRef, format, out string
	var trust trustFlags
	cmd := &cobra.Command{
		Use:   "sbom ARTIFACT",
		Short: "Print or write the SPDX SBOM accord attested for an artifact",
		Long: `Read the SPDX 2.3 SBOM that 'accord run --key' attested for ARTIFACT (a stored
name, or NAME@sha256:<digest>) and write it as SPDX JSON (spdx-json) or
tag-value (spdx-tv). The SBOM is deterministic: created is SOURCE_DATE_EPOCH
and the namespace derives from the artifact's digest.

Only an SBOM attestation signed by a trusted key (--key BUILDER.pub, or the
builders of --policy FILE) and about the artifact's digest (computed from
its bytes in the store) is output; anything else stored beside it is
skipped.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "spdx-json" && format != "spdx-tv" {
				return usageErr(fmt.Errorf("--format %q: use spdx-json or spdx-tv", format))
			}
			pol, err := trust.load("accord sbom")
			if err != nil {
				return usageErr(err)
			}
			st, err := store.Open(storeRef)
			if err != nil {
				return usageErr(err)
			}
			doc, err := storedSBOM(cmd.Context(), st, args[0], pol, cmd.ErrOrStderr())
			if err != nil {
				return usageErr(err)
			}
			b, err := encodeSBOM(doc, format)
			if err != nil {
				return err
			}
			if out == "" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			return os.WriteFile(out, b, 0o644)
		},
	}
	cmd.Flags().StringVar(&storeRef, "store", "", "store (default $XDG_DATA_HOME/accord/store)")
	cmd.Flags().StringVar(&format, "format", "spdx-json", "spdx-json or spdx-tv")
	cmd.Flags().StringVar(&out, "out", "", "write to this file instead of stdout")
	trust.AddFlags(cmd)
	return cmd
}

// storedSBOM returns the SPDX document of the first SBOM attestation about
// the artifact that a builder of pol signed.
func storedSBOM(ctx context.Context, st store.Store, arg string, pol *verify.Policy, warn io.Writer) ([]byte, error) {
	name, h, err := resolveArtifact(ctx, st, arg)
	if err != nil {
		return nil, err
	}
	sha, err := storedSHA256(ctx, st, h)
	if err != nil {
		return nil, err
	}
	envs, err := attestations(ctx, st, name, h, attest.SPDXDocument, warn)
	if err != nil || len(envs) == 0 {
		return nil, fmt.Errorf("no SBOM attested for %s (%v)\n  fix: build it with 'accord run --key ...'", arg, err)
	}
	trusted, err := verify.Trusted(envs, sha, *pol, attest.SPDXDocument)
	if err != nil {
		return nil, err
	}
	if len(trusted) == 0 {
		return nil, fmt.Errorf("none of the %d SBOM attestation(s) stored for %s is signed by a trusted key and about sha256:%s\n  fix: give the public key of the builder that built it (--key) or a policy trusting it (--policy)", len(envs), arg, sha)
	}
	return predicateOf(trusted[0])
}

// predicateOf is the predicate of a DSSE envelope's statement.
func predicateOf(envelope []byte) ([]byte, error) {
	env, err := attest.ParseEnvelope(envelope)
	if err != nil {
		return nil, err
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, err
	}
	stmt, err := attest.ParseStatement(payload)
	if err != nil {
		return nil, err
	}
	return stmt.Predicate, nil
}

// storedSHA256 is the artifact digest (hex) of the stored manifest h,
// computed from the bytes as verify does.
func storedSHA256(ctx context.Context, st store.Store, h ggcrv1.Hash) (string, error) {
	img, err := st.Image(ctx, h)
	if err != nil {
		return "", err
	}
	return artifactSHA256(img)
}

func encodeSBOM(predicate []byte, format string) ([]byte, error) {
	doc, err := sbom.ParseJSON(bytes.NewReader(predicate))
	if err != nil {
		return nil, err
	}
	if format == "spdx-tv" {
		return sbom.TagValue(doc)
	}
	return sbom.JSON(doc)
}

func newLayoutCmd() *cobra.Command {
	var pipeline, key, out string
	var functionaries []string
	var expires time.Duration
	cmd := &cobra.Command{
		Use:   "layout",
		Short: "Write the signed in-toto layout of a catalog pipeline",
		Long: `Generate the in-toto layout of a pipeline: one step per pipeline step, in
Tekton's DAG order; each step's materials must be the products of the step
before it that used the same workspace; a read-only workspace must come out
of a step unchanged (a step that rewrites source it may only read fails);
nothing else may appear. The builders' public keys (--functionary) may sign
links; the layout is signed with the catalog owner's key (--key). The layout
names the pipeline digest it is for (a signed readme line
"accord.dev/pipeline-digest: sha256:..."); accord verify checks it against
the pipeline the trusted provenance records, so regenerate the layout when
the pipeline changes.

Verify with the upstream tool:
  in-toto-golang verify -l root.layout -k owner.pub -d LINKDIR`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if key == "" || len(functionaries) == 0 {
				return usageErr(fmt.Errorf("--key (catalog owner) and at least one --functionary (builder public key) are required"))
			}
			cat, err := pipelines.Builtin(ctx)
			if err != nil {
				return err
			}
			r, err := cat.Resolve(ctx, pipeline)
			if err != nil {
				return usageErr(err)
			}
			owner, err := loadSigner(ctx, key)
			if err != nil {
				return usageErr(err)
			}
			var pems [][]byte
			for _, f := range functionaries {
				b, err := os.ReadFile(f)
				if err != nil {
					return usageErr(err)
				}
				pems = append(pems, b)
			}
			steps, err := proof.LayoutSteps(r, local.Commands{})
			if err != nil {
				return err
			}
			mb, err := attest.Layout(ctx, owner, steps, attest.LayoutOptions{
				Functionaries:  pems,
				Expires:        time.Now().Add(expires),
				Readme:         fmt.Sprintf("accord layout for pipeline %s %s", r.Pipeline.Name, r.Digest),
				PipelineDigest: r.Digest,
			})
			if err != nil {
				return err
			}
			if err := attest.WriteMetablock(mb, out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "layout for %s (%d steps) written to %s\n", r.Pipeline.Name, len(steps), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&pipeline, "pipeline", "go-image", "catalog pipeline name or file")
	cmd.Flags().StringVar(&key, "key", "", "catalog owner's signing key (cosign key file or KMS URI)")
	cmd.Flags().StringArrayVar(&functionaries, "functionary", nil, "builder public key allowed to sign links (repeatable)")
	cmd.Flags().DurationVar(&expires, "expires", 365*24*time.Hour, "how long the layout stays valid")
	cmd.Flags().StringVar(&out, "out", "root.layout", "layout file to write")
	return cmd
}

func newExportCmd() *cobra.Command {
	var storeRef, dir, pub, layoutFile string
	var trust trustFlags
	cmd := &cobra.Command{
		Use:   "export ARTIFACT --dir DIR (--key PUB | --policy FILE)",
		Short: "Write a release bundle: artifact, provenance, SBOM, signatures, links, key, layout",
		Long: `Write a release bundle of ARTIFACT into DIR. Only evidence signed by a
trusted key (--key BUILDER.pub, or the builders of --policy FILE) goes in:
provenance and SBOM attestations about the artifact's digest, image
signatures naming it, and link bundles whose every link verifies. Anything
else stored beside it is skipped.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usageErr(fmt.Errorf("--dir is required"))
			}
			pol, err := trust.load("accord export")
			if err != nil {
				return usageErr(err)
			}
			st, err := store.Open(storeRef)
			if err != nil {
				return usageErr(err)
			}
			files, err := export(cmd.Context(), st, args[0], dir, pub, layoutFile, pol, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			for _, f := range files {
				fmt.Fprintln(cmd.OutOrStdout(), filepath.Join(dir, f))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&storeRef, "store", "", "store (default $XDG_DATA_HOME/accord/store)")
	cmd.Flags().StringVar(&dir, "dir", "", "directory to write the bundle into (created)")
	cmd.Flags().StringVar(&pub, "pub", "", "builder public key to include")
	cmd.Flags().StringVar(&layoutFile, "layout", "", "signed in-toto layout to include (accord layout)")
	trust.AddFlags(cmd)
	return cmd
}

// export writes the release bundle of arg into dir. Every blob of the
// artifact is checked against its digest and size before anything is
// written, and the exported copy again after: a bundle is complete and
// exact, or export fails and removes what it wrote. Attachments it cannot
// read are skipped with a warning on warn.
func export(ctx context.Context, st store.Store, arg, dir, pub, layoutFile string, pol *verify.Policy, warn io.Writer) (files []string, err error) {
	name, h, err := resolveArtifact(ctx, st, arg)
	if err != nil {
		return nil, usageErr(err)
	}
	img, err := st.Image(ctx, h)
	if err != nil {
		return nil, err
	}
	if err := store.VerifyBlobs(img, h); err != nil {
		return nil, fmt.Errorf("refusing to export %s: %w\n  fix: the store holds other bytes than were built and signed; rebuild the artifact or restore the store", arg, err)
	}
	out, err := newBundleDir(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			out.remove()
		}
	}()
	if err := exportArtifact(img, h, name, arg, out); err != nil {
		return nil, err
	}
	if err := exportEvidence(ctx, st, name, h, img, arg, out, pol, warn); err != nil {
		return nil, err
	}
	for _, c := range []struct{ src, dst string }{{pub, "builder.pub"}, {layoutFile, "root.layout"}} {
		if c.src == "" {
			continue
		}
		b, err := os.ReadFile(c.src)
		if err != nil {
			return nil, usageErr(err)
		}
		if err := out.write(c.dst, b); err != nil {
			return nil, err
		}
	}
	files = append([]string(nil), out.files...)
	sort.Strings(files)
	idx := fmt.Sprintf("# Release bundle: %s\n\nStored manifest: `%s`\n\n| file | what |\n|---|---|\n", name, h)
	for _, f := range files {
		idx += fmt.Sprintf("| `%s` | %s |\n", f, describe(f))
	}
	idx += "\nVerify the step links with in-toto: `in-toto-golang verify -l root.layout -k owner.pub -d links`.\n"
	if err := out.write("README.md", []byte(idx)); err != nil {
		return nil, err
	}
	return append(files, "README.md"), nil
}

// bundleDir is a release bundle being written: what it created, so that a
// failed export leaves nothing behind.
type bundleDir struct {
	dir     string
	existed bool
	files   []string // relative, in the order written
	dirs    []string // created, relative
	keep    []string // among files, there before: not removed
}

func newBundleDir(dir string) (*bundleDir, error) {
	b := &bundleDir{dir: dir}
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		b.existed = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "links")); errors.Is(err, os.ErrNotExist) {
		b.dirs = append(b.dirs, "links")
	}
	if err := os.MkdirAll(filepath.Join(dir, "links"), 0o755); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *bundleDir) write(rel string, content []byte) error {
	b.files = append(b.files, rel)
	return os.WriteFile(filepath.Join(b.dir, rel), content, 0o644)
}

// remove undoes the export: the whole directory if export created it,
// else what it wrote.
func (b *bundleDir) remove() {
	if !b.existed {
		os.RemoveAll(b.dir)
		return
	}
	for _, f := range b.files {
		if !slices.Contains(b.keep, f) {
			os.RemoveAll(filepath.Join(b.dir, strings.TrimSuffix(f, "/")))
		}
	}
	for _, d := range b.dirs {
		os.Remove(filepath.Join(b.dir, d))
	}
}

// exportArtifact writes the file, or the image as an OCI layout whose
// written blobs are checked again.
func exportArtifact(img ggcrv1.Image, h ggcrv1.Hash, name, arg string, out *bundleDir) error {
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	if string(m.Config.MediaType) == artifact.FileArtifactType {
		ls, err := img.Layers()
		if err != nil || len(ls) != 1 {
			return fmt.Errorf("file artifact %s: want one layer", arg)
		}
		rc, err := ls[0].Compressed()
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		_, err = buf.ReadFrom(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if got := "sha256:" + attest.SHA256Hex(buf.Bytes()); got != m.Layers[0].Digest.String() {
			return fmt.Errorf("refusing to export %s: file %s changed while it was read (now %s)", arg, m.Layers[0].Digest, got)
		}
		return out.write(filepath.Base(name), buf.Bytes())
	}
	if _, err := os.Stat(filepath.Join(out.dir, "image")); err == nil {
		out.keep = append(out.keep, "image/") // an earlier export's: not ours to remove
	}
	out.files = append(out.files, "image/")
	p, err := layout.Write(filepath.Join(out.dir, "image"), empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img); err != nil {
		return err
	}
	written, err := p.Image(h)
	if err != nil {
		return err
	}
	if err := store.VerifyBlobs(written, h); err != nil {
		return fmt.Errorf("refusing to export %s: the copy written is not the image: %w", arg, err)
	}
	return nil
}

// exportEvidence writes the provenance, SBOM, signatures and links stored
// beside the artifact that pol trusts; the rest is skipped.
func exportEvidence(ctx context.Context, st store.Store, name string, h ggcrv1.Hash, img ggcrv1.Image, arg string, out *bundleDir, pol *verify.Policy, warn io.Writer) error {
	repo := store.Name(st, name)
	layers := func(suffix string) []store.Layer {
		ls, err := store.Layers(ctx, st, store.AttachmentRef(repo, h, suffix))
		for _, e := range layerNotes(suffix, err) {
			fmt.Fprintln(warn, "warning:", e)
		}
		return ls
	}
	sha, err := artifactSHA256(img)
	if err != nil {
		return err
	}
	att := layers(store.AttSuffix)
	prov, err := trustedEnvelopes(att, sha, pol, attest.SLSAProvenanceV1)
	if err != nil {
		return err
	}
	sb, err := trustedEnvelopes(att, sha, pol, attest.SPDXDocument)
	if err != nil {
		return err
	}
	if len(prov) == 0 {
		return fmt.Errorf("no provenance signed by a trusted key stored for %s\n  fix: build it with 'accord run --key ...', and give that builder's public key (--key) or a policy trusting it (--policy)", arg)
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
	pred, err := predicateOf(envs[0])
	if err != nil {
		return err
	}
	for _, f := range []struct{ format, file string }{{"spdx-json", "sbom.spdx.json"}, {"spdx-tv", "sbom.spdx"}} {
		b, err := encodeSBOM(pred, f.format)
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
			return err
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

// trustedEnvelopes returns the envelopes of the predicate type among
// layers that a builder of pol signed about the artifact sha (hex).
func trustedEnvelopes(layers []store.Layer, sha string, pol *verify.Policy, predicateType string) ([][]byte, error) {
	var envs [][]byte
	for _, l := range layers {
		if l.Annotations[store.PredicateTypeAnnotation] == predicateType {
			envs = append(envs, l.Blob)
		}
	}
	return verify.Trusted(envs, sha, *pol, predicateType)
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
		pred, err := predicateOf(e)
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

func describe(f string) string {
	switch {
	case f == "image/":
		return "the image, as an OCI image layout"
	case f == "provenance.intoto.jsonl":
		return "SLSA v1 provenance, DSSE envelopes (one per builder)"
	case f == "sbom.intoto.jsonl":
		return "SPDX SBOM attestation, DSSE envelopes"
	case f == "sbom.spdx.json":
		return "SPDX 2.3 SBOM, JSON"
	case f == "sbom.spdx":
		return "SPDX 2.3 SBOM, tag-value"
	case f == "signatures.json":
		return "cosign signatures of the image (simple signing payloads)"
	case strings.HasPrefix(f, "links/"):
		return "signed in-toto link of one step"
	case f == "builder.pub":
		return "the builder's public key"
	case f == "root.layout":
		return "the signed in-toto layout"
	}
	return "the artifact"
}

func sortedKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
