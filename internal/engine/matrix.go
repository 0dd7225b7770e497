package engine

import (
	"fmt"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)

// MatrixRun says which run of a matrixed pipeline task a [TaskResult] is.
// A pipeline task with a matrix runs once per combination of its matrix
// params (Tekton's v1.Matrix.FanOut order); each run is a TaskResult of
// its own, named by [MatrixRunName].
type MatrixRun struct {
	// PipelineTask is the name of the matrixed pipeline task.
	PipelineTask string `json:"pipelineTask"`
	// Index is the run's place in the fan-out, from 0.
	Index int `json:"index"`
	// Params are the combination the run got (besides the pipeline
	// task's own params), sorted by name as Tekton sorts them.
	Params v1.Params `json:"params"`
}

// MatrixRunName is the name of run i of the n runs of the matrixed
// pipeline task pt: Tekton's TaskRun name without the PipelineRun's
// prefix, "pt-i", and "pt" alone when the matrix gives one combination.
// The loader refuses a pipeline task named like another's run.
func MatrixRunName(pt string, i, n int) string {
	if n == 1 {
		return pt
	}
	return fmt.Sprintf("%s-%d", pt, i)
}
