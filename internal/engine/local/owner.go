package local

import "github.com/accord-build/accord/internal/sandbox"

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
