package sandbox_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/accord-build/accord/internal/sandbox"
	"github.com/accord-build/accord/internal/testutil"
	"github.com/accord-build/accord/internal/testutil/rttest"
)

// runtimes and runcLike: the runtimes steps run under here (rttest).
var (
	runtimes = rttest.Runtimes
	runcLike = rttest.RuncLike
)

// forEachRunclike is forEachRuntime over runcLike().
func forEachRunclike(t *testing.T, f func(t *testing.T, r *sandbox.Runner, work, rootfs string)) {
	rootfs := baseRootFS(t)
	for _, rt := range runcLike() {
		t.Run(string(rt), func(t *testing.T) {
			r, work := newRunner(t, rt)
			f(t, r, work, rootfs)
		})
	}
}

var idSeq atomic.Int64

// newID returns a container id unique in this test binary.
func newID() string { return fmt.Sprintf("sbx-%d-%d", os.Getpid(), idSeq.Add(1)) }

// baseRootFS unpacks the busybox base image into a cache in t's temporary
// directory and returns the rootfs.
func baseRootFS(t *testing.T) string {
	t.Helper()
	cache, err := sandbox.NewRootFSCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir, err := cache.Get(context.Background(), testutil.BaseImage(t))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// newRunner returns a runner with its work directory.
func newRunner(t *testing.T, rt sandbox.Runtime, opts ...sandbox.Option) (*sandbox.Runner, string) {
	t.Helper()
	testutil.RequireBinary(t, string(rt))
	work := t.TempDir()
	r, err := sandbox.NewRunner(rt, work, opts...)
	if err != nil {
		t.Fatalf("NewRunner(%s): %v", rt, err)
	}
	if r.Runtime() != rt {
		t.Fatalf("Runtime() = %s, want %s", r.Runtime(), rt)
	}
	if r.Rootless() == testutil.IsRoot() {
		t.Fatalf("Rootless() = %v as uid %d", r.Rootless(), os.Geteuid())
	}
	return r, work
}

// lockedBuffer is a bytes.Buffer safe for the runtime's copying goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// run runs s (filling in ID, RootFS and a PATH when unset) and returns its
// exit code and output. An error from Run fails the test.
func run(t *testing.T, r *sandbox.Runner, s sandbox.Step) (code int, stdout, stderr string) {
	t.Helper()
	if s.ID == "" {
		s.ID = newID()
	}
	if s.Env == nil {
		s.Env = []string{"PATH=/bin"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb lockedBuffer
	code, err := r.Run(ctx, s, &out, &errb)
	if err != nil {
		t.Fatalf("Run(%q): %v\nstderr: %s", s.Args, err, errb.String())
	}
	return code, out.String(), errb.String()
}

// forEachRuntime runs f for every runtime of this mode as a subtest.
func forEachRuntime(t *testing.T, f func(t *testing.T, r *sandbox.Runner, work, rootfs string)) {
	rootfs := baseRootFS(t)
	for _, rt := range runtimes() {
		t.Run(string(rt), func(t *testing.T) {
			r, work := newRunner(t, rt)
			f(t, r, work, rootfs)
		})
	}
}

func TestEnvironmentIsExactlyStepEnv(t *testing.T) {
	t.Setenv("ACCORD_TEST_SECRET", "must-not-leak")
	forEachRuntime(t, func(t *testing.T, r *sandbox.Runner, _, rootfs string) {
		for _, tc := range []struct {
			name string
			env  []string
		}{
			{"minimal", []string{"PATH=/bin", "HOME=/tekton/home"}},
			{"values with = and spaces and empty", []string{
				"PATH=/bin", "HOME=/h", "EMPTY=", "WITH_EQ=a=b=c", "SPACES=one two  three", "SOURCE_DATE_EPOCH=1700000000", "TZ=UTC",
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// env as the process itself (not via sh, which would add PWD and friends).
				code, out, stderr := run(t, r, sandbox.Step{RootFS: rootfs, Args: []string{"/bin/env"}, Env: tc.env})
				if code != 0 {
					t.Fatalf("env exited %d: %s", code, stderr)
				}
				got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
				sort.Strings(got)
				want := append([]string(nil), tc.env...)
				sort.Strings(want)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("environment in the container (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestIdentity(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r *sandbox.Runner, _, rootfs string) {
		for _, tc := range []struct {
			name     string
			step     sandbox.Step
			wantOut  string
			wantCode int
		}{
			{"default hostname", sandbox.Step{Args: []string{"hostname"}}, "accord\n", 0},
			{"given hostname", sandbox.Step{Args: []string{"hostname"}, Hostname: "builder"}, "builder\n", 0},
			{"uid is 0", sandbox.Step{Args: []string{"id", "-u"}}, "0\n", 0},
			{"gid is 0", sandbox.Step{Args: []string{"id", "-g"}}, "0\n", 0},
			{"default umask", sandbox.Step{Args: []string{"sh", "-c", "umask"}}, "0022\n", 0},
			{"given umask", sandbox.Step{Args: []string{"sh", "-c", "umask"}, Umask: 0o077}, "0077\n", 0},
			{"default cwd", sandbox.Step{Args: []string{"pwd"}}, "/\n", 0},
			{"given cwd", sandbox.Step{Args: []string{"pwd"}, Cwd: "/tmp"}, "/tmp\n", 0},
			{"exit code propagates", sandbox.Step{Args: []string{"sh", "-c", "exit 7"}}, "", 7},
			{"stdout separate from stderr", sandbox.Step{Args: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}}, "out\n", 3},
		} {
			if tc.step.Umask != 0 && r.Runtime() == sandbox.Runsc {
				continue // refused: see TestRunscUmask
			}
			t.Run(tc.name, func(t *testing.T) {
				s := tc.step
				s.RootFS = rootfs
				code, out, stderr := run(t, r, s)
				if code != tc.wantCode {
					t.Errorf("exit code = %d, want %d (stderr: %s)", code, tc.wantCode, stderr)
				}
				if diff := cmp.Diff(tc.wantOut, out); diff != "" {
					t.Errorf("stdout (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestStderrGoesToItsWriter(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r *sandbox.Runner, _, rootfs string) {
		_, out, stderr := run(t, r, sandbox.Step{RootFS: rootfs, Args: []string{"sh", "-c", "echo to-err >&2"}})
		if diff := cmp.Diff([]string{"", "to-err\n"}, []string{out, stderr}); diff != "" {
			t.Errorf("stdout, stderr (-want +got):\n%s", diff)
		}
	})
}

func TestFilesystem(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r *sandbox.Runner, _, rootfs string) {
		rw, ro := t.TempDir(), t.TempDir()
		if err := os.WriteFile(filepath.Join(ro, "in.txt"), []byte("read me\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		mounts := []sandbox.Mount{
			{Source: rw, Destination: "/workspace/out"},
			{Source: ro, Destination: "/workspace/in", ReadOnly: true},
		}
		for _, tc := range []struct {
			name     string
			script   string
			wantCode int
			wantOut  string
		}{
			// The root filesystem is writable, in a layer of the step's own
			// (TestWritableRootFS): the cached image stays as it was.
			{"root filesystem is writable", "touch /x && ls /x", 0, "/x\n"},
			{"image files are writable", "echo x >> /etc/passwd && tail -n 1 /etc/passwd", 0, "x\n"},
			{"read-write mount is writable", "echo written > /workspace/out/f.txt && cat /workspace/out/f.txt", 0, "written\n"},
			{"read-only mount is readable", "cat /workspace/in/in.txt", 0, "read me\n"},
			{"read-only mount is not writable", "touch /workspace/in/new", 1, ""},
			{"read-only mount file is not writable", "echo x >> /workspace/in/in.txt", 1, ""},
			{"/tmp is a writable tmpfs", `echo t > /tmp/f && cat /tmp/f && awk '$2 == "/tmp" {print $3}' /proc/mounts`, 0, "t\ntmpfs\n"},
			// Sorted: gVisor lists mounts in another order.
			{"/workspace and /tekton are writable tmpfs", `mkdir /workspace/x /tekton/y && awk '$2 == "/workspace" || $2 == "/tekton" {print $2, $3}' /proc/mounts | sort`, 0, "/tekton tmpfs\n/workspace tmpfs\n"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, out, stderr := run(t, r, sandbox.Step{RootFS: rootfs, Args: []string{"sh", "-c", tc.script}, Mounts: mounts})
				if code != tc.wantCode {
					t.Errorf("exit code = %d, want %d (stderr: %s)", code, tc.wantCode, stderr)
				}
				if diff := cmp.Diff(tc.wantOut, out); diff != "" {
					t.Errorf("stdout (-want +got):\n%s", diff)
				}
			})
		}
		// What the steps did on the host: the read-write mount got its file,
		// the read-only one is unchanged, and the image is untouched.
		got, err := os.ReadFile(filepath.Join(rw, "f.txt"))
		if err != nil || string(got) != "written\n" {
			t.Errorf("host file written through the read-write mount = %q, %v; want %q", got, err, "written\n")
		}
		if diff := cmp.Diff([]string{"in.txt"}, dirNames(t, ro)); diff != "" {
			t.Errorf("read-only mount on the host (-want +got):\n%s", diff)
		}
		if got, _ := os.ReadFile(filepath.Join(ro, "in.txt")); string(got) != "read me\n" {
			t.Errorf("read-only file on the host = %q", got)
		}
		if _, err := os.Lstat(filepath.Join(rootfs, "x")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("rootfs/x exists after a step touched /x: %v", err)
		}
	})
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// interfaces lists the interface names of a /proc/net/dev.
func interfaces(procNetDev string) []string {
	var out []string
	for _, l := range strings.Split(procNetDev, "\n") {
		name, _, ok := strings.Cut(l, ":")
		if ok && !strings.Contains(name, "|") {
			out = append(out, strings.TrimSpace(name))
		}
	}
	sort.Strings(out)
	return out
}

func TestNetwork(t *testing.T) {
	// No -T: busybox 1.35's wget segfaults (exit 139) with -T, which would
	// make the no-network case pass for the wrong reason.
	const body = "hello from the host\n"
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, body)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	url := "http://" + srv.Listener.Addr().String() + "/"

	hostNetDev, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	hostIfaces := interfaces(string(hostNetDev))

	forEachRuntime(t, func(t *testing.T, r *sandbox.Runner, _, rootfs string) {
		t.Run("no network: host listener unreachable", func(t *testing.T) {
			before := conns.Load()
			code, out, stderr := run(t, r, sandbox.Step{RootFS: rootfs, Args: []string{"wget", "-q", "-O-", url}})
			// In the step's own network namespace nothing listens on the port.
			if code != 1 || !strings.Contains(stderr, "Connection refused") {
				t.Errorf("wget %s without network: exit %d, stdout %q, stderr %q; want exit 1, connection refused", url, code, out, stderr)
			}
			if n := conns.Load() - before; n != 0 {
				t.Errorf("host listener got %d connections from a step without network", n)
			}
		})
		t.Run("no network: loopback only", func(t *testing.T) {
			code, out, stderr := run(t, r, sandbox.Step{RootFS: rootfs, Args: []string{"cat", "/proc/net/dev"}})
			if code != 0 {
				t.Fatalf("cat /proc/net/dev exited %d: %s", code, stderr)
			}
			if diff := cmp.Diff([]string{"lo"}, interfaces(out)); diff != "" {
				t.Errorf("interfaces in the container (-want +got):\n%s", diff)
			}
		})
		// A server and a client inside the same container talk over lo. The
		// listener quits as soon as its stdin ends, even before the client's
		// data arrives, so its stdin is a FIFO held open until it has exited
		// (on the client's close); the client retries, boundedly, while the
		// listener is not yet listening. The late client, whose data comes a
		// second after it connected, lost that race every time before.
		for _, client := range []struct{ name, send string }{
			{"no network: loopback is up", "echo ping"},
			{"no network: loopback is up, late client", "(sleep 1; echo ping)"},
		} {
			t.Run(client.name, func(t *testing.T) {
				code, out, stderr := run(t, r, sandbox.Step{RootFS: rootfs, Args: []string{"sh", "-c", loopbackScript(client.send)}})
				if code != 0 || out != "ping\n" {
					t.Errorf("loopback round trip: exit %d, stdout %q, want 0 and %q (stderr: %s)", code, out, "ping\n", stderr)
				}
			})
		}
		t.Run("network: host listener reachable", func(t *testing.T) {
			before := conns.Load()
			args := []string{"wget", "-q", "-O-", url}
			if r.Runtime() == sandbox.Runsc {
				// gVisor 2022's host network answers a blocking read(2) of
				// a socket with EAGAIN, which busybox wget takes for an
				// error; nc polls first (as Go, curl and git do).
				addr := strings.Replace(srv.Listener.Addr().String(), ":", " ", 1)
				args = []string{"sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc ` + addr + ` | sed '1,/^\r$/d'`}
			}
			code, out, stderr := run(t, r, sandbox.Step{RootFS: rootfs, Args: args, Network: true})
			if code != 0 {
				t.Fatalf("%q with network exited %d: %s", args, code, stderr)
			}
			if diff := cmp.Diff(body, out); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if n := conns.Load() - before; n != 1 {
				t.Errorf("host listener got %d connections, want 1", n)
			}
		})
		t.Run("network: host interfaces", func(t *testing.T) {
			code, out, stderr := run(t, r, sandbox.Step{RootFS: rootfs, Args: []string{"cat", "/proc/net/dev"}, Network: true})
			if code != 0 {
				t.Fatalf("cat /proc/net/dev exited %d: %s", code, stderr)
			}
			if diff := cmp.Diff(hostIfaces, interfaces(out)); diff != "" {
				t.Errorf("interfaces in a container with network (-host +container):\n%s", diff)
			}
		})
	})
}

// loopbackScript is a shell script that runs a busybox nc listener on
// 127.0.0.1:8123, sends it what the command send prints, and prints what the
// listener received. It ends within about 10 s whatever happens.
func loopbackScript(send string) string {
	return `mkfifo /tmp/in
nc -l -p 8123 < /tmp/in > /tmp/got & srv=$!
exec 3> /tmp/in
ok=
for i in $(seq 100); do
	if ` + send + ` | nc -w 5 127.0.0.1 8123; then ok=1; break; fi
	sleep 0.1
done
[ -n "$ok" ] || kill $srv
wait $srv
exec 3>&-
cat /tmp/got
[ -n "$ok" ]`
}

func TestPIDNamespace(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r *sandbox.Runner, _, rootfs string) {
		for _, tc := range []struct {
			name string
			args []string
			want string
		}{
			{"pid 1 is the step", []string{"cat", "/proc/1/cmdline"}, "cat\x00/proc/1/cmdline\x00"},
			{"the step is pid 1", []string{"sh", "-c", "echo $$; echo $PPID"}, "1\n0\n"},
			// ps run as the step sees itself only.
			{"no other processes", []string{"ps", "-o", "pid,comm"}, "PID COMMAND\n1 ps\n"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, out, stderr := run(t, r, sandbox.Step{RootFS: rootfs, Args: tc.args})
				if code != 0 {
					t.Fatalf("exit code %d: %s", code, stderr)
				}
				if tc.args[0] == "ps" {
					var lines []string
					for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
						lines = append(lines, strings.Join(strings.Fields(l), " "))
					}
					out = strings.Join(lines, "\n") + "\n"
				}
				if diff := cmp.Diff(tc.want, out); diff != "" {
					t.Errorf("stdout (-want +got):\n%s", diff)
				}
			})
		}
	})
}

// processesWithCmdline lists host pids whose command line is cmdline.
func processesWithCmdline(cmdline string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(b) == cmdline {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// listContainers runs "<runtime> --root <state> list -q".
func listContainers(t *testing.T, rt sandbox.Runtime, state string) []string {
	t.Helper()
	args := []string{"--root", state, "list", "-q"}
	switch rt {
	case sandbox.Crun:
		args = append([]string{"--cgroup-manager=disabled"}, args...)
	case sandbox.Runsc:
		args = []string{"--root", state, "list", "-quiet"}
	}
	out, err := exec.Command(string(rt), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", rt, strings.Join(args, " "), err, out)
	}
	return strings.Fields(string(out))
}

func TestContextEnd(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r *sandbox.Runner, work, rootfs string) {
		for i, tc := range []struct {
			name        string
			ctx         func() (context.Context, context.CancelFunc)
			wantTimeout bool
			wantErr     error
		}{
			{"deadline", func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), time.Second)
			}, true, context.DeadlineExceeded},
			{"cancel", func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(time.Second, cancel)
				return ctx, cancel
			}, false, context.Canceled},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// A unique duration lets us find the process on the host.
				dur := fmt.Sprintf("60.%d%d", os.Getpid(), i)
				ctx, cancel := tc.ctx()
				defer cancel()
				start := time.Now()
				code, err := r.Run(ctx, sandbox.Step{ID: newID(), RootFS: rootfs, Args: []string{"sleep", dur}, Env: []string{"PATH=/bin"}}, io.Discard, io.Discard)
				elapsed := time.Since(start)
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("Run error = %v, want one wrapping %v", err, tc.wantErr)
				}
				if got := errors.Is(err, sandbox.ErrTimeout); got != tc.wantTimeout {
					t.Errorf("errors.Is(%v, ErrTimeout) = %v, want %v", err, got, tc.wantTimeout)
				}
				if code != -1 {
					t.Errorf("exit code = %d, want -1", code)
				}
				if elapsed > 10*time.Second {
					t.Errorf("Run returned after %v, want within 10s of a 1s context", elapsed)
				}
				if ids := listContainers(t, r.Runtime(), filepath.Join(work, "state")); len(ids) != 0 {
					t.Errorf("containers left in the state dir: %q", ids)
				}
				if pids := processesWithCmdline("sleep\x00" + dur + "\x00"); len(pids) != 0 {
					t.Errorf("step process still running on the host: pids %v", pids)
				}
			})
		}
	})
}

