package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/proof"
	"github.com/accord-build/accord/internal/pull"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/testutil"
	"github.com/accord-build/accord/internal/testutil/regtest"
)

const registryImagePipeline = `apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: from-registry}
spec:
  workspaces: [{name: source}, {name: out}]
  tasks:
    - name: emit
      workspaces: [{name: source, workspace: source}, {name: out, workspace: out}]
      taskSpec:
        workspaces: [{name: source}, {name: out}]
        results:
          - name: FILE_ARTIFACT_OUTPUTS
            type: object
            properties: {uri: {type: string}, digest: {type: string}}
        steps:
          - name: emit
            image: IMAGE
            script: |
              #!/bin/sh
              set -eu
              f="$(workspaces.out.path)/pulled.txt"
              # As catalog Tasks do: write outside the workspaces (the
              # step's writable layer), and let the artifact depend on
              # the pulled image's own files.
              mkdir -p /root/.cache/x /usr/local/share/accord
              echo cache > /root/.cache/x/f
              cat "$(workspaces.source.path)/in.txt" > "$f"
              ls /bin | sha256sum >> "$f"
              d=$(sha256sum "$f" | cut -d' ' -f1)
              printf '{"uri":"%s","digest":"sha256:%s"}' "$f" "$d" > "$(results.FILE_ARTIFACT_OUTPUTS.path)"
`

