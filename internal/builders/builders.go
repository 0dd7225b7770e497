package builders

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/engine"
)

// File is the builders file as written.
type File struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// MinDifferences is how many variation dimensions (runtime included)
	// each validator must change from the primary. Default 3.
	MinDifferences *int      `json:"minDifferences,omitempty"`
	Builders       []Builder `json:"builders"`
}

// Builder is one builder.
type Builder struct {
	// Name is a DNS label, unique in the file.
	Name string `json:"name"`
	// ID is the identity recorded as runDetails.builder.id. Default
	// https://accord.dev/builders/NAME.
	ID string `json:"id,omitempty"`
	// Key is the signing key: a cosign key file (relative paths are
	// relative to the builders file) or a KMS URI.
	Key string `json:"key"`
	// Engine runs the build: "local" (default).
	Engine string `json:"engine,omitempty"`
	// Runtime is the OCI runtime of the local engine: runc (default), crun
	// or runsc (gVisor: umask 0022 and an environment order of its own).
	Runtime string `json:"runtime,omitempty"`
	// Variation is the builder's environment.
	Variation engine.Variation `json:"variation,omitempty"`
}

// Set is a checked builders file.
type Set struct {
	File           string
	MinDifferences int
	// Builders are in file order; the first is the primary.
	Builders []Builder
}

// Primary is the first builder.
func (s *Set) Primary() Builder { return s.Builders[0] }

// Get returns the builder called name.
func (s *Set) Get(name string) (Builder, bool) {
	for _, b := range s.Builders {
		if b.Name == name {
			return b, true
		}
	}
	return Builder{}, false
}

// Differences names the dimensions in which b differs from the primary,
// runtime included.
func (s *Set) Differences(b Builder) []string {
	return Differences(s.Primary(), b)
}

// Differences names the dimensions in which b differs from a.
func Differences(a, b Builder) []string {
	var out []string
	if a.Runtime != b.Runtime {
		out = append(out, "runtime")
	}
	return append(out, a.Variation.Differences(b.Variation)...)
}

// Error is a problem in a builders file: the file, the field, the fix.
type Error struct{ File, Field, Msg, Fix string }

func (e *Error) Error() string {
	s := e.File
	if e.Field != "" {
		s += ": field " + e.Field
	}
	s += ": " + e.Msg
	if e.Fix != "" {
		s += "\n  fix: " + e.Fix
	}
	return s
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// DefaultMinDifferences is how many dimensions a validator changes unless
// the file says otherwise.
const DefaultMinDifferences = 3

// Parse decodes and checks a builders file; file names it in errors and
// anchors relative key paths.
func Parse(file string, data []byte) (*Set, error) {
	fail := func(field, msg, fix string) error { return &Error{file, field, msg, fix} }
	var f File
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fail("", "malformed builders file: "+strings.TrimPrefix(err.Error(), "error unmarshaling JSON: while decoding JSON: "), "see the format in 'accord builders --help'")
	}
	if f.APIVersion != "accord.dev/v1alpha1" || f.Kind != "Builders" {
		return nil, fail("apiVersion", fmt.Sprintf("want apiVersion accord.dev/v1alpha1 and kind Builders, got %q %q", f.APIVersion, f.Kind), "start the file with 'apiVersion: accord.dev/v1alpha1' and 'kind: Builders'")
	}
	if len(f.Builders) == 0 {
		return nil, fail("builders", "no builders", "list the primary first, then its validators ('accord builders init' writes a file)")
	}
	s := &Set{File: file, MinDifferences: DefaultMinDifferences}
	if f.MinDifferences != nil {
		if *f.MinDifferences < 0 || *f.MinDifferences > 8 {
			return nil, fail("minDifferences", fmt.Sprintf("%d is not between 0 and 8", *f.MinDifferences), "leave it out for the default of 3")
		}
		s.MinDifferences = *f.MinDifferences
	}
	names, ids, keys := map[string]int{}, map[string]int{}, map[string]int{}
	for i, b := range f.Builders {
		field := fmt.Sprintf("builders[%d]", i)
		if !nameRE.MatchString(b.Name) {
			return nil, fail(field+".name", fmt.Sprintf("%q is not a DNS label", b.Name), "name the builder with lowercase letters, digits and '-'")
		}
		if j, dup := names[b.Name]; dup {
			return nil, fail(field+".name", fmt.Sprintf("%q is also builders[%d]", b.Name, j), "give each builder its own name")
		}
		names[b.Name] = i
		if b.ID == "" {
			b.ID = "https://accord.dev/builders/" + b.Name
		}
		if u, err := url.Parse(b.ID); err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
			return nil, fail(field+".id", fmt.Sprintf("%q is not an absolute URI", b.ID), "use a URI such as https://builders.example/NAME")
		}
		if j, dup := ids[b.ID]; dup {
			return nil, fail(field+".id", fmt.Sprintf("%q is also builders[%d]'s identity", b.ID, j), "each builder needs its own identity")
		}
		ids[b.ID] = i
		if b.Key == "" {
			return nil, fail(field+".key", "no signing key", "give a cosign key file ('accord keys generate NAME') or a KMS URI")
		}
		if !strings.Contains(b.Key, "://") && !filepath.IsAbs(b.Key) {
			b.Key = filepath.Join(filepath.Dir(file), b.Key)
		}
		if j, dup := keys[b.Key]; dup {
			return nil, fail(field+".key", fmt.Sprintf("the key is also builders[%d]'s: one key under two identities counts once", j), "give each builder its own key")
		}
		keys[b.Key] = i
		switch b.Engine {
		case "", "local":
			b.Engine = "local"
		case "tekton":
			return nil, fail(field+".engine", "the tekton engine is not available in this version of accord", "use engine: local")
		default:
			return nil, fail(field+".engine", fmt.Sprintf("%q", b.Engine), "use local")
		}
		switch b.Runtime {
		case "":
			b.Runtime = "runc"
		case "runc", "crun", "runsc":
		default:
			return nil, fail(field+".runtime", fmt.Sprintf("%q", b.Runtime), "use runc, crun or runsc")
		}
		if err := b.Variation.Validate(); err != nil {
			return nil, fail(field+".variation", err.Error(), "see the profile format in 'accord builders --help'")
		}
		if err := runscVariation(b); err != nil {
			return nil, fail(field+".variation."+err.field, err.msg, err.fix)
		}
		b.Variation = b.Variation.WithDefaults()
		s.Builders = append(s.Builders, b)
	}
	for i, b := range s.Builders[1:] {
		if d := s.Differences(b); len(d) < s.MinDifferences {
			return nil, fail(fmt.Sprintf("builders[%d].variation", i+1),
				fmt.Sprintf("validator %q differs from the primary in %d dimension(s) %v, fewer than minDifferences %d: agreement would prove little", b.Name, len(d), d, s.MinDifferences),
				"vary the runtime, workspaceRoot, hostname, uid/gid, umask, timezone, cpus or envOrder (or lower minDifferences)")
		}
	}
	return s, nil
}

