package verify

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/accord-build/accord/attest"
)

// PolicyFile is the YAML policy `accord verify --policy` reads:
//
//	apiVersion: accord.dev/v1alpha1
//	kind: Policy
//	builders:                     # trusted builders: identity + public key
//	  - id: https://accord.dev/builders/primary
//	    key: keys/primary.pub     # relative to the policy file
//	threshold: 2                  # k distinct trusted builders must agree
//	sources:                      # optional: allowed repositories and refs
//	  - uri: https://example.com/org/app.git
//	    refs: [main, "refs/tags/v*"]  # globs over full refs; a bare name is a branch
//	pipelines: [sha256:...]       # optional: allowed pipeline digests (as recorded in provenance; accord catalog prints them)
//	sbom: required                # or "optional"
//	layout:                       # optional: in-toto layout and its owner
//	  file: root.layout
//	  ownerKey: keys/owner.pub
type PolicyFile struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Builders   []PolicyBuilder `json:"builders"`
	Threshold  int             `json:"threshold"`
	Sources    []PolicySource  `json:"sources,omitempty"`
	Pipelines  []string        `json:"pipelines,omitempty"`
	SBOM       string          `json:"sbom,omitempty"`
	Layout     *PolicyLayout   `json:"layout,omitempty"`
}

// PolicyBuilder is one trusted builder.
type PolicyBuilder struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

// PolicySource is an allowed repository and its allowed refs: glob
// patterns (path.Match) over full ref names, where a bare name means a
// branch ("main" is refs/heads/main; tags are written refs/tags/v*).
// Empty means any ref.
type PolicySource struct {
	URI  string   `json:"uri"`
	Refs []string `json:"refs,omitempty"`
}

// PolicyLayout names the in-toto layout and its owner's key.
type PolicyLayout struct {
	File     string `json:"file"`
	OwnerKey string `json:"ownerKey"`
}

// PolicyError is a problem in a policy file: the file, the field, the fix.
type PolicyError struct{ File, Field, Msg, Fix string }

func (e *PolicyError) Error() string {
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

// ParsePolicy decodes and checks a policy document. file names it in errors
// and anchors relative key paths; keys are read with readFile.
func ParsePolicy(file string, data []byte, readFile func(string) ([]byte, error)) (*Policy, error) {
	fail := func(field, msg, fix string) error { return &PolicyError{file, field, msg, fix} }
	var pf PolicyFile
	if err := yaml.UnmarshalStrict(data, &pf); err != nil {
		return nil, fail("", "malformed policy: "+strings.TrimPrefix(err.Error(), "error unmarshaling JSON: while decoding JSON: "), "see the format in 'accord verify --help'")
	}
	if pf.APIVersion != "accord.dev/v1alpha1" || pf.Kind != "Policy" {
		return nil, fail("apiVersion", fmt.Sprintf("want apiVersion accord.dev/v1alpha1 and kind Policy, got %q %q", pf.APIVersion, pf.Kind), "start the file with 'apiVersion: accord.dev/v1alpha1' and 'kind: Policy'")
	}
	if len(pf.Builders) == 0 {
		return nil, fail("builders", "no trusted builders", "list at least one builder with its id and public key")
	}
	if pf.Threshold == 0 {
		pf.Threshold = 1
	}
	if pf.Threshold < 1 || pf.Threshold > len(pf.Builders) {
		return nil, fail("threshold", fmt.Sprintf("%d is not between 1 and the %d builders listed", pf.Threshold, len(pf.Builders)), "set threshold to k, the number of distinct trusted builders that must agree")
	}
	rel := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(filepath.Dir(file), p)
	}
	p := &Policy{Threshold: pf.Threshold, Pipelines: pf.Pipelines, File: file, FileSHA256: attest.SHA256Hex(data)}
	for i, b := range pf.Builders {
		field := fmt.Sprintf("builders[%d]", i)
		if b.ID == "" || b.Key == "" {
			return nil, fail(field, "a builder needs an id and a key", "give the builder's identity URI and public key file")
		}
		pem, err := readFile(rel(b.Key))
		if err != nil {
			return nil, fail(field+".key", err.Error(), "give a readable PEM public key file")
		}
		p.Builders = append(p.Builders, Builder{ID: b.ID, Key: pem})
	}
	for i, s := range pf.Sources {
		if s.URI == "" {
			return nil, fail(fmt.Sprintf("sources[%d].uri", i), "empty", "give the repository URI as it appears in provenance")
		}
		for j, r := range s.Refs {
			if _, err := path.Match(r, ""); err != nil || r == "" {
				return nil, fail(fmt.Sprintf("sources[%d].refs[%d]", i, j), fmt.Sprintf("%q is not a ref pattern", r), "write a branch (main), a full ref (refs/tags/v1) or a glob (refs/tags/v*)")
			}
		}
	}
	p.Sources = pf.Sources
	switch pf.SBOM {
	case "", "required":
		p.RequireSBOM = true
	case "optional":
	default:
		return nil, fail("sbom", fmt.Sprintf("%q", pf.SBOM), "use required or optional")
	}
	for i, d := range pf.Pipelines {
		if !strings.HasPrefix(d, "sha256:") || len(d) != 71 {
			return nil, fail(fmt.Sprintf("pipelines[%d]", i), fmt.Sprintf("%q is not a sha256 digest", d), "use the digests 'accord catalog' prints")
		}
	}
	if pf.Layout != nil {
		var err error
		if p.Layout, err = readFile(rel(pf.Layout.File)); err != nil {
			return nil, fail("layout.file", err.Error(), "give the signed layout written by 'accord layout'")
		}
		if p.LayoutOwnerKey, err = readFile(rel(pf.Layout.OwnerKey)); err != nil {
			return nil, fail("layout.ownerKey", err.Error(), "give the catalog owner's public key")
		}
	}
	return p, nil
}

// LoadPolicy reads a policy file.
func LoadPolicy(file string) (*Policy, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, &PolicyError{File: file, Msg: err.Error(), Fix: "give an existing policy file"}
	}
	return ParsePolicy(file, b, os.ReadFile)
}
