// Package serve is 'accord serve': the GitHub webhook server. Deliveries
// are checked and stored durably by package trigger's handler and package
// queue before GitHub gets its reply; a dispatcher turns each into build
// requests by the server's policy; a bounded pool of workers runs each
// request through the build service with the repository's builders,
// verifies what they agreed on against the repository's policy, signs its
// verification summary, and reports back to GitHub as a check run or a
// commit status. On start, and periodically, the server asks GitHub to
// redeliver what failed while it was away. It serves /healthz, /readyz,
// /metrics and a status page, and shuts down gracefully on SIGTERM:
// running builds get a grace period, then go back to the queue to run
// again from the start.
package serve
