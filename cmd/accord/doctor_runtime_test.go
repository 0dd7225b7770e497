package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type doctorReport struct {
	OK     bool
	Checks []check
}

func doctorJSON(t *testing.T, args ...string) (doctorReport, int) {
	t.Helper()
	stdout, stderr, err := accord(t, append([]string{"doctor", "-o", "json", "--store", t.TempDir()}, args...)...)
	var rep doctorReport
	if exitCode(err) != exitUsage {
		if jerr := json.Unmarshal([]byte(stdout), &rep); jerr != nil {
			t.Fatalf("doctor -o json: %v\n%s\n%s", jerr, stdout, stderr)
		}
	}
	return rep, exitCode(err)
}

func checkNamed(rep doctorReport, name string) (check, bool) {
	for _, c := range rep.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return check{}, false
}

// TestDoctorRuntime: doctor checks runsc, optional unless --runtime asks
// for it, and starts a sandbox rather than only finding the binary.
func TestDoctorRuntime(t *testing.T) {
	t.Run("runsc installed and asked for", func(t *testing.T) {
		rep, code := doctorJSON(t, "--runtime", "runsc")
		c, ok := checkNamed(rep, "runsc")
		if !ok || !c.OK || c.Optional || !strings.Contains(c.Detail, "a sandbox starts") {
			t.Errorf("runsc check %+v (found %v), want a required, passing check that started a sandbox", c, ok)
		}
		if r, _ := checkNamed(rep, "runc"); r.Optional != true {
			t.Errorf("runc check %+v: want optional when only runsc is asked for", r)
		}
		if code != 0 || !rep.OK {
			t.Errorf("doctor exit %d, ok %v", code, rep.OK)
		}
	})
	t.Run("default: runsc optional", func(t *testing.T) {
		rep, _ := doctorJSON(t)
		if c, ok := checkNamed(rep, "runsc"); !ok || !c.Optional {
			t.Errorf("runsc check %+v (found %v), want an optional one", c, ok)
		}
		if c, _ := checkNamed(rep, "runc"); c.Optional {
			t.Errorf("runc check %+v: want it required by default", c)
		}
	})
	t.Run("unknown runtime", func(t *testing.T) {
		if _, code := doctorJSON(t, "--runtime", "kata"); code != exitUsage {
			t.Errorf("doctor --runtime kata: exit %d, want %d", code, exitUsage)
		}
	})
	// A runsc that is installed but cannot start a sandbox (as in a
	// container without ptrace) fails the check, with the fix.
	fake := t.TempDir()
	script := "#!/bin/sh\ncase \"$*\" in *--version*) echo 'runsc version fake'; exit 0;; esac\necho 'cannot ptrace' >&2; exit 1\n"
	if err := os.WriteFile(filepath.Join(fake, "runsc"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", fake+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
	}{
		{"broken runsc asked for", []string{"--runtime", "runsc"}, exitNotVerified},
		{"broken runsc not asked for", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, code := doctorJSON(t, tc.args...)
			c, _ := checkNamed(rep, "runsc")
			if c.OK || !strings.Contains(c.Detail, "cannot ptrace") || !strings.Contains(c.Fix, "ptrace") {
				t.Errorf("runsc check %+v: want a failure quoting runsc, with a fix", c)
			}
			if code != tc.wantCode {
				t.Errorf("doctor exit %d, want %d", code, tc.wantCode)
			}
		})
	}
}
