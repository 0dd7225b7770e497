// Package sandbox runs one step in a fresh OCI container with runc, crun or
// runsc (gVisor, a user-space kernel per step; see runsc.go for what
// differs): it unpacks the step image into a cache that no step changes,
// gives the step a root filesystem of that image under a fresh writable
// layer of its own (overlays the runtime mounts inside the container; see
// writableLayer; under runsc, gVisor's own overlay), writes the bundle's
// config.json from the runtime-spec types, and invokes the runtime.
//
// The container gets a new PID, IPC, UTS, mount and (unless the step is
// allowed network) network namespace with loopback only; tmpfs at /tmp;
// only the binds it is given; an environment built from nothing; root in
// the container (or the step's uid and gid, in a user namespace), or a user
// namespace mapping the calling user to root when accord runs
// unprivileged.
//
// A [Pod] gives several containers one network namespace (a task's
// sidecars, started in the background with [Runner.Start], and its
// steps), loopback only, as the containers of a Kubernetes pod share
// theirs; a watchdog process deletes a pod's containers if accord dies.
package sandbox
