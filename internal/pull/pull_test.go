package pull_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/internal/pull"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/testutil/regtest"
)

// TestPullFromRegistry pulls a single image and a multi-platform index
// from a real docker-registry, under the names the public images have,
// then finds both again in the store without any registry.
func TestPullFromRegistry(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{})
	amd, arm := platformImage(t, "linux", "amd64"), platformImage(t, "linux", "arm64")
	single := push(t, reg.Addr+"/library/busybox", amd)
	idx := push(t, reg.Addr+"/library/golang", index(t, map[string]v1.Image{"linux/amd64": amd, "linux/arm64": arm}))
	st := newStore(t)
	var progress bytes.Buffer
	p := pull.New(pull.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}), pull.WithProgress(&progress), pull.WithTempDir(t.TempDir()))
	ctx := context.Background()

	res, err := p.Pull(ctx, single.String(), st)
	if err != nil {
		t.Fatal(err)
	}
	if res.Index || res.Manifest != single.DigestStr() || res.Platform != "linux/amd64" || res.Layers != 2 || res.Source != reg.Addr+"/library/busybox" || res.Cached {
		t.Errorf("single image: %+v", res)
	}
	if !strings.Contains(progress.String(), "layer 1/2") || !strings.Contains(progress.String(), "layer 2/2") {
		t.Errorf("no progress line per layer:\n%s", progress.String())
	}

	res, err = p.Pull(ctx, idx.String(), st)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Index || res.Digest != idx.DigestStr() || res.Manifest != digestOf(t, amd) || res.Platform != "linux/amd64" {
		t.Errorf("index: %+v, want the amd64 image %s", res, digestOf(t, amd))
	}
	if hasImage(t, st, digestOf(t, arm)) {
		t.Error("the arm64 image was pulled too")
	}

	// Again: from the store, nothing fetched.
	progress.Reset()
	res, err = p.Pull(ctx, idx.String(), st)
	if err != nil || !res.Cached || res.Manifest != digestOf(t, amd) {
		t.Errorf("second pull: %+v, %v; want cached", res, err)
	}
	if progress.Len() != 0 {
		t.Errorf("second pull fetched layers:\n%s", progress.String())
	}

	// Offline: no puller, the store alone resolves the index.
	imgs := pull.NewImages(st, nil)
	for _, ref := range []string{single.String(), idx.String()} {
		img, err := imgs.ImageRef(ctx, ref)
		if err != nil {
			t.Fatalf("%s from the store: %v", ref, err)
		}
		if got := digestOf(t, img); got != digestOf(t, amd) {
			t.Errorf("%s from the store is %s, want %s", ref, got, digestOf(t, amd))
		}
	}
	h, _ := v1.NewHash(idx.DigestStr())
	if img, err := imgs.Image(ctx, h); err != nil || digestOf(t, img) != digestOf(t, amd) {
		t.Errorf("Image(index digest) = %v, want the amd64 image", err)
	}
}

// TestPullAuth pulls from a registry that requires a credential: none in
// the Docker config, a wrong one, the right one.
func TestPullAuth(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{User: "builder", Password: "s3cret"})
	img := platformImage(t, "linux", "amd64")
	good := authn.FromConfig(authn.AuthConfig{Username: "builder", Password: "s3cret"})
	ref := push(t, reg.Addr+"/team/golang", img, remoteAuth(good))
	for _, tc := range []struct {
		name  string
		creds map[string][2]string
		want  string // "" for success, else a part of the fix
	}{
		{"no credential", nil, "add a credential for " + reg.Addr},
		{"credential for another registry", map[string][2]string{"127.0.0.1:1": {"builder", "s3cret"}}, "add a credential for " + reg.Addr},
		{"wrong password", map[string][2]string{reg.Addr: {"builder", "wrong"}}, "the credential for " + reg.Addr + " in the Docker config was refused"},
		{"wrong user", map[string][2]string{reg.Addr: {"someone", "s3cret"}}, "was refused"},
		{"right credential", map[string][2]string{reg.Addr: {"builder", "s3cret"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DOCKER_CONFIG", regtest.DockerConfig(t, tc.creds))
			st := newStore(t)
			before := snapshot(t, st.Dir())
			_, err := pull.New(pull.WithTempDir(t.TempDir())).Pull(context.Background(), ref.String(), st)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !hasImage(t, st, ref.DigestStr()) {
					t.Error("the image is not in the store")
				}
				return
			}
			checkErr(t, err, pull.Unauthorized, ref.String(), tc.want)
			unchanged(t, st, before)
		})
	}
}

// checkErr checks that err is a pull error of kind, naming image, with a
// fix that contains fix.
func checkErr(t *testing.T, err error, kind pull.Kind, image, fix string) {
	t.Helper()
	var pe *pull.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *pull.Error", err, err)
	}
	if pe.Kind != kind {
		t.Errorf("kind %q, want %q: %v", pe.Kind, kind, err)
	}
	msg := err.Error()
	t.Logf("%s", msg)
	if !strings.Contains(msg, image) {
		t.Errorf("the error does not name the image %s: %s", image, msg)
	}
	if !strings.Contains(msg, "\n  fix: ") || !strings.Contains(msg, fix) {
		t.Errorf("the error does not say %q in its fix: %s", fix, msg)
	}
}

