package attest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	intoto "github.com/in-toto/in-toto-golang/in_toto"
)

// LinkInput is what one step did, for its in-toto link.
type LinkInput struct {
	// Name is the in-toto step name ([StepName]).
	Name    string
	Command []string
	// Materials and Products map paths to sha256 hex.
	Materials, Products map[string]string
	ExitCode            int
	// StdoutSHA256 and StderrSHA256 are recorded as byproducts (digests,
	// not the text: outputs can be large and are kept by the run).
	StdoutSHA256, StderrSHA256 string
}

// StepName is the in-toto step name of a pipeline task's step.
func StepName(task, step string) string { return task + "-" + step }

func hashObjs(m map[string]string) map[string]intoto.HashObj {
	out := make(map[string]intoto.HashObj, len(m))
	for p, h := range m {
		out[p] = intoto.HashObj{"sha256": h}
	}
	return out
}

// SignLink makes the step's in-toto link and signs it with s (a Metablock,
// as the in-toto-golang verifier reads it).
func SignLink(ctx context.Context, s *Signer, in LinkInput) (*intoto.Metablock, error) {
	cmd := in.Command
	if cmd == nil {
		cmd = []string{}
	}
	link := intoto.Link{
		Type:      "link",
		Name:      in.Name,
		Materials: hashObjs(in.Materials),
		Products:  hashObjs(in.Products),
		ByProducts: map[string]interface{}{
			"return-value": in.ExitCode,
			"stdout":       "sha256:" + in.StdoutSHA256,
			"stderr":       "sha256:" + in.StderrSHA256,
		},
		Command:     cmd,
		Environment: map[string]interface{}{},
	}
	return sign(ctx, s, link)
}

func sign(ctx context.Context, s *Signer, signed any) (*intoto.Metablock, error) {
	mb := &intoto.Metablock{Signed: signed}
	payload, err := mb.GetSignableRepresentation()
	if err != nil {
		return nil, err
	}
	sig, err := s.Sign(ctx, payload)
	if err != nil {
		return nil, err
	}
	mb.Signatures = []intoto.Signature{{KeyID: s.KeyID(), Sig: hex.EncodeToString(sig)}}
	return mb, nil
}

// LinkFileName is in-toto's file name for a step's link by a key.
func LinkFileName(step, keyID string) string {
	return fmt.Sprintf(intoto.LinkNameFormat, step, keyID)
}

