package engine

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Variation is how a builder's build environment is set up, after
// reprotest: validators vary it on purpose so that agreement with the
// primary proves reproducibility rather than a shared environment. The zero
// value is accord's default environment; see [DefaultVariation].
//
// The host clock is not among the dimensions: Linux cannot shift a
// container's wall clock (time namespaces cover only the monotonic and boot
// clocks) and faketime cannot reach statically linked tools. Validators run
// at another time anyway, and in another timezone.
type Variation struct {
	// WorkspaceRoot is where workspaces are mounted ($(workspaces.NAME.path)
	// is WorkspaceRoot/NAME for workspaces without a mountPath). Default
	// /workspace, Tekton's.
	WorkspaceRoot string `json:"workspaceRoot,omitempty"`
	// Hostname of the sandbox. Default "accord".
	Hostname string `json:"hostname,omitempty"`
	// UID and GID the steps run as. Default 0 (root in the container). A
	// step that names its own user (securityContext runAsUser/runAsGroup,
	// or its image's User) runs as that one instead: the task's explicit
	// user wins.
	UID int `json:"uid,omitempty"`
	GID int `json:"gid,omitempty"`
	// Umask of the steps, octal. Default "0022".
	Umask string `json:"umask,omitempty"`
	// Timezone is the TZ of the steps: a zone name or a POSIX TZ string
	// ("NPT-5:45"). Default "UTC".
	Timezone string `json:"timezone,omitempty"`
	// CPUs bounds the CPUs the steps see (CPU affinity, so nproc and Go's
	// runtime.NumCPU follow). Default 0: all of the host's.
	CPUs int `json:"cpus,omitempty"`
	// EnvOrder is the order of the steps' environment: "sorted" (default)
	// or "reversed".
	EnvOrder string `json:"envOrder,omitempty"`
}

// DefaultVariation is accord's default environment.
func DefaultVariation() Variation {
	return Variation{WorkspaceRoot: "/workspace", Hostname: "accord", Umask: "0022", Timezone: "UTC", EnvOrder: "sorted"}
}

// WithDefaults fills unset fields with [DefaultVariation]'s.
func (v Variation) WithDefaults() Variation {
	d := DefaultVariation()
	if v.WorkspaceRoot == "" {
		v.WorkspaceRoot = d.WorkspaceRoot
	}
	if v.Hostname == "" {
		v.Hostname = d.Hostname
	}
	if v.Umask == "" {
		v.Umask = d.Umask
	}
	if v.Timezone == "" {
		v.Timezone = d.Timezone
	}
	if v.EnvOrder == "" {
		v.EnvOrder = d.EnvOrder
	}
	return v
}

var (
	hostnameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	tzRE       = regexp.MustCompile(`^[A-Za-z0-9_+:/<>,.-]{1,64}$`)
	// reservedRoots are container paths the sandbox uses for itself.
	reservedRoots = []string{"/", "/tmp", "/tekton", "/proc", "/dev", "/sys", "/etc", "/bin", "/sbin", "/usr", "/lib", "/lib32",
		"/lib64", "/libx32", "/var", "/opt", "/root", "/run", "/home", "/srv", "/boot", "/mnt", "/media"}
)

// Validate checks each field; the error names the field and the fix.
func (v Variation) Validate() error {
	v = v.WithDefaults()
	r := v.WorkspaceRoot
	if !path.IsAbs(r) || path.Clean(r) != r {
		return fmt.Errorf("workspaceRoot %q: want a clean absolute path such as /build/ws", r)
	}
	for _, res := range reservedRoots {
		if r == res || (res != "/" && strings.HasPrefix(r, res+"/")) {
			return fmt.Errorf("workspaceRoot %q: %s is the sandbox's own\n  fix: use a path such as /build/ws or /workspace", r, res)
		}
	}
	if !hostnameRE.MatchString(v.Hostname) {
		return fmt.Errorf("hostname %q: want a DNS label (lowercase letters, digits, '-')", v.Hostname)
	}
	if v.UID < 0 || v.UID > 65533 || v.GID < 0 || v.GID > 65533 {
		return fmt.Errorf("uid/gid %d/%d: want 0 to 65533", v.UID, v.GID)
	}
	if (v.UID == 0) != (v.GID == 0) {
		return fmt.Errorf("uid %d, gid %d: give both or neither a non-root id", v.UID, v.GID)
	}
	if _, err := v.UmaskBits(); err != nil {
		return err
	}
	if !tzRE.MatchString(v.Timezone) {
		return fmt.Errorf("timezone %q: want a zone name (Asia/Kathmandu) or a POSIX TZ string (NPT-5:45)", v.Timezone)
	}
	if v.CPUs < 0 || v.CPUs > 4096 {
		return fmt.Errorf("cpus %d: want 0 (all) or a count", v.CPUs)
	}
	if v.EnvOrder != "sorted" && v.EnvOrder != "reversed" {
		return fmt.Errorf("envOrder %q: want sorted or reversed", v.EnvOrder)
	}
	return nil
}

// UmaskBits parses Umask.
func (v Variation) UmaskBits() (uint32, error) {
	s := v.WithDefaults().Umask
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return 0, fmt.Errorf("umask %q: want an octal mask such as \"0022\" (quote it in YAML)", s)
	}
	return uint32(n), nil
}

// Differences names the dimensions in which v and o differ.
func (v Variation) Differences(o Variation) []string {
	a, b := v.WithDefaults(), o.WithDefaults()
	var out []string
	add := func(name string, differ bool) {
		if differ {
			out = append(out, name)
		}
	}
	ua, _ := a.UmaskBits()
	ub, _ := b.UmaskBits()
	add("workspaceRoot", a.WorkspaceRoot != b.WorkspaceRoot)
	add("hostname", a.Hostname != b.Hostname)
	add("uid/gid", a.UID != b.UID || a.GID != b.GID)
	add("umask", ua != ub)
	add("timezone", a.Timezone != b.Timezone)
	add("cpus", a.CPUs != b.CPUs)
	add("envOrder", a.EnvOrder != b.EnvOrder)
	return out
}
