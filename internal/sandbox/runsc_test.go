package sandbox_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/internal/sandbox"
	"github.com/accord-build/accord/internal/testutil"
)

// TestRunscUmask: runsc starts every process with umask 0022, so a step
// asking for another one is refused with the fix instead of running with
// the wrong umask (a validator would claim a variation it never had).
func TestRunscUmask(t *testing.T) {
	r, _ := newRunner(t, sandbox.Runsc)
	rootfs := baseRootFS(t)
	for _, tc := range []struct {
		name    string
		umask   uint32
		wantErr bool
	}{
		{"unset", 0, false},
		{"0022", 0o022, false},
		{"0077", 0o077, true},
		{"0027", 0o027, true},
		{"0002", 0o002, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out lockedBuffer
			code, err := r.Run(context.Background(), sandbox.Step{
				ID: newID(), RootFS: rootfs, Args: []string{"sh", "-c", "umask"}, Env: []string{"PATH=/bin"}, Umask: tc.umask,
			}, &out, &out)
			if !tc.wantErr {
				if err != nil || code != 0 || out.String() != "0022\n" {
					t.Fatalf("umask %04o: code %d, err %v, output %q; want 0022", tc.umask, code, err, out.String())
				}
				return
			}
			if err == nil {
				t.Fatalf("umask %04o: ran (code %d, output %q); want an error", tc.umask, code, out.String())
			}
			for _, want := range []string{"umask", "runsc", "fix: use --runtime runc or crun"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if out.String() != "" {
				t.Errorf("the step ran: output %q", out.String())
			}
		})
	}
}

