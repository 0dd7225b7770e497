// Package consensus decides a k-of-n vote between builders of the same
// request: which builders agree with the primary, whether enough distinct
// keys agree to release, which builds failed, what is released and which
// pairs of builds a divergence report should explain.
//
// [Decide] is a pure function of the builders' [Outcome]s: no I/O, no
// clock, no map order in its result. Both 'accord run --builders N' (a
// primary and its validators) and 'accord rebuild' (the recorded build and
// one rebuild) vote with it, so both follow one rule:
//
//   - A validator agrees when it produced exactly the primary's artifacts
//     with the same digests, the same SBOM digest for each (when both
//     recorded one) and the same resolved inputs (when both are known).
//     Any other succeeded validator dissents, and one dissent means no
//     consensus, whatever the threshold.
//   - A failed validator neither agrees nor dissents: it is listed in
//     [Decision.Failed] and does not count.
//   - Agreeing builders that sign with the key of an earlier agreeing
//     builder count once toward the threshold.
package consensus