// TestImagesPullImportRun: accord images pull and import fill the store
// (-o json and text), bad references fail with exit 2, and accord run
// pulls a step image pinned by a multi-platform index from a registry
// with authentication, runs it, and records both digests in provenance.
func TestImagesPullImportRun(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{User: "ci", Password: "pw"})
	t.Setenv("DOCKER_CONFIG", regtest.DockerConfig(t, map[string][2]string{reg.Addr: {"ci", "pw"}}))
	base := testutil.BaseImage(t)
	baseDigest, _ := base.Digest()
	arm, _ := random.Image(100, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: base, Descriptor: ggcrv1.Descriptor{Platform: &ggcrv1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: ggcrv1.Descriptor{Platform: &ggcrv1.Platform{OS: "linux", Architecture: "arm64"}}})
	ih, _ := idx.Digest()
	ref := reg.Addr + "/library/golang@" + ih.String()
	d, _ := name.NewDigest(ref)
	if err := remote.WriteIndex(d, idx, remote.WithAuth(&authn.Basic{Username: "ci", Password: "pw"})); err != nil {
		t.Fatal(err)
	}
	stDir := filepath.Join(t.TempDir(), "store")

	out, stderr, err := accord(t, "images", "pull", ref, "--store", stDir, "-o", "json")
	if err != nil {
		t.Fatalf("images pull: %v\n%s", err, stderr)
	}
	got := imagesJSON(t, out)
	if got.Ref != d.Context().Name()+"@"+ih.String() || !got.Index || got.Manifest != baseDigest.String() || got.Platform != "linux/amd64" || got.Cached {
		t.Errorf("images pull -o json: %s", out)
	}
	if !strings.Contains(stderr, "layer 1/") {
		t.Errorf("no progress on stderr: %q", stderr)
	}
	out, _, err = accord(t, "images", "pull", ref, "--store", stDir)
	if err != nil || !strings.Contains(out, "already in the store: "+got.Ref) || !strings.Contains(out, "index, resolved to linux/amd64 "+baseDigest.String()) {
		t.Errorf("second images pull: %v\n%s", err, out)
	}
	for _, bad := range []string{reg.Addr + "/library/golang:1.22", reg.Addr + "/library/golang@sha256:" + strings.Repeat("0", 64)} {
		_, _, err := accord(t, "images", "pull", bad, "--store", stDir, "-o", "json")
		if exitCode(err) != exitUsage || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("images pull %s: exit %d, %v", bad, exitCode(err), err)
		}
	}
	if _, _, err := accord(t, "images", "pull", ref, "--registry-mirror", "docker.io", "--store", stDir); exitCode(err) != exitUsage {
		t.Errorf("a bad --registry-mirror: %v", err)
	}

	// import: an OCI layout directory of the same index.
	oci := filepath.Join(t.TempDir(), "oci")
	lp, _ := layout.Write(oci, empty.Index)
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"io.containerd.image.name": "docker.io/library/golang:1.22"})); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = accord(t, "images", "import", oci, "--store", filepath.Join(t.TempDir(), "store2"), "-o", "json")
	if err != nil {
		t.Fatalf("images import: %v\n%s", err, stderr)
	}
	if got := imagesJSON(t, out); got.Ref != "index.docker.io/library/golang@"+ih.String() || got.Manifest != baseDigest.String() {
		t.Errorf("images import -o json: %s", out)
	}

	// run: a fresh store, so the engine pulls the step image itself.
	dir := t.TempDir()
	key, _ := keyPair(t, dir, "builder")
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "in.txt"), []byte("from a pulled image\n"), 0o644)
	pipeline := filepath.Join(dir, "p.yaml")
	os.WriteFile(pipeline, []byte(strings.Replace(registryImagePipeline, "IMAGE", ref, 1)), 0o644)
	runStore := filepath.Join(dir, "run-store")
	out, stderr, err = accord(t, "run", "--source", src, "--pipeline", pipeline, "--store", runStore, "--key", key, "-o", "json")
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s\nstdout:\n%s", err, stderr, out)
	}
	var ro runOutput
	if err := json.Unmarshal([]byte(out), &ro); err != nil || !ro.Succeeded || len(ro.Artifacts) != 1 {
		t.Fatalf("run -o json: %v\n%s", err, out)
	}
	// Determinism with a registry-pulled image and the writable layer:
	// another runtime, another fresh store (the image pulled again) and
	// another work directory give the same artifact.
	out2, stderr, err := accord(t, "run", "--source", src, "--pipeline", pipeline, "--store", filepath.Join(dir, "run-store-2"),
		"--runtime", "crun", "--workdir", filepath.Join(dir, "work-2"), "-o", "json")
	if err != nil {
		t.Fatalf("second run: %v\nstderr:\n%s\nstdout:\n%s", err, stderr, out2)
	}
	var ro2 runOutput
	if err := json.Unmarshal([]byte(out2), &ro2); err != nil || !ro2.Succeeded || len(ro2.Artifacts) != 1 {
		t.Fatalf("second run -o json: %v\n%s", err, out2)
	}
	if ro2.Artifacts[0].Digest != ro.Artifacts[0].Digest {
		t.Errorf("the same build from a pulled image gave %s under runc and %s under crun", ro.Artifacts[0].Digest, ro2.Artifacts[0].Digest)
	}
	st, err := store.OpenLayout(runStore)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := ggcrv1.NewHash(ro.Artifacts[0].Stored)
	envs, err := attestations(context.Background(), st, ro.Artifacts[0].Name, h, attest.SLSAProvenanceV1, io.Discard)
	if err != nil || len(envs) != 1 {
		t.Fatalf("provenance: %d, %v\n%s", len(envs), err, out)
	}
	sum, _, err := summaryOf(envs[0])
	if err != nil {
		t.Fatal(err)
	}
	repo := "oci://" + d.Context().Name()
	if sum.Dependencies[repo] != ih.String() {
		t.Errorf("provenance records %s as %q, want the index %s (dependencies %v)", repo, sum.Dependencies[repo], ih, sum.Dependencies)
	}
	if got := sum.Dependencies[repo+"@"+ih.String()]; got != baseDigest.String() {
		t.Errorf("provenance records the %s of %s as %q, want %s (dependencies %v)", proof.PlatformImageDependency, ref, got, baseDigest, sum.Dependencies)
	}
}

func imagesJSON(t *testing.T, out string) pull.Result {
	t.Helper()
	var o struct{ Images []pull.Result }
	if err := json.Unmarshal([]byte(out), &o); err != nil || len(o.Images) != 1 {
		t.Fatalf("not the JSON of one image: %v\n%s", err, out)
	}
	return o.Images[0]
}
