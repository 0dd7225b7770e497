package pipelines

import (
	corev1 "k8s.io/api/core/v1"
)

// checkSecurityContext accepts the parts of a step's securityContext that
// say who the step runs as (runAsUser, runAsGroup, runAsNonRoot: the local
// engine applies them as a pod does) and refuses the rest by name: the
// sandbox fixes capabilities, privileges and confinement itself.
func checkSecurityContext(p string, sc *corev1.SecurityContext) error {
	if sc == nil {
		return nil
	}
	refused := []struct {
		set        bool
		field, why string
	}{
		{sc.Privileged != nil && *sc.Privileged, "privileged", "privileged steps: a step never gets the host's devices or every capability"},
		{sc.AllowPrivilegeEscalation != nil && *sc.AllowPrivilegeEscalation, "allowPrivilegeEscalation", "privilege escalation: steps run with no_new_privs"},
		{sc.Capabilities != nil, "capabilities", "adding or dropping capabilities: the sandbox gives every step the same fixed set"},
		{sc.ProcMount != nil, "procMount", "an unmasked /proc"},
		{sc.SELinuxOptions != nil, "seLinuxOptions", "SELinux labels"},
		{sc.AppArmorProfile != nil, "appArmorProfile", "AppArmor profiles"},
		{sc.SeccompProfile != nil, "seccompProfile", "seccomp profiles: the runtime's default applies"},
		{sc.WindowsOptions != nil, "windowsOptions", "Windows containers"},
		{sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem, "readOnlyRootFilesystem", "a read-only root filesystem: every step gets a fresh writable layer, discarded when it ends"},
	}
	for _, r := range refused {
		if r.set {
			return unsupported(p+"securityContext."+r.field, r.why)
		}
	}
	return nil
}
