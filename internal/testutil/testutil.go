package testutil

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/internal/images"
	"github.com/accord-build/accord/internal/store"
)

var (
	baseOnce sync.Once
	baseImg  v1.Image
	baseErr  error
)

// BaseImage returns the busybox base image (see [images.BuildBase]).
func BaseImage(t testing.TB) v1.Image {
	t.Helper()
	baseOnce.Do(func() {
		var img v1.Image
		img, baseErr = images.BuildBase(context.Background(), images.Options{})
		if baseErr == nil {
			// Materialise layers once, so every caller shares the bytes.
			baseImg = img
		}
	})
	if baseErr != nil {
		t.Fatalf("building the busybox base image: %v (the test setup needs apt-get and dpkg-deb)", baseErr)
	}
	return baseImg
}

// BaseStore returns a layout store in a temporary directory holding the base
// image, and the image's pinned reference.
func BaseStore(t testing.TB) (*store.Layout, string) {
	t.Helper()
	st, err := store.OpenLayout(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := st.Put(context.Background(), "accord.dev/test/base", BaseImage(t))
	if err != nil {
		t.Fatal(err)
	}
	return st, "accord.dev/test/base@" + h.String()
}

// RequireBinary fails the test when name is not installed: the README's test
// command installs everything the tests use, so a missing tool is a setup
// error, not a reason to skip.
func RequireBinary(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is not installed: run the README's test command (hack/test.sh), which installs it", name)
	}
}

// IsRoot reports whether the test runs as root. Rootless paths are covered
// by running the same test binaries as an unprivileged user (hack/test.sh).
func IsRoot() bool { return os.Geteuid() == 0 }
