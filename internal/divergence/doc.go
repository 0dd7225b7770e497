// Package divergence explains why two builds of the same thing differ: it
// unpacks both artifacts (OCI images, tar, gzip and zip archives, nested),
// lists every differing path and classifies each difference — timestamp,
// embedded build path, file order, ordering of output, mode/owner,
// toolchain version, or content — with the differing bytes in context as
// evidence. A [Report] becomes a signed in-toto statement of its own
// predicate type ([PredicateType]).
package divergence
