package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/attest"
)

// vsaWorld is a 2-of-3 consensus with SBOM and layout, plus evidence the
// verdict does not rest on.
type vsaWorld struct {
	w        *world
	ev       Evidence
	policy   Policy
	used     []int // indices of ev.Attestations the verdict uses
	b2, b3   *attest.Signer
	fp1, fp2 string
}

const (
	vsaID2        = "https://accord.dev/builders/validator-1"
	vsaID3        = "https://accord.dev/builders/validator-2"
	vsaVerifierID = "https://accord.dev/verifiers/release"
	vsaAttURI     = "registry.example/app:sha256-abc.att"
	vsaLinksURI   = "registry.example/app:sha256-abc.links"
)

func newVSAWorld(t *testing.T) *vsaWorld {
	t.Helper()
	w := newWorld(t)
	sha := hexSHA(w.artifact)
	v := &vsaWorld{w: w}
	var b2Pub, b3Pub []byte
	v.b2, b2Pub = signer(t)
	v.b3, b3Pub = signer(t)
	prov1 := w.provenanceNaming(t, sha, pipelineDigest, w.links)
	prov2 := w.provenance(t, v.b2, attest.SLSAProvenanceV1, sha, vsaID2, commitA, "refs/heads/main", pipelineDigest)
	// builder 3 attests the same bytes from another commit: trusted, but
	// not part of the agreement.
	prov3 := w.provenance(t, v.b3, attest.SLSAProvenanceV1, sha, vsaID3, strings.Repeat("b", 40), "refs/heads/main", pipelineDigest)
	untrusted := w.envelope(t, w.intruder, attest.SLSAProvenanceV1, sha)
	sbom1 := w.envelope(t, w.builder, attest.SPDXDocument, sha)
	v.ev = Evidence{
		ArtifactSHA256: sha,
		Attestations:   [][]byte{untrusted, prov3, prov1, []byte("junk"), sbom1, prov2},
		LinkBundles:    [][]byte{w.signLinks(t, w.intruder, false, false), w.links},
	}
	v.used = []int{2, 4, 5}
	v.policy = Policy{
		Builders:  []Builder{{ID: testBuilder, Key: w.builderPub}, {ID: vsaID2, Key: b2Pub}, {ID: vsaID3, Key: b3Pub}},
		Threshold: 2, RequireSBOM: true, Layout: w.layout, LayoutOwnerKey: w.ownerPub,
		File: "policies/release.yaml", FileSHA256: hexSHA([]byte("the policy file")),
	}
	var err error
	if v.fp1, err = attest.Fingerprint(w.builderPub); err != nil {
		t.Fatal(err)
	}
	if v.fp2, err = attest.Fingerprint(b2Pub); err != nil {
		t.Fatal(err)
	}
	return v
}

func vsaOptions() SummaryOptions {
	return SummaryOptions{
		VerifierID: vsaVerifierID, VerifierVersion: map[string]string{"accord": "test"},
		Time:            time.Unix(1700000000, 0),
		ResourceURI:     "registry.example/app@sha256:" + hexSHA([]byte("the binary")),
		AttestationsURI: vsaAttURI, LinksURI: vsaLinksURI,
	}
}

// vsaStatement is the statement as a verifier of VSAs reads it.
type vsaStatement struct {
	Type          string `json:"_type"`
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	Predicate struct {
		Verifier struct {
			ID      string            `json:"id"`
			Version map[string]string `json:"version"`
		} `json:"verifier"`
		TimeVerified string `json:"timeVerified"`
		ResourceURI  string `json:"resourceUri"`
		Policy       struct {
			URI    string            `json:"uri"`
			Digest map[string]string `json:"digest"`
		} `json:"policy"`
		InputAttestations []struct {
			URI    string            `json:"uri"`
			Digest map[string]string `json:"digest"`
		} `json:"inputAttestations"`
		VerificationResult string    `json:"verificationResult"`
		VerifiedLevels     []string  `json:"verifiedLevels"`
		SLSAVersion        string    `json:"slsaVersion"`
		Agreement          Agreement `json:"https://accord.dev/vsa/agreement/v1"`
	} `json:"predicate"`
}

