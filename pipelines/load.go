package pipelines

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"
)

// Definition is one Tekton object from a YAML document, converted to v1,
// defaulted and validated.
type Definition struct {
	// Kind is "Task", "Pipeline" or "StepAction".
	Kind string
	// Name is metadata.name.
	Name string
	// File is where the definition came from (catalog-relative for the
	// embedded catalog, as given otherwise).
	File string
	// Digest is the canonical digest of the definition ("sha256:<hex>"):
	// the SHA-256 of the JSON encoding of its kind, name, labels,
	// annotations and defaulted v1 spec (see canonicalDigest). It does not
	// depend on YAML formatting, comments or field order, nor on whether
	// the file was written as v1beta1 or v1.
	Digest string
	// Task is set when Kind is "Task".
	Task *v1.Task
	// Pipeline is set when Kind is "Pipeline".
	Pipeline *v1.Pipeline
	// StepAction is set when Kind is "StepAction" (tekton.dev/v1beta1;
	// v1alpha1 converted).
	StepAction *v1beta1.StepAction
}

// Error is a problem with a definition: the file, the object and the field
// (a Tekton field path), with a hint on how to fix it.
type Error struct {
	File   string
	Object string
	Field  string
	Msg    string
	Fix    string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Object != "" {
		fmt.Fprintf(&b, ": %s", e.Object)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": field %s", e.Field)
	}
	fmt.Fprintf(&b, ": %s", e.Msg)
	if e.Fix != "" {
		fmt.Fprintf(&b, "\n  fix: %s", e.Fix)
	}
	return b.String()
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

// ParseFile reads every YAML document in file and returns its definitions.
func ParseFile(ctx context.Context, file string, opts ...Option) ([]*Definition, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading pipeline definition: %w", err)
	}
	return Parse(ctx, file, b, opts...)
}

// Parse decodes, converts, defaults and validates every Tekton Task and
// Pipeline in the multi-document YAML data. file is used in errors only.
func Parse(ctx context.Context, file string, data []byte, opts ...Option) ([]*Definition, error) {
	o := makeOptions(opts)
	var defs []*Definition
	for i, doc := range splitDocuments(data) {
		if isEmptyDocument(doc) {
			continue
		}
		d, err := parseDocument(ctx, file, i, doc, o)
		if err != nil {
			return nil, err
		}
		defs = append(defs, d)
	}
	if len(defs) == 0 {
		return nil, &Error{File: file, Msg: "no Tekton Task or Pipeline found", Fix: "the file must hold at least one document with apiVersion tekton.dev/v1 (or v1beta1) and kind Task or Pipeline"}
	}
	return defs, nil
}

// isEmptyDocument reports whether doc holds no object: only whitespace and
// comments (a license header before "---", say), or an explicit null.
func isEmptyDocument(doc []byte) bool {
	if len(bytes.TrimSpace(doc)) == 0 {
		return true
	}
	j, err := yaml.YAMLToJSON(doc)
	return err == nil && bytes.Equal(bytes.TrimSpace(j), []byte("null"))
}

// splitDocuments splits YAML on lines that are exactly "---".
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if t := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(t, []byte("---")) {
			docs = append(docs, cur)
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	return append(docs, cur)
}

func parseDocument(ctx context.Context, file string, index int, doc []byte, o *options) (*Definition, error) {
	var tm typeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, &Error{File: file, Object: fmt.Sprintf("document %d", index+1), Msg: "malformed YAML: " + err.Error(), Fix: "check indentation and quoting near the line given"}
	}
	obj := fmt.Sprintf("%s %q", tm.Kind, tm.Metadata.Name)
	fail := func(field, msg, fix string) error {
		return &Error{File: file, Object: obj, Field: field, Msg: msg, Fix: fix}
	}
	if tm.Metadata.Name == "" {
		return nil, fail("metadata.name", "missing", "give the object a name")
	}
	if tm.Kind == StepActionKind {
		return parseStepAction(ctx, file, tm.APIVersion, doc, &Definition{Kind: tm.Kind, Name: tm.Metadata.Name, File: file}, o)
	}
	if tm.APIVersion != "tekton.dev/v1" && tm.APIVersion != "tekton.dev/v1beta1" {
		return nil, fail("apiVersion", fmt.Sprintf("unsupported apiVersion %q", tm.APIVersion), "use tekton.dev/v1 or tekton.dev/v1beta1")
	}
	d := &Definition{Kind: tm.Kind, Name: tm.Metadata.Name, File: file}
	ctx = tektonContext(ctx)
	var err error
	switch tm.Kind {
	case "Task":
		d.Task, err = decodeTask(ctx, tm.APIVersion, doc)
	case "Pipeline":
		d.Pipeline, err = decodePipeline(ctx, tm.APIVersion, doc)
	default:
		return nil, fail("kind", fmt.Sprintf("unsupported kind %q", tm.Kind), "accord runs Tekton Task and Pipeline definitions (and the StepActions their steps reference)")
	}
	if err != nil {
		return nil, decodeError(file, obj, doc, err)
	}
	if err := checkCEL(d); err != nil {
		return nil, validationError(file, obj, err)
	}
	if err := defaultAndValidate(ctx, d); err != nil {
		return nil, validationError(file, obj, err)
	}
	if err := checkSupported(d); err != nil {
		return nil, validationError(file, obj, err)
	}
	if err := checkPinned(d, o.allowUnpinned); err != nil {
		return nil, validationError(file, obj, err)
	}
	d.Digest, err = canonicalDigest(d)
	if err != nil {
		return nil, err
	}
	return d, nil
}

var unknownField = regexp.MustCompile(`unknown field "([^"]+)"`)

