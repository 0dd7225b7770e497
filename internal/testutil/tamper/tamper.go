// Package tamper is an attacker with write access to a store, for tests:
// an in-process registry whose blobs it can change, and huge layers that
// cost no memory or disk.
package tamper

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type memBlobs interface {
	registry.BlobHandler
	registry.BlobStatHandler
	registry.BlobPutHandler
	registry.BlobDeleteHandler
}

// Blobs is go-containerregistry's in-memory blob store with an attacker
// in it: Get serves what the function set for a blob returns. Safe for
// concurrent use.
type Blobs struct {
	mem    memBlobs
	mu     sync.Mutex
	tamper map[v1.Hash]func([]byte) []byte
}

// Stat implements registry.BlobStatHandler.
func (b *Blobs) Stat(ctx context.Context, repo string, h v1.Hash) (int64, error) {
	return b.mem.Stat(ctx, repo, h)
}

// Put implements registry.BlobPutHandler.
func (b *Blobs) Put(ctx context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	return b.mem.Put(ctx, repo, h, rc)
}

// Delete implements registry.BlobDeleteHandler.
func (b *Blobs) Delete(ctx context.Context, repo string, h v1.Hash) error {
	return b.mem.Delete(ctx, repo, h)
}

// Get implements registry.BlobHandler.
func (b *Blobs) Get(ctx context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	rc, err := b.mem.Get(ctx, repo, h)
	b.mu.Lock()
	f := b.tamper[h]
	b.mu.Unlock()
	if err != nil || f == nil {
		return rc, err
	}
	defer rc.Close()
	c, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(f(c))), nil
}

// Set makes the registry serve f(blob) for blob h from now on.
func (b *Blobs) Set(h v1.Hash, f func([]byte) []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tamper == nil {
		b.tamper = map[v1.Hash]func([]byte) []byte{}
	}
	b.tamper[h] = f
}

// Registry starts an in-process registry (closed with the test) and
// returns a repository in it, "127.0.0.1:PORT/accord/store", and its blobs.
func Registry(t testing.TB) (string, *Blobs) {
	t.Helper()
	blobs := &Blobs{mem: registry.NewInMemoryBlobHandler().(memBlobs)}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithBlobHandler(blobs)))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://") + "/accord/store", blobs
}

// LayoutBlob makes f(blob) the content of blob h of the OCI layout dir.
func LayoutBlob(t testing.TB, dir string, h v1.Hash, f func([]byte) []byte) {
	t.Helper()
	p := filepath.Join(dir, "blobs", h.Algorithm, h.Hex)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, f(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// FlipByte flips a bit of the middle byte.
func FlipByte(b []byte) []byte {
	c := append([]byte(nil), b...)
	c[len(c)/2] ^= 0x01
	return c
}

// Truncate drops the last byte.
func Truncate(b []byte) []byte { return b[:len(b)-1] }

// Zeros is a layer of N zero bytes, streamed: a huge layer that costs no
// memory.
type Zeros struct {
	N    int64
	Type types.MediaType
	h    v1.Hash
}

// NewZeros returns a layer of n zero bytes of media type mt.
func NewZeros(t testing.TB, n int64, mt types.MediaType) *Zeros {
	t.Helper()
	hh := sha256.New()
	if _, err := io.Copy(hh, io.LimitReader(zeroReader{}, n)); err != nil {
		t.Fatal(err)
	}
	return &Zeros{N: n, Type: mt, h: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(hh.Sum(nil))}}
}

// Sparse creates the layer's blob in the OCI layout dir as a sparse file
// (its size, no disk use), so storing the layer there writes nothing.
func (z *Zeros) Sparse(t testing.TB, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "blobs", z.h.Algorithm, z.h.Hex))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(z.N); err != nil {
		t.Fatal(err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Digest implements v1.Layer.
func (z *Zeros) Digest() (v1.Hash, error) { return z.h, nil }

// DiffID implements v1.Layer (the layer is not compressed).
func (z *Zeros) DiffID() (v1.Hash, error) { return z.h, nil }

// Size implements v1.Layer.
func (z *Zeros) Size() (int64, error) { return z.N, nil }

// MediaType implements v1.Layer.
func (z *Zeros) MediaType() (types.MediaType, error) { return z.Type, nil }

// Compressed implements v1.Layer.
func (z *Zeros) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(io.LimitReader(zeroReader{}, z.N)), nil
}

// Uncompressed implements v1.Layer.
func (z *Zeros) Uncompressed() (io.ReadCloser, error) { return z.Compressed() }

var _ v1.Layer = (*Zeros)(nil)
