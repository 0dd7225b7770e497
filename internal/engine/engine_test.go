package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// TestTaskResultJSON: a task's workspaces are reached through the seam,
// never shown: the JSON of a run (accord run -o json) is what it was.
func TestTaskResultJSON(t *testing.T) {
	tr := TaskResult{Name: "build", Task: "go-build", Status: Succeeded, Seconds: 1.5,
		Steps:      []StepResult{{Name: "build", Image: "img", Status: Succeeded, Command: []string{"/tekton/scripts/script-0"}}},
		Workspaces: map[string]fs.FS{"/workspace/output": fstest.MapFS{}, "/workspace/source": fstest.MapFS{}}}
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"build","task":"go-build","status":"Succeeded","network":false,"seconds":1.5,"steps":[{"name":"build","image":"img","status":"Succeeded","exitCode":0,"seconds":0}]}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/workspace/output", "/workspace/source"}, tr.MountPaths()); diff != "" {
		t.Errorf("MountPaths (-want +got):\n%s", diff)
	}
}

// TestInputError: an engine's bad-input error is found by errors.As
// through any wrapping, with its message unchanged.
func TestInputError(t *testing.T) {
	err := fmt.Errorf("building: %w", InputErrorf("unknown param %q", "x"))
	var ie *InputError
	if !errors.As(err, &ie) || ie.Error() != `unknown param "x"` {
		t.Errorf("errors.As(%v) = %v, %v", err, ie, errors.As(err, &ie))
	}
}