// WriteMetablock writes mb as JSON to path.
func WriteMetablock(mb *intoto.Metablock, path string) error {
	b, err := json.Marshal(mb)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// LayoutStep is one step of a pipeline as the layout sees it.
type LayoutStep struct {
	// Name is the in-toto step name.
	Name string
	// ReadOnly and Writable are the workspace prefixes ("source",
	// "output/bin") the step's task binds, by mode.
	ReadOnly, Writable []string
	// Command is the expected command (in-toto only warns on a mismatch).
	Command []string
}

// LayoutOptions configure [Layout].
type LayoutOptions struct {
	// Functionaries are the PEM public keys allowed to sign links.
	Functionaries [][]byte
	// Expires is the layout's expiry.
	Expires time.Time
	// Readme is a human description.
	Readme string
	// PipelineDigest is the pipeline closure digest ("sha256:...") the
	// layout is generated for (required). It is written into the signed
	// readme as a line "accord.dev/pipeline-digest: <digest>"
	// ([LayoutPipelineDigest]), so verification can check it against the
	// pipeline the provenance records.
	PipelineDigest string
}

// pipelineDigestLine prefixes the readme line naming the pipeline digest.
const pipelineDigestLine = "accord.dev/pipeline-digest: "

// LayoutPipelineDigest returns the pipeline digest a layout [Layout] wrote
// names in its signed readme; an error when it names none or several.
func LayoutPipelineDigest(l intoto.Layout) (string, error) {
	var found []string
	for _, line := range strings.Split(l.Readme, "\n") {
		if d, ok := strings.CutPrefix(strings.TrimSpace(line), pipelineDigestLine); ok {
			found = append(found, strings.TrimSpace(d))
		}
	}
	switch {
	case len(found) == 0:
		return "", fmt.Errorf("the layout names no pipeline digest (no %q line in its readme)\n  fix: regenerate it with 'accord layout'", strings.TrimSpace(pipelineDigestLine))
	case len(found) > 1:
		return "", fmt.Errorf("the layout names %d pipeline digests: %s", len(found), strings.Join(found, ", "))
	case !strings.HasPrefix(found[0], "sha256:") || len(found[0]) != 71:
		return "", fmt.Errorf("the layout's pipeline digest %q is not a sha256 digest", found[0])
	}
	return found[0], nil
}

// Layout builds and signs (with the catalog owner's key) the in-toto layout
// of a pipeline whose steps run in the given order. Rules:
//   - materials of a workspace are the products of the last earlier step
//     that bound it (MATCH ... WITH PRODUCTS FROM), or anything for the
//     first step that sees it (ALLOW): each task's inputs chain to the
//     outputs before it;
//   - products of a read-only workspace must equal the step's own materials
//     (MATCH ... WITH MATERIALS FROM itself): a step that rewrites source it
//     may only read (the SUNBURST pattern) fails verification;
//   - a writable workspace may change (ALLOW);
//   - nothing else may appear (DISALLOW *).
func Layout(ctx context.Context, owner *Signer, steps []LayoutStep, o LayoutOptions) (*intoto.Metablock, error) {
	readme := pipelineDigestLine + o.PipelineDigest
	if o.Readme != "" {
		readme = o.Readme + "\n" + readme
	}
	l := intoto.Layout{
		Type:    "layout",
		Keys:    map[string]intoto.Key{},
		Inspect: []intoto.Inspection{},
		Expires: o.Expires.UTC().Format("2006-01-02T15:04:05Z"),
		Readme:  readme,
	}
	if _, err := LayoutPipelineDigest(l); err != nil {
		return nil, fmt.Errorf("layout: pipeline digest %q: %w", o.PipelineDigest, err)
	}
	var ids []string
	for _, pem := range o.Functionaries {
		k, err := InTotoKey(pem)
		if err != nil {
			return nil, err
		}
		k.KeyVal.Private = ""
		l.Keys[k.KeyID] = k
		ids = append(ids, k.KeyID)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("layout: no functionary keys")
	}
	sort.Strings(ids)
	last := map[string]string{} // workspace prefix -> last step that bound it
	for _, s := range steps {
		var mats, prods [][]string
		for _, p := range sortedUnion(s.ReadOnly, s.Writable) {
			if prev, ok := last[p]; ok {
				mats = append(mats, []string{"MATCH", p + "/*", "WITH", "PRODUCTS", "FROM", prev})
			} else {
				mats = append(mats, []string{"ALLOW", p + "/*"})
			}
		}
		for _, p := range sortedCopy(s.ReadOnly) {
			prods = append(prods, []string{"MATCH", p + "/*", "WITH", "MATERIALS", "FROM", s.Name})
		}
		for _, p := range sortedCopy(s.Writable) {
			prods = append(prods, []string{"ALLOW", p + "/*"})
		}
		mats = append(mats, []string{"DISALLOW", "*"})
		prods = append(prods, []string{"DISALLOW", "*"})
		l.Steps = append(l.Steps, intoto.Step{
			Type:            "step",
			PubKeys:         ids,
			ExpectedCommand: nonNil(s.Command),
			Threshold:       1,
			SupplyChainItem: intoto.SupplyChainItem{Name: s.Name, ExpectedMaterials: mats, ExpectedProducts: prods},
		})
		for _, p := range sortedUnion(s.ReadOnly, s.Writable) {
			last[p] = s.Name
		}
	}
	return sign(ctx, owner, l)
}

// VerifyLinks runs in-toto-golang's verification of the links in linkDir
// against the signed layout and the owner's public key. On success it
// returns the final products of the pipeline: every file path to its
// sha256, as the last step (in layout order) that saw the path left it (a
// path among a step's materials but not its products was deleted).
func VerifyLinks(layout *intoto.Metablock, ownerPubPEM []byte, linkDir string) (map[string]string, error) {
	k, err := InTotoKey(ownerPubPEM)
	if err != nil {
		return nil, err
	}
	// in-toto-golang expects the layout as loaded from disk.
	b, err := json.Marshal(layout)
	if err != nil {
		return nil, err
	}
	tmp, err := ScratchDir("accord-layout-", int64(len(b)))
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	p := filepath.Join(tmp, "root.layout")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return nil, err
	}
	md, err := intoto.LoadMetadata(p)
	if err != nil {
		return nil, fmt.Errorf("loading layout: %w", err)
	}
	l, reduced, err := inTotoVerify(md, map[string]intoto.Key{k.KeyID: k}, linkDir)
	if err != nil {
		return nil, err
	}
	return finalProducts(l, reduced)
}

