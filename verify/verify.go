package verify

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	intoto "github.com/in-toto/in-toto-golang/in_toto"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/accord-build/accord/attest"
)

// Check names, stable for scripts and -o json.
const (
	CheckProvenanceSignature = "provenance-signature"
	CheckProvenanceSubject   = "provenance-subject"
	CheckSBOMSignature       = "sbom-signature"
	CheckSBOMSubject         = "sbom-subject"
	CheckLayout              = "in-toto-layout"
)

// Check is one named verification step.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason"`
}

// Result is the outcome: verified only when every check passed.
type Result struct {
	Verified bool    `json:"verified"`
	Checks   []Check `json:"checks"`
}

// Failed returns the names of the failed checks.
func (r *Result) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c.Name)
		}
	}
	return out
}

// Error is a failed verification: it names the failed checks. It is a
// distinct type from I/O errors, so the CLI maps it to "not verified".
type Error struct{ Result *Result }

func (e *Error) Error() string {
	var parts []string
	for _, c := range e.Result.Checks {
		if !c.OK {
			parts = append(parts, c.Name+": "+c.Reason)
		}
	}
	return "not verified: " + strings.Join(parts, "; ")
}

// Evidence is what is stored beside an artifact.
type Evidence struct {
	// ArtifactSHA256 is the digest of the artifact's bytes, computed by the
	// caller from the artifact itself (never taken from the evidence).
	ArtifactSHA256 string
	// Attestations are DSSE envelopes (JSON).
	Attestations [][]byte
	// Links are in-toto link files (JSON Metablocks) by file name.
	Links map[string][]byte
}

// Builder is a trusted builder: its identity and public key (PEM). A
// Builder without ID trusts the key under whatever identity its provenance
// names (for 'accord sbom --key'); policy files always give one.
type Builder struct {
	ID  string
	Key []byte
}

// Policy says whom to trust and what to require.
type Policy struct {
	// Builders are the trusted builders.
	Builders []Builder
	// Threshold is k: how many distinct trusted builders (distinct
	// identity and distinct key) must attest the same subject for the
	// same source and pipeline. Default 1.
	Threshold int
	// Sources, when set, are the allowed repositories and refs.
	Sources []PolicySource
	// Pipelines, when set, are the allowed pipeline digests.
	Pipelines []string
	// RequireSBOM requires a signed SBOM about the artifact.
	RequireSBOM bool
	// Layout and LayoutOwnerKey, when set, require the step links to
	// satisfy this signed in-toto layout.
	Layout         []byte
	LayoutOwnerKey []byte
}

// Check names added by the policy.
const (
	CheckSource    = "source-allowed"
	CheckPipeline  = "pipeline-allowed"
	CheckThreshold = "builders-threshold"
)

// Artifact runs every check and returns the result; err is for problems
// with the inputs themselves (an unreadable key), not for failed checks.
func Artifact(ev Evidence, p Policy) (*Result, error) {
	verifiers, fingerprints, err := loadKeys(p)
	if err != nil {
		return nil, err
	}
	if p.Threshold == 0 {
		p.Threshold = 1
	}
	r := &Result{}
	// The layout check (in-toto over every step link) is independent of
	// the rest: it runs alongside.
	var layout chan Check
	if len(p.Layout) > 0 {
		layout = make(chan Check, 1)
		go func() { layout <- layoutCheck(ev.Links, p.Layout, p.LayoutOwnerKey) }()
	}
	prov := verified(ev.Attestations, p.Builders, verifiers, attest.SLSAProvenanceV1)
	r.Checks = append(r.Checks, signatureCheck(CheckProvenanceSignature, "SLSA provenance", prov))
	r.Checks = append(r.Checks, subjectCheck(CheckProvenanceSubject, "provenance", prov, ev.ArtifactSHA256))
	about := prov.about(ev.ArtifactSHA256)
	if len(p.Sources) > 0 {
		r.Checks = append(r.Checks, sourceCheck(about, p.Sources))
		about = filter(about, func(a *attestation) bool { return sourceAllowed(a.prov, p.Sources) })
	}
	if len(p.Pipelines) > 0 {
		r.Checks = append(r.Checks, pipelineCheck(about, p.Pipelines))
		about = filter(about, func(a *attestation) bool { return contains(p.Pipelines, a.prov.PipelineDigest) })
	}
	r.Checks = append(r.Checks, thresholdCheck(about, p, fingerprints))
	if p.RequireSBOM {
		sb := verified(ev.Attestations, p.Builders, verifiers, attest.SPDXDocument)
		r.Checks = append(r.Checks, signatureCheck(CheckSBOMSignature, "SPDX SBOM", sb))
		r.Checks = append(r.Checks, subjectCheck(CheckSBOMSubject, "SBOM", sb, ev.ArtifactSHA256))
	}
	if layout != nil {
		r.Checks = append(r.Checks, <-layout)
	}
	r.Verified = len(r.Failed()) == 0
	return r, nil
}