// closedPort is a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestPullBadInput: each failure a clear error naming the image and the
// fix, and the store as it was.
func TestPullBadInput(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{})
	amd := platformImage(t, "linux", "amd64")
	ok := push(t, reg.Addr+"/library/golang", amd)
	armOnly := push(t, reg.Addr+"/library/armonly", index(t, map[string]v1.Image{"linux/arm64": platformImage(t, "linux", "arm64"), "linux/s390x": platformImage(t, "linux", "s390x")}))
	tamperedManifest := push(t, reg.Addr+"/library/tampered-manifest", platformImage(t, "linux", "amd64"))
	tamperManifest(t, reg, tamperedManifest.DigestStr())
	sameSize, resized := platformImage(t, "linux", "amd64"), platformImage(t, "linux", "amd64")
	tamperedLayer := push(t, reg.Addr+"/library/tampered-layer", sameSize)
	tamperLayer(t, reg, sameSize, false)
	resizedLayer := push(t, reg.Addr+"/library/resized-layer", resized)
	tamperLayer(t, reg, resized, true)
	armImage := push(t, reg.Addr+"/library/armimage", platformImage(t, "linux", "arm64"))
	down := closedPort(t)
	missing := reg.Addr + "/library/golang@sha256:" + strings.Repeat("ab", 32)

	for _, tc := range []struct {
		name, ref string
		kind      pull.Kind
		fix       string
	}{
		{"tag only", reg.Addr + "/library/golang:1.22", pull.NoDigest, "pin it by digest"},
		{"no tag, no digest", "docker.io/library/golang", pull.NoDigest, "pin it by digest"},
		{"not a reference", "Docker.io/UPPER CASE", pull.NoDigest, "pin it by digest"},
		{"registry unreachable", down + "/library/golang@sha256:" + strings.Repeat("cd", 32), pull.Unreachable, "check that " + down + " is reachable"},
		{"digest not there", missing, pull.NotFound, "configure a mirror"},
		{"index without the host platform", armOnly.String(), pull.NoPlatform, "has linux/amd64"},
		{"image for another platform", armImage.String(), pull.NoPlatform, "pin the linux/amd64 image"},
		{"manifest tampered on the registry", tamperedManifest.String(), pull.DigestMismatch, "serves other content for this digest"},
		{"layer tampered, same size", tamperedLayer.String(), pull.DigestMismatch, "serves other content"},
		{"layer tampered, other size", resizedLayer.String(), pull.DigestMismatch, "serves other content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DOCKER_CONFIG", t.TempDir())
			st := newStore(t)
			if _, err := pull.New().Pull(context.Background(), ok.String(), st); err != nil {
				t.Fatal(err) // the store holds something already
			}
			before := snapshot(t, st.Dir())
			staging := t.TempDir()
			_, err := pull.New(pull.WithTempDir(staging), pull.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"})).Pull(context.Background(), tc.ref, st)
			checkErr(t, err, tc.kind, tc.ref, tc.fix)
			unchanged(t, st, before)
			if left, _ := os.ReadDir(staging); len(left) != 0 {
				t.Errorf("staging left behind: %v", left)
			}
		})
	}
}

// TestPullIntoRegistryStore: with a registry as the store, the pulled
// image is pushed there and found by the index digest it was pinned by.
func TestPullIntoRegistryStore(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	src := regtest.Start(t, regtest.Options{})
	dst := regtest.Start(t, regtest.Options{})
	amd := platformImage(t, "linux", "amd64")
	idx := push(t, src.Addr+"/library/golang", index(t, map[string]v1.Image{"linux/amd64": amd, "linux/arm64": platformImage(t, "linux", "arm64")}))
	st, err := store.Open(dst.Addr + "/accord/store")
	if err != nil {
		t.Fatal(err)
	}
	img, err := pull.NewImages(st, pull.New(pull.WithTempDir(t.TempDir()))).ImageRef(context.Background(), idx.String())
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, img) != digestOf(t, amd) {
		t.Errorf("got %s, want the amd64 image %s", digestOf(t, img), digestOf(t, amd))
	}
	if !hasImage(t, st, digestOf(t, amd)) {
		t.Error("the image was not pushed to the store")
	}
}

// TestPullLocalNames: accord's own names (accord.dev/...) are never
// looked up on the network by that name; the error says to build them; a
// mirror for them is used.
func TestPullLocalNames(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	ref := "accord.dev/builders/go@sha256:" + strings.Repeat("de", 32)
	st := newStore(t)
	_, err := pull.New(pull.WithTransport(failingTransport{t})).Pull(context.Background(), ref, st)
	checkErr(t, err, pull.NotFound, ref, "accord images build")

	reg := regtest.Start(t, regtest.Options{})
	img := platformImage(t, "linux", "amd64")
	push(t, reg.Addr+"/accord/builders/go", img)
	ms, _ := pull.ParseMirrors("accord.dev=" + reg.Addr + "/accord")
	res, err := pull.New(pull.WithMirrors(ms), pull.WithTempDir(t.TempDir())).Pull(context.Background(), "accord.dev/builders/go@"+digestOf(t, img), st)
	if err != nil || res.Source != reg.Addr+"/accord/builders/go" {
		t.Errorf("from the mirror: %+v, %v", res, err)
	}
}

// failingTransport fails the test on any request.
type failingTransport struct{ t *testing.T }

func (f failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("a request went to %s", r.URL)
	return nil, errors.New("no network in this test")
}
