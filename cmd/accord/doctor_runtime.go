package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/accord-build/accord/internal/sandbox"
)

// runtimeChecks are the OCI runtimes' checks: those in want are required,
// the others optional (runc is required when want is empty). runsc is also
// started once, since an installed gVisor may still not run on the host.
func runtimeChecks(ctx context.Context, want []string) ([]check, error) {
	required := map[sandbox.Runtime]bool{}
	for _, w := range want {
		rt, err := sandbox.ParseRuntime(w)
		if err != nil {
			return nil, fmt.Errorf("--runtime: %w", err)
		}
		required[rt] = true
	}
	if len(required) == 0 {
		required[sandbox.Runc] = true
	}
	fixes := map[sandbox.Runtime]string{
		sandbox.Runc:  "apt-get install runc",
		sandbox.Crun:  "apt-get install crun (optional: a second runtime for validators)",
		sandbox.Runsc: "apt-get install runsc (optional: gVisor, a user-space kernel per step, for untrusted code and validators)",
	}
	var cs []check
	for _, rt := range []sandbox.Runtime{sandbox.Runc, sandbox.Crun, sandbox.Runsc} {
		c := binCheck(string(rt), []string{"--version"}, !required[rt], fixes[rt])
		if rt == sandbox.Runsc && c.OK {
			c = runscStarts(ctx, c)
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// runscStarts runs /bin/true in a gVisor sandbox the way accord's runner
// invokes runsc (ptrace platform, no network; rootless in a user namespace
// the caller is root of).
func runscStarts(ctx context.Context, c check) check {
	state, err := os.MkdirTemp("", "accord-doctor-runsc-")
	if err != nil {
		c.OK, c.Detail = false, err.Error()
		return c
	}
	defer os.RemoveAll(state)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := []string{"--platform=ptrace", "--network=none", "--root", state, "do", "/bin/true"}
	name := "runsc"
	if os.Geteuid() != 0 {
		name, args = "unshare", append([]string{"--user", "--map-root-user", "runsc", "--rootless"}, args...)
	}
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		c.OK = false
		c.Detail = fmt.Sprintf("installed, but a sandbox does not start (platform ptrace): %v: %s", err, strings.TrimSpace(string(out)))
		c.Fix = "runsc needs ptrace(2) and user namespaces (see the user namespaces check); inside a container, allow them (seccomp, capabilities), or use runc"
		return c
	}
	c.Detail += "; a sandbox starts (platform ptrace)"
	return c
}
