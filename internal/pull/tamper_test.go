package pull_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/accord-build/accord/internal/testutil/regtest"
)

func remoteAuth(a authn.Authenticator) remote.Option { return remote.WithAuth(a) }

// tamperManifest rewrites the manifest the registry keeps for digest: the
// same JSON with an annotation added, still a valid manifest.
func tamperManifest(t *testing.T, reg *regtest.Registry, digest string) {
	t.Helper()
	f := reg.BlobFile(strings.TrimPrefix(digest, "sha256:"))
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndexByte(b, '}')
	b = append(b[:i:i], []byte(`,"annotations":{"org.example":"evil"}}`)...)
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tamperLayer changes the last layer of img (the earlier ones are
// fetched, and verified, first) in the registry's storage:
// one byte flipped, or (resize) a byte appended.
func tamperLayer(t *testing.T, reg *regtest.Registry, img v1.Image, resize bool) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	h, err := layers[len(layers)-1].Digest()
	if err != nil {
		t.Fatal(err)
	}
	f := reg.BlobFile(h.Hex)
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if resize {
		b = append(b, 0)
	} else {
		b[len(b)/2] ^= 0xff
	}
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
