package admission_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
	"sigs.k8s.io/yaml"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/verify"
)

const (
	kyvernoFile = "kyverno-clusterpolicy.yaml"
	cipFile     = "policy-controller-clusterimagepolicy.yaml"
	accordFile  = "accord-policy.yaml"
)

// The structs below mirror the upstream schemas, field for field and with
// the same JSON names, for the fields these policies use. Decoding is
// strict, so a misspelt or misplaced field fails the test instead of being
// dropped silently, as the API server would drop it.
//
// The upstream Go modules are not imported: adding either one changes
// versions of modules accord already depends on.

type objectMeta struct {
	Name        string            `json:"name"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// kyvernoPolicy is a kyverno.io/v1 ClusterPolicy: kyverno/kyverno
// api/kyverno/v1 clusterpolicy_types.go and spec_types.go (Spec).
type kyvernoPolicy struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   objectMeta  `json:"metadata"`
	Spec       kyvernoSpec `json:"spec"`
}

type kyvernoSpec struct {
	Rules                []kyvernoRule         `json:"rules,omitempty"`
	Background           *bool                 `json:"background,omitempty"`
	WebhookConfiguration *kyvernoWebhookConfig `json:"webhookConfiguration,omitempty"`
}

// kyvernoWebhookConfig is WebhookConfiguration (common_types.go).
type kyvernoWebhookConfig struct {
	FailurePolicy  *string `json:"failurePolicy,omitempty"`
	TimeoutSeconds *int32  `json:"timeoutSeconds,omitempty"`
}

// kyvernoRule is Rule (rule_types.go) with MatchResources
// (match_resources_types.go) and ResourceDescription
// (resource_description_types.go).
type kyvernoRule struct {
	Name  string `json:"name"`
	Match struct {
		Any []struct {
			Resources struct {
				Kinds []string `json:"kinds,omitempty"`
			} `json:"resources,omitempty"`
		} `json:"any,omitempty"`
	} `json:"match"`
	VerifyImages []kyvernoImageVerification `json:"verifyImages,omitempty"`
}

// kyvernoImageVerification is ImageVerification
// (image_verification_types.go).
type kyvernoImageVerification struct {
	FailureAction   *string              `json:"failureAction,omitempty"`
	Type            string               `json:"type,omitempty"`
	ImageReferences []string             `json:"imageReferences,omitempty"`
	Attestors       []kyvernoAttestorSet `json:"attestors,omitempty"`
	Attestations    []kyvernoAttestation `json:"attestations,omitempty"`
	MutateDigest    bool                 `json:"mutateDigest"`
	VerifyDigest    bool                 `json:"verifyDigest"`
	Required        bool                 `json:"required"`
}

// kyvernoAttestorSet is AttestorSet: Count entries of Entries must verify.
type kyvernoAttestorSet struct {
	Count   *int              `json:"count,omitempty"`
	Entries []kyvernoAttestor `json:"entries,omitempty"`
}

// kyvernoAttestor is Attestor with a StaticKeyAttestor, Rekor and CTLog.
type kyvernoAttestor struct {
	Keys *struct {
		PublicKeys string `json:"publicKeys,omitempty"`
		Rekor      *struct {
			URL        string `json:"url"`
			IgnoreTlog bool   `json:"ignoreTlog,omitempty"`
		} `json:"rekor,omitempty"`
		CTLog *struct {
			IgnoreSCT bool `json:"ignoreSCT,omitempty"`
		} `json:"ctlog,omitempty"`
	} `json:"keys,omitempty"`
}

// kyvernoAttestation is Attestation. Type replaces the deprecated
// predicateType, which is left out so that using it fails the test.
type kyvernoAttestation struct {
	Name       string               `json:"name,omitempty"`
	Type       string               `json:"type"`
	Attestors  []kyvernoAttestorSet `json:"attestors"`
	Conditions []kyvernoAnyAllConds `json:"conditions,omitempty"`
}

// kyvernoAnyAllConds is AnyAllConditions and Condition (common_types.go).
type kyvernoAnyAllConds struct {
	Any []kyvernoCondition `json:"any,omitempty"`
	All []kyvernoCondition `json:"all,omitempty"`
}

type kyvernoCondition struct {
	Key      any    `json:"key,omitempty"`
	Operator string `json:"operator,omitempty"`
	Value    any    `json:"value,omitempty"`
	Message  string `json:"message,omitempty"`
}

// kyvernoOperators is the ConditionOperator enum (common_types.go).
var kyvernoOperators = strings.Split("Equals;NotEquals;In;AnyIn;AllIn;NotIn;AnyNotIn;AllNotIn;GreaterThanOrEquals;GreaterThan;LessThanOrEquals;LessThan;DurationGreaterThanOrEquals;DurationGreaterThan;DurationLessThanOrEquals;DurationLessThan", ";")

// clusterImagePolicy is a policy.sigstore.dev/v1beta1 ClusterImagePolicy:
// sigstore/policy-controller pkg/apis/policy/v1beta1
// clusterimagepolicy_types.go.
type clusterImagePolicy struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		Images []struct {
			Glob string `json:"glob"`
		} `json:"images"`
		Authorities []cipAuthority `json:"authorities,omitempty"`
		Policy      *cipPolicy     `json:"policy,omitempty"`
		Mode        string         `json:"mode,omitempty"`
	} `json:"spec"`
}

// cipAuthority is Authority with a KeyRef.
type cipAuthority struct {
	Name string `json:"name"`
	Key  *struct {
		Data          string `json:"data,omitempty"`
		HashAlgorithm string `json:"hashAlgorithm,omitempty"`
	} `json:"key,omitempty"`
	Attestations []cipAttestation `json:"attestations,omitempty"`
}

type cipAttestation struct {
	Name          string     `json:"name"`
	PredicateType string     `json:"predicateType"`
	Policy        *cipPolicy `json:"policy,omitempty"`
}

type cipPolicy struct {
	Type string `json:"type"`
	Data string `json:"data,omitempty"`
}

// decode reads file and decodes it strictly into v: unknown and duplicate
// fields are errors.
func decode(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// trusted returns the builders of accord-policy.yaml, the policy both
// admission policies follow, and its threshold.
func trusted(t *testing.T) *verify.Policy {
	t.Helper()
	b, err := os.ReadFile(accordFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := verify.ParsePolicy(accordFile, b, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// samePEM reports whether two PEM texts are the same key, ignoring the
// surrounding white space YAML block scalars add or strip.
func samePEM(a string, b []byte) bool {
	return bytes.Equal(bytes.TrimSpace([]byte(a)), bytes.TrimSpace(b))
}

// shortName is the authority name of a builder: the last element of its id.
func shortName(id string) string { return path.Base(id) }

func TestKeys(t *testing.T) {
	files, err := filepath.Glob("keys/*.pub")
	if err != nil {
		t.Fatal(err)
	}
	// Three builders and the verifier that signs verification summaries.
	if len(files) != 4 || !slices.Contains(files, verifierKeyFile) {
		t.Fatalf("keys/*.pub: %q, want builder-{a,b,c}.pub and verifier.pub", files)
	}
	ids := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		block, rest := pem.Decode(b)
		if block == nil || block.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
			t.Fatalf("%s: want exactly one PEM block of type PUBLIC KEY", f)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec.Curve != elliptic.P256() {
			t.Fatalf("%s: %T, want an ECDSA P-256 key (cosign's format)", f, pub)
		}
		if _, err := attest.LoadVerifier(b); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		id, err := attest.KeyID(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if other, dup := ids[id]; dup {
			t.Fatalf("%s and %s are the same key: k-of-n needs distinct keys", f, other)
		}
		ids[id] = f
	}
	// Only public keys belong here. The marker is split so that this file
	// does not match itself.
	marker := "PRIVATE" + " KEY"
	err = filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(marker)) {
			t.Errorf("%s holds a private key", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAccordPolicy(t *testing.T) {
	p := trusted(t)
	if p.Threshold != 2 || len(p.Builders) != 3 || !p.RequireSBOM {
		t.Fatalf("%s: threshold %d of %d builders, sbom required %v; want 2 of 3, required", accordFile, p.Threshold, len(p.Builders), p.RequireSBOM)
	}
	for _, b := range p.Builders {
		want, err := os.ReadFile(filepath.Join("keys", shortName(b.ID)+".pub"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Key, want) {
			t.Errorf("%s: builder %s does not have the key keys/%s.pub", accordFile, b.ID, shortName(b.ID))
		}
	}
}

func TestKyvernoClusterPolicy(t *testing.T) {
	p := trusted(t)
	var cp kyvernoPolicy
	decode(t, kyvernoFile, &cp)
	if cp.APIVersion != "kyverno.io/v1" || cp.Kind != "ClusterPolicy" {
		t.Fatalf("apiVersion %q kind %q, want kyverno.io/v1 ClusterPolicy", cp.APIVersion, cp.Kind)
	}
	if cp.Spec.Background == nil || *cp.Spec.Background {
		t.Error("spec.background: want false (image verification runs at admission)")
	}
	if len(cp.Spec.Rules) != 1 || len(cp.Spec.Rules[0].VerifyImages) != 1 {
		t.Fatalf("want one rule with one verifyImages entry")
	}
	iv := cp.Spec.Rules[0].VerifyImages[0]
	if iv.FailureAction == nil || *iv.FailureAction != "Enforce" {
		t.Error("failureAction: want Enforce")
	}
	if iv.Type != "Cosign" {
		t.Errorf("type %q, want Cosign", iv.Type)
	}
	if len(iv.ImageReferences) == 0 || !iv.MutateDigest || !iv.VerifyDigest || !iv.Required {
		t.Errorf("want imageReferences, mutateDigest, verifyDigest and required: %+v", iv)
	}
	checkKyvernoAttestors(t, "attestors", iv.Attestors, p)

	byType := map[string]kyvernoAttestation{}
	for _, a := range iv.Attestations {
		byType[a.Type] = a
	}
	want := []string{attest.SLSAProvenanceV1, attest.SPDXDocument}
	if got := slices.Sorted(maps.Keys(byType)); len(iv.Attestations) != 2 || !cmp.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("attestation types %q, want %q", got, want)
	}
	for _, typ := range want {
		a := byType[typ]
		checkKyvernoAttestors(t, "attestations "+a.Name, a.Attestors, p)
		for _, c := range a.Conditions {
			for _, cond := range slices.Concat(c.Any, c.All) {
				if !slices.Contains(kyvernoOperators, cond.Operator) {
					t.Errorf("attestation %s: operator %q is not one of Kyverno's", a.Name, cond.Operator)
				}
			}
		}
	}

	var ids []any
	for _, b := range p.Builders {
		ids = append(ids, b.ID)
	}
	prov := byType[attest.SLSAProvenanceV1]
	for _, want := range []kyvernoCondition{
		{Key: "{{ buildDefinition.buildType }}", Operator: "Equals", Value: attest.BuildType},
		{Key: "{{ runDetails.builder.id }}", Operator: "AnyIn", Value: ids},
	} {
		requireCondition(t, prov, want)
	}
	requireCondition(t, byType[attest.SPDXDocument], kyvernoCondition{Key: "{{ spdxVersion }}", Operator: "Equals", Value: spdx.Version})
}

// checkKyvernoAttestors requires one attestor set: count = the accord
// threshold over one static key entry per trusted builder, in order, each
// skipping the transparency log accord does not use.
func checkKyvernoAttestors(t *testing.T, where string, sets []kyvernoAttestorSet, p *verify.Policy) {
	t.Helper()
	if len(sets) != 1 {
		t.Fatalf("%s: %d attestor sets, want 1", where, len(sets))
	}
	s := sets[0]
	switch {
	case s.Count == nil:
		t.Errorf("%s: no count (Kyverno then requires every entry), want %d (the accord threshold)", where, p.Threshold)
	case *s.Count != p.Threshold:
		t.Errorf("%s: count %d, want %d (the accord threshold)", where, *s.Count, p.Threshold)
	}
	if len(s.Entries) != len(p.Builders) {
		t.Fatalf("%s: %d entries, want %d (one per builder)", where, len(s.Entries), len(p.Builders))
	}
	for i, e := range s.Entries {
		b := p.Builders[i]
		if e.Keys == nil || !samePEM(e.Keys.PublicKeys, b.Key) {
			t.Errorf("%s: entry %d: want the key of %s (keys/%s.pub) alone", where, i, b.ID, shortName(b.ID))
			continue
		}
		if e.Keys.Rekor == nil || !e.Keys.Rekor.IgnoreTlog || e.Keys.CTLog == nil || !e.Keys.CTLog.IgnoreSCT {
			t.Errorf("%s: entry %d: want rekor.ignoreTlog and ctlog.ignoreSCT", where, i)
		}
	}
}

// requireCondition requires want among a's "all" conditions.
func requireCondition(t *testing.T, a kyvernoAttestation, want kyvernoCondition) {
	t.Helper()
	for _, c := range a.Conditions {
		for _, got := range c.All {
			if cmp.Equal(got.Key, want.Key) {
				if diff := cmp.Diff(want.Operator, got.Operator); diff != "" {
					t.Errorf("attestation %s: condition %v operator (-want +got):\n%s", a.Name, want.Key, diff)
				}
				if diff := cmp.Diff(want.Value, got.Value); diff != "" {
					t.Errorf("attestation %s: condition %v value (-want +got):\n%s", a.Name, want.Key, diff)
				}
				return
			}
		}
	}
	t.Errorf("attestation %s: no condition on %v under conditions[].all", a.Name, want.Key)
}

func TestPolicyControllerClusterImagePolicy(t *testing.T) {
	p := trusted(t)
	var cip clusterImagePolicy
	decode(t, cipFile, &cip)
	if cip.APIVersion != "policy.sigstore.dev/v1beta1" || cip.Kind != "ClusterImagePolicy" {
		t.Fatalf("apiVersion %q kind %q, want policy.sigstore.dev/v1beta1 ClusterImagePolicy", cip.APIVersion, cip.Kind)
	}
	if cip.Spec.Mode != "enforce" {
		t.Errorf("mode %q, want enforce", cip.Spec.Mode)
	}
	if len(cip.Spec.Images) == 0 || cip.Spec.Images[0].Glob == "" {
		t.Error("want an images glob")
	}
	if len(cip.Spec.Authorities) != len(p.Builders) {
		t.Fatalf("%d authorities, want %d (one per builder)", len(cip.Spec.Authorities), len(p.Builders))
	}
	for i, a := range cip.Spec.Authorities {
		b := p.Builders[i]
		if a.Name != shortName(b.ID) {
			t.Errorf("authority %d is %q, want %q", i, a.Name, shortName(b.ID))
		}
		if a.Key == nil || !samePEM(a.Key.Data, b.Key) || a.Key.HashAlgorithm != "sha256" {
			t.Errorf("authority %s: want key.data of %s (keys/%s.pub) and hashAlgorithm sha256", a.Name, b.ID, shortName(b.ID))
		}
		if len(a.Attestations) != 2 {
			t.Fatalf("authority %s: %d attestations, want provenance and sbom", a.Name, len(a.Attestations))
		}
		prov, sbom := a.Attestations[0], a.Attestations[1]
		if prov.Name != "provenance" || prov.PredicateType != attest.SLSAProvenanceV1 {
			t.Errorf("authority %s: attestation %s of %s, want provenance of %s", a.Name, prov.Name, prov.PredicateType, attest.SLSAProvenanceV1)
		}
		if sbom.Name != "sbom" || sbom.PredicateType != attest.SPDXDocument {
			t.Errorf("authority %s: attestation %s of %s, want sbom of %s", a.Name, sbom.Name, sbom.PredicateType, attest.SPDXDocument)
		}
		checkRego(t, a.Name+" provenance", prov.Policy, attest.SLSAProvenanceV1, attest.BuildType, b.ID)
		checkRego(t, a.Name+" sbom", sbom.Policy, attest.SPDXDocument, spdx.Version)
	}

	// The CIP-level policy: at least threshold of the builders' authorities.
	pol := cip.Spec.Policy
	var names []string
	for _, b := range p.Builders {
		names = append(names, shortName(b.ID))
	}
	checkRego(t, "spec.policy", pol, names...)
	m := regexp.MustCompile(`count\(\w+\)\s*>=\s*(\d+)`).FindStringSubmatch(pol.Data)
	if m == nil {
		t.Fatalf("spec.policy: no count(...) >= k in\n%s", pol.Data)
	}
	if k, _ := strconv.Atoi(m[1]); k != p.Threshold {
		t.Errorf("spec.policy requires %d authorities, want %d (the accord threshold)", k, p.Threshold)
	}
}

// checkRego requires a rego policy in the form policy-controller evaluates
// (package sigstore, rule isCompliant) that compares with each of quoted.
func checkRego(t *testing.T, where string, p *cipPolicy, quoted ...string) {
	t.Helper()
	if p == nil || p.Type != "rego" {
		t.Fatalf("%s: want a rego policy", where)
	}
	for _, s := range []string{"package sigstore\n", "default isCompliant = false\n", "isCompliant {"} {
		if !strings.Contains(p.Data, s) {
			t.Errorf("%s: policy lacks %q", where, s)
		}
	}
	for _, s := range quoted {
		if !strings.Contains(p.Data, strconv.Quote(s)) {
			t.Errorf("%s: policy does not mention %q", where, s)
		}
	}
}

// TestStrict checks that decoding rejects what the API server would drop:
// a misspelt field, or one that upstream has deprecated.
func TestStrict(t *testing.T) {
	for _, tc := range []struct {
		file     string
		old, new string
		into     any
	}{
		{kyvernoFile, "imageReferences:", "imageReference:", &kyvernoPolicy{}},
		{kyvernoFile, "- count: 2", "- cout: 2", &kyvernoPolicy{}},
		{kyvernoFile, "type: https://slsa.dev/provenance/v1", "predicateType: https://slsa.dev/provenance/v1", &kyvernoPolicy{}},
		{kyvernoFile, "  background: false", "  validationFailureAction: Enforce", &kyvernoPolicy{}},
		{cipFile, "predicateType:", "predicateTyp:", &clusterImagePolicy{}},
		{cipFile, "- glob:", "- globs:", &clusterImagePolicy{}},
		{cipFile, "    key:", "    keys:", &clusterImagePolicy{}},
		{kyvernoVSAFile, "- count: 1", "- cout: 1", &kyvernoPolicy{}},
		{kyvernoVSAFile, "type: https://slsa.dev/verification_summary/v1", "predicateType: https://slsa.dev/verification_summary/v1", &kyvernoPolicy{}},
		{cipVSAFile, "predicateType:", "predicateTyp:", &clusterImagePolicy{}},
		{cipVSAFile, "    key:", "    keys:", &clusterImagePolicy{}},
	} {
		t.Run(tc.file+"/"+tc.new, func(t *testing.T) {
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(tc.old)) {
				t.Fatalf("%s has no %q", tc.file, tc.old)
			}
			b = bytes.Replace(b, []byte(tc.old), []byte(tc.new), 1)
			if err := yaml.UnmarshalStrict(b, tc.into); err == nil {
				t.Errorf("%s with %q accepted", tc.file, tc.new)
			}
		})
	}
}