// CheckKeys checks that no two builders sign with the same key: pubs[i] is
// the public key (PEM) of s.Builders[i], read from its signing key (nil:
// not compared). Keys
// are compared by their material ([attest.Fingerprint]), so a key file
// copied, re-encrypted, re-encoded or linked under another path is the
// same key: one key under two identities would count twice toward a
// threshold. Parse compares the key references only; this needs the keys.
func (s *Set) CheckKeys(pubs [][]byte) error {
	seen := map[string]int{}
	for i, pub := range pubs {
		if pub == nil {
			continue
		}
		field := fmt.Sprintf("builders[%d].key", i)
		fp, err := attest.Fingerprint(pub)
		if err != nil {
			return &Error{File: s.File, Field: field, Msg: err.Error(), Fix: "give a cosign key file ('accord keys generate NAME') or a KMS URI"}
		}
		if j, dup := seen[fp]; dup {
			return &Error{File: s.File, Field: field, Msg: fmt.Sprintf("%s holds the same key as builders[%d] (%s): one key under two identities counts once", s.Builders[i].Key, j, s.Builders[j].Key), Fix: "give each builder its own key ('accord keys generate NAME')"}
		}
		seen[fp] = i
	}
	return nil
}

// Load reads a builders file.
func Load(file string) (*Set, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, &Error{File: file, Msg: err.Error(), Fix: "give an existing builders file ('accord builders init DIR' writes one)"}
	}
	return Parse(file, b)
}

// Validator returns the default profile of the i-th validator (i ≥ 1):
// it differs from the default primary in runtime (when crun or runsc is
// wanted), workspace root, hostname, umask, timezone, CPU count and
// environment order (umask and order not under runsc), and in uid/gid
// when root is true (rootless runners own one id).
func Validator(i int, runtime string, root bool) Builder {
	name := fmt.Sprintf("validator-%d", i)
	tz := []string{"NPT-5:45", "ACST-9:30", "NZST-12"}[(i-1)%3]
	umask := []string{"0077", "0027", "0002"}[(i-1)%3]
	v := engine.Variation{
		WorkspaceRoot: "/build/" + name, Hostname: name, Umask: umask, Timezone: tz, CPUs: 1, EnvOrder: "reversed",
	}
	if runtime == "runsc" {
		// What runsc cannot vary (see runscVariation); another kernel
		// is a variation of its own.
		v.Umask, v.EnvOrder = "", ""
	}
	if root {
		v.UID, v.GID = 1000+i, 1000+i
	}
	return Builder{Name: name, ID: "https://accord.dev/builders/" + name, Engine: "local", Runtime: runtime, Variation: v.WithDefaults()}
}

// variationError is a variation field a runtime cannot apply.
type variationError struct{ field, msg, fix string }

// runscVariation refuses what runsc (gVisor, Debian's 2022 release) would
// not apply, so that no provenance claims a variation the steps never had:
// it starts every process with umask 0022, and passes the environment
// through a map, in an order that changes from run to run.
func runscVariation(b Builder) *variationError {
	if b.Runtime != "runsc" {
		return nil
	}
	v := b.Variation.WithDefaults()
	if bits, _ := v.UmaskBits(); bits != 0o022 {
		return &variationError{"umask", fmt.Sprintf("%q: runsc starts every step with umask 0022", v.Umask), "leave umask out for runsc, or vary it on a runc or crun builder"}
	}
	if v.EnvOrder != "sorted" {
		return &variationError{"envOrder", fmt.Sprintf("%q: runsc passes the environment in an order of its own, which changes from run to run", v.EnvOrder), "leave envOrder out for runsc, or vary it on a runc or crun builder"}
	}
	return nil
}
