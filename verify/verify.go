package verify

import (
	"fmt"
	"strings"

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
	// CheckArtifactBytes: every blob of the artifact's stored manifest
	// (the manifest, its config and each layer) has the digest and size
	// the manifest names.
	CheckArtifactBytes = "artifact-bytes"
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
	// Notes name the evidence that was skipped: unreadable, malformed,
	// untrusted or unbound attestations and link bundles. Skipped evidence
	// never counts for or against the artifact; a note is not a failure.
	Notes []string `json:"notes"`
	// Used is the evidence the verdict rests on, set only when Verified:
	// what a verification summary ([Summary]) lists. Not part of -o json.
	Used *Used `json:"-"`
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

// Evidence is what is stored beside an artifact. None of it is trusted:
// each item counts only once it verifies.
type Evidence struct {
	// ArtifactSHA256 is the digest of the artifact's bytes, computed by the
	// caller from the artifact itself (never taken from the evidence).
	ArtifactSHA256 string
	// Blobs are the caller's check of the artifact's stored blobs against
	// the digests and sizes its manifest names; nil when the artifact has no
	// manifest (a file the caller hashed itself), and then there is no
	// artifact-bytes check.
	Blobs []Blob
	// Attestations are DSSE envelopes (JSON).
	Attestations [][]byte
	// LinkBundles are the stored links bundles ([attest.LinksBundle]), as
	// stored. Only a bundle whose SHA-256 a trusted provenance about the
	// artifact names (runDetails.byproducts "links") is used.
	LinkBundles [][]byte
	// Notes are evidence the caller could not read (an attestation layer
	// over its size limit); they are reported with the result.
	Notes []string
	// EarlyLinks, when set, is the in-toto verification of LinkBundles
	// the caller started as soon as it had read them ([StartLinks]);
	// nil: the layout check verifies the links when it runs.
	EarlyLinks *EarlyLinks
}

// Blob is one blob of the artifact's stored manifest, as the caller read it.
type Blob struct {
	// Role says which blob: "manifest", "config", "layer 1", ...
	Role string
	// Digest is the digest the manifest names.
	Digest string
	// Problem is how the bytes read differ from the digest and size the
	// manifest names ("" when they match).
	Problem string
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
	// satisfy this signed in-toto layout: the links of the bundles trusted
	// provenance about the artifact names, of the pipeline the layout was
	// generated for, whose final products contain the artifact.
	Layout         []byte
	LayoutOwnerKey []byte
	// File is the policy file as given to [LoadPolicy] or [ParsePolicy],
	// and FileSHA256 the SHA-256 (hex) of the bytes read from it: what a
	// verification summary names as its policy. Empty for a policy built
	// in code, which cannot be named in a summary.
	File, FileSHA256 string
}

// Check names added by the policy.
const (
	CheckSource    = "source-allowed"
	CheckPipeline  = "pipeline-allowed"
	CheckThreshold = "builders-threshold"
)

// Artifact runs every check and returns the result; err is for problems
// with the inputs themselves (an unreadable key), not for failed checks.
// Evidence that is malformed, untrusted or not bound to the artifact is
// skipped with a note: it can neither verify the artifact nor hide the
// evidence that does.
func Artifact(ev Evidence, p Policy) (*Result, error) {
	// An early links check is never left running: it writes and removes
	// a temporary directory.
	defer ev.EarlyLinks.Wait()
	verifiers, fingerprints, err := loadKeys(p)
	if err != nil {
		return nil, err
	}
	if p.Threshold == 0 {
		p.Threshold = 1
	}
	r := &Result{Notes: append([]string{}, ev.Notes...)}
	if len(ev.Blobs) > 0 {
		r.Checks = append(r.Checks, bytesCheck(ev.Blobs))
	}
	envs, notes := parseAttestations(ev.Attestations)
	r.Notes = append(r.Notes, notes...)
	// The SBOMs' signatures are checked beside the provenance's.
	var sboms chan found
	if p.RequireSBOM {
		sboms = make(chan found, 1)
		go func() { sboms <- verified(envs, p.Builders, verifiers, attest.SPDXDocument) }()
	}
	prov := verified(envs, p.Builders, verifiers, attest.SLSAProvenanceV1)
	r.Notes = append(r.Notes, prov.notes...)
	about := prov.about(ev.ArtifactSHA256)
	bundles, notes := selectBundles(ev.LinkBundles, about)
	r.Notes = append(r.Notes, notes...)
	// The layout check (in-toto over every step link) runs alongside the
	// rest.
	var layout chan Check
	if len(p.Layout) > 0 {
		layout = make(chan Check, 1)
		go func() {
			layout <- layoutCheck(bundles, about, p.Layout, p.LayoutOwnerKey, ev.ArtifactSHA256, ev.EarlyLinks)
		}()
	}
	r.Checks = append(r.Checks, signatureCheck(CheckProvenanceSignature, "SLSA provenance", prov))
	r.Checks = append(r.Checks, subjectCheck(CheckProvenanceSubject, "provenance", prov, ev.ArtifactSHA256))
	if len(p.Sources) > 0 {
		r.Checks = append(r.Checks, sourceCheck(about, p.Sources))
		about = filter(about, func(a *attestation) bool { return sourceAllowed(a.prov, p.Sources) })
	}
	if len(p.Pipelines) > 0 {
		r.Checks = append(r.Checks, pipelineCheck(about, p.Pipelines))
		about = filter(about, func(a *attestation) bool { return contains(p.Pipelines, a.prov.PipelineDigest) })
	}
	threshold, agreed := thresholdCheck(about, p, fingerprints)
	r.Checks = append(r.Checks, threshold)
	used := &Used{Agreement: agreed.agreement(p, fingerprints)}
	for _, a := range agreed.members {
		used.Provenance = append(used.Provenance, a.index)
	}
	used.Name = agreed.name(ev.ArtifactSHA256)
	if p.RequireSBOM {
		sb := <-sboms
		r.Notes = append(r.Notes, sb.notes...)
		r.Checks = append(r.Checks, signatureCheck(CheckSBOMSignature, "SPDX SBOM", sb))
		r.Checks = append(r.Checks, subjectCheck(CheckSBOMSubject, "SBOM", sb, ev.ArtifactSHA256))
		for _, a := range sb.about(ev.ArtifactSHA256) {
			used.SBOMs = append(used.SBOMs, a.index)
		}
	}
	if layout != nil {
		r.Checks = append(r.Checks, <-layout)
		used.LinkBundles = layoutBundles(bundles, p.Layout)
	}
	r.Verified = len(r.Failed()) == 0
	if r.Verified {
		r.Used = used
	}
	return r, nil
}

// attestation is one envelope that verified with a trusted builder's key.
type attestation struct {
	index   int // in the envelopes given, 0-based
	builder int // index in Policy.Builders
	st      *attest.ParsedStatement
	prov    provenanceFields
}

// envelope is one stored attestation, parsed but not trusted: its
// predicate type (read from the unverified payload) only routes it.
type envelope struct {
	index         int // 1-based, for notes
	env           *attest.Envelope
	predicateType string
}

// predicateNames are the predicate types verify reads.
var predicateNames = map[string]string{attest.SLSAProvenanceV1: "SLSA provenance", attest.SPDXDocument: "SPDX SBOM"}

// parseAttestations keeps the DSSE envelopes of the statements verify
// reads; every other item is a note.
func parseAttestations(raws [][]byte) ([]envelope, []string) {
	var out []envelope
	var notes []string
	for i, raw := range raws {
		env, err := attest.ParseEnvelope(raw)
		if err != nil {
			notes = append(notes, fmt.Sprintf("attestation %d: %v: skipped", i+1, err))
			continue
		}
		payload, err := decodeB64(env.Payload)
		if err != nil {
			notes = append(notes, fmt.Sprintf("attestation %d: payload is not base64: skipped", i+1))
			continue
		}
		st, err := attest.ParseStatement(payload)
		if err != nil {
			notes = append(notes, fmt.Sprintf("attestation %d: %v: skipped", i+1, err))
			continue
		}
		if st.PredicateType == attest.VerificationSummaryV1 {
			// A verifier's summary (accord verify --vsa-key's own output)
			// is never evidence for a verification: not read, no note.
			continue
		}
		if _, ok := predicateNames[st.PredicateType]; !ok {
			notes = append(notes, fmt.Sprintf("attestation %d: predicate type %q is not one verify reads: skipped", i+1, st.PredicateType))
			continue
		}
		out = append(out, envelope{index: i + 1, env: env, predicateType: st.PredicateType})
	}
	return out, notes
}

// found is what the attestations of one predicate type yielded.
type found struct {
	ok       []*attestation
	present  int // envelopes of this type, verified or not
	problems []string
	notes    []string
}

func (f found) about(sha string) []*attestation {
	return filter(f.ok, func(a *attestation) bool { return a.st.HasSubject(sha) })
}

func verified(envs []envelope, builders []Builder, vs []signature.Verifier, predicateType string) found {
	var f found
	for _, e := range envs {
		if e.predicateType != predicateType {
			continue
		}
		f.present++
		a, problem := trusted(e.env, builders, vs, predicateType)
		if a == nil {
			f.problems = append(f.problems, fmt.Sprintf("attestation %d: %s", e.index, problem))
			f.notes = append(f.notes, fmt.Sprintf("attestation %d (%s): %s: skipped", e.index, predicateNames[predicateType], problem))
			continue
		}
		a.index = e.index - 1
		f.ok = append(f.ok, a)
	}
	return f
}

// trusted finds the policy builder whose key verifies env and, for
// provenance, whose id is the one the provenance names: a trusted key
// signing under another builder's identity is not trusted ([Envelope]'s
// rule).
func trusted(env *attest.Envelope, builders []Builder, vs []signature.Verifier, predicateType string) (*attestation, string) {
	keys := make([]Key, len(vs))
	for i, v := range vs {
		keys[i] = Key{ID: builders[i].ID, Verifier: v}
	}
	s, rej := Envelope(env, keys, predicateType)
	if rej != nil {
		return nil, rej.String()
	}
	a := &attestation{builder: s.Key, st: s.Statement}
	if s.Provenance != nil {
		a.prov = *s.Provenance
	}
	return a, ""
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
