package local

import (
	"fmt"
	"path/filepath"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/accord-build/accord/internal/sandbox"
)

// stepOwner is the host uid and gid the build's steps write as, when they
// run as a non-root id under a root runner (a uid/gid variation); ok is
// false otherwise (steps write as the runner).
func (r *run) stepOwner() (uid, gid int, ok bool) {
	v := r.b.Variation
	if v.UID == 0 || r.e.runner.Rootless() {
		return 0, 0, false
	}
	return int(sandbox.StepHostID(uint32(v.UID))), int(sandbox.StepHostID(uint32(v.GID))), true
}

// handOver gives the steps' host id the trees at paths (recursively),
// so a non-root step can write where a root step could. Links in them are
// not followed.
func (r *run) handOver(paths ...string) error {
	uid, gid, ok := r.stepOwner()
	if !ok {
		return nil
	}
	for _, p := range paths {
		if err := chownTree(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// stepIdentity is the uid and gid step s runs as ([stepUser]). Under a
// root runner, a step whose user is not the build's gets the task's own
// directories (home, results) before it runs, so it can write them as the
// build's steps can; a rootless runner owns a single host id and refuses a
// non-root step.
func (r *run) stepIdentity(task string, s *v1.Step, img *stepImage, dir string) (uint32, uint32, error) {
	uid, gid, err := stepUser(s, img.config.Config.User, img.rootfs, r.b.Variation)
	if err != nil {
		return 0, 0, err
	}
	if uid == 0 {
		r.mu.Lock()
		if cur, ok := r.taskOwners[task]; ok && cur != [2]int{0, 0} || !ok && r.owner() != nil {
			r.setOwner(&r.taskOwners, task, unknownOwner)
		}
		r.mu.Unlock()
		return uid, gid, nil
	}
	if r.e.runner.Rootless() {
		return 0, 0, inputErr("pipeline task %q: step %q runs as uid %d, gid %d (%s): a rootless runner owns a single host id and runs steps as root only\n  fix: run accord as root, or set the step's securityContext.runAsUser: 0", task, s.Name, uid, gid, identitySource(s.SecurityContext, img.config.Config.User))
	}
	want := [2]int{hostID(uid), hostID(gid)}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, ok := r.taskOwners[task]
	if !ok {
		cur[0], cur[1], _ = r.stepOwner()
	}
	if cur == want {
		return uid, gid, nil
	}
	for _, sub := range []string{"home", "results"} {
		if err := chownTree(filepath.Join(dir, sub), want[0], want[1]); err != nil {
			return 0, 0, fmt.Errorf("handing the task's %s to step %q: %w", sub, s.Name, err)
		}
	}
	r.setOwner(&r.taskOwners, task, want)
	return uid, gid, nil
}

// sidecarIdentity is the uid and gid sidecar spec runs as: as a step
// would ([containerUser]: its securityContext, over its image's User,
// over the build's uid/gid variation). Under a root runner its home is
// handed to that id; a rootless runner owns a single host id and refuses
// a non-root sidecar.
func (r *run) sidecarIdentity(task string, spec *v1.Sidecar, img *stepImage, home string) (uint32, uint32, error) {
	c := subject{"sidecar", spec.Name, spec.SecurityContext}
	uid, gid, err := containerUser(c, img.config.Config.User, img.rootfs, r.b.Variation)
	if err != nil {
		return 0, 0, err
	}
	if r.e.runner.Rootless() {
		if uid != 0 || gid != 0 {
			return 0, 0, inputErr("pipeline task %q: %s runs as uid %d, gid %d (%s): a rootless runner owns a single host id and runs sidecars as root only\n  fix: run accord as root, or set the sidecar's securityContext.runAsUser: 0 and runAsGroup: 0", task, c, uid, gid, identitySource(spec.SecurityContext, img.config.Config.User))
		}
		return 0, 0, nil
	}
	if err := chownTree(home, hostID(uid), hostID(gid)); err != nil {
		return 0, 0, fmt.Errorf("handing its home to %s: %w", c, err)
	}
	return uid, gid, nil
}

// unknownOwner marks a tree a root step wrote: the next non-root step is
// handed it again.
var unknownOwner = [2]int{-1, -1}

// setOwner records who owns key's tree; r.mu held.
func (r *run) setOwner(m *map[string][2]int, key string, o [2]int) {
	if *m == nil {
		*m = map[string][2]int{}
	}
	(*m)[key] = o
}

// hostID is the host id a step's id maps to under a root runner.
func hostID(id uint32) int {
	if id == 0 {
		return 0
	}
	return int(sandbox.StepHostID(id))
}

// identitySource says where a container's ids came from, for an error.
func identitySource(sc *corev1.SecurityContext, imageUser string) string {
	if sc != nil && (sc.RunAsUser != nil || sc.RunAsGroup != nil) {
		return "its securityContext"
	}
	if imageUser != "" {
		return fmt.Sprintf("the image's User %q", imageUser)
	}
	return "the build's uid/gid variation"
}

// handWorkspaces gives a step whose own user is not the one that owns
// them the pipeline workspaces it writes (chowned through descriptors, no
// link followed), so a task naming its user (git-clone's 65532, say) can
// write its workspaces as it could a pod's volume with fsGroup. The binds
// it marks (chown) are locked exclusively by lockWorkspaces: no other step
// writes the workspace meanwhile. It returns the binds to run with.
func (r *run) handWorkspaces(uid, gid uint32, binds []bind) ([]bind, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if uid == 0 {
		// Root writes what it likes; after it, a non-root step is handed
		// the workspace again (root's new files are not its).
		for _, b := range binds {
			if b.ws != "" && !b.ReadOnly && r.wsOwner(b.ws) != [2]int{0, 0} {
				r.setOwner(&r.wsOwners, b.ws, unknownOwner)
			}
		}
		return binds, nil
	}
	want := [2]int{hostID(uid), hostID(gid)}
	out := append([]bind(nil), binds...)
	var change []string
	for i, b := range out {
		if b.ws == "" || b.ReadOnly {
			continue
		}
		if r.wsOwner(b.ws) != want {
			out[i].chown = true
			change = append(change, b.ws)
		}
	}
	return out, change
}

// wsOwner is the host uid/gid pipeline workspace ws belongs to; r.mu held.
func (r *run) wsOwner(ws string) [2]int {
	if o, ok := r.wsOwners[ws]; ok {
		return o
	}
	uid, gid, _ := r.stepOwner()
	return [2]int{uid, gid}
}

// chownWorkspaces hands each workspace in change to the step's host ids;
// the caller holds their locks exclusively.
func (r *run) chownWorkspaces(uid, gid uint32, change []string) error {
	want := [2]int{hostID(uid), hostID(gid)}
	for _, ws := range change {
		if err := chownTree(r.workspaces[ws], want[0], want[1]); err != nil {
			return fmt.Errorf("handing workspace %q to uid %d: %w", ws, uid, err)
		}
		r.mu.Lock()
		r.setOwner(&r.wsOwners, ws, want)
		r.mu.Unlock()
	}
	return nil
}
