package engine

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/pipelines"
)

// Executor runs a build. It is the whole seam between accord and an
// engine: callers reach what a run left only through the [Result] (its
// tasks' [TaskResult.Workspaces]), never through host paths; see the
// package documentation for what each engine must do.
type Executor interface {
	// Run runs b to completion. A build whose tasks fail returns a Result
	// with Succeeded false and a nil error; err is for builds that could
	// not be run: an [*InputError] for bad input, another error for a
	// missing runtime or a broken engine.
	Run(ctx context.Context, b *Build) (*Result, error)
	// Cleanup releases what the run of b holds (workspaces, results,
	// containers), unless the engine was asked to keep them. Callers call
	// it once, after reading the result's workspaces, whether Run
	// succeeded or not; the Result's Workspaces are invalid afterwards.
	Cleanup(ctx context.Context, b *Build) error
	StepCommands
}

// StepCommands is the part of an engine the in-toto layout needs, known
// before any run: which command line each step's link will record.
type StepCommands interface {
	// ExpectedCommand is the command line the engine runs for step i of
	// the task spec, as the step's in-toto link records it
	// ([StepResult.Command]). The spec is as the catalog wrote it (params
	// not substituted). Nil when the engine cannot tell (the image's
	// entrypoint decides): in-toto then only warns.
	ExpectedCommand(spec *v1.TaskSpec, i int) []string
}

// InputError is a problem with the build's input (params, workspaces,
// images, variation) that an engine found before or while scheduling: the
// caller's to fix, not a failed build. Front ends map it to their usage
// error (the CLI's exit code 2). Every engine returns its bad-input errors
// as (or wrapping) an *InputError.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// InputErrorf formats an [*InputError].
func InputErrorf(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
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
	// ImageDigest is the manifest digest of the image that ran (as
	// Tekton's imageID): Image's digest, or, when Image pins an index,
	// the digest of its image for the host platform.
	ImageDigest string `json:"-"`
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
	// Workspaces maps each workspace's mount path in the task's containers
	// (absolute, slash-separated: "/workspace/output") to the tree mounted
	// there as it is now, after the whole run, so that artifacts the task
	// announced by container path can be read, and proof recorded, without
	// knowing where (on which host or volume) the workspace lives. Valid
	// until [Executor.Cleanup]. See the package documentation for what
	// these file systems must refuse.
	Workspaces map[string]fs.FS `json:"-"`
	// Finally is set for tasks of the pipeline's finally section.
	Finally bool `json:"finally,omitempty"`
	// Matrix is set for a run of a matrixed pipeline task.
	Matrix *MatrixRun `json:"matrix,omitempty"`
	// Sidecars are what the task's sidecars did, in the task's order.
	Sidecars []SidecarResult `json:"sidecars,omitempty"`
}

// SidecarResult is what one sidecar of a task did. A sidecar starts
// before the task's steps and is stopped when they end; one that exits
// earlier does not fail the task (as in Tekton), its exit code says how
// it ended.
type SidecarResult struct {
	Name  string `json:"name"`
	Image string `json:"image"`
	// ExitCode is the sidecar's: its own when it exited by itself, 143 or
	// 137 (128+SIGTERM, 128+SIGKILL) when it was stopped; -1 when it never
	// started.
	ExitCode int `json:"exitCode"`
	// Stopped is set when the sidecar ran until the steps ended and had
	// to be stopped; unset when it exited (or failed to start) before.
	Stopped  bool          `json:"stopped"`
	Reason   string        `json:"reason,omitempty"`
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"seconds"`
	// StdoutSHA256 and StderrSHA256 are digests of the sidecar's output,
	// recorded with [Build.RecordArtifacts].
	StdoutSHA256, StderrSHA256 string `json:"-"`
}

// MountPaths returns the mount paths of the task's workspaces, sorted.
func (t TaskResult) MountPaths() []string {
	out := make([]string, 0, len(t.Workspaces))
	for d := range t.Workspaces {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
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
