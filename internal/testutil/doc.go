// Package testutil holds helpers shared by accord's tests: the busybox base
// image (built from its pinned Debian package, once per test binary), a
// layout store holding it, and checks for the OCI runtimes.
package testutil
