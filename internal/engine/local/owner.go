package local

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"

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
// so a non-root step can write where a root step could.
func (r *run) handOver(paths ...string) error {
	uid, gid, ok := r.stepOwner()
	if !ok {
		return nil
	}
	for _, p := range paths {
		err := filepath.WalkDir(p, func(q string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(q, uid, gid)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// handOverDirs gives the steps' host id dir and its ancestors below the
// run's directory (directories just created for a subPath or workingDir),
// without descending into them.
func (r *run) handOverDirs(dir string) error {
	uid, gid, ok := r.stepOwner()
	if !ok {
		return nil
	}
	for d := dir; strings.HasPrefix(d, r.dir+string(filepath.Separator)); d = filepath.Dir(d) {
		if err := os.Lchown(d, uid, gid); err != nil {
			return err
		}
	}
	return nil
}
