// Package trigger is the webhook intake of 'accord serve': it checks a
// delivery's signature (HMAC-SHA256, constant time, before anything else),
// reads GitHub's events, and decides from the server's policy, never from
// the repository's tree, which build requests a delivery makes: pushes to
// configured branches, tags and releases (resolved to their commit with
// git), pull requests (from forks only after a maintainer's
// "/ok-to-test <head sha>"), and reruns.
package trigger
