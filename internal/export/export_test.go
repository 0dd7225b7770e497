package export

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/evidence"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/testutil/tamper"
	"github.com/accord-build/accord/sbom"
	"github.com/accord-build/accord/verify"
)

const builderID = "https://accord.dev/builders/primary"

type world struct {
	st         store.Store
	arg        string
	pol        *verify.Policy
	sbomJSON   []byte
	builderPub string
}

func signer(t *testing.T, dir, name string) (*attest.Signer, []byte) {
	t.Helper()
	priv, pub, err := attest.GenerateKeyPair([]byte{})
	if err != nil {
		t.Fatal(err)
	}
	kp := filepath.Join(dir, name+".key")
	os.WriteFile(kp, priv, 0o600)
	os.WriteFile(filepath.Join(dir, name+".pub"), pub, 0o644)
	s, err := attest.LoadSigner(context.Background(), kp, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, pub
}

func envelope(t *testing.T, s *attest.Signer, predicateType string, stmt []byte) store.Layer {
	t.Helper()
	env, err := attest.SignEnvelope(context.Background(), s, attest.PayloadType, stmt)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(env)
	return store.Layer{MediaType: store.DSSEMediaType, Blob: b, Annotations: map[string]string{store.PredicateTypeAnnotation: predicateType}}
}

// newWorld stores an image with a provenance and an SBOM signed by the
// builder, each behind one signed by an intruder.
func newWorld(t *testing.T, st store.Store) *world {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	builder, pub := signer(t, dir, "builder")
	intruder, _ := signer(t, dir, "intruder")
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	const name = "accord.dev/examples/app"
	h, err := st.Put(ctx, name, img)
	if err != nil {
		t.Fatal(err)
	}
	sha, err := evidence.ArtifactSHA256(img)
	if err != nil {
		t.Fatal(err)
	}
	subj := []attest.Subject{{Name: name, SHA256: sha}}
	doc, err := sbom.FromImage(name, img, sbom.Options{Created: time.Unix(1700000000, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{st: st, arg: name + "@" + h.String(), builderPub: filepath.Join(dir, "builder.pub")}
	if w.sbomJSON, err = sbom.JSON(doc); err != nil {
		t.Fatal(err)
	}
	sbomStmt, err := attest.Statement(attest.SPDXDocument, subj, json.RawMessage(w.sbomJSON))
	if err != nil {
		t.Fatal(err)
	}
	provStmt, err := attest.Provenance(&attest.Build{Pipeline: "go-image", PipelineDigest: "sha256:" + strings.Repeat("a", 64), Params: map[string]any{},
		Run: attest.Run{BuilderID: builderID}}, subj)
	if err != nil {
		t.Fatal(err)
	}
	layers := []store.Layer{
		envelope(t, intruder, attest.SPDXDocument, sbomStmt), envelope(t, intruder, attest.SLSAProvenanceV1, provStmt),
		envelope(t, builder, attest.SPDXDocument, sbomStmt), envelope(t, builder, attest.SLSAProvenanceV1, provStmt),
	}
	if _, err := store.Attach(ctx, st, store.AttachmentRef(store.Name(st, name), h, store.AttSuffix), layers, nil); err != nil {
		t.Fatal(err)
	}
	w.pol = &verify.Policy{Threshold: 1, Builders: []verify.Builder{{ID: builderID, Key: pub}}}
	return w
}

// TestBundle: a release bundle holds only what a trusted key signed, in
// a stable set of files; a bundle that cannot be complete is not written.
func TestBundle(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"layout", "registry"} {
		t.Run(kind, func(t *testing.T) {
			var st store.Store
			var err error
			if kind == "layout" {
				st, err = store.OpenLayout(filepath.Join(t.TempDir(), "store"))
			} else {
				repo, _ := tamper.Registry(t)
				st, err = store.Open(repo)
			}
			if err != nil {
				t.Fatal(err)
			}
			w := newWorld(t, st)
			dir := filepath.Join(t.TempDir(), "bundle")
			var warn bytes.Buffer
			files, err := Bundle(ctx, st, w.arg, Options{Dir: dir, Policy: w.pol, Pub: w.builderPub, Warn: &warn})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"builder.pub", "image/", "provenance.intoto.jsonl", "sbom.intoto.jsonl", "sbom.spdx", "sbom.spdx.json", "README.md"}
			if d := cmp.Diff(want, files); d != "" {
				t.Errorf("files (-want +got):\n%s", d)
			}
			for f, n := range map[string]int{"provenance.intoto.jsonl": 1, "sbom.intoto.jsonl": 1} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				if got := bytes.Count(b, []byte("\n")); got != n {
					t.Errorf("%s holds %d envelopes, want the %d trusted", f, got, n)
				}
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "sbom.spdx.json")); !bytes.Equal(b, w.sbomJSON) {
				t.Errorf("sbom.spdx.json is not the signed SBOM")
			}

			for _, tc := range []struct {
				name  string
				arg   string
				o     Options
				input bool
				want  string
			}{
				{"no trusted provenance", w.arg, Options{Policy: &verify.Policy{Builders: []verify.Builder{{Key: pemOf(t)}}}}, true, "no provenance signed by a trusted key"},
				{"not in the store", "accord.dev/examples/app@sha256:" + strings.Repeat("0", 64), Options{Policy: w.pol}, false, ""},
				{"missing public key file", w.arg, Options{Policy: w.pol, Pub: filepath.Join(t.TempDir(), "none.pub")}, true, "none.pub"},
				{"no policy", w.arg, Options{}, true, "policy"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					out := filepath.Join(t.TempDir(), "bundle")
					tc.o.Dir = out
					_, err := Bundle(ctx, st, tc.arg, tc.o)
					if err == nil {
						t.Fatal("no error")
					}
					if evidence.IsInput(err) != tc.input || !strings.Contains(err.Error(), tc.want) {
						t.Errorf("err = %v (input: %v), want input %v saying %q", err, evidence.IsInput(err), tc.input, tc.want)
					}
					if _, err := os.Stat(out); !os.IsNotExist(err) {
						t.Errorf("a failed export left %s behind", out)
					}
				})
			}
		})
	}
}

// pemOf is a public key that signed nothing.
func pemOf(t *testing.T) []byte {
	_, pub := signer(t, t.TempDir(), "nobody")
	return pub
}

// TestEncodeSBOM: both encodings of a stored SBOM, byte-stable.
func TestEncodeSBOM(t *testing.T) {
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := sbom.FromImage("app", img, sbom.Options{Created: time.Unix(1700000000, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	pred, err := sbom.JSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	js, err := EncodeSBOM(pred, SPDXJSON)
	if err != nil || !bytes.Equal(js, pred) {
		t.Errorf("spdx-json: %v; not the document as stored", err)
	}
	tv, err := EncodeSBOM(pred, SPDXTagValue)
	if err != nil || !bytes.HasPrefix(tv, []byte("SPDXVersion: SPDX-2.3")) {
		t.Errorf("spdx-tv: %v\n%.200s", err, tv)
	}
	if _, err := EncodeSBOM([]byte("junk"), SPDXJSON); err == nil {
		t.Error("junk encoded")
	}
}
