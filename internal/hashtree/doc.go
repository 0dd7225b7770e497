// Package hashtree hashes every file of a directory tree with SHA-256, in
// parallel on all cores and streaming (constant memory per worker), without
// ever following a symlink: a symlink is recorded by the hash of its target
// text, so a link planted by a build step cannot make accord read, or
// attest, anything outside the tree.
package hashtree