func decodeVSA(t *testing.T, b []byte) vsaStatement {
	t.Helper()
	var s vsaStatement
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("statement: %v\n%s", err, b)
	}
	return s
}

// TestVSASummary: the summary names the policy file by digest, exactly the
// attestations and links bundles the verdict used (not the untrusted, the
// unagreeing or the junk ones), and the agreement; it is deterministic and
// its signature verifies with the verifier's key.
func TestVSASummary(t *testing.T) {
	v := newVSAWorld(t)
	r, err := Artifact(v.ev, v.policy)
	if err != nil || !r.Verified {
		t.Fatalf("verify: %v %+v", err, r)
	}
	st, err := Summary(r, v.ev, v.policy, vsaOptions())
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Summary(r, v.ev, v.policy, vsaOptions())
	if !bytes.Equal(st, again) {
		t.Errorf("two summaries of one verification differ:\n%s\n%s", st, again)
	}
	got := decodeVSA(t, st)
	var want vsaStatement
	want.Type, want.PredicateType = "https://in-toto.io/Statement/v1", attest.VerificationSummaryV1
	want.Subject = append(want.Subject, struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	}{"app", map[string]string{"sha256": v.ev.ArtifactSHA256}})
	p := &want.Predicate
	p.Verifier.ID, p.Verifier.Version = vsaVerifierID, map[string]string{"accord": "test"}
	p.TimeVerified = "2023-11-14T22:13:20Z"
	p.ResourceURI = vsaOptions().ResourceURI
	p.Policy.URI, p.Policy.Digest = "policies/release.yaml", map[string]string{"sha256": v.policy.FileSHA256}
	for _, in := range []struct {
		uri  string
		blob []byte
	}{
		{vsaAttURI, v.ev.Attestations[2]}, {vsaAttURI, v.ev.Attestations[4]}, {vsaAttURI, v.ev.Attestations[5]},
		{vsaLinksURI, v.ev.LinkBundles[1]},
	} {
		p.InputAttestations = append(p.InputAttestations, struct {
			URI    string            `json:"uri"`
			Digest map[string]string `json:"digest"`
		}{in.uri, map[string]string{"sha256": hexSHA(in.blob)}})
	}
	sortInputs(p.InputAttestations)
	p.VerificationResult, p.VerifiedLevels, p.SLSAVersion = "PASSED", []string{"SLSA_BUILD_LEVEL_2"}, "1.0"
	p.Agreement = Agreement{Threshold: 2, SourceCommit: commitA, PipelineDigest: pipelineDigest,
		Builders: []AgreeingBuilder{{ID: testBuilder, KeyFingerprint: v.fp1}, {ID: vsaID2, KeyFingerprint: v.fp2}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}

	verifier, verifierPub := signer(t)
	env, err := SignSummary(context.Background(), verifier, st)
	if err != nil {
		t.Fatal(err)
	}
	e, err := attest.ParseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	vv, _ := attest.LoadVerifier(verifierPub)
	payload, err := attest.VerifyEnvelope(e, vv)
	if err != nil || !bytes.Equal(payload, st) || e.PayloadType != attest.PayloadType {
		t.Errorf("signed summary: %v, payload type %q", err, e.PayloadType)
	}
	bv, _ := attest.LoadVerifier(v.w.builderPub)
	if _, err := attest.VerifyEnvelope(e, bv); err == nil {
		t.Error("the summary verifies with a builder's key")
	}
}

func sortInputs(in []struct {
	URI    string            `json:"uri"`
	Digest map[string]string `json:"digest"`
}) {
	for i := range in {
		for j := i + 1; j < len(in); j++ {
			if in[j].URI < in[i].URI || in[j].URI == in[i].URI && in[j].Digest["sha256"] < in[i].Digest["sha256"] {
				in[i], in[j] = in[j], in[i]
			}
		}
	}
}

