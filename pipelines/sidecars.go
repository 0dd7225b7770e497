package pipelines

import (
	"fmt"
	"regexp"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)

// checkSidecars refuses, by name, the sidecar fields accord cannot run
// with Tekton's semantics. Sidecars get: image (pinned, like steps'),
// script, command, args, env, workingDir, computeResources (the memory
// limit), ports (informational, as in Kubernetes: the task's loopback is
// shared anyway), imagePullPolicy (images are pinned and never pulled from
// a sandbox), readinessProbe with an exec handler, and the securityContext
// fields that say who it runs as (as a step's: checkSecurityContext).
func checkSidecars(p string, ts *v1.TaskSpec) error {
	seen := map[string]bool{}
	for i, s := range ts.Sidecars {
		sp := fmt.Sprintf("%ssidecars[%d].", p, i)
		if !dnsLabel.MatchString(s.Name) || len(s.Name) > 63 {
			return &Error{Field: sp + "name", Msg: fmt.Sprintf("sidecar name %q is not a Kubernetes container name", s.Name), Fix: "name the sidecar with lower-case letters, digits and '-' (at most 63, starting and ending with a letter or digit)"}
		}
		if seen[s.Name] {
			return &Error{Field: sp + "name", Msg: fmt.Sprintf("two sidecars are named %q", s.Name), Fix: "give each sidecar of the task its own name"}
		}
		seen[s.Name] = true
		if err := checkSidecar(sp, &s); err != nil {
			return err
		}
		for j, e := range s.Env {
			if e.ValueFrom != nil {
				return unsupported(fmt.Sprintf("%senv[%d].valueFrom", sp, j), "environment from Secrets, ConfigMaps or fields")
			}
		}
	}
	return nil
}

// dnsLabel is a Kubernetes container name (RFC 1123 label).
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func checkSidecar(sp string, s *v1.Sidecar) error {
	if err := checkSecurityContext(sp, s.SecurityContext); err != nil {
		return err
	}
	switch {
	case len(s.VolumeMounts) > 0:
		return unsupported(sp+"volumeMounts", "sidecar volume mounts (a sidecar shares the task's network, not its files)")
	case len(s.VolumeDevices) > 0:
		return unsupported(sp+"volumeDevices", "devices")
	case len(s.EnvFrom) > 0:
		return unsupported(sp+"envFrom", "environment from ConfigMaps or Secrets")
	case s.LivenessProbe != nil:
		return unsupported(sp+"livenessProbe", "liveness probes: accord never restarts a sidecar")
	case s.StartupProbe != nil:
		return unsupported(sp+"startupProbe", "startup probes (use readinessProbe: the steps start once it succeeds)")
	case s.RestartPolicy != nil:
		return unsupported(sp+"restartPolicy", "restarting sidecars")
	case s.Lifecycle != nil:
		return unsupported(sp+"lifecycle", "postStart and preStop hooks")
	case s.Stdin || s.StdinOnce || s.TTY:
		return unsupported(sp+"stdin", "interactive sidecars (stdin, stdinOnce, tty)")
	case s.TerminationMessagePath != "" || s.TerminationMessagePolicy != "":
		return unsupported(sp+"terminationMessagePath", "termination messages")
	case len(s.Workspaces) > 0:
		return unsupported(sp+"workspaces", "sidecar workspaces (a sidecar shares the task's network, not its files)")
	case s.ReadinessProbe != nil:
		return checkProbe(sp+"readinessProbe.", s)
	}
	return nil
}

func checkProbe(pp string, s *v1.Sidecar) error {
	h := s.ReadinessProbe.ProbeHandler
	switch {
	case h.HTTPGet != nil:
		return unsupported(pp+"httpGet", "HTTP probes: the host cannot reach into the task's network namespace (use an exec probe, e.g. a client command of the image)")
	case h.TCPSocket != nil:
		return unsupported(pp+"tcpSocket", "TCP probes: the host cannot reach into the task's network namespace (use an exec probe, e.g. nc -z 127.0.0.1 PORT)")
	case h.GRPC != nil:
		return unsupported(pp+"grpc", "gRPC probes: the host cannot reach into the task's network namespace (use an exec probe)")
	case h.Exec == nil || len(h.Exec.Command) == 0:
		return &Error{Field: pp + "exec.command", Msg: "a readiness probe needs an exec command", Fix: "give the probe `exec: {command: [...]}`, a command that exits 0 once the sidecar is ready"}
	case s.ReadinessProbe.TerminationGracePeriodSeconds != nil:
		return unsupported(pp+"terminationGracePeriodSeconds", "a probe's grace period (for liveness and startup probes only)")
	}
	return nil
}

// checkSidecarNetwork refuses a task that has sidecars and asks for the
// host's network ([NetworkAnnotation]): its sidecars and steps share a
// private loopback-only network namespace, which the host network would
// replace, and a sidecar listening on the host's loopback would be
// reachable by everything on the host and clash with its ports.
func checkSidecarNetwork(d *Definition) error {
	refuse := func(field string) error {
		return &Error{Field: field, Msg: fmt.Sprintf("a task with sidecars cannot have the %s annotation: sidecars and steps share a private loopback-only network, the host's network would replace it", NetworkAnnotation),
			Fix: "split the task: one with the network annotation that fetches, another with the sidecars that works offline on a workspace"}
	}
	if d.Task != nil {
		if NeedsNetwork(d.Task) && len(d.Task.Spec.Sidecars) > 0 {
			return refuse("spec.sidecars")
		}
		return nil
	}
	for i, pt := range allPipelineTasks(&d.Pipeline.Spec) {
		if ts := pt.TaskSpec; ts != nil && ts.Metadata.Annotations[NetworkAnnotation] == "true" && len(ts.Sidecars) > 0 {
			return refuse(taskPath(&d.Pipeline.Spec, i) + ".taskSpec.sidecars")
		}
	}
	return nil
}
