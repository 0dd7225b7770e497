package local

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/sandbox"
)

// stepUser is who a step runs as, as in a pod: the step's
// securityContext runAsUser and runAsGroup, over the image's User ("uid",
// "uid:gid", "name", "name:group", names looked up in the image's
// /etc/passwd and /etc/group), over the build's uid/gid variation, over
// root. An explicit user (the step's or the image's) wins over the
// variation: the task asked for it, and a variation must not change what a
// task can do. runAsNonRoot refuses a step that would run as uid 0.
func stepUser(s *v1.Step, imageUser, rootfs string, v engine.Variation) (uid, gid uint32, err error) {
	return containerUser(subject{"step", s.Name, s.SecurityContext}, imageUser, rootfs, v)
}

// subject is a step or a sidecar (kind), for who it runs as.
type subject struct {
	kind, name string
	sc         *corev1.SecurityContext
}

func (c subject) String() string { return fmt.Sprintf("%s %q", c.kind, c.name) }

// containerUser is who a step or a sidecar runs as; see [stepUser].
func containerUser(c subject, imageUser, rootfs string, v engine.Variation) (uid, gid uint32, err error) {
	uid, gid = uint32(v.UID), uint32(v.GID)
	if imageUser != "" {
		if uid, gid, err = lookupUser(rootfs, imageUser); err != nil {
			return 0, 0, inputErr("%s: the image's User %q: %v\n  fix: give the %s securityContext.runAsUser (and runAsGroup) as numbers, or fix the image's /etc/passwd and /etc/group", c, imageUser, err, c.kind)
		}
	}
	sc := c.sc
	if sc != nil && sc.RunAsUser != nil {
		if *sc.RunAsUser < 0 || *sc.RunAsUser > maxStepID {
			return 0, 0, inputErr("%s: securityContext.runAsUser %d: accord runs %ss as uids 0 to %d\n  fix: choose a uid in that range", c, *sc.RunAsUser, c.kind, maxStepID)
		}
		// As containerd does: the group /etc/passwd gives the uid, else 0.
		uid = uint32(*sc.RunAsUser)
		gid = primaryGroup(rootfs, uid)
	}
	if sc != nil && sc.RunAsGroup != nil {
		if *sc.RunAsGroup < 0 || *sc.RunAsGroup > maxStepID {
			return 0, 0, inputErr("%s: securityContext.runAsGroup %d: accord runs %ss as gids 0 to %d\n  fix: choose a gid in that range", c, *sc.RunAsGroup, c.kind, maxStepID)
		}
		gid = uint32(*sc.RunAsGroup)
	}
	if sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot && uid == 0 {
		return 0, 0, inputErr("%s: securityContext.runAsNonRoot is true but the %s would run as uid 0 (%s)\n  fix: set securityContext.runAsUser to a non-zero uid, or use an image whose User is not root", c, c.kind, userSource(sc.RunAsUser != nil, imageUser))
	}
	if uid > maxStepID || gid > maxStepID {
		return 0, 0, inputErr("%s runs as uid %d, gid %d: accord runs %ss as ids 0 to %d\n  fix: choose a smaller runAsUser/runAsGroup (or image User)", c, uid, gid, c.kind, maxStepID)
	}
	return uid, gid, nil
}

// maxStepID is the largest uid or gid a step may run as (nobody, 65534):
// the ids the sandbox maps.
const maxStepID = sandbox.MaxStepID

func userSource(fromStep bool, imageUser string) string {
	switch {
	case fromStep:
		return "its securityContext.runAsUser"
	case imageUser != "":
		return fmt.Sprintf("the image's User %q", imageUser)
	}
	return "the image sets no User"
}

// lookupUser resolves an image config's User. Names are looked up in the
// image's /etc/passwd and /etc/group, read beneath the rootfs: no link
// leads out of it. A numeric uid without a group takes the primary group
// /etc/passwd gives it, else 0, as container runtimes do.
func lookupUser(rootfs, spec string) (uid, gid uint32, err error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	if uid, err = parseID(u); err == nil {
		gid = primaryGroup(rootfs, uid)
	} else {
		e, err := lookupDB(rootfs, "etc/passwd", u)
		if err != nil {
			return 0, 0, err
		}
		if uid, err = parseID(field(e, 2)); err != nil {
			return 0, 0, fmt.Errorf("/etc/passwd entry of %q has uid %q", u, field(e, 2))
		}
		gid, _ = parseID(field(e, 3))
	}
	if !hasGroup {
		return uid, gid, nil
	}
	if gid, err = parseID(g); err == nil {
		return uid, gid, nil
	}
	e, err := lookupDB(rootfs, "etc/group", g)
	if err != nil {
		return 0, 0, err
	}
	if gid, err = parseID(field(e, 2)); err != nil {
		return 0, 0, fmt.Errorf("/etc/group entry of %q has gid %q", g, field(e, 2))
	}
	return uid, gid, nil
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

func field(fields []string, i int) string {
	if i < len(fields) {
		return fields[i]
	}
	return ""
}

// primaryGroup is the gid /etc/passwd gives uid, or 0.
func primaryGroup(rootfs string, uid uint32) uint32 {
	lines, err := readDB(rootfs, "etc/passwd")
	if err != nil {
		return 0
	}
	for _, f := range lines {
		if id, err := parseID(field(f, 2)); err == nil && id == uid {
			g, _ := parseID(field(f, 3))
			return g
		}
	}
	return 0
}

// lookupDB finds name's entry in the colon-separated file db (etc/passwd,
// etc/group) of the image.
func lookupDB(rootfs, db, name string) ([]string, error) {
	lines, err := readDB(rootfs, db)
	if err != nil {
		return nil, err
	}
	for _, f := range lines {
		if f[0] == name {
			return f, nil
		}
	}
	return nil, fmt.Errorf("no entry %q in the image's /%s", name, db)
}

// readDB reads and splits a passwd-style file of the image (at most 4 MiB).
func readDB(rootfs, db string) ([][]string, error) {
	f, err := openInImage(rootfs, db)
	if err != nil {
		return nil, fmt.Errorf("reading the image's /%s: %w", db, err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(io.LimitReader(f, 4<<20))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out, sc.Err()
}

// openInImage opens the regular file p of the image at rootfs as the
// container would see it: links are resolved with rootfs as "/" (an
// absolute link names a path of the image), through an os.Root, so no link
// leads out of rootfs.
func openInImage(rootfs, p string) (*os.File, error) {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	for hops := 0; hops < 40; hops++ {
		st, err := root.Lstat(p)
		if err != nil {
			return nil, err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			if !st.Mode().IsRegular() {
				return nil, fmt.Errorf("/%s is not a regular file", p)
			}
			return root.Open(p)
		}
		target, err := root.Readlink(p)
		if err != nil {
			return nil, err
		}
		if !path.IsAbs(target) {
			target = path.Join("/", path.Dir(p), target)
		}
		p = strings.TrimPrefix(path.Clean(target), "/")
		if p == "" {
			return nil, errors.New("a link names /")
		}
	}
	return nil, errors.New("too many levels of links")
}
