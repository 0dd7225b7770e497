// Package source fetches a build's source with real git, by exact commit,
// and derives SOURCE_DATE_EPOCH from the commit time.
package source
