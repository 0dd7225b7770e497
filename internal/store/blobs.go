package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Blob is one blob of a stored image as [CheckBlobs] read it.
type Blob struct {
	// Role is "manifest", "config" or "layer N" (1-based).
	Role string
	// Digest and Size are what the manifest (or, for the manifest, the
	// digest it is stored under) names.
	Digest v1.Hash
	Size   int64
	// Err says how the bytes differ, or why they could not be read; nil
	// when they match.
	Err error
}

// BlobError is a blob of a stored image that is not the bytes its
// manifest names.
type BlobError struct {
	Image v1.Hash
	Blob
}

func (e *BlobError) Error() string {
	return fmt.Sprintf("image %s: %s %s: %v", e.Image, e.Role, e.Digest, e.Err)
}

func (e *BlobError) Unwrap() error { return e.Err }

// ErrBlobMismatch is wrapped by a blob whose bytes are not the digest or
// size its manifest names.
var ErrBlobMismatch = errors.New("stored bytes do not match their digest")

// VerifyBlobs is [CheckBlobs] as an error: a [*BlobError] for each blob
// that does not match, joined; nil when all do.
func VerifyBlobs(img v1.Image, h v1.Hash) error {
	var errs []error
	for _, b := range CheckBlobs(img, h) {
		if b.Err != nil {
			errs = append(errs, &BlobError{h, b})
		}
	}
	return errors.Join(errs...)
}

// CheckBlobs reads every byte of the image stored under manifest digest h,
// the manifest, its config and each layer, and checks each against the
// digest and size that names it, reading blobs concurrently. It returns
// every blob it checked, in manifest order; Err is set on those that do
// not match.
func CheckBlobs(img v1.Image, h v1.Hash) []Blob {
	raw, err := img.RawManifest()
	if err != nil {
		return []Blob{{Role: "manifest", Digest: h, Err: err}}
	}
	out := []Blob{{Role: "manifest", Digest: h, Size: int64(len(raw)), Err: match(h, -1, digestOf(raw), int64(len(raw)))}}
	m, err := img.Manifest()
	if err != nil {
		out[0].Err = err
		return out
	}
	out = append(out, Blob{Role: "config", Digest: m.Config.Digest, Size: m.Config.Size})
	for i, d := range m.Layers {
		out = append(out, Blob{Role: fmt.Sprintf("layer %d", i+1), Digest: d.Digest, Size: d.Size})
	}
	// The config and the layers are read concurrently (at most
	// blobReaders at a time): from a registry each is a round trip.
	var wg sync.WaitGroup
	sem := make(chan struct{}, blobReaders)
	check := func(i int, f func() error) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i].Err = f()
		}()
	}
	check(1, func() error {
		b, err := img.RawConfigFile()
		if err != nil {
			return err
		}
		return match(m.Config.Digest, m.Config.Size, digestOf(b), int64(len(b)))
	})
	for i, d := range m.Layers {
		check(2+i, func() error { return checkLayer(img, d) })
	}
	wg.Wait()
	return out
}

// blobReaders bounds the blobs [CheckBlobs] reads at once.
const blobReaders = 8

// checkLayer streams the layer blob d names through SHA-256, reading at
// most one byte more than d.Size.
func checkLayer(img v1.Image, d v1.Descriptor) error {
	l, err := img.LayerByDigest(d.Digest)
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	hh := sha256.New()
	n, err := io.Copy(hh, io.LimitReader(rc, d.Size+1))
	if err != nil {
		return fmt.Errorf("reading: %w", err)
	}
	return match(d.Digest, d.Size, "sha256:"+hex.EncodeToString(hh.Sum(nil)), n)
}

// match compares what was read with what the descriptor names (size -1:
// any size).
func match(want v1.Hash, size int64, got string, n int64) error {
	switch {
	case size >= 0 && n > size:
		return fmt.Errorf("%w: more than the %d bytes the manifest names", ErrBlobMismatch, size)
	case size >= 0 && n != size:
		return fmt.Errorf("%w: %d bytes, the manifest names %d", ErrBlobMismatch, n, size)
	case got != want.String():
		return fmt.Errorf("%w: the bytes have digest %s", ErrBlobMismatch, got)
	}
	return nil
}
