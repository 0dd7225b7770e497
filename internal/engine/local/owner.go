package local

import (
	"fmt"
	"path/filepath"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

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
		return uid, gid, nil
	}
	if r.e.runner.Rootless() {
		return 0, 0, inputErr("pipeline task %q: step %q runs as uid %d, gid %d (%s): a rootless runner owns a single host id and runs steps as root only\n  fix: run accord as root, or set the step's securityContext.runAsUser: 0", task, s.Name, uid, gid, identitySource(s, img.config.Config.User))
	}
	want := [2]int{hostID(uid), hostID(gid)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.taskOwners == nil {
		r.taskOwners = map[string][2]int{}
	}
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
	r.taskOwners[task] = want
	return uid, gid, nil
}

// hostID is the host id a step's id maps to under a root runner.
func hostID(id uint32) int {
	if id == 0 {
		return 0
	}
	return int(sandbox.StepHostID(id))
}

func identitySource(s *v1.Step, imageUser string) string {
	if sc := s.SecurityContext; sc != nil && (sc.RunAsUser != nil || sc.RunAsGroup != nil) {
		return "its securityContext"
	}
	if imageUser != "" {
		return fmt.Sprintf("the image's User %q", imageUser)
	}
	return "the build's uid/gid variation"
}
