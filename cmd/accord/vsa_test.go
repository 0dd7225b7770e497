package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/proof"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/testutil/attested"
)

const vsaVerifier = "https://accord.dev/verifiers/release"

// vsaSetup is a registry with an image two builders attest alike, one a
// single builder attests, and a 2-of-2 policy over the two builders.
type vsaSetup struct {
	repo                string
	st                  store.Store
	consensus, single   name.Digest
	a, b, verifier, bad attested.Key
	policy              string
}

func newVSASetup(t *testing.T, addr string) *vsaSetup {
	t.Helper()
	dir := t.TempDir()
	s := &vsaSetup{repo: addr + "/accord"}
	var err error
	if s.st, err = store.Open(s.repo); err != nil {
		t.Fatal(err)
	}
	s.a = attested.NewKey(t, dir, "builder-a", "https://accord.dev/builders/builder-a")
	s.b = attested.NewKey(t, dir, "builder-b", "https://accord.dev/builders/builder-b")
	s.verifier = attested.NewKey(t, dir, "verifier", vsaVerifier)
	s.bad = attested.NewKey(t, dir, "intruder", vsaVerifier)
	s.consensus = attested.Image(t, s.repo)
	attested.Attest(t, s.st, s.consensus, s.a, attested.Honest)
	attested.Attest(t, s.st, s.consensus, s.b, attested.Honest)
	s.single = attested.Image(t, s.repo)
	attested.Attest(t, s.st, s.single, s.a, attested.Honest)
	s.policy = filepath.Join(dir, "policy.yaml")
	os.WriteFile(s.policy, []byte(fmt.Sprintf("apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders:\n  - {id: %s, key: %s}\n  - {id: %s, key: %s}\nthreshold: 2\nsbom: required\n",
		s.a.ID, s.a.PubFile, s.b.ID, s.b.PubFile)), 0o644)
	t.Setenv("ACCORD_PASSWORD", "")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	return s
}

func (s *vsaSetup) verify(t *testing.T, d name.Digest, extra ...string) (string, string, error) {
	t.Helper()
	return accord(t, append([]string{"verify", d.String(), "--store", s.repo, "--policy", s.policy}, extra...)...)
}

// summaries returns the verification summary layers stored beside d, and
// how many layers there are in all.
func (s *vsaSetup) summaries(t *testing.T, d name.Digest) ([]store.Layer, int) {
	t.Helper()
	h, _ := ggcrv1.NewHash(d.DigestStr())
	ls, err := store.Layers(context.Background(), s.st, store.AttachmentRef(s.repo, h, store.AttSuffix))
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Layer
	for _, l := range ls {
		if l.Annotations[store.PredicateTypeAnnotation] == attest.VerificationSummaryV1 {
			out = append(out, l)
		}
	}
	return out, len(ls)
}

// TestVSAFlags: --vsa-key and --verifier-id go together, and the verifier
// is a URI; nothing is read or signed before that holds.
func TestVSAFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"key without verifier id", []string{"--vsa-key", "v.key"}, "--vsa-key needs --verifier-id"},
		{"verifier id without key", []string{"--verifier-id", vsaVerifier}, "--verifier-id is only used with --vsa-key"},
		{"verifier id not a URI", []string{"--vsa-key", "v.key", "--verifier-id", "release"}, "is not a URI"},
		{"verifier id a bare scheme", []string{"--vsa-key", "v.key", "--verifier-id", "https:"}, "is not a URI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := accord(t, append([]string{"verify", "x", "--policy", "/nonexistent/policy.yaml"}, tc.args...)...)
			if exitCode(err) != exitUsage || !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Errorf("exit %d, %v; want %d and %q", exitCode(err), err, exitUsage, tc.want)
			}
		})
	}
}

