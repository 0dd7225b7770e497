// Package rttest lists the OCI runtimes tests run steps under: one list
// for the sandbox and engine tests alike.
package rttest

import (
	"github.com/accord-build/accord/internal/sandbox"
	"github.com/accord-build/accord/internal/testutil"
)

// Runtimes are the runtimes that run steps in this mode: runc and runsc,
// and crun as root only (see sandbox's TestCrunRootless for what non-root
// gets instead).
func Runtimes() []sandbox.Runtime {
	if testutil.IsRoot() {
		return []sandbox.Runtime{sandbox.Runc, sandbox.Crun, sandbox.Runsc}
	}
	return []sandbox.Runtime{sandbox.Runc, sandbox.Runsc}
}

// RuncLike are the runtimes of Runtimes that mount accord's own writable
// layer (overlays in the bundle) and run pods, sidecars and background
// containers: runc and crun. runsc has gVisor's overlay instead, and pods
// refuse it (a task with sidecars is refused under runsc).
func RuncLike() []sandbox.Runtime {
	var out []sandbox.Runtime
	for _, rt := range Runtimes() {
		if rt != sandbox.Runsc {
			out = append(out, rt)
		}
	}
	return out
}
