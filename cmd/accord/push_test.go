package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/accord-build/accord/internal/artifact"
	"github.com/accord-build/accord/internal/build"
	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/images"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/testutil/attested"
)

// registryStore starts Debian's docker-registry, puts the Go builder
// image into the store repository HOST/accord and returns HOST and it.
func registryStore(t *testing.T) (string, string) {
	t.Helper()
	ls, err := store.OpenLayout(builderStore(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := startRegistry(t)
	repo := addr + "/accord"
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
	return addr, repo
}

// announcePipeline writes a pipeline whose one task packs a file into an
// OCI image with ocipack and announces it as IMAGE_URL=$(params.image).
func announcePipeline(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "announce.yaml")
	os.WriteFile(p, []byte(fmt.Sprintf(`apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: announce}
spec:
  params: [{name: image}]
  workspaces: [{name: source}, {name: output}]
  tasks:
    - name: image
      params: [{name: image, value: $(params.image)}]
      workspaces: [{name: output, workspace: output}]
      taskSpec:
        params: [{name: image}]
        workspaces: [{name: output}]
        results: [{name: IMAGE_URL}, {name: IMAGE_DIGEST}]
        steps:
          - name: pack
            image: "%s"
            script: |
              #!/bin/sh
              set -e
              printf 'hello from accord\n' > $(workspaces.output.path)/hello
              d=$(ocipack -out $(workspaces.output.path)/image -ref "$(params.image)" "$(workspaces.output.path)/hello=/hello")
              printf %%s "$(params.image)" > $(results.IMAGE_URL.path)
              printf %%s "$d" > $(results.IMAGE_DIGEST.path)
`, strings.TrimSpace(storeOut))), 0o644)
	return p
}

type pushedArtifact struct {
	Kind, Name, Digest, Stored, Reference string
}

// TestImagesGoWhereTheirNameSays: with a registry store, 'accord run'
// pushes the image a task announces to the repository its IMAGE_URL
// gives (the store's registry, or one --allow-registry allows), signs and
// attests it there so that the real cosign CLI verifies it by
// REGISTRY/REPO@DIGEST, prints that reference, and accord verify and
// rebuild find the evidence by it; the store repository does not hold the
// image. A name in another registry is refused, naming the task result
// and the fix, and nothing is pushed.
func TestImagesGoWhereTheirNameSays(t *testing.T) {
	cosign := tool(t, "ACCORD_COSIGN")
	addr, repo := registryStore(t)
	other := attested.StartRegistry(t)
	dir := t.TempDir()
	key, pub := keyPair(t, dir, "builder")
	vkey, _ := keyPair(t, dir, "validator")
	pipeline := announcePipeline(t, dir)
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "README"), []byte("source\n"), 0o644)
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf("apiVersion: accord.dev/v1alpha1\nkind: Policy\nbuilders: [{id: https://accord.dev/builders/push, key: %s}]\nthreshold: 1\nsbom: required\n", pub)), 0o644)
	env := append(os.Environ(), "SIGSTORE_REKOR_PUBLIC_KEY="+pub, "COSIGN_PASSWORD=", "TUF_ROOT="+t.TempDir())
	for _, tc := range []struct {
		name, image, repo string
		extra             []string
	}{
		{"the store's registry", addr + "/team/app", addr + "/team/app", nil},
		{"an allowed registry, tagged", other + "/org/svc:v1", other + "/org/svc", []string{"--allow-registry", other}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run", "--source", src, "--source-date-epoch", "1700000000", "--pipeline", pipeline, "-p", "image=" + tc.image,
				"--store", repo, "--key", key, "--builder-id", "https://accord.dev/builders/push", "-o", "json"}, tc.extra...)
			stdout, stderr, err := accord(t, args...)
			if err != nil {
				t.Fatalf("accord run: %v\n%s\n%s", err, stderr, stdout)
			}
			var out struct{ Artifacts []pushedArtifact }
			if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out.Artifacts) != 1 {
				t.Fatalf("run -o json: %v\n%s", err, stdout)
			}
			a := out.Artifacts[0]
			ref := tc.repo + "@" + a.Digest
			if a.Kind != "image" || a.Name != tc.image || a.Reference != ref {
				t.Fatalf("artifact %+v, want reference %s", a, ref)
			}
			if _, err := remote.Head(mustDigest(t, ref)); err != nil {
				t.Errorf("%s is not served: %v", ref, err)
			}
			if _, err := remote.Head(mustDigest(t, repo+"@"+a.Digest)); err == nil {
				t.Errorf("the store repository %s holds the image too", repo)
			}
			for _, args := range [][]string{
				{"verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", ref},
				{"verify-attestation", "--key", pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", "--type", "slsaprovenance1", ref},
				{"verify-attestation", "--key", pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", "--type", "spdxjson", ref},
			} {
				cmd := exec.Command(cosign, args...)
				cmd.Env = env
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("cosign %s %s: %v\n%s", args[0], ref, err, b)
				}
			}
			vargs := append([]string{"verify", ref, "--store", repo, "--policy", policy, "-o", "json"}, tc.extra...)
			stdout, stderr, err = accord(t, vargs...)
			if err != nil || !strings.Contains(stdout, `"verified": true`) {
				t.Errorf("accord verify %s: %v\n%s\n%s", ref, err, stdout, stderr)
			}
			rargs := append([]string{"rebuild", ref, "--store", repo, "--policy", policy, "--pipeline", pipeline, "--source", src,
				"--builder", "validator", "--key", vkey, "-o", "json"}, tc.extra...)
			stdout, stderr, err = accord(t, rargs...)
			var rb struct {
				Agree bool
				Build struct{ Artifacts []pushedArtifact }
			}
			if err != nil || json.Unmarshal([]byte(stdout), &rb) != nil || !rb.Agree || len(rb.Build.Artifacts) != 1 || rb.Build.Artifacts[0].Reference != ref {
				t.Errorf("accord rebuild %s: %v\n%s\n%s", ref, err, stdout, stderr)
			}
		})
	}
	t.Run("a registry not allowed", func(t *testing.T) {
		before := catalog(t, addr)
		image := other + "/org/refused:v1"
		stdout, stderr, err := accord(t, "run", "--source", src, "--source-date-epoch", "1700000000", "--pipeline", pipeline, "-p", "image="+image,
			"--store", repo, "--key", key, "--builder-id", "https://accord.dev/builders/push")
		if exitCode(err) != exitBuildFailed {
			t.Fatalf("exit %d, want %d\n%s\n%s", exitCode(err), exitBuildFailed, stdout, stderr)
		}
		for _, want := range []string{`task "image" result IMAGE_URL`, image, "--allow-registry " + other, "fix:"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		if got := catalog(t, addr); strings.Join(got, " ") != strings.Join(before, " ") {
			t.Errorf("the store's registry changed: %v, was %v", got, before)
		}
		if got := catalog(t, other); strings.Contains(strings.Join(got, " "), "org/refused") {
			t.Errorf("refused, yet pushed: %v", got)
		}
	})
}