// TestVSAStored: a passing verify --vsa-key stores one summary beside the
// artifact, signed by the verifier, naming what it used; a second run
// replaces it; a failed verification, a bad SOURCE_DATE_EPOCH or an
// unreadable key stores nothing.
func TestVSAStored(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	s := newVSASetup(t, strings.TrimPrefix(srv.URL, "http://"))
	sign := []string{"--vsa-key", s.verifier.File, "--verifier-id", vsaVerifier}

	stdout, _, err := s.verify(t, s.consensus, "-o", "json")
	if err != nil || strings.Contains(stdout, `"vsa"`) {
		t.Fatalf("verify without --vsa-key: %v\n%s", err, stdout)
	}
	if got, _ := s.summaries(t, s.consensus); len(got) != 0 {
		t.Fatalf("verify without --vsa-key stored %d summaries", len(got))
	}
	for range 2 {
		stdout, stderr, err := s.verify(t, s.consensus, append(sign, "-o", "json")...)
		if err != nil {
			t.Fatalf("verify --vsa-key: %v\n%s\n%s", err, stdout, stderr)
		}
		var out struct {
			Verified bool
			Notes    []string
			VSA      struct{ Digest, Ref string }
		}
		if err := json.Unmarshal([]byte(stdout), &out); err != nil || !out.Verified || out.VSA.Ref == "" {
			t.Fatalf("verify -o json: %v\n%s", err, stdout)
		}
		if len(out.Notes) != 0 {
			t.Errorf("notes %q: a stored summary is not evidence and no note", out.Notes)
		}
		got, all := s.summaries(t, s.consensus)
		if len(got) != 1 || all != 5 {
			t.Fatalf("%d summaries among %d layers, want 1 among 5 (2 builders' provenance and SBOM)", len(got), all)
		}
		if d := "sha256:" + attest.SHA256Hex(got[0].Blob); d != out.VSA.Digest || got[0].Annotations[proof.VerifierAnnotation] != vsaVerifier {
			t.Errorf("stored summary %s (annotations %v), output names %s", d, got[0].Annotations, out.VSA.Digest)
		}
		checkStoredVSA(t, s, got[0].Blob)
	}
	stdout, _, err = s.verify(t, s.consensus, sign...)
	if err != nil || !strings.Contains(stdout, "verification summary: "+s.repo) {
		t.Errorf("verify --vsa-key text output: %v\n%s", err, stdout)
	}

	for _, tc := range []struct {
		name  string
		image name.Digest
		env   map[string]string
		args  []string
		code  int
	}{
		{"attested by one builder only", s.single, nil, sign, exitNotVerified},
		{"bad SOURCE_DATE_EPOCH", s.single, map[string]string{"SOURCE_DATE_EPOCH": "yesterday"}, sign, exitNotVerified},
		{"bad SOURCE_DATE_EPOCH, verified", s.consensus, map[string]string{"SOURCE_DATE_EPOCH": "yesterday"}, sign, exitUsage},
		{"missing key file", s.consensus, nil, []string{"--vsa-key", s.verifier.File + ".nope", "--verifier-id", vsaVerifier}, exitUsage},
		{"wrong password", s.consensus, map[string]string{"ACCORD_PASSWORD": "wrong"}, sign, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := s.summaries(t, tc.image)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, _, err := s.verify(t, tc.image, tc.args...)
			if exitCode(err) != tc.code {
				t.Errorf("exit %d (%v), want %d", exitCode(err), err, tc.code)
			}
			after, _ := s.summaries(t, tc.image)
			if len(after) != len(before) || len(after) > 0 && string(after[0].Blob) != string(before[0].Blob) {
				t.Errorf("summaries changed: %d before, %d after", len(before), len(after))
			}
		})
	}
}

