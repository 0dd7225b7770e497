// Package sandbox runs one step in a fresh OCI container with runc, crun or
// runsc (gVisor, a user-space kernel per step; see runsc.go for what differs):
// it unpacks the step image into a read-only rootfs, writes the bundle's
// config.json from the runtime-spec types, and invokes the runtime.
//
// The container gets a new PID, IPC, UTS, mount and (unless the step is
// allowed network) network namespace with loopback only; tmpfs at /tmp;
// only the binds it is given; an environment built from nothing; root in
// the container, or a user namespace mapping the calling user to root when
// accord runs unprivileged.
package sandbox
