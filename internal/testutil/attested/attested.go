// Package attested makes, for tests, images in a registry with the
// evidence accord stores beside them: builders' signed SLSA provenance and
// SPDX SBOMs (sha256-<hex>.att) and image signatures (sha256-<hex>.sig),
// as internal/proof stores them, and the verification summary of a
// verification of them. Tests of admission and interop use it where the
// point is what a registry holds, not a build.
package attested

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accord-build/accord/internal/testutil/regtest"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/proof"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/sbom"
	"github.com/accord-build/accord/verify"
)

// Key is a test key pair in cosign's format, with an empty password.
type Key struct {
	// ID is the identity the key signs under (a builder's or verifier's).
	ID      string
	Signer  *attest.Signer
	Pub     []byte
	File    string // the encrypted private key
	PubFile string
}

// NewKey writes dir/name.key and dir/name.pub.
func NewKey(t testing.TB, dir, name, id string) Key {
	t.Helper()
	priv, pub, err := attest.GenerateKeyPair([]byte{})
	if err != nil {
		t.Fatal(err)
	}
	k := Key{ID: id, Pub: pub, File: filepath.Join(dir, name+".key"), PubFile: filepath.Join(dir, name+".pub")}
	if err := os.WriteFile(k.File, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.PubFile, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	if k.Signer, err = attest.LoadSigner(context.Background(), k.File, func() ([]byte, error) { return []byte{}, nil }); err != nil {
		t.Fatal(err)
	}
	return k
}

// StartRegistry runs Debian's docker-registry ($ACCORD_REGISTRY_BIN, else
// from PATH) on a free loopback port until the test ends, and returns its
// host:port (regtest.Start: without it the test fails, naming the fix).
func StartRegistry(t testing.TB) string {
	t.Helper()
	return regtest.Start(t, regtest.Options{}).Addr
}

// Image pushes a small random image to repo (HOST/REPO) and returns it by
// digest.
func Image(t testing.TB, repo string) name.Digest {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.NewDigest(repo+"@"+h.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(d, img); err != nil {
		t.Fatalf("pushing %s: %v", d, err)
	}
	return d
}

// Build is what a builder's provenance records.
type Build struct {
	SourceURI, Commit, PipelineDigest string
}

// Honest is the build every honest builder of these tests records.
var Honest = Build{
	SourceURI:      "https://example.com/org/app.git",
	Commit:         strings.Repeat("c", 40),
	PipelineDigest: "sha256:" + strings.Repeat("d", 64),
}

// Attest stores, as builder b, signed provenance of build and an SPDX
// SBOM about the image d, and the image's cosign signature: what accord
// run stores for an image artifact.
func Attest(t testing.TB, st store.Store, d name.Digest, b Key, build Build) {
	t.Helper()
	ctx := context.Background()
	h, err := ggcrv1.NewHash(d.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	sub := attest.Subject{Name: d.Context().Name(), SHA256: h.Hex}
	prov, err := attest.Provenance(&attest.Build{
		SourceURI: build.SourceURI, SourceRef: "refs/heads/main", SourceCommit: build.Commit,
		Pipeline: "go-build", PipelineDigest: build.PipelineDigest, Params: map[string]any{},
		Run: attest.Run{BuilderID: b.ID, InvocationID: "test"},
	}, []attest.Subject{sub})
	if err != nil {
		t.Fatal(err)
	}
	img, err := st.Image(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := sbom.FromImage(sub.Name, img, sbom.Options{Created: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	j, err := sbom.JSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := attest.Statement(attest.SPDXDocument, []attest.Subject{sub}, json.RawMessage(j))
	if err != nil {
		t.Fatal(err)
	}
	repo := store.Name(st, sub.Name)
	var layers []store.Layer
	for _, s := range []struct {
		typ  string
		stmt []byte
	}{{attest.SLSAProvenanceV1, prov}, {attest.SPDXDocument, sb}} {
		env, err := attest.SignEnvelope(ctx, b.Signer, attest.PayloadType, s.stmt)
		if err != nil {
			t.Fatal(err)
		}
		blob, _ := json.Marshal(env)
		layers = append(layers, store.Layer{MediaType: store.DSSEMediaType, Blob: blob, Annotations: map[string]string{
			store.SignatureAnnotation: "", store.PredicateTypeAnnotation: s.typ, store.BuilderAnnotation: b.ID,
		}})
	}
	if _, err := store.Attach(ctx, st, store.AttachmentRef(repo, h, store.AttSuffix), layers, nil); err != nil {
		t.Fatal(err)
	}
	payload, err := store.SimpleSigning(repo, h)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := b.Signer.Sign(ctx, payload)
	if err != nil {
		t.Fatal(err)
	}
	l := store.Layer{MediaType: store.SimpleSigningMediaType, Blob: payload, Annotations: map[string]string{
		store.SignatureAnnotation: base64.StdEncoding.EncodeToString(sig), store.BuilderAnnotation: b.ID,
	}}
	if _, err := store.Attach(ctx, st, store.AttachmentRef(repo, h, store.SigSuffix), []store.Layer{l}, nil); err != nil {
		t.Fatal(err)
	}
}

// Evidence reads the image d and its attestations from st as verify reads
// them.
func Evidence(t testing.TB, st store.Store, d name.Digest) verify.Evidence {
	t.Helper()
	h, err := ggcrv1.NewHash(d.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	ev := verify.Evidence{ArtifactSHA256: h.Hex}
	ls, err := store.Layers(context.Background(), st, store.AttachmentRef(store.Name(st, d.Context().Name()), h, store.AttSuffix))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		ev.Attestations = append(ev.Attestations, l.Blob)
	}
	return ev
}

// Summarize verifies d against pol and, when it verifies, signs its
// verification summary as verifier v (at time 1700000000) and stores it
// beside d, as accord verify --vsa-key does. It returns the result.
func Summarize(t testing.TB, st store.Store, d name.Digest, pol *verify.Policy, v Key) *verify.Result {
	t.Helper()
	ev := Evidence(t, st, d)
	r, err := verify.Artifact(ev, *pol)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Verified {
		return r
	}
	h, _ := ggcrv1.NewHash(d.DigestStr())
	repo := store.Name(st, d.Context().Name())
	statement, err := verify.Summary(r, ev, *pol, verify.SummaryOptions{
		VerifierID: v.ID, Time: time.Unix(1700000000, 0), ResourceURI: d.String(),
		AttestationsURI: store.AttachmentRef(repo, h, store.AttSuffix), LinksURI: store.AttachmentRef(repo, h, store.LinksSuffix),
	})
	if err != nil {
		t.Fatal(err)
	}
	env, err := verify.SignSummary(context.Background(), v.Signer, statement)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proof.AttachSummary(context.Background(), st, repo, h, env, v.ID); err != nil {
		t.Fatal(err)
	}
	return r
}