// TestVSAFailedVerificationSignsNothing: no summary exists for a
// verification that failed, whatever failed.
func TestVSAFailedVerificationSignsNothing(t *testing.T) {
	v := newVSAWorld(t)
	for _, tc := range []struct {
		name   string
		change func(ev *Evidence, p *Policy)
	}{
		{"one builder only (threshold missed)", func(ev *Evidence, p *Policy) { ev.Attestations = ev.Attestations[:5] }},
		{"threshold raised to 3", func(ev *Evidence, p *Policy) { p.Threshold = 3 }},
		{"no SBOM", func(ev *Evidence, p *Policy) { ev.Attestations = [][]byte{ev.Attestations[2], ev.Attestations[5]} }},
		{"artifact changed", func(ev *Evidence, p *Policy) { ev.ArtifactSHA256 = hexSHA([]byte("patched")) }},
		{"links bundle missing", func(ev *Evidence, p *Policy) { ev.LinkBundles = ev.LinkBundles[:1] }},
		{"untrusted keys only", func(ev *Evidence, p *Policy) {
			p.Builders[0].Key, p.Builders[1].Key, p.Builders[2].Key = p.Builders[2].Key, p.Builders[0].Key, p.Builders[1].Key
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, p := v.ev, v.policy
			ev.Attestations = append([][]byte(nil), ev.Attestations...)
			p.Builders = append([]Builder(nil), p.Builders...)
			tc.change(&ev, &p)
			r, err := Artifact(ev, p)
			if err != nil {
				t.Fatal(err)
			}
			if r.Verified || r.Used != nil {
				t.Fatalf("verified %v, used %+v", r.Verified, r.Used)
			}
			st, err := Summary(r, ev, p, vsaOptions())
			if !errors.Is(err, ErrNotVerified) || st != nil {
				t.Errorf("Summary = %s, %v; want ErrNotVerified", st, err)
			}
		})
	}
	if _, err := Summary(nil, v.ev, v.policy, vsaOptions()); !errors.Is(err, ErrNotVerified) {
		t.Errorf("Summary(nil) = %v", err)
	}
}

// TestVSABadInput: a summary needs a policy file to name and digest, a
// verifier URI, a time and the resource.
func TestVSABadInput(t *testing.T) {
	v := newVSAWorld(t)
	r, err := Artifact(v.ev, v.policy)
	if err != nil || !r.Verified {
		t.Fatalf("verify: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(p *Policy, o *SummaryOptions)
		want   string
	}{
		{"policy built in code", func(p *Policy, o *SummaryOptions) { p.File, p.FileSHA256 = "", "" }, "Policy.File"},
		{"policy without digest", func(p *Policy, o *SummaryOptions) { p.FileSHA256 = "" }, "Policy.File"},
		{"no verifier id", func(p *Policy, o *SummaryOptions) { o.VerifierID = "" }, "is not a URI"},
		{"verifier id not a URI", func(p *Policy, o *SummaryOptions) { o.VerifierID = "release verifier" }, "is not a URI"},
		{"no time", func(p *Policy, o *SummaryOptions) { o.Time = time.Time{} }, "SummaryOptions.Time"},
		{"no resource", func(p *Policy, o *SummaryOptions) { o.ResourceURI = "" }, "SummaryOptions.ResourceURI"},
		{"no attestations URI", func(p *Policy, o *SummaryOptions) { o.AttestationsURI = "" }, "SummaryOptions.AttestationsURI"},
		{"no links URI", func(p *Policy, o *SummaryOptions) { o.LinksURI = "" }, "SummaryOptions.LinksURI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, o := v.policy, vsaOptions()
			tc.change(&p, &o)
			if _, err := Summary(r, v.ev, p, o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// TestVSAPolicyFileDigest: a policy read from a file is named by the file
// as given and the SHA-256 of its bytes.
func TestVSAPolicyFileDigest(t *testing.T) {
	_, pub := signer(t)
	doc := []byte("apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders: [{id: https://a, key: b.pub}]\n")
	p, err := ParsePolicy("dir/policy.yaml", doc, func(string) ([]byte, error) { return pub, nil })
	if err != nil {
		t.Fatal(err)
	}
	if p.File != "dir/policy.yaml" || p.FileSHA256 != hexSHA(doc) {
		t.Errorf("File %q FileSHA256 %q", p.File, p.FileSHA256)
	}
}
