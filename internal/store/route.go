package store

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// A registry store puts an image artifact where its name says, as a
// Tekton Chains user expects: an artifact named REGISTRY/REPO[:TAG] is
// pushed to REGISTRY/REPO, and its signatures, attestations and links are
// attached there (REGISTRY/REPO:sha256-<hex>.sig, .att, .links), so that
// 'cosign verify REGISTRY/REPO@DIGEST' finds them. That holds within the
// store's own registry and the registries [WithAllowedRegistries] allows;
// a name in any other registry is refused ([*RegistryError]) before
// anything is pushed. Names without a registry (a file artifact's name,
// "team/app") and names under [AccordNamespace] stay in the store's own
// repository.

// AccordNamespace is accord's own name space (the catalog's default image
// names, the examples): names under it name no registry, and their
// artifacts stay in the store's repository.
const AccordNamespace = "accord.dev/"

// WithAllowedRegistries lets the store push image artifacts to the
// repositories their names give in these registries, besides its own.
// A host is written as in image names: registry.example,
// 127.0.0.1:5000, docker.io. [Open] returns a bad host's error.
func WithAllowedRegistries(hosts ...string) RegistryOption {
	return func(r *Registry) {
		regs, err := ParseRegistries(hosts)
		if err != nil {
			r.optErr = err
			return
		}
		r.routes.allowed = append(r.routes.allowed, regs...)
	}
}

// ParseRegistries checks registry hosts as [WithAllowedRegistries] takes
// them: a host with an optional port, no scheme and no path.
func ParseRegistries(hosts []string) ([]name.Registry, error) {
	var out []name.Registry
	for _, h := range hosts {
		reg, err := name.NewRegistry(h, name.StrictValidation)
		if err != nil || h == "" || strings.ContainsAny(h, "/@ \t\n") {
			return nil, fmt.Errorf("allowed registry %q is not a registry host: give HOST or HOST:PORT (registry.example, 127.0.0.1:5000), no scheme or path", h)
		}
		out = append(out, reg)
	}
	return out, nil
}

// RegistryError is an image name in a registry the store may not push to.
type RegistryError struct {
	// Name is the image name; Registry its registry.
	Name, Registry string
	// Store is the store's repository; Allowed the registries it may
	// push to (its own first).
	Store   string
	Allowed []string
}

func (e *RegistryError) Error() string {
	return fmt.Sprintf("%s is in registry %s, where store %s may not push (allowed: %s)\n  fix: allow the registry (accord run --allow-registry %s, or allowRegistries in the serve config), or name the image in %s or without a registry",
		e.Name, e.Registry, e.Store, strings.Join(e.Allowed, ", "), e.Registry, e.Allowed[0])
}

// routes is what a registry store and its views share.
type routes struct {
	allowed []name.Registry // besides the store's own registry

	mu     sync.Mutex
	images map[v1.Hash]v1.Image        // by digest: immutable, fetched once
	repos  map[v1.Hash]name.Repository // where each digest was put or found
	views  map[string]*Registry        // by repository
}

// found records that h is in repo (and, when img is not nil, the image).
func (rt *routes) found(h v1.Hash, repo name.Repository, img v1.Image) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.repos == nil {
		rt.repos, rt.images = map[v1.Hash]name.Repository{}, map[v1.Hash]v1.Image{}
	}
	if _, ok := rt.repos[h]; !ok {
		rt.repos[h] = repo
	}
	if img != nil {
		rt.images[h] = img
	}
}

// where returns the repository h was put in or found in (zero: none
// known) and its image, if read already.
func (rt *routes) where(h v1.Hash) (name.Repository, v1.Image) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.repos[h], rt.images[h]
}