// TestOutputToOneFile: a step's stdout and stderr given as one *os.File
// keep every line, in order (gVisor keeps one offset per descriptor it is
// handed, so without pipes the streams overwrite each other).
func TestOutputToOneFile(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, r *sandbox.Runner, _, rootfs string) {
		for _, tc := range []struct {
			name   string
			script string
			want   string
		}{
			{"out then err", "echo out-1; echo err-1 >&2", "out-1\nerr-1\n"},
			{"interleaved", "echo o1; echo e1 >&2; echo o2; echo e2 >&2", "o1\ne1\no2\ne2\n"},
			{"err longer than out", "echo o; echo eeeeeeeeeeeeeeeeeeee >&2; echo o", "o\neeeeeeeeeeeeeeeeeeee\no\n"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f, err := os.Create(filepath.Join(t.TempDir(), "log"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				code, err := r.Run(context.Background(), sandbox.Step{
					ID: newID(), RootFS: rootfs, Args: []string{"sh", "-c", tc.script}, Env: []string{"PATH=/bin"},
				}, f, f)
				if err != nil || code != 0 {
					t.Fatalf("code %d, err %v", code, err)
				}
				got, err := os.ReadFile(f.Name())
				if err != nil {
					t.Fatal(err)
				}
				// Sorted: the two streams' order relative to each other
				// is not kept by every runtime.
				if diff := cmp.Diff(sortedLines(tc.want), sortedLines(string(got))); diff != "" {
					t.Errorf("the file's lines (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func sortedLines(s string) []string {
	l := strings.Split(s, "\n")
	sort.Strings(l)
	return l
}

// TestNoNetworkOtherAddresses: a step without network reaches no address
// of the host, neither loopback (TestNetwork) nor its other interfaces'.
func TestNoNetworkOtherAddresses(t *testing.T) {
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	ips := hostIPv4s(t)
	forEachRuntime(t, func(t *testing.T, r *sandbox.Runner, _, rootfs string) {
		for _, ip := range ips {
			t.Run(ip, func(t *testing.T) {
				code, out, stderr := run(t, r, sandbox.Step{RootFS: rootfs, Args: []string{"nc", "-w", "2", ip, strconv.Itoa(port)}})
				if code == 0 {
					t.Errorf("nc %s %d without network exited 0 (stdout %q, stderr %q)", ip, port, out, stderr)
				}
				select {
				case <-accepted:
					t.Errorf("the host's listener on %s accepted a connection from a step without network", ip)
				default:
				}
			})
		}
	})
}

// hostIPv4s lists the host's non-loopback IPv4 addresses (at least one, or
// the test fails: it would prove nothing).
func hostIPv4s(t *testing.T) []string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			ips = append(ips, n.IP.String())
		}
	}
	if len(ips) == 0 {
		t.Fatal("the host has no non-loopback IPv4 address to try")
	}
	return ips
}

// TestRunscSandboxNamespaces: the host process that holds a step's
// user-space kernel is itself in a network namespace and a user namespace
// of its own, so a step that escaped gVisor would still reach no network
// and hold no host privilege; its /sys is gVisor's, in every mode.
func TestRunscSandboxNamespaces(t *testing.T) {
	r, _ := newRunner(t, sandbox.Runsc)
	rootfs := baseRootFS(t)
	for _, network := range []bool{false, true} {
		t.Run("network="+map[bool]string{false: "none", true: "host"}[network], func(t *testing.T) {
			id := newID()
			done := make(chan error, 1)
			var out lockedBuffer
			go func() {
				_, err := r.Run(context.Background(), sandbox.Step{
					ID: id, RootFS: rootfs, Network: network, Env: []string{"PATH=/bin"},
					Args: []string{"sh", "-c", `awk '$2 == "/sys" {print $3, substr($4, 1, 2)}' /proc/mounts; sleep 3`},
				}, &out, &out)
				done <- err
			}()
			// Once the step has printed, the sandbox is fully set up.
			for start := time.Now(); out.String() == "" && time.Since(start) < 20*time.Second; {
				time.Sleep(20 * time.Millisecond)
			}
			pid := waitForSandbox(t, id)
			// With the host's network, runsc as root keeps its sandbox in
			// the host's user namespace (hostinet needs it), as host root
			// with a few capabilities; seccomp and no_new_privs hold in
			// every mode.
			wantShared := map[string]bool{"net": network, "user": network && testutil.IsRoot()}
			for _, ns := range []string{"net", "user"} {
				mine, _ := os.Readlink("/proc/self/ns/" + ns)
				its, err := os.Readlink("/proc/" + pid + "/ns/" + ns)
				if err != nil {
					t.Fatalf("reading the sandbox's %s namespace: %v", ns, err)
				}
				if shared := its == mine; shared != wantShared[ns] {
					t.Errorf("sandbox process %s: %s namespace %s, accord's %s; want shared=%v", pid, ns, its, mine, wantShared[ns])
				}
			}
			status, err := os.ReadFile("/proc/" + pid + "/status")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"\nNoNewPrivs:\t1\n", "\nSeccomp:\t2\n"} {
				if !strings.Contains(string(status), want) {
					t.Errorf("sandbox process %s: status lacks %q:\n%s", pid, want, status)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff("sysfs ro\n", out.String()); diff != "" {
				t.Errorf("/sys in the step (-want +got):\n%s", diff)
			}
		})
	}
}

// waitForSandbox returns the host pid of runsc's sandbox process for the
// container id.
func waitForSandbox(t *testing.T, id string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			args := strings.Split(string(b), "\x00")
			if err == nil && args[0] == "runsc-sandbox" && strings.Contains(string(b), "\x00boot\x00") && strings.Contains(string(b), "\x00"+id+"\x00") {
				return e.Name()
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal(errors.New("no runsc-sandbox process for " + id))
	return ""
}

// TestRunscLeavesTheImageCache: under runsc the root is the cached image,
// and runsc's gofer creates a missing working directory or bind mount
// point in it, on the host, where every later step of that image (under
// any runtime, in any build) would see it. Such a step is refused before
// it starts and the cache stays as it was; mount points under the spec's
// tmpfs mounts or another bind, a working directory at a bind, and paths
// the image has (through its links), still run.
func TestRunscLeavesTheImageCache(t *testing.T) {
	r, _ := newRunner(t, sandbox.Runsc)
	rootfs := baseRootFS(t)
	if err := os.Symlink("/etc", filepath.Join(rootfs, "etclink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../..", filepath.Join(rootfs, "up")); err != nil {
		t.Fatal(err)
	}
	vol := t.TempDir()
	for _, tc := range []struct {
		name   string
		cwd    string
		dest   string
		refuse bool
	}{
		{"missing top-level workingDir", "/brandnew", "", true},
		{"missing nested workingDir", "/etc/new/sub", "", true},
		{"workingDir through a link", "/etclink/new", "", true},
		{"workingDir through a link out", "/up/brandnew", "", true},
		{"mount point through a link out", "", "/up/workspace/vol", false},
		{"workingDir at a bind", "/workspace/vol", "/workspace/vol", false},
		{"missing top-level mount point", "", "/data", true},
		{"missing nested mount point", "", "/usr/cache", true},
		{"mount point through a link", "", "/etclink/cache", true},
		{"existing workingDir", "/etc", "", false},
		{"workingDir in /tmp", "/tmp/build", "", true},
		{"mount point in /workspace", "", "/workspace/vol", false},
		{"existing mount point", "", "/etc", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sandbox.Step{ID: newID(), RootFS: rootfs, Args: []string{"true"}, Env: []string{"PATH=/bin"}, Cwd: tc.cwd}
			if tc.dest != "" {
				s.Mounts = []sandbox.Mount{{Source: vol, Destination: tc.dest, ReadOnly: true}}
			}
			before := treeOf(t, rootfs)
			var out lockedBuffer
			code, err := r.Run(context.Background(), s, &out, &out)
			if !tc.refuse {
				if err != nil || code != 0 {
					t.Fatalf("code %d, err %v, output %q; want it to run", code, err, out.String())
				}
				return
			}
			if err == nil {
				t.Fatalf("ran (code %d, output %q); want it refused", code, out.String())
			}
			for _, want := range []string{"does not exist in the image", "runsc", "fix:"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if diff := cmp.Diff(before, treeOf(t, rootfs)); diff != "" {
				t.Errorf("the cached image changed (-before +after):\n%s", diff)
			}
		})
	}
}

// treeOf lists the paths beneath dir, links not followed.
func treeOf(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, strings.TrimPrefix(p, dir))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
