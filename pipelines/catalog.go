package pipelines

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)

//go:embed catalog/*.yaml
var embedded embed.FS

// Catalog holds named Tasks and Pipelines. It is safe for concurrent reads.
type Catalog struct {
	tasks       map[string]*Definition
	pipelines   map[string]*Definition
	stepActions map[string]*Definition
}

// Builtin loads the catalog embedded in accord (pipelines/catalog).
func Builtin(ctx context.Context, opts ...Option) (*Catalog, error) {
	sub, err := fs.Sub(embedded, "catalog")
	if err != nil {
		return nil, err
	}
	return FromFS(ctx, sub, "pipelines/catalog", opts...)
}

// FromFS loads every YAML file at the top of fsys. prefix is prepended to
// file names in errors and in [Definition.File].
func FromFS(ctx context.Context, fsys fs.FS, prefix string, opts ...Option) (*Catalog, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("reading catalog %s: %w", prefix, err)
	}
	c := &Catalog{tasks: map[string]*Definition{}, pipelines: map[string]*Definition{}, stepActions: map[string]*Definition{}}
	for _, e := range entries {
		if e.IsDir() || !isYAML(e.Name()) {
			continue
		}
		b, err := readAll(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("reading catalog %s: %w", prefix, err)
		}
		defs, err := Parse(ctx, path.Join(prefix, e.Name()), b, opts...)
		if err != nil {
			return nil, err
		}
		if err := c.add(defs); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Catalog) add(defs []*Definition) error {
	for _, d := range defs {
		m := c.tasks
		switch d.Kind {
		case "Pipeline":
			m = c.pipelines
		case StepActionKind:
			m = c.stepActions
		}
		if prev, ok := m[d.Name]; ok {
			return &Error{File: d.File, Object: fmt.Sprintf("%s %q", d.Kind, d.Name), Msg: "defined twice (also in " + prev.File + ")", Fix: "rename one of them"}
		}
		m[d.Name] = d
	}
	return nil
}

// Task returns the named task.
func (c *Catalog) Task(name string) (*Definition, bool) {
	d, ok := c.tasks[name]
	return d, ok
}

// Pipelines returns the catalog's pipelines sorted by name.
func (c *Catalog) Pipelines() []*Definition { return sorted(c.pipelines) }

// Tasks returns the catalog's tasks sorted by name.
func (c *Catalog) Tasks() []*Definition { return sorted(c.tasks) }

func sorted(m map[string]*Definition) []*Definition {
	out := make([]*Definition, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Resolved is a pipeline with every task it references.
type Resolved struct {
	// Pipeline is the pipeline definition.
	Pipeline *Definition
	// Tasks maps a task name (taskRef.name) to its definition.
	Tasks map[string]*Definition
	// StepActions maps a StepAction name (a step's ref.name) to its
	// definition, for every StepAction the pipeline's tasks reference.
	StepActions map[string]*Definition
	// Digest covers the pipeline, every referenced task and every
	// referenced StepAction: the SHA-256 of the sorted lines
	// "<kind> <name> <digest>".
	Digest string
}

// Resolve finds a pipeline by catalog name, or loads it from a file when ref
// names one (a path with a slash or a .yaml/.yml suffix). Tasks referenced
// by a file's pipeline come from the same file first, then the catalog.
func (c *Catalog) Resolve(ctx context.Context, ref string, opts ...Option) (*Resolved, error) {
	local := &Catalog{tasks: map[string]*Definition{}, pipelines: map[string]*Definition{}, stepActions: map[string]*Definition{}}
	var p *Definition
	if strings.ContainsRune(ref, '/') || isYAML(ref) {
		if _, err := os.Stat(ref); err != nil {
			return nil, &Error{File: ref, Msg: "cannot read pipeline file: " + err.Error(), Fix: "give an existing file, or a catalog pipeline name (accord run --help lists them)"}
		}
		defs, err := ParseFile(ctx, ref, opts...)
		if err != nil {
			return nil, err
		}
		if err := local.add(defs); err != nil {
			return nil, err
		}
		ps := local.Pipelines()
		if len(ps) != 1 {
			return nil, &Error{File: ref, Msg: fmt.Sprintf("holds %d pipelines, want exactly 1", len(ps)), Fix: "put one Pipeline (and any Tasks it uses) in the file"}
		}
		p = ps[0]
	} else {
		var ok bool
		if p, ok = c.pipelines[ref]; !ok {
			return nil, &Error{File: "pipelines/catalog", Object: fmt.Sprintf("Pipeline %q", ref), Msg: "no such pipeline in the catalog", Fix: "use one of: " + strings.Join(names(c.Pipelines()), ", ")}
		}
	}
	r := &Resolved{Pipeline: p, Tasks: map[string]*Definition{}}
	for i, pt := range allPipelineTasks(&p.Pipeline.Spec) {
		if pt.TaskRef == nil {
			continue
		}
		t, ok := local.tasks[pt.TaskRef.Name]
		if !ok {
			t, ok = c.tasks[pt.TaskRef.Name]
		}
		if !ok {
			return nil, &Error{File: p.File, Object: fmt.Sprintf("Pipeline %q", p.Name), Field: taskPath(&p.Pipeline.Spec, i) + ".taskRef.name", Msg: fmt.Sprintf("unknown task %q", pt.TaskRef.Name), Fix: "use a task from the catalog (" + strings.Join(names(c.Tasks()), ", ") + ") or define it in the same file"}
		}
		r.Tasks[pt.TaskRef.Name] = t
	}
	if err := c.resolveStepActions(r, local); err != nil {
		return nil, err
	}
	r.Digest = closureDigest(r)
	return r, nil
}

// TaskSpec returns the task spec a pipeline task runs.
func (r *Resolved) TaskSpec(pt *v1.PipelineTask) (*v1.TaskSpec, *Definition) {
	if pt.TaskSpec != nil {
		return &pt.TaskSpec.TaskSpec, nil
	}
	d := r.Tasks[pt.TaskRef.Name]
	return &d.Task.Spec, d
}

// Definitions returns the pipeline, its tasks and its StepActions, each
// kind sorted by name.
func (r *Resolved) Definitions() []*Definition {
	out := []*Definition{r.Pipeline}
	out = append(out, sorted(r.Tasks)...)
	return append(out, sorted(r.StepActions)...)
}

func closureDigest(r *Resolved) string {
	var lines []string
	for _, d := range r.Definitions() {
		lines = append(lines, fmt.Sprintf("%s %s %s\n", d.Kind, d.Name, d.Digest))
	}
	sort.Strings(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "")))
	return "sha256:" + hex.EncodeToString(h[:])
}

func names(ds []*Definition) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Name
	}
	return out
}
