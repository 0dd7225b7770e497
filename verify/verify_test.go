package verify

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/testutil/pemtest"
)

type world struct {
	builder, owner, intruder *attest.Signer
	builderPub, ownerPub     []byte
	artifact                 []byte
	layout                   []byte
	links                    []byte // the honest build's links bundle
}

func signer(t *testing.T) (*attest.Signer, []byte) {
	t.Helper()
	priv, pub, err := attest.GenerateKeyPair([]byte{})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "k.key")
	os.WriteFile(p, priv, 0o600)
	s, err := attest.LoadSigner(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, pub
}

func hexSHA(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

var steps = []attest.LayoutStep{
	{Name: "fetch-record", ReadOnly: []string{"source"}},
	{Name: "build-build", ReadOnly: []string{"source"}, Writable: []string{"output"}},
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{artifact: []byte("the binary")}
	w.builder, w.builderPub = signer(t)
	w.owner, w.ownerPub = signer(t)
	w.intruder, _ = signer(t)
	w.layout = w.makeLayout(t, pipelineDigest)
	w.links = w.signLinks(t, w.builder, false, false)
	return w
}

func (w *world) makeLayout(t *testing.T, pipeline string) []byte {
	t.Helper()
	mb, err := attest.Layout(context.Background(), w.owner, steps, attest.LayoutOptions{Functionaries: [][]byte{w.builderPub}, Expires: time.Now().Add(time.Hour), PipelineDigest: pipeline})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(mb)
	return b
}

func (w *world) signLinks(t *testing.T, s *attest.Signer, sunburst, dropLast bool) []byte {
	t.Helper()
	return w.signLinksOf(t, s, w.artifact, sunburst, dropLast)
}

// signLinksOf returns the links bundle of a build of the test pipeline
// whose output is artifact.
func (w *world) signLinksOf(t *testing.T, s *attest.Signer, artifact []byte, sunburst, dropLast bool) []byte {
	t.Helper()
	src := map[string]string{"source/main.go": hexSHA([]byte("main"))}
	built := map[string]string{"source/main.go": hexSHA([]byte("main")), "output/bin/app": hexSHA(artifact)}
	if sunburst {
		built["source/main.go"] = hexSHA([]byte("main + implant"))
	}
	ins := []attest.LinkInput{
		{Name: "fetch-record", Materials: src, Products: src},
		{Name: "build-build", Materials: src, Products: built},
	}
	if dropLast {
		ins = ins[:1]
	}
	out := map[string][]byte{}
	for _, in := range ins {
		mb, err := attest.SignLink(context.Background(), s, in)
		if err != nil {
			t.Fatal(err)
		}
		out[attest.LinkFileName(in.Name, s.KeyID())], _ = json.Marshal(mb)
	}
	b, err := attest.LinksBundle(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	testBuilder = "https://accord.dev/builders/test"
	commitA     = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	repoURI     = "https://example.com/org/app.git"
)

var pipelineDigest = "sha256:" + strings.Repeat("a", 64)

func (w *world) envelope(t *testing.T, s *attest.Signer, predicateType, subjectSHA string) []byte {
	return w.provenance(t, s, predicateType, subjectSHA, testBuilder, commitA, "refs/heads/main", pipelineDigest)
}

// provenanceNaming is the builder's provenance about subjectSHA, for
// pipeline, naming the links bundle links.
func (w *world) provenanceNaming(t *testing.T, subjectSHA, pipeline string, links []byte) []byte {
	t.Helper()
	return w.provenanceLinks(t, w.builder, attest.SLSAProvenanceV1, subjectSHA, testBuilder, commitA, "refs/heads/main", pipeline, attest.SHA256Hex(links))
}

func (w *world) provenance(t *testing.T, s *attest.Signer, predicateType, subjectSHA, builderID, commit, ref, pipeline string) []byte {
	t.Helper()
	return w.provenanceLinks(t, s, predicateType, subjectSHA, builderID, commit, ref, pipeline, "")
}

func (w *world) provenanceLinks(t *testing.T, s *attest.Signer, predicateType, subjectSHA, builderID, commit, ref, pipeline, links string) []byte {
	t.Helper()
	var stmt []byte
	var err error
	if predicateType == attest.SLSAProvenanceV1 {
		stmt, err = attest.Provenance(&attest.Build{Pipeline: "p", PipelineDigest: pipeline, SourceURI: repoURI, SourceRef: ref, SourceCommit: commit,
			Params: map[string]any{}, Run: attest.Run{BuilderID: builderID, LinksSHA256: links}},
			[]attest.Subject{{Name: "app", SHA256: subjectSHA}})
	} else {
		stmt, err = attest.Statement(predicateType, []attest.Subject{{Name: "app", SHA256: subjectSHA}}, map[string]any{"spdxVersion": "SPDX-2.3"})
	}
	if err != nil {
		t.Fatal(err)
	}
	env, err := attest.SignEnvelope(context.Background(), s, attest.PayloadType, stmt)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(env)
	return b
}

func TestAttacks(t *testing.T) {
	w := newWorld(t)
	sha := hexSHA(w.artifact)
	// with is the evidence of a build whose provenance names its links
	// bundle.
	with := func(links []byte) Evidence {
		return Evidence{
			ArtifactSHA256: sha,
			Attestations:   [][]byte{w.provenanceNaming(t, sha, pipelineDigest, links), w.envelope(t, w.builder, attest.SPDXDocument, sha)},
			LinkBundles:    [][]byte{links},
		}
	}
	honest := func() Evidence { return with(w.links) }
	policy := Policy{Builders: []Builder{{ID: testBuilder, Key: w.builderPub}}, Threshold: 1, RequireSBOM: true, Layout: w.layout, LayoutOwnerKey: w.ownerPub}
	tests := []struct {
		name   string
		ev     func() Evidence
		failed []string
	}{
		{"honest build", honest, nil},
		{"artifact bytes changed after signing", func() Evidence {
			ev := honest()
			ev.ArtifactSHA256 = hexSHA([]byte("the binary, patched"))
			return ev
		}, []string{CheckProvenanceSubject, CheckThreshold, CheckSBOMSubject, CheckLayout}},
		{"provenance payload edited", func() Evidence {
			ev := honest()
			var env attest.Envelope
			json.Unmarshal(ev.Attestations[0], &env)
			p, _ := base64.StdEncoding.DecodeString(env.Payload)
			p = []byte(strings.Replace(string(p), "https://accord.dev/builders/test", "https://evil.example/builder", 1))
			env.Payload = base64.StdEncoding.EncodeToString(p)
			ev.Attestations[0], _ = json.Marshal(env)
			return ev
		}, []string{CheckProvenanceSignature, CheckProvenanceSubject, CheckThreshold, CheckLayout}},
		{"signature by another key", func() Evidence {
			ev := honest()
			ev.Attestations[0] = w.envelope(t, w.intruder, attest.SLSAProvenanceV1, sha)
			return ev
		}, []string{CheckProvenanceSignature, CheckProvenanceSubject, CheckThreshold, CheckLayout}},
		{"SBOM about another subject", func() Evidence {
			ev := honest()
			ev.Attestations[1] = w.envelope(t, w.builder, attest.SPDXDocument, hexSHA([]byte("something else")))
			return ev
		}, []string{CheckSBOMSubject}},
		{"no SBOM", func() Evidence {
			ev := honest()
			ev.Attestations = ev.Attestations[:1]
			return ev
		}, []string{CheckSBOMSignature, CheckSBOMSubject}},
		{"a step's link missing", func() Evidence { return with(w.signLinks(t, w.builder, false, true)) }, []string{CheckLayout}},
		{"SUNBURST: build step rewrites the source it may only read", func() Evidence { return with(w.signLinks(t, w.builder, true, false)) }, []string{CheckLayout}},
		{"links signed by an untrusted key", func() Evidence { return with(w.signLinks(t, w.intruder, false, false)) }, []string{CheckLayout}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Artifact(tc.ev(), policy)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.failed, r.Failed()); diff != "" {
				t.Errorf("failed checks (-want +got):\n%s\n%+v", diff, r.Checks)
			}
			if r.Verified != (len(tc.failed) == 0) {
				t.Errorf("Verified = %v", r.Verified)
			}
			for _, c := range r.Checks {
				if c.Reason == "" {
					t.Errorf("check %s has no reason", c.Name)
				}
			}
		})
	}
}

