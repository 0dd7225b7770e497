package verify

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/attest"
)

type world struct {
	builder, owner, intruder *attest.Signer
	builderPub, ownerPub     []byte
	artifact                 []byte
	layout                   []byte
	links                    map[string][]byte
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
	mb, err := attest.Layout(context.Background(), w.owner, steps, attest.LayoutOptions{Functionaries: [][]byte{w.builderPub}, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	w.layout, _ = json.Marshal(mb)
	w.links = w.signLinks(t, w.builder, false, false)
	return w
}

func (w *world) signLinks(t *testing.T, s *attest.Signer, sunburst, dropLast bool) map[string][]byte {
	t.Helper()
	src := map[string]string{"source/main.go": hexSHA([]byte("main"))}
	built := map[string]string{"source/main.go": hexSHA([]byte("main")), "output/bin/app": hexSHA(w.artifact)}
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
	return out
}

func (w *world) envelope(t *testing.T, s *attest.Signer, predicateType, subjectSHA string) []byte {
	t.Helper()
	var stmt []byte
	var err error
	if predicateType == attest.SLSAProvenanceV1 {
		stmt, err = attest.Provenance(&attest.Build{Pipeline: "p", PipelineDigest: "sha256:" + strings.Repeat("a", 64),
			Params: map[string]any{}, Run: attest.Run{BuilderID: "https://accord.dev/builders/test"}},
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
	honest := func() Evidence {
		return Evidence{
			ArtifactSHA256: sha,
			Attestations:   [][]byte{w.envelope(t, w.builder, attest.SLSAProvenanceV1, sha), w.envelope(t, w.builder, attest.SPDXDocument, sha)},
			Links:          w.links,
		}
	}
	policy := Policy{BuilderKeys: [][]byte{w.builderPub}, RequireSBOM: true, Layout: w.layout, LayoutOwnerKey: w.ownerPub}
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
		}, []string{CheckProvenanceSubject, CheckSBOMSubject}},
		{"provenance payload edited", func() Evidence {
			ev := honest()
			var env attest.Envelope
			json.Unmarshal(ev.Attestations[0], &env)
			p, _ := base64.StdEncoding.DecodeString(env.Payload)
			p = []byte(strings.Replace(string(p), "https://accord.dev/builders/test", "https://evil.example/builder", 1))
			env.Payload = base64.StdEncoding.EncodeToString(p)
			ev.Attestations[0], _ = json.Marshal(env)
			return ev
		}, []string{CheckProvenanceSignature, CheckProvenanceSubject}},
		{"signature by another key", func() Evidence {
			ev := honest()
			ev.Attestations[0] = w.envelope(t, w.intruder, attest.SLSAProvenanceV1, sha)
			return ev
		}, []string{CheckProvenanceSignature, CheckProvenanceSubject}},
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
		{"a step's link missing", func() Evidence {
			ev := honest()
			ev.Links = w.signLinks(t, w.builder, false, true)
			return ev
		}, []string{CheckLayout}},
		{"SUNBURST: build step rewrites the source it may only read", func() Evidence {
			ev := honest()
			ev.Links = w.signLinks(t, w.builder, true, false)
			return ev
		}, []string{CheckLayout}},
		{"links signed by an untrusted key", func() Evidence {
			ev := honest()
			ev.Links = w.signLinks(t, w.intruder, false, false)
			return ev
		}, []string{CheckLayout}},
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
