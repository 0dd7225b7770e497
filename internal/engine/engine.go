package engine

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/pipelines"
)

// Executor runs a build.
type Executor interface {
	// Run runs b to completion. A build whose tasks fail returns a Result
	// with Succeeded false and a nil error; err is for builds that could
	// not be run (bad input, missing runtime or image).
	Run(ctx context.Context, b *Build) (*Result, error)
}

// Source is the checked-out source a build starts from.
type Source struct {
	// Dir is the host directory holding the source tree (no .git).
	Dir string
	// URI is the repository URI ("git+<url>" style is left to callers),
	// or empty for a local directory.
	URI string
	// Ref is the branch or tag asked for, if any.
	Ref string
	// Commit is the exact commit (hex), or empty for a local directory.
	Commit string
	// DateEpoch is SOURCE_DATE_EPOCH: the commit time, or what the user
	// gave for a directory.
	DateEpoch int64
}

// SourceWorkspace is the pipeline workspace the engine fills with the
// source tree before the first task runs.
const SourceWorkspace = "source"

// Build is one run of a pipeline on a source.
type Build struct {
	// ID names the run (used in container ids and temp dirs).
	ID string
	// Pipeline is the resolved pipeline and its tasks.
	Pipeline *pipelines.Resolved
	// Params are the pipeline parameters given by the user.
	Params v1.Params
	// Source is the checked-out source.
	Source Source
	// Timeout bounds the whole run. Default 1h.
	Timeout time.Duration
	// Observer receives progress; may be nil.
	Observer Observer
	// RecordArtifacts hashes every step's workspaces before and after it
	// runs (materials and products of its in-toto link).
	RecordArtifacts bool
	// Variation is the builder's environment; the zero value is the
	// default one.
	Variation Variation
}

// Status of a task or step.
type Status string

// Statuses.
const (
	Succeeded Status = "Succeeded"
	Failed    Status = "Failed"
	Skipped   Status = "Skipped"
	TimedOut  Status = "TimedOut"
)

// StepResult is what one step did.
type StepResult struct {
	Name     string        `json:"name"`
	Image    string        `json:"image"`
	Status   Status        `json:"status"`
	ExitCode int           `json:"exitCode"`
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"seconds"`
	// The rest is recorded when [Build.RecordArtifacts] is set, for the
	// step's in-toto link.
	// Command is the command line the step ran.
	Command []string `json:"-"`
	// Materials and Products hash every file of the task's workspaces
	// before and after the step: "<pipeline workspace>/<path>" -> sha256.
	Materials map[string]string `json:"-"`
	Products  map[string]string `json:"-"`
	// StdoutSHA256 and StderrSHA256 are digests of the step's output.
	StdoutSHA256, StderrSHA256 string `json:"-"`
}

// TaskResult is what one pipeline task did.
type TaskResult struct {
	Name     string             `json:"name"`
	Task     string             `json:"task,omitempty"`
	Status   Status             `json:"status"`
	Reason   string             `json:"reason,omitempty"`
	Network  bool               `json:"network"`
	Start    time.Time          `json:"-"`
	Duration time.Duration      `json:"-"`
	Seconds  float64            `json:"seconds"`
	Steps    []StepResult       `json:"steps"`
	Results  []v1.TaskRunResult `json:"results,omitempty"`
	// Mounts maps each workspace's mount path in the task's containers to
	// its host path, so artifact URIs can be found on the host.
	Mounts map[string]string `json:"-"`
	// MountRoots maps each mount path in Mounts to the host directory of
	// the pipeline workspace it binds: a directory no step can replace.
	// Mounts[path] is it or a subPath below it, whose components a step
	// may have replaced with links since; host-side readers open
	// Mounts[path] beneath its root, never by its name. Engines that do
	// not set it leave readers to treat Mounts[path] as its own root.
	MountRoots map[string]string `json:"-"`
	// Finally is set for tasks of the pipeline's finally section.
	Finally bool `json:"finally,omitempty"`
}

// MountPlace is where the task's mount at dest is on the host: rel
// (slash-separated, "." for the root itself) beneath root, a directory no
// step can replace (see MountRoots). Without a root the mount is its own.
func (t TaskResult) MountPlace(dest string) (root, rel string) {
	src := t.Mounts[dest]
	root, ok := t.MountRoots[dest]
	if !ok {
		return src, "."
	}
	rel, err := filepath.Rel(root, src)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return src, "."
	}
	return root, filepath.ToSlash(rel)
}

// Result is the outcome of a build.
type Result struct {
	Succeeded bool                   `json:"succeeded"`
	Reason    string                 `json:"reason,omitempty"`
	Tasks     []TaskResult           `json:"tasks"`
	Results   []v1.PipelineRunResult `json:"results,omitempty"`
	Seconds   float64                `json:"seconds"`
	// Outputs are the artifacts announced by type hints in task results.
	Outputs []Output `json:"-"`
}

// Observer receives progress. Methods are called from several goroutines
// when tasks run concurrently; implementations must be safe for that.
type Observer interface {
	TaskStarted(task string)
	StepStarted(task, step, image string)
	// StepOutput returns writers for a step's stdout and stderr (may be nil).
	StepOutput(task, step string) (stdout, stderr interface{ Write([]byte) (int, error) })
	StepFinished(task string, r StepResult)
	TaskFinished(r TaskResult)
}