// TestNoTektonOrKubernetes: verify stays light enough for admission
// controllers and release tooling.
func TestNoTektonOrKubernetes(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "tektoncd") || strings.HasPrefix(p, "k8s.io/") || strings.Contains(p, "knative.dev") {
			t.Errorf("verify imports %s", p)
		}
	}
}

// TestConsensus: k-of-n agreement between distinct trusted builders, and
// the attacks on it.
func TestConsensus(t *testing.T) {
	w := newWorld(t)
	sha := hexSHA(w.artifact)
	b2, b2Pub := signer(t)
	b3, b3Pub := signer(t)
	const id2, id3 = "https://accord.dev/builders/validator-1", "https://accord.dev/builders/validator-2"
	builders := []Builder{{ID: testBuilder, Key: w.builderPub}, {ID: id2, Key: b2Pub}, {ID: id3, Key: b3Pub}}
	prov := func(s *attest.Signer, id, subject, commit, ref, pipeline string) []byte {
		return w.provenance(t, s, attest.SLSAProvenanceV1, subject, id, commit, ref, pipeline)
	}
	honest := func(s *attest.Signer, id string) []byte {
		return prov(s, id, sha, commitA, "refs/heads/main", pipelineDigest)
	}
	tests := []struct {
		name      string
		builders  []Builder
		threshold int
		sources   []PolicySource
		pipelines []string
		atts      [][]byte
		failed    []string
	}{
		{"honest 2 of 2", builders[:2], 2, nil, nil, [][]byte{honest(w.builder, testBuilder), honest(b2, id2)}, nil},
		{"honest 2 of 3", builders, 2, nil, nil, [][]byte{honest(w.builder, testBuilder), honest(b3, id3)}, nil},
		{"one builder compromised: signs another digest", builders[:2], 2, nil, nil,
			[][]byte{honest(w.builder, testBuilder), prov(b2, id2, hexSHA([]byte("evil")), commitA, "refs/heads/main", pipelineDigest)}, []string{CheckThreshold}},
		{"one key under two builder ids (threshold padding)",
			[]Builder{{ID: testBuilder, Key: w.builderPub}, {ID: id2, Key: w.builderPub}}, 2, nil, nil,
			[][]byte{honest(w.builder, testBuilder), honest(w.builder, id2)}, []string{CheckThreshold}},
		{"one builder id with two keys (threshold padding)",
			[]Builder{{ID: testBuilder, Key: w.builderPub}, {ID: testBuilder, Key: b2Pub}}, 2, nil, nil,
			[][]byte{honest(w.builder, testBuilder), honest(b2, testBuilder)}, []string{CheckThreshold}},
		{"trusted key signing under another builder's id", builders[:2], 2, nil, nil,
			[][]byte{honest(w.builder, testBuilder), honest(w.builder, id2)}, []string{CheckThreshold}},
		{"provenance replayed from another commit", builders[:2], 2, nil, nil,
			[][]byte{honest(w.builder, testBuilder), prov(b2, id2, sha, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "refs/heads/main", pipelineDigest)}, []string{CheckThreshold}},
		{"pipeline not in the catalog", builders[:1], 1, nil, []string{"sha256:" + strings.Repeat("c", 64)},
			[][]byte{honest(w.builder, testBuilder)}, []string{CheckPipeline, CheckThreshold}},
		{"source repo outside policy", builders[:1], 1, []PolicySource{{URI: "https://example.com/other.git"}}, nil,
			[][]byte{honest(w.builder, testBuilder)}, []string{CheckSource, CheckThreshold}},
		{"ref outside policy", builders[:1], 1, []PolicySource{{URI: repoURI, Refs: []string{"v*"}}}, nil,
			[][]byte{honest(w.builder, testBuilder)}, []string{CheckSource, CheckThreshold}},
		{"allowed source and pipeline", builders[:1], 1, []PolicySource{{URI: repoURI, Refs: []string{"main"}}}, []string{pipelineDigest},
			[][]byte{honest(w.builder, testBuilder)}, nil},
		{"provenance signed by an untrusted key", builders[:2], 1, nil, nil,
			[][]byte{honest(w.intruder, testBuilder)}, []string{CheckProvenanceSignature, CheckProvenanceSubject, CheckThreshold}},
	}
	// One key, written another way under a second identity, is still one
	// builder: keys count by their material, not their PEM bytes.
	for _, enc := range pemtest.Encodings(t, w.builderPub)[1:] {
		tests = append(tests, struct {
			name      string
			builders  []Builder
			threshold int
			sources   []PolicySource
			pipelines []string
			atts      [][]byte
			failed    []string
		}{"one key in two encodings (" + enc.Name + ") under two builder ids",
			[]Builder{{ID: testBuilder, Key: w.builderPub}, {ID: id2, Key: enc.PEM}}, 2, nil, nil,
			[][]byte{honest(w.builder, testBuilder), honest(w.builder, id2)}, []string{CheckThreshold}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Artifact(Evidence{ArtifactSHA256: sha, Attestations: tc.atts},
				Policy{Builders: tc.builders, Threshold: tc.threshold, Sources: tc.sources, Pipelines: tc.pipelines})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.failed, r.Failed()); diff != "" {
				t.Errorf("failed checks (-want +got):\n%s\n%+v", diff, r.Checks)
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	dir := t.TempDir()
	_, pub := signer(t)
	os.WriteFile(filepath.Join(dir, "b.pub"), pub, 0o644)
	read := os.ReadFile
	good := "apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders:\n  - {id: https://a, key: b.pub}\n  - {id: https://b, key: b.pub}\nthreshold: 2\nsbom: optional\n"
	p, err := ParsePolicy(filepath.Join(dir, "policy.yaml"), []byte(good), read)
	if err != nil {
		t.Fatal(err)
	}
	if p.Threshold != 2 || len(p.Builders) != 2 || p.RequireSBOM {
		t.Errorf("policy %+v", p)
	}
	for _, tc := range []struct{ name, doc, field string }{
		{"malformed", "builders: [", ""},
		{"unknown field", "apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilderz: []\n", ""},
		{"wrong kind", "apiVersion: v1\nkind: Pod\n", "apiVersion"},
		{"no builders", "apiVersion: accord.dev/v1alpha1\nkind: Policy\n", "builders"},
		{"threshold too high", "apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders: [{id: x, key: b.pub}]\nthreshold: 2\n", "threshold"},
		{"missing key file", "apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders: [{id: x, key: nope.pub}]\n", "builders[0].key"},
		{"bad sbom", "apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders: [{id: x, key: b.pub}]\nsbom: maybe\n", "sbom"},
		{"bad ref pattern", "apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders: [{id: x, key: b.pub}]\nsources: [{uri: https://x, refs: [main, \"refs/tags/[\"]}]\n", "sources[0].refs[1]"},
		{"bad pipeline digest", "apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders: [{id: x, key: b.pub}]\npipelines: [abc]\n", "pipelines[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy(filepath.Join(dir, "policy.yaml"), []byte(tc.doc), read)
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *PolicyError", err)
			}
			if pe.Field != tc.field || pe.Fix == "" {
				t.Errorf("field %q (want %q), fix %q", pe.Field, tc.field, pe.Fix)
			}
		})
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte("apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders: [{id: x, key: k}]\nthreshold: 1\n"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy("policy.yaml", b, func(string) ([]byte, error) { return []byte("k"), nil })
		if err == nil && (p.Threshold < 1 || p.Threshold > len(p.Builders)) {
			t.Fatalf("accepted threshold %d with %d builders", p.Threshold, len(p.Builders))
		}
	})
}
