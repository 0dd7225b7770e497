package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/artifact"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/testutil/tamper"
	"github.com/accord-build/accord/sbom"
)

// forgedStore is a layout store holding one image whose evidence an
// attacker with write access to the store got to first: before each
// honest document (signed by the builder) sits a forged one, signed by
// another key, carrying a broken signature, or about another artifact.
// A newer image was stored under the same name since.
type forgedStore struct {
	dir, name, ref  string
	pub, policy     string
	honestDocName   string
	forgedDocNames  []string
	honestSignature string
}

const forgedBuilderID = "https://accord.dev/builders/honest"

func newForgedStore(t *testing.T) *forgedStore {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	builder, pub := testSigner(t, dir, "builder")
	intruder, _ := testSigner(t, dir, "intruder")
	fs := &forgedStore{dir: filepath.Join(dir, "store"), name: "accord.dev/examples/forged", pub: pub}
	st, err := store.OpenLayout(fs.dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	h, err := st.Put(ctx, fs.name, img)
	if err != nil {
		t.Fatal(err)
	}
	fs.ref = fs.name + "@" + h.String()
	other := strings.Repeat("e", 64)
	sbomFor := func(s *attest.Signer, docName, subject string, breakSig bool) store.Layer {
		doc, err := sbom.FromImage(docName, img, sbom.Options{Created: time.Unix(1700000000, 0).UTC()})
		if err != nil {
			t.Fatal(err)
		}
		pred, err := sbom.JSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		stmt, err := attest.Statement(attest.SPDXDocument, []attest.Subject{{Name: fs.name, SHA256: subject}}, json.RawMessage(pred))
		if err != nil {
			t.Fatal(err)
		}
		return envelope(t, s, stmt, attest.SPDXDocument, breakSig)
	}
	// Each signer's links bundle; its provenance names it, as accord's do.
	links := []store.Layer{linksBundle(t, intruder, "forged-step"), linksBundle(t, builder, "build-step")}
	bundleOf := map[*attest.Signer]string{intruder: attest.SHA256Hex(links[0].Blob), builder: attest.SHA256Hex(links[1].Blob)}
	provFor := func(s *attest.Signer, subject string) store.Layer {
		stmt, err := attest.Provenance(&attest.Build{Pipeline: "go-image", PipelineDigest: "sha256:" + strings.Repeat("a", 64), Params: map[string]any{},
			Run: attest.Run{BuilderID: forgedBuilderID, LinksSHA256: bundleOf[s]}}, []attest.Subject{{Name: fs.name, SHA256: subject}})
		if err != nil {
			t.Fatal(err)
		}
		return envelope(t, s, stmt, attest.SLSAProvenanceV1, false)
	}
	fs.honestDocName = "honest-sbom"
	fs.forgedDocNames = []string{"forged-by-intruder", "forged-unsigned", "forged-other-artifact"}
	layers := []store.Layer{
		sbomFor(intruder, "forged-by-intruder", h.Hex, false),
		sbomFor(builder, "forged-unsigned", h.Hex, true),
		sbomFor(builder, "forged-other-artifact", other, false),
		provFor(intruder, h.Hex),
		provFor(builder, other),
		sbomFor(builder, fs.honestDocName, h.Hex, false),
		provFor(builder, h.Hex),
	}
	repo := store.Name(st, fs.name)
	if _, err := store.Attach(ctx, st, store.AttachmentRef(repo, h, store.AttSuffix), layers, nil); err != nil {
		t.Fatal(err)
	}
	var sigs []store.Layer
	for _, c := range []struct {
		s      *attest.Signer
		digest ggcrv1.Hash
	}{{intruder, h}, {builder, ggcrv1.Hash{Algorithm: "sha256", Hex: other}}, {builder, h}} {
		payload, _ := store.SimpleSigning(repo, c.digest)
		sig, err := c.s.Sign(ctx, payload)
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, store.Layer{MediaType: store.SimpleSigningMediaType, Blob: payload, Annotations: map[string]string{store.SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}})
		fs.honestSignature = base64.StdEncoding.EncodeToString(sig)
	}
	if _, err := store.Attach(ctx, st, store.AttachmentRef(repo, h, store.SigSuffix), sigs, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Attach(ctx, st, store.AttachmentRef(repo, h, store.LinksSuffix), links, nil); err != nil {
		t.Fatal(err)
	}
	// A newer build under the same name: the older artifact and its
	// evidence stay reachable as NAME@OLD.
	newer, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, fs.name, newer); err != nil {
		t.Fatal(err)
	}
	fs.policy = filepath.Join(dir, "policy.yaml")
	pol := "apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders: [{id: " + forgedBuilderID + ", key: builder.pub}]\nsbom: required\n"
	if err := os.WriteFile(fs.policy, []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	return fs
}

// linksBundle is a links layer of one signed link for step.
func linksBundle(t *testing.T, s *attest.Signer, step string) store.Layer {
	t.Helper()
	mb, err := attest.SignLink(context.Background(), s, attest.LinkInput{Name: step, Materials: map[string]string{}, Products: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(mb)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: attest.LinkFileName(step, s.KeyID()), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
	tw.Write(b)
	tw.Close()
	return store.Layer{MediaType: store.LinksBundleMediaType, Blob: buf.Bytes()}
}

func testSigner(t *testing.T, dir, name string) (*attest.Signer, string) {
	t.Helper()
	priv, pub, err := attest.GenerateKeyPair([]byte{})
	if err != nil {
		t.Fatal(err)
	}
	kp, pp := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	os.WriteFile(kp, priv, 0o600)
	os.WriteFile(pp, pub, 0o644)
	s, err := attest.LoadSigner(context.Background(), kp, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, pp
}

func envelope(t *testing.T, s *attest.Signer, stmt []byte, predicateType string, breakSig bool) store.Layer {
	t.Helper()
	env, err := attest.SignEnvelope(context.Background(), s, attest.PayloadType, stmt)
	if err != nil {
		t.Fatal(err)
	}
	if breakSig {
		sig, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
		sig[len(sig)-1] ^= 1
		env.Signatures[0].Sig = base64.StdEncoding.EncodeToString(sig)
	}
	b, _ := json.Marshal(env)
	return store.Layer{MediaType: store.DSSEMediaType, Blob: b, Annotations: map[string]string{store.PredicateTypeAnnotation: predicateType, store.SignatureAnnotation: ""}}
}

// TestSBOMAndExportCheckSignatures: 'accord sbom' and 'accord export'
// output only what a trusted key signed about the artifact, whatever was
// stored before it; without a key or policy they refuse and say how to
// give one.
func TestSBOMAndExportCheckSignatures(t *testing.T) {
	fs := newForgedStore(t)
	for _, trust := range [][]string{{"--key", fs.pub}, {"--policy", fs.policy}} {
		t.Run("sbom "+trust[0], func(t *testing.T) {
			out, stderr, err := accord(t, append([]string{"sbom", fs.ref, "--store", fs.dir}, trust...)...)
			if err != nil {
				t.Fatalf("sbom: %v\n%s", err, stderr)
			}
			fs.checkSBOM(t, "sbom output", out)
		})
		t.Run("export "+trust[0], func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "bundle")
			if _, stderr, err := accord(t, append([]string{"export", fs.ref, "--store", fs.dir, "--dir", dir}, trust...)...); err != nil {
				t.Fatalf("export: %v\n%s", err, stderr)
			}
			read := func(f string) string {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			fs.checkSBOM(t, "sbom.spdx.json", read("sbom.spdx.json"))
			fs.checkSBOM(t, "sbom.spdx", read("sbom.spdx"))
			for f, want := range map[string]int{"sbom.intoto.jsonl": 1, "provenance.intoto.jsonl": 1} {
				if n := strings.Count(read(f), "\n"); n != want {
					t.Errorf("%s holds %d envelopes, want only the %d trusted one(s)", f, n, want)
				}
			}
			links, _ := filepath.Glob(filepath.Join(dir, "links", "*.link"))
			if len(links) != 1 || !strings.HasPrefix(filepath.Base(links[0]), "build-step.") {
				t.Errorf("links = %v, want only the builder's build-step link", links)
			}
			var sigs []map[string]string
			json.Unmarshal([]byte(read("signatures.json")), &sigs)
			if len(sigs) != 1 || sigs[0]["signature"] != fs.honestSignature {
				t.Errorf("signatures.json = %v, want only the honest signature", sigs)
			}
		})
	}
	_, otherPub := testSigner(t, t.TempDir(), "other")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"sbom without a key", []string{"sbom", fs.ref, "--store", fs.dir}, []string{"--key", "--policy", "fix:"}},
		{"export without a key", []string{"export", fs.ref, "--store", fs.dir, "--dir", t.TempDir()}, []string{"--key", "--policy", "fix:"}},
		{"sbom with a key that signed nothing", []string{"sbom", fs.ref, "--store", fs.dir, "--key", otherPub}, []string{"none of the", "trusted key", "fix:"}},
		{"export with a key that signed nothing", []string{"export", fs.ref, "--store", fs.dir, "--dir", t.TempDir(), "--key", otherPub}, []string{"no provenance signed by a trusted key", "fix:"}},
		{"both --key and --policy", []string{"sbom", fs.ref, "--store", fs.dir, "--key", fs.pub, "--policy", fs.policy}, []string{"give one"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := accord(t, tc.args...)
			if err == nil {
				t.Fatalf("no error; output:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func (fs *forgedStore) checkSBOM(t *testing.T, what, doc string) {
	t.Helper()
	if !strings.Contains(doc, fs.honestDocName) {
		t.Errorf("%s is not the honest SBOM:\n%.400s", what, doc)
	}
	for _, f := range fs.forgedDocNames {
		if strings.Contains(doc, f) {
			t.Errorf("%s is the forged SBOM %q", what, f)
		}
	}
}

// TestJunkAttestationHidesNothing: one stored attestation layer that
// cannot be read (over the 64 MiB limit) is skipped with a note; 'accord
// sbom' and 'accord export' still output the signed evidence beside it.
func TestJunkAttestationHidesNothing(t *testing.T) {
	fs := newForgedStore(t)
	st, err := store.OpenLayout(fs.dir)
	if err != nil {
		t.Fatal(err)
	}
	_, digest, _ := strings.Cut(fs.ref, "@")
	h, err := ggcrv1.NewHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	z := tamper.NewZeros(t, store.MaxLayerSize+1, store.DSSEMediaType)
	z.Sparse(t, st.Dir())
	addAttachment(t, st, artifact.Artifact{Name: fs.name, Stored: h.String()}, store.AttSuffix, z,
		map[string]string{store.PredicateTypeAnnotation: attest.SPDXDocument})
	out, stderr, err := accord(t, "sbom", fs.ref, "--store", fs.dir, "--key", fs.pub)
	if err != nil {
		t.Fatalf("sbom: %v\n%s", err, stderr)
	}
	fs.checkSBOM(t, "sbom output", out)
	if !strings.Contains(stderr, "limit") {
		t.Errorf("sbom says nothing of the skipped layer: %s", stderr)
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	if _, stderr, err := accord(t, "export", fs.ref, "--store", fs.dir, "--dir", dir, "--key", fs.pub); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "sbom.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	fs.checkSBOM(t, "sbom.spdx.json", string(b))
}