func TestMemoryLimit(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r *sandbox.Runner, _, rootfs string) {
		enforced := (r.Runtime() == sandbox.Runc || r.Runtime() == sandbox.Runsc) && testutil.IsRoot()
		if got := r.MemoryLimits(); got != enforced {
			t.Fatalf("MemoryLimits() = %v, want %v (runc and runsc as root only)", got, enforced)
		}
		// dd holds a 256 MiB buffer filled from /dev/zero.
		dd := []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"}
		for _, tc := range []struct {
			name   string
			limit  int64
			killed bool
		}{
			{"no limit", 0, false},
			{"1 GiB", 1 << 30, false},
			// Without enforcement the limit is not applied at all.
			{"64 MiB", 64 << 20, enforced},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, _, stderr := run(t, r, sandbox.Step{RootFS: rootfs, Args: dd, MemoryLimit: tc.limit})
				want := 0
				if tc.killed {
					want = 128 + 9 // SIGKILL from the OOM killer
				}
				if code != want {
					t.Errorf("dd with memory limit %d exited %d, want %d (stderr: %s)", tc.limit, code, want, stderr)
				}
			})
		}
	})
}

func TestBundle(t *testing.T) {
	rootfs := baseRootFS(t)
	for _, rt := range runtimes() {
		for _, keep := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/keep=%v", rt, keep), func(t *testing.T) {
				r, work := newRunner(t, rt, sandbox.WithKeep(keep))
				id := newID()
				code, _, stderr := run(t, r, sandbox.Step{ID: id, RootFS: rootfs, Args: []string{"true"}})
				if code != 0 {
					t.Fatalf("true exited %d: %s", code, stderr)
				}
				bundle := filepath.Join(work, "bundles", id)
				b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
				if !keep {
					if _, err := os.Stat(bundle); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("bundle %s still there after Run: %v", bundle, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("kept bundle: %v", err)
				}
				var spec specs.Spec
				if err := json.Unmarshal(b, &spec); err != nil {
					t.Fatal(err)
				}
				want := specs.Root{Path: filepath.Join(bundle, "rootfs")}
				if rt == sandbox.Runsc {
					// The image itself, under gVisor's overlay.
					want = specs.Root{Path: rootfs}
				}
				if diff := cmp.Diff(want, *spec.Root); diff != "" {
					t.Errorf("config.json root (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]string{"true"}, spec.Process.Args); diff != "" {
					t.Errorf("config.json args (-want +got):\n%s", diff)
				}
				if ids := listContainers(t, rt, filepath.Join(work, "state")); len(ids) != 0 {
					t.Errorf("containers left in the state dir: %q", ids)
				}
			})
		}
	}
}