func mustDigest(t *testing.T, s string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// catalog lists the repositories of host and their tags.
func catalog(t *testing.T, host string) []string {
	t.Helper()
	reg, err := name.NewRegistry(host)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(context.Background(), reg)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range repos {
		tags, _ := remote.List(reg.Repo(r))
		out = append(out, r+"="+strings.Join(tags, ","))
	}
	return out
}

// TestReportPrintsReference: the text summary gives each artifact's
// pullable reference under its name, when the store has one.
func TestReportPrintsReference(t *testing.T) {
	repo, err := name.NewRepository("127.0.0.1:5000/accord")
	if err != nil {
		t.Fatal(err)
	}
	cmd := &cobra.Command{}
	var buf bytes.Buffer
	cmd.SetOut(&buf)
	h := "sha256:" + strings.Repeat("a", 64)
	rep := &build.Report{Succeeded: true, Artifacts: []artifact.Artifact{
		{Kind: engine.Image, Name: "127.0.0.1:5000/team/app", Digest: h, Stored: h, Reference: "127.0.0.1:5000/team/app@" + h},
		{Kind: engine.Artifact, Name: "app", Digest: h, Stored: h},
	}}
	if err := report(cmd, "text", rep, store.NewRegistry(repo)); err != nil {
		t.Fatal(err)
	}
	want := "  image    " + h + "  127.0.0.1:5000/team/app\n           at 127.0.0.1:5000/team/app@" + h + "\n  artifact " + h + "  app\n"
	if !strings.Contains(buf.String(), want) {
		t.Errorf("text summary:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// TestRunRefusesImageParamOutsideAllowedRegistries: a catalog pipeline's
// image param in a registry the store may not push to is refused before
// anything runs (bad input, exit 2), naming the param and the fix; the
// store's registry is never contacted.
func TestRunRefusesImageParamOutsideAllowedRegistries(t *testing.T) {
	for _, tc := range []struct {
		image string
		allow []string
	}{
		{"registry.example/team/app", nil},
		{"docker.io/library/app:v1", nil},
		{"127.0.0.1:2/team/app", nil},
		{"localhost/team/app", []string{"registry.example"}},
		{"registry.example.evil/team/app", []string{"registry.example"}},
	} {
		args := []string{"run", "--source", "../../examples/hello", "-p", "image=" + tc.image, "--store", "127.0.0.1:1/accord"}
		for _, a := range tc.allow {
			args = append(args, "--allow-registry", a)
		}
		_, stderr, err := accord(t, args...)
		if exitCode(err) != exitUsage {
			t.Errorf("%s: exit %d, want %d: %v\n%s", tc.image, exitCode(err), exitUsage, err, stderr)
			continue
		}
		for _, want := range []string{"-p image=" + tc.image, "may not push", "fix: allow the registry", "--allow-registry"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error lacks %q: %v", tc.image, want, err)
			}
		}
	}
}
