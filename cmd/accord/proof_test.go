package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/images"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/testutil/attested"
)

// keyPair writes NAME.key/NAME.pub with accord keys generate (password in
// ACCORD_PASSWORD) and returns their paths.
func keyPair(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	t.Setenv("ACCORD_PASSWORD", "test-password")
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := accord(t, "keys", "generate", name)
	os.Chdir(wd)
	if err != nil {
		t.Fatalf("keys generate: %v %s", err, stderr)
	}
	return filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
}

// TestKeyNeverReachesSandbox: with --key, no step can see the key: not by
// its host path, not in its environment (nor the password's), not through
// a mount, not through /proc, not anywhere in its filesystem; a canary with
// the same PEM header placed in the source proves the search works.
func TestKeyNeverReachesSandbox(t *testing.T) {
	st := builderStore(t)
	dir := t.TempDir()
	key, _ := keyPair(t, dir, "builder")
	t.Setenv("COSIGN_PASSWORD", "test-password")
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "canary.pem"), []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\ncanary\n"), 0o644)
	img := strings.TrimSpace(storeOut)
	pipeline := filepath.Join(dir, "snoop.yaml")
	os.WriteFile(pipeline, []byte(fmt.Sprintf(`apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: snoop}
spec:
  workspaces: [{name: source}]
  tasks:
    - name: snoop
      workspaces: [{name: source, workspace: source}]
      taskSpec:
        workspaces: [{name: source}]
        results: [{name: ARTIFACT_URI}, {name: ARTIFACT_DIGEST}]
        steps:
          - name: look
            image: "%s"
            script: |
              #!/bin/sh
              found=0
              pat="ENCRYPTED SIGSTORE"; pat="$pat PRIVATE KEY"
              test -e %q && { echo "key path visible"; found=1; }
              test -e %q && { echo "key dir visible"; found=1; }
              env | grep -E 'PASSWORD|SIGSTORE|COSIGN' && { echo "secret in env"; found=1; }
              grep -q %q /proc/self/mountinfo && { echo "key dir mounted"; found=1; }
              for e in /proc/[0-9]*/environ; do grep -l -E 'ACCORD_PASSWORD|COSIGN_PASSWORD' "$e" 2>/dev/null && { echo "password in $e"; found=1; }; done
              hits=$(find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -type f -print 2>/dev/null | xargs grep -l "$pat" 2>/dev/null | grep -v canary.pem)
              test -n "$hits" && { echo "key material at: $hits"; found=1; }
              grep -rl "$pat" $(workspaces.source.path) | grep -q canary.pem || { echo "canary not found: the search is broken"; found=1; }
              echo found=$found
              test $found = 0
              printf %%s "$(workspaces.source.path)/canary.pem" > $(results.ARTIFACT_URI.path)
              printf sha256:%%s "$(sha256sum $(workspaces.source.path)/canary.pem | cut -d' ' -f1)" > $(results.ARTIFACT_DIGEST.path)
`, img, key, dir, dir)), 0o644)
	stdout, stderr, err := accord(t, "run", "--store", st, "--source", src, "--pipeline", pipeline, "--key", key, "-o", "json")
	if err != nil {
		t.Fatalf("the sandbox could see the key (or the run failed): %v\n%s\n%s", err, stderr, stdout)
	}
	if !strings.Contains(stderr, "found=0") {
		t.Errorf("step output lacks found=0:\n%s", stderr)
	}
	var out struct{ Proof []struct{ Links string } }
	json.Unmarshal([]byte(stdout), &out)
	if len(out.Proof) != 1 || out.Proof[0].Links == "" {
		t.Errorf("no signed links recorded: %s", stdout)
	}
}

// startRegistry runs Debian's docker-registry on a free loopback port
// (its access log shown only when the test fails); without it the test
// fails, as hack/test.sh installs it.
func startRegistry(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("docker-registry"); err != nil && os.Getenv("ACCORD_REGISTRY_BIN") == "" {
		t.Fatal("docker-registry is not installed: run hack/test.sh, which installs it")
	}
	return attested.StartRegistry(t)
}

func tool(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: run hack/test.sh, which builds the pinned interop tools and sets it", env)
	}
	return p
}

