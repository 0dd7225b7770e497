package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/accord-build/accord/internal/serve"
	"github.com/accord-build/accord/internal/serve/config"
	"github.com/accord-build/accord/internal/store"
)

// check is one prerequisite.
type check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
	// Optional checks do not make doctor fail.
	Optional bool `json:"optional,omitempty"`
}

func newDoctorCmd() *cobra.Command {
	var out outputOptions
	var so storeOptions
	var serveConfig string
	var runtimes []string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this machine's prerequisites and say how to fix what is missing",
		Long: `Check what accord needs: an OCI runtime (runc; crun and runsc optional,
required with --runtime; runsc is also started once), git, user
namespaces (for rootless runs), cgroups (for memory limits), a writable store,
and the tools 'accord images build' uses (go, apt-get, dpkg-deb).
With --serve-config FILE, also what 'accord serve' needs: the config is
valid, its webhook secrets readable, the state directory writable, the
address free, the store open, every repository's pipeline, builders' keys
(ACCORD_PASSWORD) and policy loadable, and the GitHub App's key an RSA key.
Exit code 0 when everything required is there, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			checks, err := doctorChecks(cmd.Context(), so.ref, runtimes)
			if err != nil {
				return usageErr(err)
			}
			if serveConfig != "" {
				checks = append(checks, serveChecks(cmd.Context(), serveConfig)...)
			}
			ok := true
			for _, c := range checks {
				ok = ok && (c.OK || c.Optional)
			}
			if out.json() {
				if err := json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"ok": ok, "checks": checks}); err != nil {
					return err
				}
			} else {
				for _, c := range checks {
					mark := "ok  "
					if !c.OK {
						mark = "MISS"
						if c.Optional {
							mark = "opt "
						}
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s %-16s %s\n", mark, c.Name, c.Detail)
					if !c.OK && c.Fix != "" {
						fmt.Fprintf(cmd.OutOrStdout(), "     %-16s fix: %s\n", "", c.Fix)
					}
				}
			}
			if !ok {
				return &exitError{code: exitNotVerified, err: errSilent}
			}
			return nil
		},
	}
	out.AddFlags(cmd)
	so.AddFlags(cmd, "store to check")
	cmd.Flags().StringVar(&serveConfig, "serve-config", "", "also check the prerequisites of 'accord serve --config FILE'")
	cmd.Flags().StringSliceVar(&runtimes, "runtime", nil, "runtimes that must work: runc, crun, runsc (repeatable; default runc)")
	return cmd
}

func doctorChecks(ctx context.Context, storeRef string, runtimes []string) ([]check, error) {
	cs, err := runtimeChecks(ctx, runtimes)
	if err != nil {
		return nil, err
	}
	cs = append(cs, binCheck("git", []string{"--version"}, false, "apt-get install git"))
	cs = append(cs, userns())
	cs = append(cs, cgroups())
	cs = append(cs, storeCheck(storeRef))
	cs = append(cs, binCheck("go", []string{"version"}, true, "install Go (needed by 'accord images build' to fetch the pinned toolchain module)"))
	cs = append(cs, binCheck("apt-get", []string{"--version"}, true, "a Debian-based host (needed by 'accord images build' for the pinned busybox package)"))
	cs = append(cs, binCheck("dpkg-deb", []string{"--version"}, true, "apt-get install dpkg"))
	cs = append(cs, binCheck("taskset", []string{"--version"}, true, "apt-get install util-linux (needed for a builder's cpus variation)"))
	cs = append(cs, binCheck("diffoscope", []string{"--version"}, true, "apt-get install diffoscope-minimal (optional: full text diffs in divergence reports)"))
	return cs, nil
}

func binCheck(name string, args []string, optional bool, fix string) check {
	c := check{Name: name, Optional: optional, Fix: fix}
	p, err := exec.LookPath(name)
	if err != nil {
		c.Detail = "not found in PATH"
		return c
	}
	out, _ := exec.Command(p, args...).Output()
	c.OK, c.Detail = true, p+"  "+strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	return c
}

func userns() check {
	c := check{Name: "user namespaces", Optional: os.Geteuid() == 0, Fix: "sysctl -w kernel.unprivileged_userns_clone=1 (and user.max_user_namespaces > 0); needed for rootless runs"}
	b, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	if err != nil || strings.TrimSpace(string(b)) == "0" {
		c.Detail = "disabled (user.max_user_namespaces)"
		return c
	}
	if b, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(b)) == "0" {
		c.Detail = "unprivileged user namespaces disabled (kernel.unprivileged_userns_clone=0)"
		return c
	}
	c.OK, c.Detail = true, "available (rootless runs work)"
	return c
}

func cgroups() check {
	c := check{Name: "cgroups", Optional: true}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		c.OK, c.Detail = true, "cgroup v2"
	} else if _, err := os.Stat("/sys/fs/cgroup/memory"); err == nil {
		c.OK, c.Detail = true, "cgroup v1/hybrid (memory controller present)"
	} else {
		c.Detail, c.Fix = "no memory controller found", "mount cgroups; without them step memory limits are not enforced"
	}
	if c.OK && os.Geteuid() != 0 {
		c.Detail += "; rootless: memory limits are not enforced (no delegated cgroup)"
	}
	return c
}

func storeCheck(ref string) check {
	c := check{Name: "store"}
	st, err := store.Open(ref)
	if err != nil {
		c.Detail, c.Fix = err.Error(), "pass --store with a writable directory or HOST/REPO"
		return c
	}
	c.OK, c.Detail = true, st.String()
	return c
}

// serveChecks are the server's prerequisites.
func serveChecks(ctx context.Context, file string) []check {
	cfg, err := config.Load(file)
	if err != nil {
		c := check{Name: "serve config", Detail: err.Error()}
		var ce *config.Error
		if errors.As(err, &ce) {
			c.Detail, c.Fix = ce.File+": field "+ce.Field+": "+ce.Msg, ce.Fix
		}
		return []check{c}
	}
	out := []check{{Name: "serve config", OK: true, Detail: file}}
	for _, c := range serve.Preflight(ctx, cfg, os.Getenv) {
		out = append(out, check{Name: c.Name, OK: c.OK, Detail: c.Detail, Fix: c.Fix})
	}
	return out
}
