package sandbox_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/internal/sandbox"
	"github.com/accord-build/accord/internal/testutil"
)

// serverScript serves "hello" on port 8123 to every connection.
const serverScript = `exec nc -ll -p 8123 -e echo hello`

// clientScript connects to 127.0.0.1:8123, retrying for up to 5 s while
// the server starts, and prints what it got.
const clientScript = `for i in $(seq 50); do
	out=$(nc 127.0.0.1 8123 2>&1) && [ -n "$out" ] && { echo "$out"; exit 0; }
	sleep 0.1
done
echo "no answer: $out" >&2
exit 1`

func newPod(t *testing.T, r *sandbox.Runner) *sandbox.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := r.NewPod(ctx, newID())
	if err != nil {
		t.Fatalf("NewPod: %v", err)
	}
	return p
}

func startIn(t *testing.T, p *sandbox.Pod, rootfs, script string, out io.Writer) *sandbox.Container {
	t.Helper()
	c, err := p.Start(context.Background(), sandbox.Step{ID: newID(), RootFS: rootfs, Args: []string{"sh", "-c", script}, Env: []string{"PATH=/bin"}}, out, out)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return c
}

func runIn(t *testing.T, p *sandbox.Pod, s sandbox.Step) (int, string, string) {
	t.Helper()
	s.ID, s.Env = newID(), []string{"PATH=/bin"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb lockedBuffer
	code, err := p.Run(ctx, s, &out, &errb)
	if err != nil {
		t.Fatalf("Pod.Run: %v\nstderr: %s", err, errb.String())
	}
	return code, out.String(), errb.String()
}

// TestPod: containers of a pod share a loopback-only network namespace;
// a container outside it cannot reach them; nothing is left afterwards.
func TestPod(t *testing.T) {
	forEachRunclike(t, func(t *testing.T, r *sandbox.Runner, work, rootfs string) {
		p := newPod(t, r)
		var srvOut lockedBuffer
		srv := startIn(t, p, rootfs, serverScript, &srvOut)
		steps := []struct {
			name string
			step sandbox.Step
		}{
			{"step in the pod", sandbox.Step{}},
			{"step in the pod that asked for the host's network", sandbox.Step{Network: true}},
		}
		if testutil.IsRoot() {
			// A new user namespace that does not own the pod's network
			// namespace: /sys is a tmpfs, the network is the pod's.
			steps = append(steps, struct {
				name string
				step sandbox.Step
			}{"non-root step in the pod", sandbox.Step{UID: 1000, GID: 1000}})
		}
		for _, tc := range steps {
			t.Run(tc.name, func(t *testing.T) {
				s := tc.step
				s.RootFS, s.Args = rootfs, []string{"sh", "-c", strings.Replace(clientScript, "exit 0;", "cat /proc/net/dev; exit 0;", 1)}
				code, out, stderr := runIn(t, p, s)
				if code != 0 || !strings.HasPrefix(out, "hello\n") {
					t.Fatalf("client in the pod: exit %d, stdout %q, stderr %q; want hello (server: %s)", code, out, stderr, srvOut.String())
				}
				if diff := cmp.Diff([]string{"lo"}, interfaces(strings.TrimPrefix(out, "hello\n"))); diff != "" {
					t.Errorf("interfaces in the pod (-want +got):\n%s", diff)
				}
			})
		}
		t.Run("step outside the pod", func(t *testing.T) {
			code, out, stderr := run(t, r, sandbox.Step{RootFS: rootfs, Args: []string{"sh", "-c", strings.Replace(clientScript, "seq 50", "seq 5", 1)}})
			if code == 0 || strings.Contains(out, "hello") {
				t.Errorf("client outside the pod reached the pod's server: exit %d, stdout %q, stderr %q", code, out, stderr)
			}
		})
		code, err := srv.Stop(2 * time.Second)
		if err != nil || code != 128+int(syscall.SIGKILL) && code != 128+int(syscall.SIGTERM) {
			t.Errorf("Stop of the server = %d, %v; want 137 or 143", code, err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		checkNothingLeft(t, r.Runtime(), work)
	})
}

// checkNothingLeft fails unless the runner's state and bundle directories are empty.
func checkNothingLeft(t *testing.T, rt sandbox.Runtime, work string) {
	t.Helper()
	if ids := listContainers(t, rt, filepath.Join(work, "state")); len(ids) != 0 {
		t.Errorf("containers left in the state dir: %q", ids)
	}
	if names := dirNames(t, filepath.Join(work, "bundles")); len(names) != 0 {
		t.Errorf("bundles left: %q", names)
	}
}

// TestContainerStop: SIGTERM first, SIGKILL after the grace period, and
// a container that exited by itself keeps its exit code.
func TestContainerStop(t *testing.T) {
	forEachRunclike(t, func(t *testing.T, r *sandbox.Runner, work, rootfs string) {
		for _, tc := range []struct {
			name     string
			script   string
			wait     bool
			wantCode int
			max      time.Duration
		}{
			{"handles SIGTERM", `trap 'echo term; exit 7' TERM; echo up; while :; do sleep 0.1; done`, false, 7, 2 * time.Second},
			{"ignores SIGTERM", `trap '' TERM; echo up; while :; do sleep 0.1; done`, false, 128 + int(syscall.SIGKILL), 6 * time.Second},
			{"exited early", `echo up; exit 3`, true, 3, 2 * time.Second},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var out lockedBuffer
				c, err := r.Start(context.Background(), sandbox.Step{ID: newID(), RootFS: rootfs, Args: []string{"sh", "-c", tc.script}, Env: []string{"PATH=/bin"}}, &out, &out)
				if err != nil {
					t.Fatal(err)
				}
				waitFor(t, func() bool { return strings.Contains(out.String(), "up") }, "the container's output")
				if tc.wait {
					select {
					case <-c.Done():
					case <-time.After(10 * time.Second):
						t.Fatal("container that exits did not end")
					}
				}
				start := time.Now()
				code, err := c.Stop(time.Second)
				if err != nil || code != tc.wantCode {
					t.Errorf("Stop = %d, %v; want %d (output %q)", code, err, tc.wantCode, out.String())
				}
				if d := time.Since(start); d > tc.max {
					t.Errorf("Stop took %v, want under %v", d, tc.max)
				}
				if code, _ := c.Wait(); code != tc.wantCode {
					t.Errorf("Wait after Stop = %d, want %d", code, tc.wantCode)
				}
				checkNothingLeft(t, r.Runtime(), work)
			})
		}
	})
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestContainerExec: a command runs inside the running container.
func TestContainerExec(t *testing.T) {
	forEachRunclike(t, func(t *testing.T, r *sandbox.Runner, work, rootfs string) {
		c, err := r.Start(context.Background(), sandbox.Step{ID: newID(), RootFS: rootfs, Args: []string{"sh", "-c", "touch /tmp/ready; sleep 100"}, Env: []string{"PATH=/bin"}}, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Stop(time.Second)
		waitFor(t, func() bool {
			code, err := c.Exec(context.Background(), "test", "-e", "/tmp/ready")
			return err == nil && code == 0
		}, "exec to see /tmp/ready")
		if code, err := c.Exec(context.Background(), "sh", "-c", "exit 4"); code != 4 || err != nil {
			t.Errorf("exec exit 4 = %d, %v", code, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if _, err := c.Exec(ctx, "sleep", "30"); err == nil {
			t.Error("exec of sleep 30 with a 0.5 s context returned no error")
		}
	})
}

// TestPodWatchdog: when the process that made a pod is killed (SIGKILL,
// no chance to clean up), its containers do not survive it, even when the
// watchdog got the SIGTERM of a service manager stopping everything.
func TestPodWatchdog(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rootfs := baseRootFS(t)
	for _, rt := range runcLike() {
		for _, signals := range [][]syscall.Signal{nil, {syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT}} {
			t.Run(fmt.Sprintf("%s/watchdog got %v", rt, signals), func(t *testing.T) {
				testPodWatchdog(t, exe, rt, rootfs, signals)
			})
		}
	}
}

func testPodWatchdog(t *testing.T, exe string, rt sandbox.Runtime, rootfs string, signals []syscall.Signal) {
	work := t.TempDir()
	marker := fmt.Sprintf("9%d.%d", os.Getpid(), idSeq.Add(1))
	cmd := exec.Command(exe, "-test.run", "^TestPodHelperProcess$")
	cmd.Env = append(os.Environ(), "ACCORD_POD_HELPER="+strings.Join([]string{string(rt), work, rootfs, marker}, "\n"))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		cmd.Process.Kill()
		t.Fatalf("helper said %q, %v", line, err)
	}
	if n := len(processesWithCmdline("sleep\x00" + marker + "\x00")); n != 3 {
		t.Errorf("%d sidecar and step processes running before the kill, want 3", n)
	}
	if len(signals) > 0 {
		dogs := watchdogs(filepath.Join(work, "state"))
		if len(dogs) != 1 {
			t.Fatalf("%d watchdogs for %s, want 1", len(dogs), work)
		}
		for _, sig := range signals {
			if err := syscall.Kill(dogs[0], sig); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	waitFor(t, func() bool {
		return len(listContainers(t, rt, filepath.Join(work, "state"))) == 0 &&
			len(processesWithCmdline("sleep\x00"+marker+"\x00")) == 0
	}, "the containers of the killed process to go")
}

// watchdogs lists the pids of watchdog shells for the state directory.
func watchdogs(state string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), "\x00accord-watchdog\x00") && strings.Contains(string(b), "\x00"+state+"\x00") {
			var pid int
			fmt.Sscan(e.Name(), &pid)
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestPodHelperProcess is the process TestPodWatchdog kills: it makes a
// pod with two sidecars and a step, says "ready" and waits.
func TestPodHelperProcess(t *testing.T) {
	env := os.Getenv("ACCORD_POD_HELPER")
	if env == "" {
		return // not a test of its own
	}
	a := strings.Split(env, "\n")
	r, err := sandbox.NewRunner(sandbox.Runtime(a[0]), a[1])
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.NewPod(context.Background(), newID())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		startIn(t, p, a[2], "sleep "+a[3], io.Discard)
	}
	go p.Run(context.Background(), sandbox.Step{ID: newID(), RootFS: a[2], Args: []string{"sleep", a[3]}, Env: []string{"PATH=/bin"}}, io.Discard, io.Discard)
	waitFor(t, func() bool { return len(processesWithCmdline("sleep\x00"+a[3]+"\x00")) == 3 }, "the sidecars and the step")
	fmt.Println("ready")
	time.Sleep(time.Minute)
}

// TestPodOtherRuntime: a runtime accord does not know to share a network
// namespace between containers gets a clear error, not a pod whose
// containers each have their own loopback.
func TestPodOtherRuntime(t *testing.T) {
	r, err := sandbox.NewRunner(sandbox.Runtime("runsc"), t.TempDir(), sandbox.WithBinary("/bin/true"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.NewPod(context.Background(), newID())
	if err == nil || !strings.Contains(err.Error(), "with runc and crun only, not runsc") || !strings.Contains(err.Error(), "fix: ") {
		t.Errorf("NewPod with runsc: %v, want a clear error", err)
	}
}
