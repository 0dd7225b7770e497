package pull

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// MirrorsEnv is the environment variable that holds the default mirrors
// (see [ParseMirrors]), e.g.
// ACCORD_REGISTRY_MIRRORS=docker.io=registry.internal:5000/dockerhub.
const MirrorsEnv = "ACCORD_REGISTRY_MIRRORS"

// Mirror serves the repositories of one registry under another registry,
// optionally below a path: with docker.io=mirror.internal/hub, the image
// docker.io/library/golang@D is fetched as
// mirror.internal/hub/library/golang@D. What a mirror serves is checked
// against the pinned digest like what the registry itself serves, so a
// mirror can make a pull fail but never change what runs.
type Mirror struct {
	// Registry is the registry mirrored, as go-containerregistry names it
	// (index.docker.io for docker.io).
	Registry string
	// Host is the mirror's host[:port].
	Host string
	// Prefix is the path the mirrored repositories are under; may be "".
	Prefix string
	// Insecure talks plain HTTP to the mirror (written http://HOST/...).
	// Loopback and private addresses use HTTP anyway, as
	// go-containerregistry does.
	Insecure bool
}

// Mirrors are the configured mirrors, tried in order before the registry
// itself.
type Mirrors []Mirror

// ParseMirror parses FROM=TO: FROM a registry host (docker.io, ghcr.io,
// host:port), TO a host[:port] with an optional path, optionally written
// with http:// (plain HTTP) or https://.
func ParseMirror(s string) (Mirror, error) {
	from, to, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok || from == "" || to == "" {
		return Mirror{}, fmt.Errorf("registry mirror %q: want FROM=TO, e.g. docker.io=registry.internal:5000/dockerhub", s)
	}
	reg, err := parseHost(from)
	if err != nil {
		return Mirror{}, fmt.Errorf("registry mirror %q: mirrored registry: %w", s, err)
	}
	m := Mirror{Registry: reg.Name()}
	switch {
	case strings.HasPrefix(to, "http://"):
		m.Insecure, to = true, strings.TrimPrefix(to, "http://")
	case strings.HasPrefix(to, "https://"):
		to = strings.TrimPrefix(to, "https://")
	}
	host, prefix, _ := strings.Cut(strings.TrimSuffix(to, "/"), "/")
	mreg, err := parseHost(host)
	if err != nil {
		return Mirror{}, fmt.Errorf("registry mirror %q: mirror: %w", s, err)
	}
	m.Host = mreg.Name()
	if prefix != "" {
		// A repository path must be valid on its own: check with a
		// child name below it.
		bad := strings.Contains(prefix, "//") || strings.HasPrefix(prefix, "/") || strings.HasSuffix(prefix, "/")
		if _, err := name.NewRepository(m.Host+"/"+prefix+"/x", name.StrictValidation); err != nil || bad {
			return Mirror{}, fmt.Errorf("registry mirror %q: path %q is not a repository path (lower-case letters, digits, . _ - and /)", s, prefix)
		}
	}
	m.Prefix = prefix
	return m, nil
}

// hostRE is a DNS name or IPv4 address, or a bracketed IPv6 address,
// with an optional port.
var hostRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// parseHost parses a registry host[:port], nothing more.
func parseHost(s string) (name.Registry, error) {
	if !hostRE.MatchString(s) {
		return name.Registry{}, fmt.Errorf("%q is not a registry host[:port]", s)
	}
	reg, err := name.NewRegistry(s, name.StrictValidation)
	if err != nil {
		return name.Registry{}, fmt.Errorf("%q is not a registry host[:port]: %w", s, err)
	}
	return reg, nil
}

// ParseMirrors parses a comma-separated list of [ParseMirror] entries
// (the form of [MirrorsEnv]); empty entries are ignored.
func ParseMirrors(s string) (Mirrors, error) {
	var out Mirrors
	for _, e := range strings.Split(s, ",") {
		if strings.TrimSpace(e) == "" {
			continue
		}
		m, err := ParseMirror(e)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// String gives m in the form [ParseMirror] reads.
func (m Mirror) String() string {
	from := m.Registry
	if from == name.DefaultRegistry {
		from = "docker.io"
	}
	to := m.Host
	if m.Prefix != "" {
		to += "/" + m.Prefix
	}
	if m.Insecure {
		to = "http://" + to
	}
	return from + "=" + to
}

// MarshalText implements encoding.TextMarshaler (for config files).
func (m Mirror) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with [ParseMirror].
func (m *Mirror) UnmarshalText(b []byte) error {
	p, err := ParseMirror(string(b))
	if err != nil {
		return err
	}
	*m = p
	return nil
}

// sources lists where the pinned image d is fetched from: each mirror of
// its registry, in order, then the registry itself.
func (ms Mirrors) sources(d name.Digest) ([]name.Digest, error) {
	var out []name.Digest
	repo := d.Context()
	for _, m := range ms {
		if m.Registry != repo.RegistryStr() {
			continue
		}
		path := repo.RepositoryStr()
		if m.Prefix != "" {
			path = m.Prefix + "/" + path
		}
		var opts []name.Option
		if m.Insecure {
			opts = append(opts, name.Insecure)
		}
		md, err := name.NewDigest(m.Host+"/"+path+"@"+d.DigestStr(), opts...)
		if err != nil {
			return nil, fmt.Errorf("mirror %s for %s: %w", m, d, err)
		}
		out = append(out, md)
	}
	return append(out, d), nil
}
