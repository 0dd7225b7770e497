package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/pod"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/accord-build/accord/internal/beneath"
	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/sandbox"
)

// stepsDir is the task's directory of step metadata, in its run directory
// and at /tekton/steps in its containers (Tekton's pipeline.StepsDir):
// for each step, step-NAME/results (its results, Tekton's
// $(step.results.R.path)) and step-NAME/exitCode
// ($(steps.step-NAME.exitCode.path)). Steps see it read-only, but for
// their own results directory; accord writes the exit codes.
const stepsDir = "steps"

// makeTaskDirs creates the task's emptyDir volumes and its steps'
// directories.
func (r *run) makeTaskDirs(task, dir string, vols []corev1.Volume, steps []v1.Step) (*taskVolumes, error) {
	tv, err := r.makeVolumes(task, dir, vols)
	if err != nil {
		return nil, err
	}
	return tv, r.makeStepDirs(dir, steps)
}

// makeStepDirs creates step-NAME/results for each step, beneath the
// task's steps directory through no link; the results directories are
// given to the steps' owner.
func (r *run) makeStepDirs(dir string, steps []v1.Step) error {
	if err := os.Mkdir(filepath.Join(dir, stepsDir), 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(filepath.Join(dir, stepsDir))
	if err != nil {
		return err
	}
	defer root.Close()
	for i := range steps {
		name := pod.StepName(steps[i].Name, i)
		if err := root.Mkdir(name, 0o755); err != nil {
			return fmt.Errorf("creating the directory of step %q: %w", name, err)
		}
		if err := root.Mkdir(name+"/results", 0o755); err != nil {
			return err
		}
		if err := r.handOver(filepath.Join(dir, stepsDir, name, "results")); err != nil {
			return err
		}
	}
	return nil
}

// stepDirBinds give step i the task's steps directory read-only at
// /tekton/steps, with its own results directory writable.
func stepDirBinds(dir string, i int, s *v1.Step) []bind {
	name := pod.StepName(s.Name, i)
	all := filepath.Join(dir, stepsDir)
	own := filepath.Join(all, name, "results")
	return []bind{
		{Mount: sandbox.Mount{Source: all, Destination: pipeline.StepsDir, ReadOnly: true}, root: all},
		{Mount: sandbox.Mount{Source: own, Destination: path.Join(pipeline.StepsDir, name, "results")}, root: own},
	}
}

// runTaskStep runs step i of a task: its volumes mounted, the results of
// earlier steps it references substituted, its exit code recorded for
// later steps and its own results checked when it succeeded (or may
// fail).
func (r *run) runTaskStep(ctx context.Context, task string, i int, s *v1.Step, dir string, binds []bind, tv *taskVolumes, network bool) (engine.StepResult, error) {
	failed := func(err error) (engine.StepResult, error) {
		name := s.Name
		if name == "" {
			name = fmt.Sprintf("step-%d", i)
		}
		return engine.StepResult{Name: name, Image: s.Image, Status: engine.Failed}, err
	}
	vb, err := r.volumeBinds(task, tv, s.VolumeMounts)
	if err != nil {
		return failed(err)
	}
	if err := uniqueMountPaths(task, s, binds, vb); err != nil {
		return failed(err)
	}
	if err := substituteStepResults(dir, s); err != nil {
		return failed(fmt.Errorf("step %q: %w", s.Name, err))
	}
	if !s.When.AllowsExecution(nil) {
		// As Tekton's entrypoint: skipped, with exit code 0.
		sr, _ := failed(nil)
		sr.Status = engine.Skipped
		return sr, writeExitCode(dir, i, s, 0)
	}
	// No step can write the steps directory (it is read-only in theirs),
	// so this holds until the runtime binds the step's results by name.
	d, err := openStepResults(dir, pod.StepName(s.Name, i))
	if err != nil {
		return failed(fmt.Errorf("step %q: its results directory: %w", s.Name, err))
	}
	d.Close()
	all := append(append(append([]bind{}, binds...), stepDirBinds(dir, i, s)...), vb...)
	sr, err := r.runStep(ctx, task, i, s, dir, all, network)
	if err != nil {
		return sr, err
	}
	if err := writeExitCode(dir, i, s, sr.ExitCode); err != nil {
		return sr, err
	}
	if sr.ExitCode == 0 || s.OnError == v1.Continue {
		if err := checkStepResults(dir, i, s); err != nil {
			return sr, fmt.Errorf("step %q: %w", sr.Name, err)
		}
	}
	return sr, nil
}

// writeExitCode records a step's exit code as Tekton's entrypoint does,
// in the step's directory, which no step can write.
func writeExitCode(dir string, i int, s *v1.Step, code int) error {
	root, err := os.OpenRoot(filepath.Join(dir, stepsDir, pod.StepName(s.Name, i)))
	if err != nil {
		return err
	}
	defer root.Close()
	f, err := root.OpenFile("exitCode", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("recording the exit code of step %q: %w", s.Name, err)
	}
	if _, err := f.WriteString(strconv.Itoa(code)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// openStepResults opens step name's results directory beneath the task's
// steps directory, through no link.
func openStepResults(dir, name string) (*os.File, error) {
	steps, err := os.Open(filepath.Join(dir, stepsDir))
	if err != nil {
		return nil, err
	}
	defer steps.Close()
	return beneath.OpenDir(steps, name+"/results", beneath.DirOptions{})
}

// checkStepResults refuses a declared result of step i that accord will
// not read (a link, a FIFO, too large): see openResult.
func checkStepResults(dir string, i int, s *v1.Step) error {
	if len(s.Results) == 0 {
		return nil
	}
	d, err := openStepResults(dir, pod.StepName(s.Name, i))
	if err != nil {
		return err
	}
	defer d.Close()
	for _, res := range s.Results {
		f, err := openResult(d, res.Name)
		if err != nil {
			return stepResultErr(s.Name, res.Name, err)
		}
		if f != nil {
			f.Close()
		}
	}
	return nil
}

// stepResultErr is resultErr for a step result: the fix names the step
// result's path.
func stepResultErr(step, name string, err error) error {
	msg := strings.ReplaceAll(err.Error(), "$(results."+name+".path)", "$(step.results."+name+".path)")
	return fmt.Errorf("step result %s", strings.TrimPrefix(msg, "result "))
}

// readStepResult reads result name of step stepName (as written in the
// reference: without the "step-" prefix), nil when the step wrote none.
func readStepResult(dir, stepName, name string) ([]byte, error) {
	if errs := validation.IsDNS1123Label(stepName); len(errs) > 0 {
		return nil, fmt.Errorf("%q is not a step name", stepName)
	}
	d, err := openStepResults(dir, pod.StepName(stepName, 0))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("the task has no step %q", stepName)
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	f, err := openResult(d, name)
	if err != nil || f == nil {
		if err != nil {
			err = stepResultErr(stepName, name, err)
		}
		return nil, err
	}
	defer f.Close()
	b, err := readResult(f, name)
	if b == nil && err == nil {
		b = []byte{}
	}
	return b, err
}

// stepResultRef matches a step result reference, as Tekton's does.
var stepResultRef = regexp.MustCompile(`\$\(steps\..*?\.results\..*?\)`)

// substituteStepResults replaces references to the results of earlier
// steps ($(steps.NAME.results.R), R[i], R[*], R.KEY) in the step's env,
// command, args and when expressions, where Tekton's entrypoint replaces
// them (Tekton's validation refuses them elsewhere). A result that is not
// there fails the step rather than leaving the reference in place.
func substituteStepResults(dir string, s *v1.Step) error {
	for i, w := range s.When {
		in, err := replaceStepResults(dir, w.Input, false)
		if err != nil {
			return fmt.Errorf("when[%d].input: %w", i, err)
		}
		s.When[i].Input = in[0]
		if s.When[i].Values, err = replaceAll(dir, w.Values); err != nil {
			return fmt.Errorf("when[%d].values: %w", i, err)
		}
	}
	for i, e := range s.Env {
		v, err := replaceStepResults(dir, e.Value, false)
		if err != nil {
			return fmt.Errorf("env %s: %w", e.Name, err)
		}
		s.Env[i].Value = v[0]
	}
	var err error
	if s.Command, err = replaceAll(dir, s.Command); err != nil {
		return fmt.Errorf("command: %w", err)
	}
	if s.Args, err = replaceAll(dir, s.Args); err != nil {
		return fmt.Errorf("args: %w", err)
	}
	return nil
}

func replaceAll(dir string, in []string) ([]string, error) {
	if len(in) == 0 {
		return in, nil
	}
	out := []string{}
	for _, a := range in {
		v, err := replaceStepResults(dir, a, true)
		if err != nil {
			return nil, err
		}
		out = append(out, v...)
	}
	return out, nil
}

// replaceStepResults substitutes the step result references in s. A whole
// array ([*]) expands to its elements when s is exactly the reference and
// arrays are allowed (command and args).
func replaceStepResults(dir, s string, arrays bool) ([]string, error) {
	refs := stepResultRef.FindAllString(s, -1)
	out := s
	for _, ref := range refs {
		step, result, key, idx, err := parseStepResultRef(ref)
		if err != nil {
			return nil, err
		}
		b, err := readStepResult(dir, step, result)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%s: %w", ref, err)
		case b == nil:
			return nil, fmt.Errorf("%s: step %q wrote no result %q\n  fix: reference results of earlier steps only, and write them to $(step.results.%s.path)", ref, step, result, result)
		}
		// As Tekton's entrypoint reads them, whatever their declared type.
		var v v1.ResultValue
		if err := v.UnmarshalJSON(b); err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		switch {
		case idx == "*":
			if !arrays || s != ref {
				return nil, fmt.Errorf("%s: a whole array result must be a command or args item of its own", ref)
			}
			return v.ArrayVal, nil
		case idx != "":
			n, _ := strconv.Atoi(idx)
			if n >= len(v.ArrayVal) {
				return nil, fmt.Errorf("%s: index %d out of range: the result has %d elements", ref, n, len(v.ArrayVal))
			}
			out = strings.ReplaceAll(out, ref, v.ArrayVal[n])
		case key != "":
			out = strings.ReplaceAll(out, ref, v.ObjectVal[key])
		default:
			out = strings.ReplaceAll(out, ref, v.StringVal)
		}
	}
	return []string{out}, nil
}

var arrayIndex = regexp.MustCompile(`^(.*)\[([0-9]+|\*)\]$`)

// parseStepResultRef splits "$(steps.NAME.results.R[...])" or
// "$(steps.NAME.results.R.KEY)".
func parseStepResultRef(ref string) (step, result, key, idx string, err error) {
	parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(ref, "$("), ")"), ".")
	if (len(parts) != 4 && len(parts) != 5) || parts[0] != "steps" || parts[2] != "results" {
		return "", "", "", "", fmt.Errorf("%s: want $(steps.NAME.results.RESULT), with [INDEX], [*] or .KEY", ref)
	}
	step, result = parts[1], parts[3]
	if len(parts) == 5 {
		key = parts[4]
	} else if m := arrayIndex.FindStringSubmatch(result); m != nil {
		result, idx = m[1], m[2]
	}
	return step, result, key, idx, nil
}

