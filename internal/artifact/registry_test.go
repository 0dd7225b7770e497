package artifact

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/store"
)

func testRegistryHost(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func servesDigest(t *testing.T, repo string, h string) bool {
	t.Helper()
	d, err := name.NewDigest(repo + "@" + h)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(d)
	return err == nil
}

// TestCollectRoutesImages: with a registry store, an image goes to the
// repository its IMAGE_URL gives (a validator's by digest only), a file
// artifact stays in the store repository, and each artifact's pullable
// reference is reported.
func TestCollectRoutesImages(t *testing.T) {
	ctx := context.Background()
	for _, named := range []bool{true, false} {
		host := testRegistryHost(t)
		storeRepo := host + "/accord"
		f := newFixture(t)
		st, err := store.Open(storeRepo)
		if err != nil {
			t.Fatal(err)
		}
		bin := []byte("binary")
		f.writeFile(t, "bin/app", bin)
		h := digestOfImage(t, f.writeImage(t, "image"))
		res := f.result(
			engine.Output{Kind: engine.Image, Task: "build", Hint: "IMAGE_URL", URI: host + "/team/app:v1", Digest: h.String()},
			engine.Output{Kind: engine.Artifact, Task: "build", Hint: "BINARY_ARTIFACT_OUTPUTS", URI: mount + "/bin/app", Digest: sha(bin)},
		)
		arts, err := Collect(ctx, res, st, named)
		if err != nil {
			t.Fatal(err)
		}
		if len(arts) != 2 {
			t.Fatalf("artifacts %+v", arts)
		}
		file, img := arts[0], arts[1]
		if img.Kind != engine.Image {
			file, img = img, file
		}
		if want := host + "/team/app@" + h.String(); img.Reference != want {
			t.Errorf("named %v: image reference %q, want %q", named, img.Reference, want)
		}
		if !servesDigest(t, host+"/team/app", h.String()) || servesDigest(t, storeRepo, h.String()) {
			t.Errorf("named %v: the image is not in team/app alone", named)
		}
		if want := storeRepo + "@" + file.Stored; file.Reference != want || !servesDigest(t, storeRepo, file.Stored) {
			t.Errorf("named %v: file reference %q, want %q in the store repository", named, file.Reference, want)
		}
		_, err = remote.Head(mustTag(t, host+"/team/app:v1"))
		if named != (err == nil) {
			t.Errorf("named %v: tag v1: %v", named, err)
		}
	}
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

// TestCollectRefusesDisallowedRegistry: an IMAGE_URL in a registry the
// store may not push to fails the collection before anything is pushed
// (not the image, not a file artifact of the same build), naming the
// task, its result, the image and the fix; allowed, it is pushed.
func TestCollectRefusesDisallowedRegistry(t *testing.T) {
	ctx := context.Background()
	host, foreign := testRegistryHost(t), testRegistryHost(t)
	for _, tc := range []struct {
		name, uri string
		allow     []string
	}{
		{"another registry", foreign + "/team/app:v1", nil},
		{"another registry, no tag", foreign + "/team/app", nil},
		{"docker hub", "docker.io/team/app:v1", nil},
		{"the store's host on another port", "127.0.0.1:1/team/app", []string{foreign}},
		{"a host named like accord's namespace", "accord.dev.example/app", nil},
		{"allowed", foreign + "/team/app:v1", []string{foreign}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			st, err := store.Open(host+"/accord", store.WithAllowedRegistries(tc.allow...))
			if err != nil {
				t.Fatal(err)
			}
			bin := []byte("binary of " + tc.name)
			f.writeFile(t, "bin/app", bin)
			h := digestOfImage(t, f.writeImage(t, "image"))
			res := f.result(
				engine.Output{Kind: engine.Artifact, Task: "build", Hint: "BINARY_ARTIFACT_OUTPUTS", URI: mount + "/bin/app", Digest: sha(bin)},
				engine.Output{Kind: engine.Image, Task: "build", Hint: "APP_IMAGE_URL", URI: tc.uri, Digest: h.String()},
			)
			_, err = Collect(ctx, res, st, true)
			fileImg, _ := FileImage("app", bin)
			fh := digestOfImage(t, fileImg)
			if tc.allow != nil && strings.HasPrefix(tc.uri, foreign) {
				if err != nil {
					t.Fatalf("allowed registry: %v", err)
				}
				if !servesDigest(t, foreign+"/team/app", h.String()) {
					t.Error("allowed: the image is not in the registry its name gives")
				}
				return
			}
			for _, want := range []string{`task "build"`, "result APP_IMAGE_URL", tc.uri, "fix:", "--allow-registry"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v lacks %q", err, want)
				}
			}
			var re *store.RegistryError
			if !errors.As(err, &re) {
				t.Errorf("error is no RegistryError: %v", err)
			}
			for _, d := range []ggcrv1.Hash{h, fh} {
				if servesDigest(t, host+"/accord", d.String()) || servesDigest(t, foreign+"/team/app", d.String()) {
					t.Errorf("refused, yet %s was pushed", d)
				}
			}
		})
	}
}
