// Package source fetches a build's source with real git, by exact commit,
// and derives SOURCE_DATE_EPOCH from the commit time. Repository locations
// and revisions are checked before git sees them ([ValidateURI],
// [ValidateRevision], [ValidateCommit]); every git command runs with
// [Hardening] (https, ssh, git and file transports only, no hooks) and
// ends its options with "--". A branch or tag is recorded by its full ref.
package source