// taskResults reads the task's results: those taken from a step result
// ($(steps.NAME.results.R)) from that step's results, the others from
// /tekton/results (readResults). Sorted by name.
func taskResults(dir string, decls []v1.TaskResult, steps []v1.Step) ([]v1.TaskRunResult, error) {
	var plain []v1.TaskResult
	var out []v1.TaskRunResult
	for _, decl := range decls {
		if decl.Value == nil || decl.Value.StringVal == "" {
			plain = append(plain, decl)
			continue
		}
		stepName, result, err := v1.ExtractStepResultName(decl.Value.StringVal)
		if err != nil {
			return nil, fmt.Errorf("result %q: %w", decl.Name, err)
		}
		b, err := readStepResult(dir, stepName, result)
		if err != nil {
			return nil, fmt.Errorf("result %q from step %q: %w", decl.Name, stepName, err)
		}
		if b == nil {
			continue
		}
		// As Tekton takes a step result for the task's: the text of a
		// string, the JSON of an array or object.
		v := *v1.NewStructuredValues(string(b))
		if t := stepResultType(steps, stepName, result); t == v1.ResultsTypeArray || t == v1.ResultsTypeObject {
			v = v1.ResultValue{}
			if err := json.Unmarshal(b, &v); err != nil {
				return nil, fmt.Errorf("result %q from step %q is not valid JSON: %w", decl.Name, stepName, err)
			}
		}
		out = append(out, v1.TaskRunResult{Name: decl.Name, Type: decl.Type, Value: v})
	}
	rest, err := readResults(filepath.Join(dir, "results"), plain)
	if err != nil {
		return nil, err
	}
	out = append(out, rest...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// stepResultType is the declared type of result of the named step.
func stepResultType(steps []v1.Step, step, result string) v1.ResultsType {
	for _, s := range steps {
		if s.Name != step {
			continue
		}
		for _, r := range s.Results {
			if r.Name == result {
				return r.Type
			}
		}
	}
	return v1.ResultsTypeString
}