// route returns the repository ref (an artifact name, or an attachment
// reference [AttachmentRef] made of what [Name] returned) is stored in:
// the one its name gives when the name gives a registry the store may
// push to, the store's own when the name gives none (and for "").
func (r *Registry) route(ref string) (name.Repository, error) {
	repo, ok, err := registryName(ref)
	if err != nil {
		return name.Repository{}, err
	}
	if !ok || repo.Name() == r.repo.Name() {
		return r.repo, nil
	}
	if repo.RegistryStr() == r.repo.RegistryStr() {
		return repo, nil
	}
	allowed := []string{r.repo.RegistryStr()}
	for _, reg := range r.routes.allowed {
		if reg.RegistryStr() == repo.RegistryStr() {
			return repo, nil
		}
		allowed = append(allowed, reg.RegistryStr())
	}
	return name.Repository{}, &RegistryError{Name: strings.SplitN(ref, "@", 2)[0], Registry: repo.RegistryStr(), Store: r.repo.Name(), Allowed: allowed}
}

// registryName returns the repository ref names, when it names a
// registry: its first path component has a "." or ":" or is "localhost"
// (as Docker reads names), and it is not under [AccordNamespace]. A
// digest and a tag are left out.
func registryName(ref string) (name.Repository, bool, error) {
	ref, _, _ = strings.Cut(ref, "@")
	if t := tagOf(ref); t != "" {
		ref = ref[:len(ref)-len(t)-1]
	}
	host, _, slash := strings.Cut(ref, "/")
	if !slash || !(strings.ContainsAny(host, ".:") || host == "localhost") || strings.HasPrefix(ref, AccordNamespace) {
		return name.Repository{}, false, nil
	}
	repo, err := name.NewRepository(ref)
	if err != nil {
		return name.Repository{}, false, fmt.Errorf("%q is not a repository: %w", ref, err)
	}
	return repo, true, nil
}

// view is the store seen from repo: what it puts without a name, and
// reads by digest without knowing where, is in repo.
func (r *Registry) view(repo name.Repository) *Registry {
	if repo.Name() == r.repo.Name() {
		return r
	}
	r.routes.mu.Lock()
	defer r.routes.mu.Unlock()
	if v, ok := r.routes.views[repo.Name()]; ok {
		return v
	}
	v := &Registry{repo: repo, opts: r.opts, routes: r.routes, locks: r.locks, attachAttempts: r.attachAttempts, attachSettle: r.attachSettle}
	if r.routes.views == nil {
		r.routes.views = map[string]*Registry{}
	}
	r.routes.views[repo.Name()] = v
	return v
}

// For returns the store as it keeps the artifact named artifactName: for
// a registry store whose routing sends the name to another repository
// (see [Name]), a store in that repository that shares st's settings and
// knowledge; else st. A name in a registry st may not push to is a
// [*RegistryError].
func For(st Store, artifactName string) (Store, error) {
	r, ok := st.(*Registry)
	if !ok {
		return st, nil
	}
	repo, err := r.route(artifactName)
	if err != nil {
		return nil, err
	}
	return r.view(repo), nil
}

// CheckName returns the [*RegistryError] of an image artifact name st may
// not push to, or nil. A layout store keeps any name.
func CheckName(st Store, artifactName string) error {
	_, err := For(st, artifactName)
	return err
}

// Reference is the pullable reference of the artifact named artifactName
// stored as manifest h in a registry store: REGISTRY/REPO@sha256:<hex>.
// It is empty for a layout store, which no registry serves.
func Reference(st Store, artifactName string, h v1.Hash) string {
	r, ok := st.(*Registry)
	if !ok {
		return ""
	}
	repo, err := r.route(artifactName)
	if err != nil {
		return ""
	}
	return repo.Name() + "@" + h.String()
}

// authFix is the hint of an error from a registry that wants credentials.
func authFix(err error, repo name.Repository) string {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return fmt.Sprintf("\n  fix: log in to %s with credentials that may push to %s (docker login %s; accord reads the Docker config, $DOCKER_CONFIG/config.json, and its credential helpers)", repo.RegistryStr(), repo.RepositoryStr(), repo.RegistryStr())
	}
	return ""
}
