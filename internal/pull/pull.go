package pull

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/accord-build/accord/internal/store"
)

// LocalRegistry is the registry of accord's own image names
// (accord.dev/builders/go, accord.dev/examples/...): images that accord
// builds from pinned inputs, which no registry serves. They are taken
// from the store, or pulled from a mirror configured for this name, never
// from the network by this name.
const LocalRegistry = "accord.dev"

// Puller fetches pinned images into a store. It is safe for concurrent
// use; concurrent pulls of one image each fetch it (the store keeps one).
type Puller struct {
	keychain  authn.Keychain
	mirrors   Mirrors
	platform  v1.Platform
	tempDir   string
	progress  io.Writer
	transport http.RoundTripper
}

// Option configures a [Puller].
type Option func(*Puller)

// WithKeychain sets where credentials come from. Default
// authn.DefaultKeychain (the Docker config: $DOCKER_CONFIG/config.json,
// else ~/.docker/config.json, and its credential helpers).
func WithKeychain(k authn.Keychain) Option { return func(p *Puller) { p.keychain = k } }

// WithMirrors sets the mirrors tried before each registry. Default none.
func WithMirrors(m Mirrors) Option { return func(p *Puller) { p.mirrors = append(Mirrors(nil), m...) } }

// WithPlatform sets the platform an index resolves to. Default the host's:
// linux/GOARCH.
func WithPlatform(pl v1.Platform) Option { return func(p *Puller) { p.platform = pl } }

// WithTempDir sets where pulls are staged before they reach the store.
// Default os.TempDir().
func WithTempDir(dir string) Option { return func(p *Puller) { p.tempDir = dir } }

// WithProgress sets where a line per layer goes while it is fetched.
// Default nowhere.
func WithProgress(w io.Writer) Option { return func(p *Puller) { p.progress = w } }

// WithTransport sets the HTTP transport. Default go-containerregistry's.
func WithTransport(t http.RoundTripper) Option { return func(p *Puller) { p.transport = t } }

// New returns a puller.
func New(opts ...Option) *Puller {
	p := &Puller{keychain: authn.DefaultKeychain, platform: HostPlatform(), progress: io.Discard}
	for _, o := range opts {
		o(p)
	}
	return p
}

// HostPlatform is the platform of this host's step containers: linux and
// the architecture accord was built for.
func HostPlatform() v1.Platform { return v1.Platform{OS: "linux", Architecture: runtime.GOARCH} }

// Result is what a pull or an import stored.
type Result struct {
	// Ref is the pinned reference (REPOSITORY@DIGEST).
	Ref string `json:"ref"`
	// Digest is the digest the reference pins: an index or a manifest.
	Digest string `json:"digest"`
	// Index says Digest is an image index, resolved to Manifest.
	Index bool `json:"index,omitempty"`
	// Manifest is the digest of the image that runs (the platform's
	// manifest when Digest is an index, else Digest).
	Manifest string `json:"manifest"`
	// Platform is the image's os/architecture[/variant].
	Platform string `json:"platform"`
	// Source is where it came from: a registry or mirror repository, or
	// a file; "" when the store already had it.
	Source string `json:"source,omitempty"`
	// Layers and Size count the image's layers and their bytes.
	Layers int   `json:"layers"`
	Size   int64 `json:"size"`
	// Cached says the store had the image already: nothing was fetched.
	Cached bool `json:"cached,omitempty"`
}

// ParseRef parses a pinned reference, REPOSITORY[:TAG]@sha256:HEX; a
// reference without digest is an [*Error] of kind [NoDigest].
func ParseRef(ref string) (name.Digest, error) {
	d, err := name.NewDigest(ref)
	if err == nil {
		return d, nil
	}
	fix := "pin it by digest: NAME@sha256:<digest> (the digest of a tag: crane digest NAME:TAG, or docker buildx imagetools inspect NAME:TAG)"
	if _, terr := name.ParseReference(ref); terr != nil {
		return name.Digest{}, &Error{Image: ref, Kind: NoDigest, Err: terr, Fix: fix}
	}
	return name.Digest{}, &Error{Image: ref, Kind: NoDigest, Err: errors.New("a tag can move; accord runs images by digest only"), Fix: fix}
}

// Pull stores the image ref pins (see [ParseRef]) in st, fetched from the
// first of its mirrors, then its registry, that serves it; an index is
// resolved to the puller's platform. An image the store has is not
// fetched again. Every failure is an [*Error] and leaves st as it was.
func (p *Puller) Pull(ctx context.Context, ref string, st store.Store) (*Result, error) {
	d, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	if res, _, ok := p.stored(ctx, st, d); ok {
		return res, nil
	}
	sources, err := p.mirrors.sources(d)
	if err != nil {
		return nil, &Error{Image: ref, Kind: Failed, Err: err, Fix: "fix the mirror configuration"}
	}
	if d.Context().RegistryStr() == LocalRegistry {
		sources = sources[:len(sources)-1] // no registry serves it: mirrors only
		if len(sources) == 0 {
			return nil, &Error{Image: ref, Kind: NotFound, Err: fmt.Errorf("%s names accord's own images, which no registry serves", LocalRegistry),
				Fix: "for accord's builder images run 'accord images build' (with the --store the run uses); otherwise put the image into the store (accord images import FILE) or configure a mirror for " + LocalRegistry}
		}
	}
	var errs []*Error
	for _, src := range sources {
		res, err := p.pullFrom(ctx, ref, d, src, st)
		if err == nil {
			return res, nil
		}
		var pe *Error
		if !errors.As(err, &pe) || ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, pe)
	}
	return nil, sourcesError(ref, errs)
}

