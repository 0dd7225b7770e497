package store

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// testRegistry starts an in-process OCI registry and returns a repository in it.
func testRegistry(t *testing.T) name.Repository {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/accord/store")
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func TestRegistryPutImage(t *testing.T) {
	ctx := context.Background()
	repo := testRegistry(t)
	r := NewRegistry(repo)
	if r.String() != repo.String() {
		t.Errorf("String() = %q, want %q", r.String(), repo.String())
	}
	img := randomImage(t, 2)
	want := contentOf(t, img)

	h, err := r.Put(ctx, "x:v1", img)
	if err != nil {
		t.Fatal(err)
	}
	if h != want.Digest {
		t.Errorf("Put returned %s, want %s", h, want.Digest)
	}
	got, err := r.Image(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, contentOf(t, got)); diff != "" {
		t.Errorf("pulled image differs (-pushed +pulled):\n%s", diff)
	}

	desc, err := remote.Head(repo.Tag("v1"), remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("tag v1: %v", err)
	}
	if desc.Digest != h {
		t.Errorf("tag v1 points at %s, want %s", desc.Digest, h)
	}

	// Re-tagging moves the tag.
	img2 := randomImage(t, 1)
	h2, err := r.Put(ctx, "accord.dev/images/x:v1", img2) // a name without a registry stays in the store repository
	if err != nil {
		t.Fatal(err)
	}
	if desc, err := remote.Head(repo.Tag("v1")); err != nil || desc.Digest != h2 {
		t.Errorf("after re-put: tag v1 = %v, %v; want %s", desc, err, h2)
	}
	// The first image is still there by digest.
	if _, err := r.Image(ctx, h); err != nil {
		t.Errorf("first image by digest: %v", err)
	}

	if _, err := r.Image(ctx, v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}); err == nil {
		t.Error("Image of an unknown digest: no error")
	}
}

func TestRegistryPutWithoutTag(t *testing.T) {
	ctx := context.Background()
	repo := testRegistry(t)
	r := NewRegistry(repo, WithRemoteOptions(remote.WithUserAgent("accord-test")))
	for _, ref := range []string{"", "team/app", "accord.dev/images/app"} {
		h, err := r.Put(ctx, ref, randomImage(t, 1))
		if err != nil {
			t.Fatalf("Put(%q): %v", ref, err)
		}
		if _, err := r.Image(ctx, h); err != nil {
			t.Errorf("Put(%q): image by digest: %v", ref, err)
		}
	}
	tags, err := remote.List(repo)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 0 {
		t.Errorf("refs without a tag created tags %v", tags)
	}
	if _, err := r.Put(ctx, "team/app:v2", randomImage(t, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Put(ctx, "app:latest", randomImage(t, 1)); err != nil {
		t.Fatal(err)
	}
	tags, err = remote.List(repo)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(tags)
	if diff := cmp.Diff([]string{"latest", "v2"}, tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
}

func TestRegistryUnreachable(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/a")
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	r := NewRegistry(repo)
	if _, err := r.Put(context.Background(), "a:v1", randomImage(t, 1)); err == nil || !strings.Contains(err.Error(), "pushing") {
		t.Errorf("Put to a closed registry: %v, want a 'pushing' error", err)
	}
}

func TestTagOf(t *testing.T) {
	for _, tc := range []struct{ ref, want string }{
		{"x:v1", "v1"},
		{"example.com/app:v1.2", "v1.2"},
		{"localhost:5000/app:latest", "latest"},
		{"localhost:5000/app", ""},
		{"example.com/app", ""},
		{"app", ""},
		{"", ""},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			if got := tagOf(tc.ref); got != tc.want {
				t.Errorf("tagOf(%q) = %q, want %q", tc.ref, got, tc.want)
			}
		})
	}
}