// checkStoredVSA checks the stored envelope: the verifier's signature, and
// the statement accord verify made of this verification.
func checkStoredVSA(t *testing.T, s *vsaSetup, blob []byte) {
	t.Helper()
	env, err := attest.ParseEnvelope(blob)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := attest.LoadVerifier(s.verifier.Pub)
	payload, err := attest.VerifyEnvelope(env, v)
	if err != nil {
		t.Fatalf("summary not signed by the verifier: %v", err)
	}
	var st struct {
		PredicateType string `json:"predicateType"`
		Subject       []struct{ Digest map[string]string }
		Predicate     struct {
			Verifier struct {
				ID      string
				Version map[string]string
			}
			TimeVerified, ResourceURI, VerificationResult string
			Policy                                        struct {
				URI    string
				Digest map[string]string
			}
			InputAttestations []struct{ URI string }
			VerifiedLevels    []string
			Agreement         struct {
				Threshold int
				Builders  []struct{ ID string }
			} `json:"https://accord.dev/vsa/agreement/v1"`
		}
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		t.Fatal(err)
	}
	p := st.Predicate
	pol, _ := os.ReadFile(s.policy)
	h := s.consensus.DigestStr()
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"predicateType", st.PredicateType, attest.VerificationSummaryV1},
		{"subject", st.Subject[0].Digest["sha256"], strings.TrimPrefix(h, "sha256:")},
		{"verifier", p.Verifier.ID + " " + p.Verifier.Version["accord"], vsaVerifier + " " + version},
		{"timeVerified (SOURCE_DATE_EPOCH)", p.TimeVerified, "2023-11-14T22:13:20Z"},
		{"resourceUri", p.ResourceURI, s.repo + "@" + h},
		{"policy", p.Policy.URI + " " + p.Policy.Digest["sha256"], s.policy + " " + attest.SHA256Hex(pol)},
		{"inputAttestations", len(p.InputAttestations), 4},
		{"input URI", p.InputAttestations[0].URI, s.repo + ":" + strings.Replace(h, ":", "-", 1) + ".att"},
		{"verificationResult", p.VerificationResult, "PASSED"},
		{"verifiedLevels", strings.Join(p.VerifiedLevels, ","), "SLSA_BUILD_LEVEL_2"},
		{"agreement", fmt.Sprint(p.Agreement.Threshold, len(p.Agreement.Builders)), "2 2"},
	} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestVSAInterop: the real cosign verify-attestation accepts the summary
// accord verify stored, with the verifier's key and type
// https://slsa.dev/verification_summary/v1, and refuses it with a
// builder's key or another key.
func TestVSAInterop(t *testing.T) {
	cosign := os.Getenv("ACCORD_COSIGN")
	if cosign == "" {
		t.Skip("ACCORD_COSIGN is not set: hack/test.sh builds the pinned cosign and sets it")
	}
	s := newVSASetup(t, attested.StartRegistry(t))
	if _, stderr, err := s.verify(t, s.consensus, "--vsa-key", s.verifier.File, "--verifier-id", vsaVerifier); err != nil {
		t.Fatalf("verify --vsa-key: %v\n%s", err, stderr)
	}
	run := func(key string, d name.Digest) ([]byte, error) {
		cmd := exec.Command(cosign, "verify-attestation", "--key", key, "--insecure-ignore-tlog=true", "--allow-insecure-registry",
			"--type", attest.VerificationSummaryV1, d.String())
		cmd.Env = append(os.Environ(), "TUF_ROOT="+t.TempDir())
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil {
			return []byte(errb.String()), err
		}
		return []byte(out.String()), nil
	}
	out, err := run(s.verifier.PubFile, s.consensus)
	if err != nil {
		t.Fatalf("cosign verify-attestation of accord's summary: %v\n%s", err, out)
	}
	var env struct{ Payload string }
	if err := json.Unmarshal([]byte(strings.SplitN(string(out), "\n", 2)[0]), &env); err != nil {
		t.Fatalf("cosign output: %v\n%s", err, out)
	}
	payload, _ := base64.StdEncoding.DecodeString(env.Payload)
	if !strings.Contains(string(payload), `"verificationResult":"PASSED"`) || !strings.Contains(string(payload), vsaVerifier) {
		t.Errorf("cosign verified another statement:\n%s", payload)
	}
	for _, tc := range []struct {
		name string
		key  string
		d    name.Digest
	}{
		{"a builder's key", s.a.PubFile, s.consensus},
		{"an untrusted key", s.bad.PubFile, s.consensus},
		{"an image without a summary", s.verifier.PubFile, s.single},
	} {
		if out, err := run(tc.key, tc.d); err == nil {
			t.Errorf("cosign accepted a summary with %s:\n%s", tc.name, out)
		}
	}
}