// TestInterop: the ecosystem's own tools accept accord's output. The real
// cosign CLI verifies the image signature and the SLSA provenance and SPDX
// attestations accord stored in a real registry; the upstream in-toto-golang
// CLI verifies the exported step links against accord's layout.
func TestInterop(t *testing.T) {
	cosign, intoto := tool(t, "ACCORD_COSIGN"), tool(t, "ACCORD_INTOTO")
	layoutStore := builderStore(t)
	addr := startRegistry(t)
	repo := addr + "/accord"
	// The builder image goes to the registry store as it is.
	ls, _ := store.OpenLayout(layoutStore)
	h, err := ls.Resolve(images.GoBuilderRef)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := ls.Image(context.Background(), h)
	dst, err := name.NewDigest(repo + "@" + h.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, pub := keyPair(t, dir, "builder")
	ownerKey, ownerPub := keyPair(t, dir, "owner")
	out := runExample(t, repo, "--key", key, "--builder-id", "https://accord.dev/builders/interop")
	var imageDigest, imageName string
	for _, a := range out.Artifacts {
		if a.Kind == "image" {
			imageDigest, imageName = a.Digest, a.Name
		}
	}
	if imageDigest == "" {
		t.Fatalf("no image artifact: %+v", out.Artifacts)
	}
	ref := repo + "@" + imageDigest
	env := append(os.Environ(), "SIGSTORE_REKOR_PUBLIC_KEY="+pub, "COSIGN_PASSWORD=", "TUF_ROOT="+t.TempDir())
	for _, args := range [][]string{
		{"verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", ref},
		{"verify-attestation", "--key", pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", "--type", "slsaprovenance1", ref},
		{"verify-attestation", "--key", pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", "--type", "spdxjson", ref},
	} {
		cmd := exec.Command(cosign, args...)
		cmd.Env = env
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("cosign %s: %v\n%s", args[0], err, b)
		}
	}
	// A key that did not sign must be refused by cosign too.
	_, otherPub := keyPair(t, t.TempDir(), "other")
	cmd := exec.Command(cosign, "verify", "--key", otherPub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", ref)
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("cosign verified with a key that did not sign:\n%s", b)
	}
	// in-toto: layout from the catalog, links from the registry.
	layoutFile := filepath.Join(dir, "root.layout")
	if _, stderr, err := accord(t, "layout", "--key", ownerKey, "--functionary", pub, "--out", layoutFile); err != nil {
		t.Fatalf("layout: %v %s", err, stderr)
	}
	bundle := filepath.Join(dir, "bundle")
	if _, stderr, err := accord(t, "export", imageName+"@"+imageDigest, "--store", repo, "--dir", bundle, "--key", pub, "--pub", pub, "--layout", layoutFile); err != nil {
		t.Fatalf("export: %v %s", err, stderr)
	}
	v := exec.Command(intoto, "verify", "-l", layoutFile, "-k", ownerPub, "-d", filepath.Join(bundle, "links"))
	v.Dir = dir
	if b, err := v.CombinedOutput(); err != nil {
		t.Errorf("in-toto-golang verify: %v\n%s", err, b)
	}
	// accord verify: the whole policy passes; a policy trusting another key
	// fails, naming the checks.
	writePolicy := func(keyFile string) string {
		p := filepath.Join(t.TempDir(), "policy.yaml")
		os.WriteFile(p, []byte(fmt.Sprintf("apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders: [{id: https://accord.dev/builders/interop, key: %s}]\nthreshold: 1\nsbom: required\nlayout: {file: %s, ownerKey: %s}\n", keyFile, layoutFile, ownerPub)), 0o644)
		return p
	}
	target := imageName + "@" + imageDigest
	stdout, stderr, err := accord(t, "verify", target, "--store", repo, "--policy", writePolicy(pub), "-o", "json")
	if err != nil {
		t.Errorf("accord verify: %v\n%s\n%s", err, stdout, stderr)
	}
	var vr struct {
		Verified bool
		Checks   []struct {
			Name string
			OK   bool
		}
	}
	if err := json.Unmarshal([]byte(stdout), &vr); err != nil || !vr.Verified || len(vr.Checks) != 7 {
		t.Errorf("verify -o json: %v %s", err, stdout)
	}
	stdout, _, err = accord(t, "verify", target, "--store", repo, "--policy", writePolicy(otherPub), "-o", "json")
	if exitCode(err) != exitNotVerified || !strings.Contains(stdout, `"name": "provenance-signature",`) || !strings.Contains(stdout, `"verified": false`) {
		t.Errorf("verify with an untrusted key: exit %d\n%s", exitCode(err), stdout)
	}
	// A key made by cosign itself works as it is.
	kd := t.TempDir()
	gen := exec.Command(cosign, "generate-key-pair")
	gen.Dir, gen.Env = kd, append(os.Environ(), "COSIGN_PASSWORD=cosign-made")
	if b, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, b)
	}
	s, err := attest.LoadSigner(context.Background(), filepath.Join(kd, "cosign.key"), func() ([]byte, error) { return []byte("cosign-made"), nil })
	if err != nil {
		t.Fatalf("loading a cosign-made key: %v", err)
	}
	blob := []byte("signed by accord with a cosign key")
	sig, err := s.Sign(context.Background(), blob)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(kd, "blob"), blob, 0o644)
	os.WriteFile(filepath.Join(kd, "blob.sig"), []byte(base64.StdEncoding.EncodeToString(sig)), 0o644)
	vb := exec.Command(cosign, "verify-blob", "--key", filepath.Join(kd, "cosign.pub"), "--signature", filepath.Join(kd, "blob.sig"), "--insecure-ignore-tlog=true", filepath.Join(kd, "blob"))
	vb.Env = env
	if b, err := vb.CombinedOutput(); err != nil {
		t.Errorf("cosign verify-blob of accord's signature with a cosign-made key: %v\n%s", err, b)
	}
	for _, f := range []string{"provenance.intoto.jsonl", "sbom.spdx.json", "sbom.spdx", "signatures.json", "builder.pub", "root.layout", "README.md"} {
		if _, err := os.Stat(filepath.Join(bundle, f)); err != nil {
			t.Errorf("bundle lacks %s", f)
		}
	}
}
