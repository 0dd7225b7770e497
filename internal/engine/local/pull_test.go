package local_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/accord-build/accord/internal/engine/local"
	"github.com/accord-build/accord/internal/pull"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/testutil"
	"github.com/accord-build/accord/internal/testutil/regtest"
)

const registryPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: from-registry
spec:
  tasks:
    - name: first
      taskSpec:
        steps:
          - name: ok
            image: {{IMAGE}}
            script: echo first
    - name: build
      runAfter: [first]
      taskSpec:
        results:
          - name: out
        steps:
          - name: multi
            image: INDEX_IMAGE
            script: |
              printf "ran from the index" > $(results.out.path)
          - name: single
            image: SINGLE_IMAGE
            script: echo single
`

// pushTo writes x (an image or an index) to repo and returns it pinned.
func pushTo(t *testing.T, repo string, x interface{ Digest() (ggcrv1.Hash, error) }, write func(name.Digest) error) string {
	t.Helper()
	h, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.NewDigest(repo + "@" + h.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := write(d); err != nil {
		t.Fatalf("pushing %s: %v", d, err)
	}
	return d.String()
}

// multiArch is an index of the base image for linux/amd64 and a random
// image for linux/arm64.
func multiArch(t *testing.T, amd ggcrv1.Image, only ...string) ggcrv1.ImageIndex {
	t.Helper()
	arm, err := random.Image(200, 1)
	if err != nil {
		t.Fatal(err)
	}
	adds := []mutate.IndexAddendum{
		{Add: amd, Descriptor: ggcrv1.Descriptor{Platform: &ggcrv1.Platform{OS: "linux", Architecture: "amd64"}}},
		{Add: arm, Descriptor: ggcrv1.Descriptor{Platform: &ggcrv1.Platform{OS: "linux", Architecture: "arm64"}}},
	}
	if len(only) > 0 {
		adds = adds[1:]
	}
	return mutate.AppendManifests(empty.Index, adds...)
}

// TestRegistryImages runs steps from images pulled from a real registry
// by the engine, on the host before the first step: a multi-platform
// index (resolved to linux/amd64, both digests kept) and a single image,
// under the names the public images have; then again with no registry,
// from the store.
func TestRegistryImages(t *testing.T) {
	f := newFixture(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := regtest.Start(t, regtest.Options{})
	base := testutil.BaseImage(t)
	baseDigest, _ := base.Digest()
	idx := multiArch(t, base)
	indexRef := pushTo(t, reg.Addr+"/library/golang", idx, func(d name.Digest) error { return remote.WriteIndex(d, idx) })
	singleRef := pushTo(t, reg.Addr+"/library/busybox", base, func(d name.Digest) error { return remote.Write(d, base) })
	yaml := strings.NewReplacer("INDEX_IMAGE", indexRef, "SINGLE_IMAGE", singleRef).Replace(registryPipeline)

	st, err := store.OpenLayout(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	// The first task's image is in the store already (put there the way
	// 'accord images build' does), the others are not.
	if _, err := st.Put(context.Background(), "accord.dev/test/base", base); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		puller *pull.Puller
	}{
		{"pulled from the registry", pull.New(pull.WithTempDir(t.TempDir()))},
		{"offline, from the store", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := f.build(t, yaml, nil)
			exec := local.New(pull.NewImages(st, tc.puller), f.runner, f.rootfs, f.work)
			res, err := exec.Run(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Succeeded {
				t.Fatalf("build failed: %s", res.Reason)
			}
			tr := task(t, res, "build")
			if got := tr.Results[0].Value.StringVal; got != "ran from the index" {
				t.Errorf("result %q", got)
			}
			for _, s := range tr.Steps {
				if s.ImageDigest != baseDigest.String() {
					t.Errorf("step %s ran %s, want the amd64 image %s", s.Name, s.ImageDigest, baseDigest)
				}
			}
		})
	}
}

// TestRegistryImageErrors: a step image that cannot be pulled fails the
// run before any task starts, naming the image and the fix, and the
// store stays as it was.
func TestRegistryImageErrors(t *testing.T) {
	f := newFixture(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := regtest.Start(t, regtest.Options{})
	authReg := regtest.Start(t, regtest.Options{User: "u", Password: "p"})
	base := testutil.BaseImage(t)
	armOnly := multiArch(t, base, "arm64 only")
	noAmd := pushTo(t, reg.Addr+"/library/golang", armOnly, func(d name.Digest) error { return remote.WriteIndex(d, armOnly) })
	tampered, err := random.Image(300, 2)
	if err != nil {
		t.Fatal(err)
	}
	tamperedRef := pushTo(t, reg.Addr+"/library/tampered", tampered, func(d name.Digest) error { return remote.Write(d, tampered) })
	flipLastLayer(t, reg, tampered)
	// Not in the store: the store answers for a digest whatever the
	// repository.
	other, err := random.Image(300, 1)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := other.Digest()
	authRef := pushTo(t, authReg.Addr+"/library/golang", other, func(d name.Digest) error {
		return remote.Write(d, other, remote.WithAuth(&authn.Basic{Username: "u", Password: "p"}))
	})
	for _, tc := range []struct {
		name, image, want string
	}{
		{"registry unreachable", "127.0.0.1:1/library/golang@" + h.String(), "registry unreachable"},
		{"index without the host platform", noAmd, "the index has no linux/" + "amd64 image"},
		{"digest mismatch", tamperedRef, "digest mismatch"},
		{"missing credential", authRef, "add a credential for " + authReg.Addr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, ref := testutil.BaseStore(t)
			before := dirFiles(t, st.Dir())
			yaml := strings.NewReplacer("INDEX_IMAGE", tc.image, "SINGLE_IMAGE", ref).Replace(registryPipeline)
			b, rec := f.build(t, yaml, nil)
			exec := local.New(pull.NewImages(st, pull.New(pull.WithTempDir(t.TempDir()))), f.runner, f.rootfs, f.work)
			res, err := exec.Run(context.Background(), b)
			var ie *local.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("Run = %+v, %v; want an input error", res, err)
			}
			for _, want := range []string{"step image " + tc.image, tc.want, "\n  fix: "} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q: %v", want, err)
				}
			}
			if started := rec.startedTasks(); len(started) != 0 {
				t.Errorf("tasks started: %v", started)
			}
			if after := dirFiles(t, st.Dir()); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Errorf("the store changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// flipLastLayer changes one byte of img's last layer where the registry
// keeps it.
func flipLastLayer(t *testing.T, reg *regtest.Registry, img ggcrv1.Image) {
	t.Helper()
	layers, _ := img.Layers()
	h, _ := layers[len(layers)-1].Digest()
	p := reg.BlobFile(h.Hex)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dirFiles lists the files of dir with their contents' digests (the
// store's lock aside).
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && info.Name() != ".lock" {
			b, _ := os.ReadFile(p)
			out = append(out, fmt.Sprintf("%s %x", strings.TrimPrefix(p, dir), sha256.Sum256(b)))
		}
		return nil
	})
	return out
}