// pullFrom fetches d from src into a staging directory and, when every
// blob is there and verified, copies it into st.
func (p *Puller) pullFrom(ctx context.Context, ref string, d, src name.Digest, st store.Store) (*Result, error) {
	reg := src.Context().Registry
	auth, err := p.keychain.Resolve(reg)
	if err != nil {
		return nil, &Error{Image: ref, Kind: Unauthorized, Source: src.Context().Name(), Err: err,
			Fix: "fix the Docker config ($DOCKER_CONFIG/config.json, default ~/.docker/config.json) or its credential helper"}
	}
	hasCred := auth != authn.Anonymous
	fail := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var pe *Error
		if errors.As(err, &pe) {
			return pe
		}
		return classify(ref, src.Context().Name(), reg.Name(), hasCred, err)
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth)}
	if p.transport != nil {
		opts = append(opts, remote.WithTransport(p.transport))
	}
	desc, err := remote.Get(src, opts...)
	if err != nil {
		return nil, fail(err)
	}
	if err := checkDigest("manifest", desc.Manifest, d.DigestStr()); err != nil {
		return nil, fail(err)
	}
	res := &Result{Ref: d.Context().Name() + "@" + d.DigestStr(), Digest: d.DigestStr(), Manifest: d.DigestStr(), Source: src.Context().Name()}
	var img v1.Image
	switch {
	case desc.MediaType.IsIndex():
		child, err := p.choose(ref, desc.Manifest)
		if err != nil {
			return nil, err
		}
		res.Index, res.Manifest = true, child.Digest.String()
		if img, err = remote.Image(src.Context().Digest(child.Digest.String()), opts...); err != nil {
			return nil, fail(err)
		}
	case desc.MediaType.IsImage():
		if img, err = desc.Image(); err != nil {
			return nil, fail(err)
		}
	default:
		return nil, &Error{Image: ref, Kind: Unsupported, Source: res.Source, Err: fmt.Errorf("media type %q is neither an image nor an index", desc.MediaType),
			Fix: "pin an OCI or Docker schema 2 image or index (schema 1 manifests are not supported)"}
	}
	staged, cleanup, err := p.stage(ctx, ref, img, res)
	if err != nil {
		return nil, fail(err)
	}
	defer cleanup()
	if err := commit(ctx, st, d, staged, desc.MediaType, desc.Manifest, res.Index); err != nil {
		return nil, err
	}
	return res, nil
}

// commit puts a verified, staged image (and the index that pinned it, for
// a store that keeps indexes) into st.
func commit(ctx context.Context, st store.Store, d name.Digest, img v1.Image, mt types.MediaType, raw []byte, index bool) error {
	repo := d.Context().Name()
	if _, err := st.Put(ctx, repo, img); err != nil {
		return fmt.Errorf("storing %s in %s: %w", d, st, err)
	}
	if ip, ok := st.(indexStore); ok && index {
		if _, err := ip.PutIndex(ctx, repo, mt, raw); err != nil {
			return fmt.Errorf("storing the index of %s in %s: %w", d, st, err)
		}
	}
	return nil
}

// indexStore is a store that keeps image indexes ([store.Layout]).
type indexStore interface {
	PutIndex(ctx context.Context, ref string, mt types.MediaType, raw []byte) (v1.Hash, error)
	Index(ctx context.Context, h v1.Hash) (v1.ImageIndex, error)
}

var _ indexStore = (*store.Layout)(nil)

// choose picks the child of the index raw for the puller's platform.
func (p *Puller) choose(ref string, raw []byte) (v1.Descriptor, error) {
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, &Error{Image: ref, Kind: Unsupported, Err: fmt.Errorf("parsing the index: %w", err), Fix: "pin a valid OCI index or Docker manifest list"}
	}
	var have []string
	for _, m := range im.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" {
			continue // attestation manifests of buildx
		}
		if m.Platform.Satisfies(p.platform) {
			if !m.MediaType.IsImage() {
				return v1.Descriptor{}, &Error{Image: ref, Kind: Unsupported, Err: fmt.Errorf("the %s entry %s is a %s", m.Platform, m.Digest, m.MediaType),
					Fix: "pin the digest of the " + m.Platform.String() + " image, not of an index of indexes"}
			}
			return m, nil
		}
		have = append(have, m.Platform.String())
	}
	return v1.Descriptor{}, &Error{Image: ref, Kind: NoPlatform, Err: fmt.Errorf("the index has no %s image (it has: %s)", p.platform, listOrNone(have)),
		Fix: fmt.Sprintf("pin an image or index that has %s (steps run on this host's platform)", p.platform)}
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	out := s[0]
	for _, x := range s[1:] {
		out += ", " + x
	}
	return out
}

// checkDigest checks that b hashes to want.
func checkDigest(what string, b []byte, want string) error {
	h, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		return err
	}
	if h.String() != want {
		return &digestError{what: what, want: want, got: h.String()}
	}
	return nil
}

// tempDir returns the staging root, created if need be.
func (p *Puller) stagingRoot() (string, error) {
	dir := p.tempDir
	if dir == "" {
		dir = os.TempDir()
	}
	return dir, os.MkdirAll(dir, 0o700)
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