// decodeError explains a strict decoding failure, with the line of an
// unknown field when it can be found.
func decodeError(file, obj string, doc []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "error unmarshaling JSON: while decoding JSON: ")
	msg = strings.TrimPrefix(msg, "json: ")
	e := &Error{File: file, Object: obj, Msg: msg, Fix: "check the field's name and type against the Tekton v1 API reference"}
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		key := m[1]
		if i := strings.LastIndex(key, "."); i >= 0 {
			key = key[i+1:]
		}
		line := regexp.MustCompile(`^[\s-]*` + regexp.QuoteMeta(key) + `\s*:`)
		for i, l := range strings.Split(string(doc), "\n") {
			if line.MatchString(l) {
				e.Field = fmt.Sprintf("%s (line %d of the document)", m[1], i+1)
				break
			}
		}
		e.Fix = "remove or rename the field; Tekton v1 has no field of that name there"
	}
	return e
}

func decodeTask(ctx context.Context, apiVersion string, doc []byte) (*v1.Task, error) {
	if apiVersion == "tekton.dev/v1" {
		t := &v1.Task{}
		return t, yaml.UnmarshalStrict(doc, t)
	}
	old := &v1beta1.Task{}
	if err := yaml.UnmarshalStrict(doc, old); err != nil {
		return nil, err
	}
	old.SetDefaults(ctx)
	t := &v1.Task{}
	if err := old.ConvertTo(ctx, t); err != nil {
		return nil, fmt.Errorf("converting v1beta1 to v1: %w", err)
	}
	return t, nil
}

func decodePipeline(ctx context.Context, apiVersion string, doc []byte) (*v1.Pipeline, error) {
	if apiVersion == "tekton.dev/v1" {
		p := &v1.Pipeline{}
		return p, yaml.UnmarshalStrict(doc, p)
	}
	old := &v1beta1.Pipeline{}
	if err := yaml.UnmarshalStrict(doc, old); err != nil {
		return nil, err
	}
	old.SetDefaults(ctx)
	p := &v1.Pipeline{}
	if err := old.ConvertTo(ctx, p); err != nil {
		return nil, fmt.Errorf("converting v1beta1 to v1: %w", err)
	}
	return p, nil
}

func defaultAndValidate(ctx context.Context, d *Definition) error {
	if d.Task != nil {
		d.Task.SetDefaults(ctx)
		if fe := d.Task.Validate(ctx); fe != nil {
			return fe
		}
		return nil
	}
	d.Pipeline.SetDefaults(ctx)
	if fe := d.Pipeline.Validate(ctx); fe != nil {
		return fe
	}
	return nil
}

// validationError turns a Tekton *apis.FieldError (possibly several) or one
// of ours into an *Error naming the field paths.
func validationError(file, obj string, err error) error {
	var fe *apis.FieldError
	if errors.As(err, &fe) {
		var fields []string
		for _, e := range fe.WrappedErrors() {
			fields = append(fields, e.Paths...)
		}
		sort.Strings(fields)
		return &Error{File: file, Object: obj, Field: strings.Join(fields, ", "), Msg: strings.ReplaceAll(fe.Error(), "\n", "; "), Fix: "see the Tekton v1 API reference for the field"}
	}
	var pe *Error
	if errors.As(err, &pe) {
		pe.File, pe.Object = file, obj
		return pe
	}
	return &Error{File: file, Object: obj, Msg: err.Error()}
}

// canonicalDigest hashes the JSON of the kind, name, labels, annotations
// and spec. encoding/json writes struct fields in declaration order and map
// keys sorted, so the result is independent of the YAML's formatting.
//
// Everything accord reads from a definition is in it: the spec (steps with
// their image, script, env, securityContext, timeout, ...; a Pipeline's
// inline taskSpecs with their metadata) and the metadata that can change
// what runs: annotations (accord.dev/network gives a Task the host
// network) and labels. Labels and annotations are left out of the JSON when
// empty, so a definition without them keeps the digest it always had.
// Metadata accord does not read (namespace, uid, generation, ...) and the
// annotations in [ignoredAnnotations] are not digested. docs/buildtype.md
// states this; a change here changes recorded pipeline digests.
func canonicalDigest(d *Definition) (string, error) {
	var spec any
	var meta metav1.ObjectMeta
	apiVersion := "tekton.dev/v1"
	switch {
	case d.StepAction != nil:
		spec, meta, apiVersion = d.StepAction.Spec, d.StepAction.ObjectMeta, "tekton.dev/v1beta1"
	case d.Task != nil:
		spec, meta = d.Task.Spec, d.Task.ObjectMeta
	default:
		spec, meta = d.Pipeline.Spec, d.Pipeline.ObjectMeta
	}
	annotations := map[string]string{}
	for k, v := range meta.Annotations {
		if !ignoredAnnotations[k] {
			annotations[k] = v
		}
	}
	b, err := json.Marshal(struct {
		APIVersion  string            `json:"apiVersion"`
		Kind        string            `json:"kind"`
		Name        string            `json:"name"`
		Labels      map[string]string `json:"labels,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
		Spec        any               `json:"spec"`
	}{apiVersion, d.Kind, d.Name, meta.Labels, annotations, spec})
	if err != nil {
		return "", fmt.Errorf("encoding %s %s for its digest: %w", d.Kind, d.Name, err)
	}
	return digestOf(b), nil
}

// ignoredAnnotations are written by tools, not by the definition's author,
// and change nothing accord does: kubectl's copy of the applied object.
var ignoredAnnotations = map[string]bool{
	"kubectl.kubernetes.io/last-applied-configuration": true,
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// readAll reads a file from fsys.
func readAll(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// isYAML reports whether name looks like a YAML file.
func isYAML(name string) bool {
	ext := filepath.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}