func TestMissingRuntime(t *testing.T) {
	for _, rt := range []sandbox.Runtime{sandbox.Runc, sandbox.Crun, sandbox.Runsc} {
		t.Run(string(rt), func(t *testing.T) {
			_, err := sandbox.NewRunner(rt, t.TempDir(), sandbox.WithBinary("/nonexistent/"+string(rt)))
			var me *sandbox.MissingRuntimeError
			if !errors.As(err, &me) {
				t.Fatalf("NewRunner with a missing binary: error %v (%T), want *sandbox.MissingRuntimeError", err, err)
			}
			if me.Runtime != rt {
				t.Errorf("MissingRuntimeError.Runtime = %s, want %s", me.Runtime, rt)
			}
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v does not wrap fs.ErrNotExist", err)
			}
			for _, want := range []string{"OCI runtime " + string(rt) + " not found", "fix: apt-get install " + string(rt)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestCrunRootless(t *testing.T) {
	testutil.RequireBinary(t, "crun")
	r, err := sandbox.NewRunner(sandbox.Crun, t.TempDir())
	if testutil.IsRoot() {
		if err != nil {
			t.Fatalf("NewRunner(crun) as root: %v", err)
		}
		if r.Rootless() || r.MemoryLimits() {
			t.Errorf("crun as root: Rootless() = %v, MemoryLimits() = %v; want false, false", r.Rootless(), r.MemoryLimits())
		}
		return
	}
	if err == nil {
		t.Fatal("NewRunner(crun) as non-root succeeded; want an error saying crun rootless is not supported")
	}
	var me *sandbox.MissingRuntimeError
	if errors.As(err, &me) {
		t.Errorf("error is a MissingRuntimeError: %v", err)
	}
	for _, want := range []string{"crun rootless is not supported", "fix: use --runtime runc, or run as root"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestParseRuntime(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    sandbox.Runtime
		wantErr bool
	}{
		{"runc", sandbox.Runc, false},
		{"crun", sandbox.Crun, false},
		{"runsc", sandbox.Runsc, false},
		{"", "", true},
		{"gvisor", "", true},
		{"docker", "", true},
		{"RUNC", "", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := sandbox.ParseRuntime(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseRuntime(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestConcurrentRuns(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r *sandbox.Runner, _, rootfs string) {
		const n = 4
		codes := make([]int, n)
		outs := make([]lockedBuffer, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], errs[i] = r.Run(context.Background(), sandbox.Step{
					ID: newID(), RootFS: rootfs, Env: []string{"PATH=/bin", fmt.Sprintf("N=%d", i)},
					Args: []string{"sh", "-c", "sleep 0.2; echo $N"},
				}, &outs[i], io.Discard)
			}()
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil || codes[i] != 0 || outs[i].String() != fmt.Sprintf("%d\n", i) {
				t.Errorf("run %d: code %d, err %v, stdout %q", i, codes[i], errs[i], outs[i].String())
			}
		}
	})
}

// layer is one image layer's tar entries.
type layer []tarEntry

type tarEntry struct {
	name     string
	typ      byte
	linkname string
	body     string
}

func tarBytes(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.linkname, Mode: 0o644, Size: int64(len(e.body)), Format: tar.FormatPAX}
		if e.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func imageOf(t *testing.T, layers ...layer) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for _, l := range layers {
		ls = append(ls, static.NewLayer(tarBytes(t, l), types.OCIUncompressedLayer))
	}
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// snapshot lists every path under dir (relative) with its kind and content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir():
			m[rel] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			m[rel] = "-> " + l
		default:
			b, _ := os.ReadFile(p)
			m[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// failingLayer is a layer whose uncompressed stream ends with an error
// after its last byte, as a layer whose content does not match its digest
// does when read from a registry.
type failingLayer struct {
	v1.Layer
	err error
}

func (l failingLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Uncompressed()
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(rc, iotest.ErrReader(l.err)), rc}, nil
}

func linkCount(t *testing.T, p string) uint64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(st.Sys().(*syscall.Stat_t).Nlink)
}

func TestRootFSCache(t *testing.T) {
	ctx := context.Background()
	t.Run("base image", func(t *testing.T) {
		cacheDir := t.TempDir()
		cache, err := sandbox.NewRootFSCache(cacheDir)
		if err != nil {
			t.Fatal(err)
		}
		img := testutil.BaseImage(t)
		dir, err := cache.Get(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := img.Digest()
		if want := filepath.Join(cacheDir, "o-"+h.Hex); dir != want {
			t.Errorf("Get = %s, want %s", dir, want)
		}
		for _, p := range []string{"bin/busybox", "bin/sh", "etc/passwd", "workspace", "tekton", "tmp", "etc/resolv.conf"} {
			if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
				t.Errorf("rootfs lacks %s: %v", p, err)
			}
		}
		st, err := os.Stat(dir)
		if err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("rootfs mode = %v, %v; want 0755", st.Mode(), err)
		}
		again, err := cache.Get(ctx, img)
		if err != nil || again != dir {
			t.Errorf("second Get = %s, %v; want %s", again, err, dir)
		}
		if diff := cmp.Diff([]string{"o-" + h.Hex}, dirNames(t, cacheDir)); diff != "" {
			t.Errorf("cache directory after two Gets (-want +got):\n%s", diff)
		}
	})

	t.Run("concurrent Get", func(t *testing.T) {
		cacheDir := t.TempDir()
		img := testutil.BaseImage(t)
		const n = 4
		dirs := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := sandbox.NewRootFSCache(cacheDir)
				if err == nil {
					dirs[i], err = c.Get(ctx, img)
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		h, _ := img.Digest()
		for i := range n {
			if errs[i] != nil || dirs[i] != filepath.Join(cacheDir, "o-"+h.Hex) {
				t.Errorf("Get %d = %s, %v", i, dirs[i], errs[i])
			}
		}
		if diff := cmp.Diff([]string{"o-" + h.Hex}, dirNames(t, cacheDir)); diff != "" {
			t.Errorf("cache directory after concurrent Gets (-want +got):\n%s", diff)
		}
	})

	t.Run("layer read error after the last entry", func(t *testing.T) {
		cacheDir := t.TempDir()
		cache, err := sandbox.NewRootFSCache(cacheDir)
		if err != nil {
			t.Fatal(err)
		}
		good := static.NewLayer(tarBytes(t, []tarEntry{{name: "f", typ: tar.TypeReg, body: "content"}}), types.OCIUncompressedLayer)
		errDigest := errors.New("layer content does not match its digest")
		img, err := mutate.AppendLayers(empty.Image, failingLayer{good, errDigest})
		if err != nil {
			t.Fatal(err)
		}
		dir, err := cache.Get(ctx, img)
		if !errors.Is(err, errDigest) {
			t.Errorf("Get = %q, %v; want an error wrapping %q", dir, err, errDigest)
		}
		if names := dirNames(t, cacheDir); len(names) != 0 {
			t.Errorf("failed Get left %q in the cache", names)
		}
	})

	// Hostile layers: nothing may be written outside the rootfs, whether
	// go-containerregistry's flattening drops the entry, untar refuses it,
	// or it lands inside.
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	outsideRel := strings.TrimPrefix(outside, "/")
	for _, tc := range []struct {
		name   string
		layers []layer
		// wantErr: Get fails; otherwise wantFiles are (some of) the
		// rootfs's files.
		wantErr   bool
		wantFiles map[string]string
	}{
		{
			name: "symlink to / then a file through it",
			layers: []layer{{
				{name: "evil", typ: tar.TypeSymlink, linkname: "/"},
				{name: "evil/" + outsideRel + "/pwned", typ: tar.TypeReg, body: "pwned"},
			}},
			// The flattening treats evil as a file and drops what is under it.
			wantFiles: map[string]string{"evil": "-> /"},
		},
		{
			name: "symlink to / then a file through it, hostile name from the brief",
			layers: []layer{{
				{name: "evil", typ: tar.TypeSymlink, linkname: "/"},
				{name: "evil/tmp/pwned-accord-test", typ: tar.TypeReg, body: "pwned"},
			}},
			wantFiles: map[string]string{"evil": "-> /"},
		},
		{
			name: "symlink to an outside dir then a file through it",
			layers: []layer{{
				{name: "evil", typ: tar.TypeSymlink, linkname: outside},
				{name: "evil/pwned", typ: tar.TypeReg, body: "pwned"},
			}},
			wantFiles: map[string]string{"evil": "-> " + outside},
		},
		{
			name: "symlink in a lower layer, file through it in an upper one",
			layers: []layer{
				{{name: "evil", typ: tar.TypeSymlink, linkname: outside}},
				{{name: "evil/pwned", typ: tar.TypeReg, body: "pwned"}},
			},
			// The upper layer's file comes first (evil/ is made a
			// directory), then the symlink cannot replace it.
			wantErr: true,
		},
		{
			name: "symlink in an upper layer over a directory in a lower one",
			layers: []layer{
				{{name: "evil/pwned", typ: tar.TypeReg, body: "pwned"}},
				{{name: "evil", typ: tar.TypeSymlink, linkname: outside}},
			},
			wantFiles: map[string]string{"evil": "-> " + outside},
		},
		{
			name: "relative symlink escaping, then a file through it",
			layers: []layer{{
				{name: "up", typ: tar.TypeSymlink, linkname: "../../../../../../../../../../.."},
				{name: "up/" + outsideRel + "/pwned", typ: tar.TypeReg, body: "pwned"},
			}},
			// The escaping link is dropped by the flattening; the file
			// lands in a real directory inside the rootfs.
			wantFiles: map[string]string{"up": "dir", "up/" + outsideRel + "/pwned": "pwned"},
		},
		{
			name: "hard link to a host file through an absolute symlink",
			layers: []layer{{
				{name: "evil", typ: tar.TypeSymlink, linkname: outside},
				{name: "leak", typ: tar.TypeLink, linkname: "evil/secret"},
			}},
			wantErr: true,
		},
		{
			name:    "../escape",
			layers:  []layer{{{name: "../escape", typ: tar.TypeReg, body: "escaped"}}},
			wantErr: true,
		},
		{
			name:    "a/../../escape",
			layers:  []layer{{{name: "a/../../escape", typ: tar.TypeReg, body: "escaped"}}},
			wantErr: true,
		},
		{
			name:      "absolute name",
			layers:    []layer{{{name: outside + "/abs", typ: tar.TypeReg, body: "abs"}}},
			wantFiles: map[string]string{outsideRel + "/abs": "abs"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			cacheDir := filepath.Join(base, "cache")
			cache, err := sandbox.NewRootFSCache(cacheDir)
			if err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, outside)
			dir, err := cache.Get(ctx, imageOf(t, tc.layers...))
			t.Logf("Get: %q, %v", dir, err)
			if diff := cmp.Diff(before, snapshot(t, outside)); diff != "" {
				t.Errorf("Get wrote outside the rootfs (-before +after):\n%s", diff)
			}
			if n := linkCount(t, filepath.Join(outside, "secret")); n != 1 {
				t.Errorf("host file %s has %d links after Get, want 1", filepath.Join(outside, "secret"), n)
			}
			if diff := cmp.Diff([]string{"cache"}, dirNames(t, base)); diff != "" {
				t.Errorf("Get wrote next to the cache (-want +got):\n%s", diff)
			}
			if _, err := os.Lstat("/tmp/pwned-accord-test"); err == nil {
				t.Errorf("Get wrote /tmp/pwned-accord-test on the host")
				os.Remove("/tmp/pwned-accord-test")
			}
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Get succeeded, want an error")
				}
				if names := dirNames(t, cacheDir); len(names) != 0 {
					t.Errorf("failed Get left %q in the cache", names)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			got := snapshot(t, dir)
			for p, want := range tc.wantFiles {
				if got[p] != want {
					t.Errorf("rootfs %s = %q, want %q", p, got[p], want)
				}
			}
			for p := range got {
				if strings.HasSuffix(p, "pwned") && strings.HasPrefix(p, "evil") {
					t.Errorf("rootfs has %s", p)
				}
			}
		})
	}
}
