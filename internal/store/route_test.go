package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// testHost starts an in-process OCI registry (behind h's checks, if h is
// not nil) and returns its host:port.
func testHost(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var hd http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		hd = wrap(hd)
	}
	srv := httptest.NewServer(hd)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// holds reports whether repo (HOST/REPO) serves manifest h.
func holds(t *testing.T, repo string, h v1.Hash) bool {
	t.Helper()
	d, err := name.NewDigest(repo + "@" + h.String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(d)
	return err == nil
}

// TestRegistryRoutesByName: a registry store puts an image where its name
// says, within its own registry and the allowed ones; names without a
// registry, under accord.dev/ or of the store repository itself stay in
// the store repository; a name in any other registry is refused before
// anything is pushed, however it is spelled.
func TestRegistryRoutesByName(t *testing.T) {
	ctx := context.Background()
	own, other, foreign := testHost(t, nil), testHost(t, nil), testHost(t, nil)
	storeRepo := own + "/accord/store"
	st, err := Open(storeRepo, WithAllowedRegistries(other))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, repo, tag string // repo "": refused
	}{
		{own + "/team/app:v1", own + "/team/app", "v1"},
		{own + "/team/app", own + "/team/app", ""},
		{own + "/team/sub/app:1.0", own + "/team/sub/app", "1.0"},
		{other + "/team/app:v2", other + "/team/app", "v2"},
		{"team/app:v1", storeRepo, "v1"},
		{"app", storeRepo, ""},
		{"hello.txt", storeRepo, ""},
		{"accord.dev/images/app:v3", storeRepo, "v3"},
		{storeRepo + ":v4", storeRepo, "v4"},
		{foreign + "/team/app:v1", "", ""},
		{foreign + "/team/app", "", ""},
		{"localhost:1/team/app", "", ""},
		{"docker.io/library/app:v1", "", ""},
		{"registry.example/accord.dev/app", "", ""},
		{"127.0.0.1/team/app", "", ""}, // same host, other port: another registry
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := randomImage(t, 1)
			h := digest(t, img)
			if err := CheckName(st, tc.name); (err == nil) != (tc.repo != "") {
				t.Fatalf("CheckName(%q) = %v", tc.name, err)
			}
			dst, err := For(st, tc.name)
			var got v1.Hash
			if err == nil {
				got, err = dst.Put(ctx, tc.name, img)
			}
			if tc.repo == "" {
				var re *RegistryError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), "fix: allow the registry") || !strings.Contains(err.Error(), "--allow-registry") {
					t.Fatalf("For(%q) = %v, want a RegistryError naming the fix", tc.name, err)
				}
				for _, r := range []string{storeRepo, own + "/team/app", foreign + "/team/app"} {
					if holds(t, r, h) {
						t.Errorf("refused %q, yet %s holds it", tc.name, r)
					}
				}
				if Reference(st, tc.name, h) != "" {
					t.Errorf("Reference of a refused name: %q", Reference(st, tc.name, h))
				}
				return
			}
			if err != nil || got != h {
				t.Fatalf("Put(%q) = %s, %v", tc.name, got, err)
			}
			if !holds(t, tc.repo, h) {
				t.Errorf("Put(%q): %s does not hold %s", tc.name, tc.repo, h)
			}
			if tc.repo != storeRepo && holds(t, storeRepo, h) {
				t.Errorf("Put(%q): the store repository holds it too", tc.name)
			}
			if tc.tag != "" && !holds(t, tc.repo, h) {
				t.Errorf("no tag %s", tc.tag)
			}
			if tc.tag != "" {
				desc, err := remote.Head(mustTag(t, tc.repo+":"+tc.tag))
				if err != nil || desc.Digest != h {
					t.Errorf("tag %s:%s = %v, %v; want %s", tc.repo, tc.tag, desc, err, h)
				}
			}
			if got := Name(st, tc.name); got != tc.repo {
				t.Errorf("Name(%q) = %q, want %q", tc.name, got, tc.repo)
			}
			if got, want := Reference(st, tc.name, h), tc.repo+"@"+h.String(); got != want {
				t.Errorf("Reference(%q) = %q, want %q", tc.name, got, want)
			}
			if _, err := st.Image(ctx, h); err != nil {
				t.Errorf("Image after Put: %v", err)
			}
			// The store itself puts in its own repository (step images, a
			// builder image): a name routes only through For.
			if tc.repo != storeRepo {
				other := randomImage(t, 1)
				oh, err := st.Put(ctx, tc.name, other)
				if err != nil || !holds(t, storeRepo, oh) || holds(t, tc.repo, oh) {
					t.Errorf("st.Put(%q) is not in the store repository alone: %v", tc.name, err)
				}
			}
		})
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

