package local

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/accord-build/accord/internal/beneath"
	"github.com/accord-build/accord/internal/sandbox"
	"github.com/accord-build/accord/pipelines"
)

// volumesDir is where a task's emptyDir volumes are, in its run directory.
const volumesDir = "volumes"

// taskVolumes are a task's emptyDir volumes: each a fresh directory that
// accord made beneath the task's run directory, shared by the task's
// steps (and sidecars) and deleted with the run, as a pod's emptyDir is.
type taskVolumes struct {
	// dir is the task's run directory.
	dir   string
	names map[string]bool
}

// VolumeDir is the host directory of the task's emptyDir volume name,
// and whether the task has that volume. Containers of the task mount it
// through volumeBinds, which checks the subPath beneath it.
func (v *taskVolumes) VolumeDir(name string) (string, bool) {
	if !v.names[name] {
		return "", false
	}
	return filepath.Join(v.dir, volumesDir, name), true
}

// makeVolumes creates the directory of each emptyDir volume of the task
// (names substituted), beneath the task's run directory through no link,
// given to the steps' owner.
func (r *run) makeVolumes(task, dir string, vols []corev1.Volume) (*taskVolumes, error) {
	tv := &taskVolumes{dir: dir, names: map[string]bool{}}
	if err := os.Mkdir(filepath.Join(dir, volumesDir), 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(filepath.Join(dir, volumesDir))
	if err != nil {
		return nil, err
	}
	defer root.Close()
	for _, v := range vols {
		if v.EmptyDir == nil {
			// Refused when the definition was loaded.
			return nil, inputErr("pipeline task %q: volume %q is not an emptyDir\n  fix: use emptyDir volumes", task, v.Name)
		}
		if errs := validation.IsDNS1123Label(v.Name); len(errs) > 0 {
			return nil, inputErr("pipeline task %q: volume name %q is not a DNS label: %s\n  fix: name volumes (and the params that name them) with lower-case letters, digits and '-'", task, v.Name, strings.Join(errs, "; "))
		}
		if err := root.Mkdir(v.Name, 0o755); err != nil {
			return nil, fmt.Errorf("creating volume %q: %w", v.Name, err)
		}
		tv.names[v.Name] = true
		p, _ := tv.VolumeDir(v.Name)
		if err := r.handOver(p); err != nil {
			return nil, err
		}
	}
	return tv, nil
}

// volumeBinds binds each of a container's volume mounts (substituted) to
// its volume's directory, or the subPath in it, which it makes (as
// Kubernetes does) beneath the volume through no link, owned by the
// steps. The bind is rechecked before each step runs (recheckBinds).
func (r *run) volumeBinds(task string, tv *taskVolumes, mounts []corev1.VolumeMount) ([]bind, error) {
	var out []bind
	for _, m := range mounts {
		root, ok := tv.VolumeDir(m.Name)
		switch {
		case !ok:
			return nil, inputErr("pipeline task %q: volumeMount %q names no volume of the task\n  fix: declare it in the task's volumes (`volumes: [{name: %s, emptyDir: {}}]`)", task, m.Name, m.Name)
		case !path.IsAbs(m.MountPath):
			return nil, inputErr("pipeline task %q: volumeMount %q: mountPath %q is not absolute\n  fix: mount the volume at an absolute path", task, m.Name, m.MountPath)
		case m.MountPath == "/tekton" || strings.HasPrefix(path.Clean(m.MountPath), "/tekton/"):
			return nil, inputErr("pipeline task %q: volumeMount %q: mountPath %q is under /tekton, which Tekton reserves\n  fix: mount the volume elsewhere", task, m.Name, m.MountPath)
		}
		if err := pipelines.CheckSubPath(m.SubPath); err != nil {
			return nil, inputErr("pipeline task %q: volumeMount %q: %v\n  fix: give a relative path inside the volume, without '..'", task, m.Name, err)
		}
		rel := path.Join(beneath.Components(m.SubPath)...)
		b := bind{
			Mount: sandbox.Mount{Source: filepath.Join(root, filepath.FromSlash(rel)), Destination: path.Clean(m.MountPath), ReadOnly: m.ReadOnly},
			root:  root, rel: rel, vol: m.Name,
		}
		d, err := r.openBind(task, b, rel, true)
		if err != nil {
			return nil, err
		}
		d.Close()
		out = append(out, b)
	}
	return out, nil
}

// volumeErr explains why a volume's subPath is not a plain directory of
// the volume (a step or sidecar left a link there).
func volumeErr(task string, b bind, err error) error {
	what := fmt.Sprintf("pipeline task %q: volume %q (subPath %q)", task, b.vol, b.rel)
	var le *beneath.LinkError
	var nd *beneath.NotDirError
	switch {
	case errors.As(err, &le):
		return fmt.Errorf("%s: %s in volume %q is a symbolic link that a step left there; accord never follows links in a volume on the host\n  fix: a subPath must name real directories of the volume: make %s a directory, not a link", what, le.Link, b.vol, le.Link)
	case errors.As(err, &nd):
		return fmt.Errorf("%s: %s in volume %q is not a directory\n  fix: a subPath must name directories of the volume", what, nd.Component, b.vol)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// uniqueMountPaths refuses a volume mount at the mount path of a
// workspace (or of another volume mount of the step), as Kubernetes
// refuses a container whose mount paths repeat: one would hide the other.
func uniqueMountPaths(task string, s *v1.Step, binds, vols []bind) error {
	seen := map[string]string{}
	for _, b := range binds {
		seen[b.Destination] = "a workspace"
		if b.ws == "" {
			seen[b.Destination] = "accord's " + b.Destination
		}
	}
	for _, b := range vols {
		if what, ok := seen[b.Destination]; ok {
			return inputErr("pipeline task %q: step %q mounts volume %q at %s, where %s is mounted\n  fix: give each volume mount its own mountPath", task, s.Name, b.vol, b.Destination, what)
		}
		seen[b.Destination] = fmt.Sprintf("volume %q", b.vol)
	}
	return nil
}
