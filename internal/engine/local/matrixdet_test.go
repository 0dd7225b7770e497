package local_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/engine/local"
)

// recorded is what of a run reaches provenance, links, outputs and the
// consensus comparison: everything but timings and host state.
type recorded struct {
	Tasks   []recordedTask
	Results []v1.PipelineRunResult
	Outputs []engine.Output
}

type recordedTask struct {
	Name, Task string
	Status     engine.Status
	Matrix     *engine.MatrixRun
	Results    []v1.TaskRunResult
	Steps      []engine.StepResult
	Files      map[string]string
}

func record(t *testing.T, res *engine.Result) recorded {
	t.Helper()
	out := recorded{Results: res.Results, Outputs: res.Outputs}
	for _, tr := range res.Tasks {
		rt := recordedTask{Name: tr.Name, Task: tr.Task, Status: tr.Status, Matrix: tr.Matrix, Results: tr.Results, Files: map[string]string{}}
		for _, s := range tr.Steps {
			s.Duration, s.Seconds = 0, 0
			rt.Steps = append(rt.Steps, s)
		}
		for _, d := range tr.MountPaths() {
			for p, c := range readTree(t, tr.Workspaces[d]) {
				rt.Files[d+"/"+p] = c
			}
		}
		out.Tasks = append(out.Tasks, rt)
	}
	return out
}

// TestMatrixDeterminism: the same fan-out, recorded for provenance, gives
// the same tasks, results, step links (materials, products, commands,
// output digests) and outputs whether the executor runs one task at a
// time or several, and twice in a row; every in-toto link name is unique.
func TestMatrixDeterminism(t *testing.T) {
	f := newFixture(t)
	var runs []recorded
	for _, parallel := range []int{1, 4, 4, 1} {
		b, _ := f.build(t, crossPipeline, nil)
		b.RecordArtifacts = true
		res := f.run(t, b, local.WithParallel(parallel))
		if !res.Succeeded {
			t.Fatalf("parallel %d: build failed: %s", parallel, res.Reason)
		}
		runs = append(runs, record(t, res))
		seen := map[string]bool{}
		for _, tr := range res.Tasks {
			for _, s := range tr.Steps {
				name := attest.StepName(tr.Name, s.Name)
				if seen[name] {
					t.Errorf("parallel %d: in-toto link name %q twice", parallel, name)
				}
				seen[name] = true
				if s.Products == nil {
					t.Errorf("parallel %d: %s has no products recorded", parallel, name)
				}
			}
		}
		if len(seen) != 6 {
			t.Errorf("parallel %d: %d links, want 6 (5 runs and collect)", parallel, len(seen))
		}
		// With links recorded, the runs write the shared workspace one
		// after the other, in fan-out order.
		for i := 1; i < 5; i++ {
			prev, cur := res.Tasks[i-1], res.Tasks[i]
			if cur.Start.Before(prev.Start.Add(prev.Duration)) {
				t.Errorf("parallel %d: %s started before %s ended", parallel, cur.Name, prev.Name)
			}
		}
	}
	for i := 1; i < len(runs); i++ {
		if diff := cmp.Diff(runs[0], runs[i]); diff != "" {
			t.Errorf("run %d differs from run 0 (-first +this):\n%s", i, diff)
		}
	}
	// A run's step saw the files of the runs before it, and only those.
	build2 := runs[0].Tasks[2].Steps[0]
	if _, ok := build2.Materials["out/arm64-small-no"]; !ok || len(build2.Materials) != 2 {
		t.Errorf("build-2 materials = %v, want the files of build-0 and build-1", build2.Materials)
	}
}

// rendezvousMatrix fans out into three runs that each wait for the files
// of the other two: it succeeds only if all three run at once.
const rendezvousMatrix = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: meet
spec:
  workspaces:
    - name: ws
  tasks:
    - name: meet
      workspaces:
        - {name: ws, workspace: ws}
      matrix:
        params:
          - name: me
            value: [a, b, c]
      taskSpec:
        params: [{name: me}]
        workspaces: [{name: ws}]
        steps:
          - image: {{IMAGE}}
            script: |
              touch $(workspaces.ws.path)/$(params.me)
              i=0
              until [ -e $(workspaces.ws.path)/a ] && [ -e $(workspaces.ws.path)/b ] && [ -e $(workspaces.ws.path)/c ]; do
                i=$((i + 1))
                [ $i -le 40 ] || exit 1
                sleep 0.2
              done
`

// TestMatrixParallel: without links to record, the runs of a fan-out run
// at once, as Tekton runs the TaskRuns it creates, but never more than the
// executor's parallel limit.
func TestMatrixParallel(t *testing.T) {
	f := newFixture(t)
	t.Run("parallel=3", func(t *testing.T) {
		b, _ := f.build(t, rendezvousMatrix, nil)
		res := f.run(t, b, local.WithParallel(3))
		if !res.Succeeded {
			t.Fatalf("the three runs did not meet: %s", res.Reason)
		}
	})
	t.Run("parallel=2", func(t *testing.T) {
		b, _ := f.build(t, rendezvousMatrix, nil)
		res := f.run(t, b, local.WithParallel(2))
		if res.Succeeded {
			t.Fatal("three runs met with two slots")
		}
	})
}
