package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// HashedLayer is a layer of bytes in memory whose digest was computed from
// those very bytes when it was made, so nothing needs to hash them again:
// [Layout.Put] writes it without the digest check it applies to other
// layers, and its digest is the one SHA-256 pass a run makes over a file
// artifact. It is immutable and safe for concurrent use.
type HashedLayer struct {
	b  []byte
	h  v1.Hash
	mt types.MediaType
}

var _ v1.Layer = (*HashedLayer)(nil)

// NewHashedLayer hashes b once and returns it as an uncompressed layer of
// media type mt. b must not be changed afterwards.
func NewHashedLayer(b []byte, mt types.MediaType) *HashedLayer {
	s := sha256.Sum256(b)
	return &HashedLayer{b: b, h: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}, mt: mt}
}

// Digest is the SHA-256 of the bytes, computed by [NewHashedLayer].
func (l *HashedLayer) Digest() (v1.Hash, error) { return l.h, nil }

// DiffID is the digest: the layer is not compressed.
func (l *HashedLayer) DiffID() (v1.Hash, error) { return l.h, nil }

// Compressed returns the bytes.
func (l *HashedLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.b)), nil
}

// Uncompressed returns the bytes.
func (l *HashedLayer) Uncompressed() (io.ReadCloser, error) { return l.Compressed() }

// Size is the number of bytes.
func (l *HashedLayer) Size() (int64, error) { return int64(len(l.b)), nil }

// MediaType is the media type given to [NewHashedLayer].
func (l *HashedLayer) MediaType() (types.MediaType, error) { return l.mt, nil }