// TestRegistryEvidenceBesideRoutedImage: signatures, attestations and
// links of an image stored where its name says are attached in that
// repository (cosign's sha256-<hex>.sig/.att tags), found there by a
// store opened afresh (another process), and never in the store's own.
// An unnamed put (a validator's) through [For] goes by digest to the
// same repository.
func TestRegistryEvidenceBesideRoutedImage(t *testing.T) {
	ctx := context.Background()
	own := testHost(t, nil)
	storeRepo := own + "/accord/store"
	st, err := Open(storeRepo)
	if err != nil {
		t.Fatal(err)
	}
	artifactName := own + "/team/app:v1"
	img := randomImage(t, 2)
	dst, err := For(st, artifactName)
	if err != nil {
		t.Fatal(err)
	}
	h, err := dst.Put(ctx, artifactName, img)
	if err != nil {
		t.Fatal(err)
	}
	repo := Name(st, artifactName)
	for _, suffix := range []string{SigSuffix, AttSuffix, LinksSuffix} {
		if _, err := Attach(ctx, st, AttachmentRef(repo, h, suffix), []Layer{attestation("b1")}, nil); err != nil {
			t.Fatalf("attaching %s: %v", suffix, err)
		}
		tag := fmt.Sprintf("sha256-%s.%s", h.Hex, suffix)
		if _, err := remote.Head(mustTag(t, own+"/team/app:"+tag)); err != nil {
			t.Errorf("%s is not beside the image in team/app: %v", tag, err)
		}
		if _, err := remote.Head(mustTag(t, storeRepo+":"+tag)); err == nil {
			t.Errorf("%s is in the store repository", tag)
		}
	}
	// A fresh store knows nothing of where the image went: by its name
	// it reads the image and the evidence.
	fresh, err := Open(storeRepo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Image(ctx, h); err == nil {
		t.Error("the store repository serves the image")
	}
	scoped, err := For(fresh, own+"/team/app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := scoped.Image(ctx, h); err != nil {
		t.Fatalf("image by its name: %v", err)
	}
	if _, err := fresh.Image(ctx, h); err != nil {
		t.Errorf("the store does not remember where its view found the image: %v", err)
	}
	ls, err := Layers(ctx, fresh, AttachmentRef(Name(fresh, own+"/team/app"), h, AttSuffix))
	if err != nil || len(ls) != 1 {
		t.Errorf("attestations read back: %d, %v", len(ls), err)
	}
	// A validator's image: by digest only, where the name says.
	vimg := randomImage(t, 1)
	vh, err := scoped.Put(ctx, "", vimg)
	if err != nil {
		t.Fatal(err)
	}
	if !holds(t, own+"/team/app", vh) || holds(t, storeRepo, vh) {
		t.Errorf("an unnamed put through For is not in team/app alone")
	}
	if tags, _ := remote.List(mustRepo(t, own+"/team/app")); len(tags) != 4 {
		t.Errorf("team/app tags %v: want v1 and the three attachments, no tag for the unnamed put", tags)
	}
}

func mustRepo(t *testing.T, s string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRegistryAllowedNeedsAuth: an allowed registry that wants
// credentials gets them from the Docker config (authn.DefaultKeychain);
// without them the error names the registry and the fix.
func TestRegistryAllowedNeedsAuth(t *testing.T) {
	ctx := context.Background()
	own := testHost(t, nil)
	basic := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "ci" || p != "s3cret" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	locked := testHost(t, basic)
	for _, tc := range []struct {
		name, auth string // auth "": no credentials
		ok         bool
	}{
		{"credentials in the Docker config", "ci:s3cret", true},
		{"wrong credentials", "ci:wrong", false},
		{"no credentials", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := `{"auths":{}}`
			if tc.auth != "" {
				cfg = fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, locked, base64.StdEncoding.EncodeToString([]byte(tc.auth)))
			}
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("DOCKER_CONFIG", dir)
			t.Setenv("REGISTRY_AUTH_FILE", filepath.Join(dir, "none.json"))
			st, err := Open(own+"/accord", WithAllowedRegistries(locked))
			if err != nil {
				t.Fatal(err)
			}
			dst, err := For(st, locked+"/team/app:v1")
			if err != nil {
				t.Fatal(err)
			}
			_, err = dst.Put(ctx, locked+"/team/app:v1", randomImage(t, 1))
			if tc.ok {
				if err != nil {
					t.Fatalf("push with credentials: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "docker login "+locked) {
				t.Errorf("push without good credentials: %v; want the fix naming docker login %s", err, locked)
			}
		})
	}
}

// TestOpenRefusesBadAllowedRegistry: an allow-list entry is a host.
func TestOpenRefusesBadAllowedRegistry(t *testing.T) {
	for _, h := range []string{"", "https://registry.example", "registry.example/team", "a b", "reg@x"} {
		if _, err := Open("registry.example/accord", WithAllowedRegistries(h)); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
			t.Errorf("allowed registry %q: %v", h, err)
		}
		if _, err := Open(t.TempDir(), WithAllowedRegistries(h)); err == nil {
			t.Errorf("allowed registry %q with a layout store: no error", h)
		}
	}
	if _, err := Open("registry.example/accord", WithAllowedRegistries("127.0.0.1:5000", "docker.io", "localhost")); err != nil {
		t.Error(err)
	}
}

// TestLayoutKeepsEveryName: a layout store is served by no registry: any
// name is kept as before, and there is no pullable reference.
func TestLayoutKeepsEveryName(t *testing.T) {
	l, err := OpenLayout(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"registry.example/team/app:v1", "accord.dev/images/app", "hello.txt"} {
		if err := CheckName(l, n); err != nil {
			t.Errorf("CheckName(%q): %v", n, err)
		}
		if s, _ := For(l, n); s != Store(l) {
			t.Errorf("For(%q) is not the layout", n)
		}
		if r := Reference(l, n, v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}); r != "" {
			t.Errorf("Reference(%q) = %q", n, r)
		}
	}
}
