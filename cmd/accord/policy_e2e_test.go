package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/pipelines"
	"github.com/accord-build/accord/verify"
)

// catalogDigest returns the digest 'accord catalog -o json' prints for the
// named pipeline.
func catalogDigest(t *testing.T, pipeline string) string {
	t.Helper()
	out, _, err := accord(t, "catalog", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct{ Kind, Name, Digest string }
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Kind == "Pipeline" && e.Name == pipeline {
			return e.Digest
		}
	}
	t.Fatalf("accord catalog lists no pipeline %s:\n%s", pipeline, out)
	return ""
}

// TestCatalogPrintsPipelineDigest: the digest 'accord catalog' prints for a
// pipeline is the pipeline digest a build of it records, not the pipeline
// definition's own.
func TestCatalogPrintsPipelineDigest(t *testing.T) {
	cat, err := pipelines.Builtin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range cat.Pipelines() {
		r, err := cat.Resolve(context.Background(), p.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got := catalogDigest(t, p.Name); got != r.Digest {
			t.Errorf("accord catalog prints %s for %s; its builds record %s", got, p.Name, r.Digest)
		}
	}
	text, _, _ := accord(t, "catalog")
	if r, _ := cat.Resolve(context.Background(), "go-image"); !strings.Contains(text, r.Digest) {
		t.Errorf("accord catalog (text) does not print go-image's pipeline digest %s:\n%s", r.Digest, text)
	}
}

// TestBuildersInitPolicy: the policy 'accord builders init' writes pins the
// catalog's pipeline digests, and with --source (and --ref) the source.
func TestBuildersInitPolicy(t *testing.T) {
	t.Setenv("ACCORD_PASSWORD", "")
	want := []string{catalogDigest(t, "go-image")}
	for _, tc := range []struct {
		name    string
		args    []string
		sources []verify.PolicySource
	}{
		{"no source", nil, nil},
		{"a source", []string{"--source", "https://example.com/org/app.git"}, []verify.PolicySource{{URI: "https://example.com/org/app.git"}}},
		{"a source and refs", []string{"--source", "file:///srv/app.git", "--ref", "main", "--ref", "v*"}, []verify.PolicySource{{URI: "file:///srv/app.git", Refs: []string{"main", "v*"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "b")
			if _, stderr, err := accord(t, append([]string{"builders", "init", dir, "--validators", "0"}, tc.args...)...); err != nil {
				t.Fatalf("builders init: %v\n%s", err, stderr)
			}
			p, err := verify.LoadPolicy(filepath.Join(dir, "policy.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, p.Pipelines); diff != "" {
				t.Errorf("pipelines (-catalog +policy):\n%s", diff)
			}
			if diff := cmp.Diff(tc.sources, p.Sources); diff != "" {
				t.Errorf("sources (-want +got):\n%s", diff)
			}
		})
	}
	if _, _, err := accord(t, "builders", "init", filepath.Join(t.TempDir(), "b"), "--ref", "main"); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--ref needs --source") {
		t.Errorf("--ref without --source: %v", err)
	}
}

// TestPolicyByTheDocsVerifies: an honest build of the catalog's go-image
// from git verifies against a policy written as 'accord verify --help'
// says (the pipeline digest copied from 'accord catalog'), and against the
// policy 'accord builders init --source --ref' wrote; a policy pinning
// another source refuses it.
func TestPolicyByTheDocsVerifies(t *testing.T) {
	st := builderStore(t)
	t.Setenv("ACCORD_PASSWORD", "")
	dir := filepath.Join(t.TempDir(), "builders")
	url, commit := gitExample(t)
	if _, stderr, err := accord(t, "builders", "init", dir, "--validators", "0", "--source", url, "--ref", "main"); err != nil {
		t.Fatalf("builders init: %v\n%s", err, stderr)
	}
	out := runExample(t, st, "--source", url, "--revision", "main", "--key", filepath.Join(dir, "primary.key"), "--builder-id", "https://accord.dev/builders/primary")
	if !out.Succeeded {
		t.Fatalf("build failed: %s", out.Reason)
	}
	var image string
	for _, a := range out.Artifacts {
		if a.Kind == "image" {
			image = a.Name + "@" + a.Digest
		}
	}
	byTheDocs := filepath.Join(dir, "by-the-docs.yaml")
	os.WriteFile(byTheDocs, []byte(fmt.Sprintf(`apiVersion: accord.dev/v1alpha1
kind: Policy
builders:
  - {id: https://accord.dev/builders/primary, key: primary.pub}
threshold: 1
sources:
  - {uri: %q, refs: [main]}
pipelines: [%s]
sbom: required
`, url, catalogDigest(t, "go-image"))), 0o644)
	otherSource := filepath.Join(dir, "other-source.yaml")
	pol, _ := os.ReadFile(filepath.Join(dir, "policy.yaml"))
	os.WriteFile(otherSource, []byte(strings.ReplaceAll(string(pol), url, "https://example.com/other.git")), 0o644)
	for _, tc := range []struct {
		policy string
		code   int
	}{{byTheDocs, 0}, {filepath.Join(dir, "policy.yaml"), 0}, {otherSource, exitNotVerified}} {
		stdout, stderr, err := accord(t, "verify", image, "--store", st, "--policy", tc.policy)
		if exitCode(err) != tc.code {
			t.Errorf("verify --policy %s: exit %d, want %d (commit %s)\n%s%s", filepath.Base(tc.policy), exitCode(err), tc.code, commit, stdout, stderr)
		}
	}
}
