package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RefAnnotation names an index entry, as in the OCI image layout spec.
const RefAnnotation = "org.opencontainers.image.ref.name"

// Store is where accord keeps images and artifacts.
type Store interface {
	// Put stores img and records it under ref (a name without digest;
	// may be empty). It returns the manifest digest.
	Put(ctx context.Context, ref string, img v1.Image) (v1.Hash, error)
	// Image returns the image with manifest digest h.
	Image(ctx context.Context, h v1.Hash) (v1.Image, error)
	// String describes the store for messages.
	String() string
}

var (
	_ Store = (*Layout)(nil)
	_ Store = (*Registry)(nil)
)

// DefaultDir is the default layout store: $XDG_DATA_HOME/accord/store, or
// ~/.local/share/accord/store.
func DefaultDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "accord", "store")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "accord", "store")
	}
	return filepath.Join(home, ".local", "share", "accord", "store")
}

// Open interprets ref: an existing directory, or a path that starts with
// "/", "./" or "../", is a layout store; anything else that parses as a
// repository (HOST/REPO) is a registry store, which authenticates with
// the Docker config's credentials (authn.DefaultKeychain) in every
// registry it uses. An empty ref means [DefaultDir]. The registry options
// are ignored for a layout store, but a bad one is still an error.
func Open(ref string, opts ...RegistryOption) (Store, error) {
	probe := NewRegistry(name.Repository{}, opts...)
	if probe.optErr != nil {
		return nil, probe.optErr
	}
	if ref == "" {
		ref = DefaultDir()
	}
	if st, err := os.Stat(ref); err == nil && st.IsDir() || strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, ".") {
		return OpenLayout(ref)
	}
	repo, err := name.NewRepository(ref)
	if err != nil {
		return nil, fmt.Errorf("store %q is neither a directory nor a registry repository (HOST/REPO): %w", ref, err)
	}
	keychain := WithRemoteOptions(remote.WithAuthFromKeychain(authn.DefaultKeychain))
	return NewRegistry(repo, append([]RegistryOption{keychain}, opts...)...), nil
}

func readAllLimit(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return b, nil
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}
