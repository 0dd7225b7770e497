package store

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is a store in an OCI registry repository. It is safe for
// concurrent use; see the package doc for what [Attach] guarantees
// against other processes.
type Registry struct {
	repo name.Repository
	opts []remote.Option

	pullOnce sync.Once
	puller   *remote.Puller

	// routes is shared by the store and the views [For] makes of it:
	// the registries it may push to, where each image is, the views.
	routes *routes
	// optErr is a bad option, returned by [Open].
	optErr error

	// Test hooks of [Attach]; zero values mean the defaults: the
	// process-wide locks, attachAttempts, attachSettle.
	locks          *keyedMutex
	attachAttempts int
	attachSettle   time.Duration
}

// readOptions are the options of reads: one puller for the store's
// lifetime, so the registry is pinged and authenticated once.
func (r *Registry) readOptions(ctx context.Context) []remote.Option {
	r.pullOnce.Do(func() {
		if p, err := remote.NewPuller(r.opts...); err == nil {
			r.puller = p
		}
	})
	opts := []remote.Option{remote.WithContext(ctx)}
	if r.puller != nil {
		return append(opts, remote.Reuse(r.puller))
	}
	return append(opts, r.opts...)
}

// writeOptions are the options of writes.
func (r *Registry) writeOptions(ctx context.Context) []remote.Option {
	return append([]remote.Option{remote.WithContext(ctx)}, r.opts...)
}

// RegistryOption configures a [Registry].
type RegistryOption func(*Registry)

// WithRemoteOptions passes options (auth, transport) to go-containerregistry.
// Default: the default keychain-less anonymous transport.
func WithRemoteOptions(opts ...remote.Option) RegistryOption {
	return func(r *Registry) { r.opts = append(r.opts, opts...) }
}

// NewRegistry returns a store in repo. Image artifacts whose names give
// another repository of repo's registry (or of a registry
// [WithAllowedRegistries] allows) go there; see [Name].
func NewRegistry(repo name.Repository, opts ...RegistryOption) *Registry {
	r := &Registry{repo: repo, routes: &routes{}}
	for _, o := range opts {
		o(r)
	}
	return r
}

func (r *Registry) String() string { return r.repo.String() }

// Put implements [Store]. The image is pushed by digest to the store's
// repository, then tagged with ref's tag part when ref has one (the last
// ":" after the last "/"). An artifact goes where its name says through
// [For]: Put of the store [For] returns.
func (r *Registry) Put(ctx context.Context, ref string, img v1.Image) (v1.Hash, error) {
	repo := r.repo
	h, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	opts := r.writeOptions(ctx)
	if err := remote.Write(repo.Digest(h.String()), img, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s to %s: %w%s", h, repo, err, authFix(err, repo))
	}
	if tag := tagOf(ref); tag != "" {
		if err := remote.Tag(repo.Tag(tag), img, opts...); err != nil {
			return v1.Hash{}, fmt.Errorf("tagging %s in %s: %w%s", h, repo, err, authFix(err, repo))
		}
	}
	r.routes.found(h, repo, nil)
	return h, nil
}

// Image implements [Store]. It reads h from the repository it was put in
// or found in by this store or a view of it ([For]), else from the
// store's own repository.
func (r *Registry) Image(ctx context.Context, h v1.Hash) (v1.Image, error) {
	repo, img := r.routes.where(h)
	if img != nil {
		return img, nil
	}
	if repo.Name() == "" {
		repo = r.repo
	}
	img, err := remote.Image(repo.Digest(h.String()), r.readOptions(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("image %s in %s: %w%s", h, repo, err, authFix(err, repo))
	}
	r.routes.found(h, repo, img)
	return img, nil
}

func tagOf(ref string) string {
	i := bytes.LastIndexByte([]byte(ref), '/')
	j := bytes.LastIndexByte([]byte(ref), ':')
	if j > i {
		return ref[j+1:]
	}
	return ""
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