// inTotoVerify is in-toto-golang's InTotoVerify (no parameters, no
// intermediate certificates, no line normalization, inspections run in the
// working directory), call for call and in its order, except that it
// returns the layout and the reduced link of every step instead of a
// summary link: the final products are computed from the very links it
// accepted, without loading and checking every link a second time.
func inTotoVerify(layoutEnv intoto.Metadata, keys map[string]intoto.Key, linkDir string) (intoto.Layout, map[string]intoto.Metadata, error) {
	if err := intoto.VerifyLayoutSignatures(layoutEnv, keys); err != nil {
		return intoto.Layout{}, nil, err
	}
	_, useDSSE := layoutEnv.(*intoto.Envelope)
	layout, ok := layoutEnv.GetPayload().(intoto.Layout)
	if !ok {
		return intoto.Layout{}, nil, intoto.ErrNotLayout
	}
	if err := intoto.VerifyLayoutExpiration(layout); err != nil {
		return intoto.Layout{}, nil, err
	}
	layout, err := intoto.SubstituteParameters(layout, nil)
	if err != nil {
		return intoto.Layout{}, nil, err
	}
	roots, intermediates, err := intoto.LoadLayoutCertificates(layout, nil)
	if err != nil {
		return intoto.Layout{}, nil, err
	}
	loaded, err := intoto.LoadLinksForLayout(layout, linkDir)
	if err != nil {
		return intoto.Layout{}, nil, err
	}
	verified, err := intoto.VerifyLinkSignatureThesholds(layout, loaded, roots, intermediates)
	if err != nil {
		return intoto.Layout{}, nil, err
	}
	resolved, err := intoto.VerifySublayouts(layout, verified, linkDir, nil, false)
	if err != nil {
		return intoto.Layout{}, nil, err
	}
	intoto.VerifyStepCommandAlignment(layout, resolved)
	reduced, err := intoto.ReduceStepsMetadata(layout, resolved)
	if err != nil {
		return intoto.Layout{}, nil, err
	}
	steps := make([]any, len(layout.Steps))
	for i, s := range layout.Steps {
		steps[i] = s
	}
	if err := intoto.VerifyArtifacts(steps, reduced); err != nil {
		return intoto.Layout{}, nil, err
	}
	inspected, err := intoto.RunInspections(layout, "", false, useDSSE)
	if err != nil {
		return intoto.Layout{}, nil, err
	}
	for k, v := range reduced {
		inspected[k] = v
	}
	inspections := make([]any, len(layout.Inspect))
	for i, in := range layout.Inspect {
		inspections[i] = in
	}
	if err := intoto.VerifyArtifacts(inspections, inspected); err != nil {
		return intoto.Layout{}, nil, err
	}
	if _, err := intoto.GetSummaryLink(layout, reduced, "accord", useDSSE); err != nil {
		return intoto.Layout{}, nil, err
	}
	return layout, reduced, nil
}

// finalProducts replays the reduced links in layout order.
func finalProducts(l intoto.Layout, reduced map[string]intoto.Metadata) (map[string]string, error) {
	final := map[string]string{}
	for _, s := range l.Steps {
		link, ok := reduced[s.Name].GetPayload().(intoto.Link)
		if !ok {
			return nil, fmt.Errorf("step %s: not a link", s.Name)
		}
		for p := range link.Materials {
			if _, kept := link.Products[p]; !kept {
				delete(final, p)
			}
		}
		for p, h := range link.Products {
			final[p] = h["sha256"]
		}
	}
	return final, nil
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func sortedUnion(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string(nil), a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// VerifyLinkSignature checks that link (an in-toto link file) carries a
// valid signature by one of the public keys pubPEMs.
func VerifyLinkSignature(link []byte, pubPEMs [][]byte) error {
	tmp, err := ScratchDir("accord-link-", int64(len(link)))
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p := filepath.Join(tmp, "x.link")
	if err := os.WriteFile(p, link, 0o600); err != nil {
		return err
	}
	md, err := intoto.LoadMetadata(p)
	if err != nil {
		return fmt.Errorf("reading link: %w", err)
	}
	for _, pub := range pubPEMs {
		k, err := InTotoKey(pub)
		if err != nil {
			return err
		}
		if md.VerifySignature(k) == nil {
			return nil
		}
	}
	return ErrBadSignature
}
