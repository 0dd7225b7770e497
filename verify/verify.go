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

// Policy says whom to trust and what to require.
type Policy struct {
	// BuilderKeys are the PEM public keys of trusted builders.
	BuilderKeys [][]byte
	// RequireSBOM requires a signed SBOM about the artifact.
	RequireSBOM bool
	// Layout and LayoutOwnerKey, when set, require the step links to
	// satisfy this signed in-toto layout.
	Layout         []byte
	LayoutOwnerKey []byte
}

// Artifact runs every check and returns the result; err is for problems
// with the inputs themselves (an unreadable key), not for failed checks.
func Artifact(ev Evidence, p Policy) (*Result, error) {
	var verifiers []signature.Verifier
	for i, k := range p.BuilderKeys {
		v, err := attest.LoadVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("trusted builder key %d: %w", i+1, err)
		}
		verifiers = append(verifiers, v)
	}
	r := &Result{}
	prov := verified(ev.Attestations, verifiers, attest.SLSAProvenanceV1)
	r.Checks = append(r.Checks, signatureCheck(CheckProvenanceSignature, "SLSA provenance", prov))
	r.Checks = append(r.Checks, subjectCheck(CheckProvenanceSubject, "provenance", prov, ev.ArtifactSHA256))
	if p.RequireSBOM {
		sb := verified(ev.Attestations, verifiers, attest.SPDXDocument)
		r.Checks = append(r.Checks, signatureCheck(CheckSBOMSignature, "SPDX SBOM", sb))
		r.Checks = append(r.Checks, subjectCheck(CheckSBOMSubject, "SBOM", sb, ev.ArtifactSHA256))
	}
	if len(p.Layout) > 0 {
		r.Checks = append(r.Checks, layoutCheck(ev.Links, p.Layout, p.LayoutOwnerKey))
	}
	r.Verified = len(r.Failed()) == 0
	return r, nil
}

// found is what the attestations of one predicate type yielded.
type found struct {
	statements []*attest.ParsedStatement
	present    int // envelopes of this type, verified or not
	problems   []string
}

func verified(envs [][]byte, vs []signature.Verifier, predicateType string) found {
	var f found
	for i, raw := range envs {
		env, err := attest.ParseEnvelope(raw)
		if err != nil {
			f.problems = append(f.problems, fmt.Sprintf("attestation %d: %v", i+1, err))
			continue
		}
		var payload []byte
		for _, v := range vs {
			if payload, err = attest.VerifyEnvelope(env, v); err == nil {
				break
			}
		}
		st, perr := attest.ParseStatement(payloadOf(env))
		if perr != nil || st.PredicateType != predicateType {
			continue
		}
		f.present++
		if payload == nil {
			f.problems = append(f.problems, fmt.Sprintf("attestation %d is not signed by a trusted builder key", i+1))
			continue
		}
		if st, err = attest.ParseStatement(payload); err == nil {
			f.statements = append(f.statements, st)
		}
	}
	return f
}

func payloadOf(env *attest.Envelope) []byte {
	b, _ := decodeB64(env.Payload)
	return b
}

func signatureCheck(name, what string, f found) Check {
	switch {
	case len(f.statements) > 0:
		return Check{name, true, fmt.Sprintf("%d %s attestation(s) signed by a trusted builder", len(f.statements), what)}
	case f.present == 0:
		return Check{name, false, "no " + what + " attestation found"}
	}
	return Check{name, false, strings.Join(f.problems, "; ")}
}

func subjectCheck(name, what string, f found, sha string) Check {
	if len(f.statements) == 0 {
		return Check{name, false, "no trusted " + what + " to check the subject of"}
	}
	for _, st := range f.statements {
		if st.HasSubject(sha) {
			return Check{name, true, what + " is about sha256:" + sha}
		}
	}
	var subs []string
	for _, st := range f.statements {
		for _, s := range st.Subject {
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
