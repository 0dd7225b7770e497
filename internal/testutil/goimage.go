package testutil

import (
	"context"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/accord-build/accord/internal/images"
)

var (
	goOnce sync.Once
	goImg  v1.Image
	goErr  error
)

// GoImage returns accord's Go builder image ([images.BuildGo]), built
// once per test binary from its pinned inputs (the Go toolchain module,
// fetched by the host's go command, and busybox).
func GoImage(t testing.TB) v1.Image {
	t.Helper()
	goOnce.Do(func() {
		goImg, goErr = images.BuildGo(context.Background(), images.Options{})
	})
	if goErr != nil {
		t.Fatalf("building the Go builder image: %v (the test setup needs the go command, its module proxy or cache, apt-get and dpkg-deb)", goErr)
	}
	return goImg
}
