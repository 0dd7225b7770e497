package admission_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/testutil/attested"
	"github.com/accord-build/accord/verify"
)

// admissionWorld is a local registry holding images with the evidence
// accord stores, and the admission policies rewritten for it: the test's
// keys in place of keys/, the registry in place of registry.example.
type admissionWorld struct {
	dir      string
	st       store.Store
	policies map[string]string // committed file -> rewritten file
	images   map[string]name.Digest
}

// newAdmissionWorld makes the images of the admission cases:
//
//	consensus     builders a and b agree; the release verifier's summary
//	single        builder a alone; accord verify fails, so no summary
//	rogue         a and b agree; a summary signed by an untrusted key
//	otherVerifier a and b agree; the verifier's key, another verifier id
//	replayed      builder a alone, with the consensus image's summary copied beside it
func newAdmissionWorld(t *testing.T) *admissionWorld {
	t.Helper()
	repo := attested.StartRegistry(t) + "/accord"
	w := &admissionWorld{dir: t.TempDir(), policies: map[string]string{}, images: map[string]name.Digest{}}
	var err error
	if w.st, err = store.Open(repo + "/app"); err != nil {
		t.Fatal(err)
	}
	// The accord policy is the committed file, next to the test's keys.
	keysDir := filepath.Join(w.dir, "keys")
	os.MkdirAll(keysDir, 0o755)
	builders := map[string]attested.Key{}
	keys := map[string][]byte{}
	for _, b := range trusted(t).Builders {
		n := shortName(b.ID)
		builders[n] = attested.NewKey(t, keysDir, n, b.ID)
		keys[n] = builders[n].Pub
	}
	verifier := attested.NewKey(t, keysDir, "verifier", verifierID)
	keys["verifier"] = verifier.Pub
	intruder := attested.NewKey(t, t.TempDir(), "intruder", verifierID)
	otherID := verifier
	otherID.ID = "https://evil.example/verifiers/release"
	polFile := filepath.Join(w.dir, accordFile)
	b, _ := os.ReadFile(accordFile)
	os.WriteFile(polFile, b, 0o644)
	pol, err := verify.LoadPolicy(polFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{cipFile, cipVSAFile, kyvernoFile, kyvernoVSAFile} {
		w.policies[f] = rewrite(t, w.dir, f, keys, repo)
	}
	a, bb := builders["builder-a"], builders["builder-b"]
	for _, c := range []struct {
		name     string
		builders []attested.Key
		signer   *attested.Key
		verified bool
	}{
		{"consensus", []attested.Key{a, bb}, &verifier, true},
		{"single", []attested.Key{a}, &verifier, false},
		{"rogue", []attested.Key{a, bb}, &intruder, true},
		{"otherVerifier", []attested.Key{a, bb}, &otherID, true},
		{"replayed", []attested.Key{a}, nil, false},
	} {
		d := attested.Image(t, w.st.(*store.Registry).Repository())
		for _, k := range c.builders {
			attested.Attest(t, w.st, d, k, attested.Honest)
		}
		if c.signer != nil {
			if r := attested.Summarize(t, w.st, d, pol, *c.signer); r.Verified != c.verified {
				t.Fatalf("%s: accord verify: verified %v, want %v: %+v", c.name, r.Verified, c.verified, r.Checks)
			}
		}
		w.images[c.name] = d
	}
	w.copySummary(t, w.images["consensus"], w.images["replayed"])
	return w
}

// copySummary attaches the verification summaries stored beside from to
// to, as an attacker with write access to the registry could.
func (w *admissionWorld) copySummary(t *testing.T, from, to name.Digest) {
	t.Helper()
	ctx := context.Background()
	fh, _ := ggcrv1.NewHash(from.DigestStr())
	th, _ := ggcrv1.NewHash(to.DigestStr())
	repo := from.Context().Name()
	ls, err := store.Layers(ctx, w.st, store.AttachmentRef(repo, fh, store.AttSuffix))
	if err != nil {
		t.Fatal(err)
	}
	var vsas []store.Layer
	for _, l := range ls {
		if l.Annotations[store.PredicateTypeAnnotation] == attest.VerificationSummaryV1 {
			vsas = append(vsas, l)
		}
	}
	if len(vsas) != 1 {
		t.Fatalf("%d summaries beside %s, want 1", len(vsas), from)
	}
	if _, err := store.Attach(ctx, w.st, store.AttachmentRef(repo, th, store.AttSuffix), vsas, nil); err != nil {
		t.Fatal(err)
	}
}

// admissionCases: which images each policy admits. The k-of-n policies
// admit what two builders attest, whoever verified; the summary policies
// admit only the release verifier's summary of a passing verification.
var admissionCases = []struct {
	policy string
	image  string
	admit  bool
	why    string // policy-tester's reason for a refusal (a regular expression)
}{
	{cipFile, "consensus", true, ""},
	// Either missing builder may be the one named: policy-tester
	// evaluates the authorities concurrently.
	{cipFile, "single", false, "authority builder-[bc] "},
	{cipVSAFile, "consensus", true, ""},
	{cipVSAFile, "single", false, "accepted signatures do not match threshold"},
	{cipVSAFile, "rogue", false, "accepted signatures do not match threshold"},
	{cipVSAFile, "otherVerifier", false, "policy is not compliant"},
	{cipVSAFile, "replayed", false, "no matching subject digest found"},
}

// TestAdmissionPolicyTester runs sigstore policy-controller's own
// evaluation (policy-tester, cmd/tester of the pinned release) on the
// ClusterImagePolicies against images in a local registry, offline.
func TestAdmissionPolicyTester(t *testing.T) {
	tester := os.Getenv("ACCORD_POLICY_TESTER")
	if tester == "" {
		t.Skip("ACCORD_POLICY_TESTER is not set: hack/test.sh builds policy-controller's pinned policy-tester and sets it")
	}
	w := newAdmissionWorld(t)
	for _, tc := range admissionCases {
		t.Run(tc.policy+"/"+tc.image, func(t *testing.T) {
			cmd := exec.Command(tester, "-policy", w.policies[tc.policy], "-image", w.images[tc.image].String(), "-log-level", "error")
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "TUF_ROOT="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if admitted := err == nil; admitted != tc.admit {
				t.Errorf("policy-tester admitted=%v, want %v: %v\n%s", admitted, tc.admit, err, out)
			}
			// A refusal is the evaluation's, not a policy it could not load.
			if !tc.admit && (!strings.Contains(string(out), `{"errors":`) || !regexp.MustCompile(tc.why).Match(out)) {
				t.Errorf("policy-tester refused, but not because of %q:\n%s", tc.why, out)
			}
		})
	}
}

// kyvernoCases: the same cases for the Kyverno policies.
var kyvernoCases = []struct {
	policy string
	image  string
	admit  bool
	why    string // kyverno's reason for a refusal
}{
	{kyvernoFile, "consensus", true, ""},
	{kyvernoFile, "single", false, "no matching signatures"},
	{kyvernoVSAFile, "consensus", true, ""},
	{kyvernoVSAFile, "single", false, "accepted signatures do not match threshold"},
	{kyvernoVSAFile, "rogue", false, "accepted signatures do not match threshold"},
	{kyvernoVSAFile, "otherVerifier", false, "not verified by the release verifier (verifier.id)"},
	{kyvernoVSAFile, "replayed", false, "no matching subject digest found"},
}

// kyvernoSummary is the count line of kyverno apply.
var kyvernoSummary = regexp.MustCompile(`pass: (\d+), fail: (\d+), warn: \d+, error: (\d+)`)

// TestAdmissionKyverno runs the Kyverno CLI (kyverno apply, of the pinned
// release) on the ClusterPolicies and a pod of each image in a local
// registry, offline.
func TestAdmissionKyverno(t *testing.T) {
	kyverno := os.Getenv("ACCORD_KYVERNO")
	if kyverno == "" {
		t.Skip("ACCORD_KYVERNO is not set: hack/test.sh builds the pinned Kyverno CLI and sets it")
	}
	w := newAdmissionWorld(t)
	for _, tc := range kyvernoCases {
		t.Run(tc.policy+"/"+tc.image, func(t *testing.T) {
			pod := filepath.Join(t.TempDir(), "pod.yaml")
			os.WriteFile(pod, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: app, namespace: default}\nspec:\n  containers:\n  - name: app\n    image: "+w.images[tc.image].String()+"\n"), 0o644)
			cmd := exec.Command(kyverno, "apply", w.policies[tc.policy], "--resource", pod, "--registry", "--remove-color")
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "TUF_ROOT="+t.TempDir())
			out, err := cmd.CombinedOutput()
			m := kyvernoSummary.FindStringSubmatch(string(out))
			if m == nil {
				t.Fatalf("kyverno apply evaluated nothing: %v\n%s", err, out)
			}
			admitted := err == nil && m[1] != "0" && m[2] == "0" && m[3] == "0"
			if admitted != tc.admit {
				t.Errorf("kyverno apply admitted=%v, want %v: %v\n%s", admitted, tc.admit, err, out)
			}
			if !tc.admit && (m[2] == "0" || !strings.Contains(string(out), tc.why)) {
				t.Errorf("kyverno apply refused, but not because of %q:\n%s", tc.why, out)
			}
		})
	}
}
