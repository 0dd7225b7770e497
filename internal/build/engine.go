package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/engine/local"
	"github.com/accord-build/accord/internal/pull"
	"github.com/accord-build/accord/internal/sandbox"
	"github.com/accord-build/accord/internal/store"
)

// Engine gives a builder the executor its builds run on: the embedded
// local engine ([Local]) or, for a cluster, another implementation of
// engine.Executor.
type Engine interface {
	// Executor is the executor for b's builds; its Info goes into the
	// report and the provenance's internal parameters.
	Executor(ctx context.Context, b Builder) (engine.Executor, EngineInfo, error)
}

// EngineInfo is what a report and the provenance say about the engine.
type EngineInfo struct {
	// Runtime is the OCI runtime (local engine) or the engine's name.
	Runtime string
	// Rootless says steps run in a user namespace without root.
	Rootless bool
}

// Local is the embedded engine: each step an OCI container run by the
// builder's runtime (runc, crun) on this machine.
type Local struct {
	// Store holds the step images.
	Store store.Store
	// WorkDir keeps the runs' temporary state; default a directory
	// under $TMPDIR.
	WorkDir string
	// Parallel is how many tasks run at once; default the CPU count.
	Parallel int
	// Keep keeps workspaces, bundles and step logs after a run.
	Keep bool
	// StepMemory is the memory limit in bytes of steps that set none;
	// 0 is the default, 4 GiB; below 0 none.
	StepMemory int64
	// Pull fetches step images that Store lacks from their registries
	// (or mirrors) into Store before the first step; nil: Store only.
	Pull *pull.Puller
}

// workDir is where runs keep their state, created if need be.
func (l *Local) workDir() (string, error) {
	work := l.WorkDir
	if work == "" {
		work = filepath.Join(os.TempDir(), fmt.Sprintf("accord-%d", os.Getuid()))
	}
	return work, os.MkdirAll(work, 0o700)
}

// Executor makes a local executor with b's runtime.
func (l *Local) Executor(_ context.Context, b Builder) (engine.Executor, EngineInfo, error) {
	rt, err := sandbox.ParseRuntime(orDefault(b.Runtime, string(sandbox.Runc)))
	if err != nil {
		return nil, EngineInfo{}, inputErr(err)
	}
	work, err := l.workDir()
	if err != nil {
		return nil, EngineInfo{}, err
	}
	runner, err := sandbox.NewRunner(rt, work, sandbox.WithKeep(l.Keep))
	if err != nil {
		return nil, EngineInfo{}, inputErr(err)
	}
	rootfs, err := sandbox.NewRootFSCache(sandbox.DefaultCacheDir())
	if err != nil {
		return nil, EngineInfo{}, err
	}
	memory := l.StepMemory
	if memory == 0 {
		memory = 4 << 30
	}
	var images local.Images = l.Store
	if l.Pull != nil {
		images = pull.NewImages(l.Store, l.Pull)
	}
	exec := local.New(images, runner, rootfs, work, local.WithParallel(l.Parallel), local.WithKeep(l.Keep), local.WithStepMemory(memory))
	return exec, EngineInfo{Runtime: string(runner.Runtime()), Rootless: runner.Rootless()}, nil
}