// attestation is one envelope that verified with a trusted builder's key.
type attestation struct {
	index   int // in the envelopes given
	builder int // index in Policy.Builders
	st      *attest.ParsedStatement
	prov    provenanceFields
}

// found is what the attestations of one predicate type yielded.
type found struct {
	ok       []*attestation
	present  int // envelopes of this type, verified or not
	problems []string
}

func (f found) about(sha string) []*attestation {
	return filter(f.ok, func(a *attestation) bool { return a.st.HasSubject(sha) })
}

func verified(envs [][]byte, builders []Builder, vs []signature.Verifier, predicateType string) found {
	var f found
	for i, raw := range envs {
		env, err := attest.ParseEnvelope(raw)
		if err != nil {
			f.problems = append(f.problems, fmt.Sprintf("attestation %d: %v", i+1, err))
			continue
		}
		if st, err := attest.ParseStatement(payloadOf(env)); err != nil || st.PredicateType != predicateType {
			continue
		}
		f.present++
		a, problem := trusted(env, builders, vs, predicateType)
		if a == nil {
			f.problems = append(f.problems, fmt.Sprintf("attestation %d: %s", i+1, problem))
			continue
		}
		a.index = i
		f.ok = append(f.ok, a)
	}
	return f
}

// trusted finds the policy builder whose key verifies env and, for
// provenance, whose id is the one the provenance names: a trusted key
// signing under another builder's identity is not trusted.
func trusted(env *attest.Envelope, builders []Builder, vs []signature.Verifier, predicateType string) (*attestation, string) {
	problem := "not signed by a trusted builder key"
	for i, v := range vs {
		payload, err := attest.VerifyEnvelope(env, v)
		if err != nil {
			continue
		}
		st, err := attest.ParseStatement(payload)
		if err != nil {
			return nil, err.Error()
		}
		a := &attestation{builder: i, st: st}
		if predicateType != attest.SLSAProvenanceV1 {
			return a, ""
		}
		if a.prov, err = parseProvenance(st.Predicate); err != nil {
			return nil, err.Error()
		}
		if a.prov.BuilderID == builders[i].ID || builders[i].ID == "" {
			return a, ""
		}
		problem = fmt.Sprintf("signed by the key of %s but claims builder %q", builders[i].ID, a.prov.BuilderID)
	}
	return nil, problem
}

func payloadOf(env *attest.Envelope) []byte {
	b, _ := decodeB64(env.Payload)
	return b
}

func signatureCheck(name, what string, f found) Check {
	switch {
	case len(f.ok) > 0:
		return Check{name, true, fmt.Sprintf("%d %s attestation(s) signed by a trusted builder", len(f.ok), what)}
	case f.present == 0:
		return Check{name, false, "no " + what + " attestation found"}
	}
	return Check{name, false, strings.Join(f.problems, "; ")}
}

func subjectCheck(name, what string, f found, sha string) Check {
	if len(f.ok) == 0 {
		return Check{name, false, "no trusted " + what + " to check the subject of"}
	}
	if len(f.about(sha)) > 0 {
		return Check{name, true, what + " is about sha256:" + sha}
	}
	var subs []string
	for _, a := range f.ok {
		for _, s := range a.st.Subject {
			subs = append(subs, s.Name+"@sha256:"+s.Digest["sha256"])
		}
	}
	return Check{name, false, fmt.Sprintf("the artifact is sha256:%s but the signed %s is about %s (artifact changed after signing, or evidence for another artifact)", sha, what, strings.Join(subs, ", "))}
}

func layoutCheck(links map[string][]byte, layout, ownerKey []byte) Check {
	dir, err := os.MkdirTemp("", "accord-links-")
	if err != nil {
		return Check{CheckLayout, false, err.Error()}
	}
	defer os.RemoveAll(dir)
	for name, b := range links {
		if filepath.Base(name) != name || !strings.HasSuffix(name, ".link") {
			return Check{CheckLayout, false, fmt.Sprintf("bad link file name %q", name)}
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return Check{CheckLayout, false, err.Error()}
		}
	}
	lp := filepath.Join(dir, "root.layout.json")
	if err := os.WriteFile(lp, layout, 0o644); err != nil {
		return Check{CheckLayout, false, err.Error()}
	}
	md, err := intoto.LoadMetadata(lp)
	if err != nil {
		return Check{CheckLayout, false, "layout: " + err.Error()}
	}
	mb, ok := md.(*intoto.Metablock)
	if !ok {
		return Check{CheckLayout, false, "layout is not a signed Metablock"}
	}
	if err := attest.VerifyLinks(mb, ownerKey, dir); err != nil {
		return Check{CheckLayout, false, err.Error()}
	}
	return Check{CheckLayout, true, fmt.Sprintf("%d step links satisfy the layout", len(links))}
}
