package divergence

import (
	"bytes"
	"encoding/binary"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Cause is why two paths differ.
type Cause string

// Causes, most specific first.
const (
	// Timestamp: a date, time or epoch (in content or archive headers).
	Timestamp Cause = "timestamp"
	// BuildPath: the build's working path embedded in the output.
	BuildPath Cause = "build-path"
	// FileOrder: an archive lists the same members in another order.
	FileOrder Cause = "file-order"
	// Ordering: a file has the same lines in another order (map or hash
	// iteration order).
	Ordering Cause = "ordering"
	// ModeOwner: permission bits, uid/gid or owner names.
	ModeOwner Cause = "mode-owner"
	// Toolchain: a compiler or tool version.
	Toolchain Cause = "toolchain"
	// Content: anything else.
	Content Cause = "content"
	// Derived: digests and sizes that differ only because what they name
	// differs (manifests, configs).
	Derived Cause = "derived"
	// SBOM: the builders agree on the artifact's bytes but their SBOMs of
	// it differ: what they say it contains cannot both be true.
	SBOM Cause = "sbom"
	// Inputs: the builds resolved other inputs (step images, catalog
	// files, modules, source commit): they did not build the same thing.
	Inputs Cause = "inputs"
)

// normalizer rewrites the spans of one cause to a placeholder; two texts
// that differ only in that cause become equal.
type normalizer struct {
	cause Cause
	apply func(string) string
}

var (
	timeREs = []*regexp.Regexp{
		// date(1): Mon Nov 23 11:40:00 UTC 2026
		regexp.MustCompile(`(Mon|Tue|Wed|Thu|Fri|Sat|Sun),? +(\d{1,2} +)?(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)( +\d{1,2})? +\d{1,2}:\d{2}(:\d{2})?( +[A-Za-z+\-0-9:]+)?( +\d{4})?`),
		// ISO 8601 / RFC 3339
		regexp.MustCompile(`\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?( ?(Z|[+-]\d{2}:?\d{2}))?)?`),
		regexp.MustCompile(`\d{1,2}:\d{2}:\d{2}(\.\d+)?`),
	}
	// epochRE is a Unix time in s, ms, µs or ns; it counts only near the
	// builds' times.
	epochRE      = regexp.MustCompile(`\b1\d{9}(\d{3}|\d{6}|\d{9})?(\.\d+)?\b`)
	toolchainREs = []*regexp.Regexp{
		regexp.MustCompile(`\bgo1\.\d+(\.\d+)?([a-z]+\d*)?`),
		regexp.MustCompile(`\b(gcc|clang|rustc|javac|node|python)( version)? v?\d+(\.\d+)+\S*`),
	}
	digestRE = regexp.MustCompile(`\b(sha256:)?[0-9a-f]{64}\b`)
	sizeRE   = regexp.MustCompile(`"size": *\d+`)
)

func replaceAll(res []*regexp.Regexp, with string) func(string) string {
	return func(s string) string {
		for _, re := range res {
			s = re.ReplaceAllString(s, with)
		}
		return s
	}
}

// normalizers for the given build paths (longest first) and build times.
// Only the builders' own workspace roots count as build paths: any other
// path (or URL) that changed is a content change.
func normalizers(buildPaths []string, times []int64) []normalizer {
	paths := append([]string(nil), buildPaths...)
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	known := func(s string) string {
		for _, p := range paths {
			if p != "" && p != "/" {
				s = strings.ReplaceAll(s, p, "<BUILD>")
			}
		}
		return s
	}
	return []normalizer{
		{BuildPath, known},
		{Timestamp, func(s string) string {
			s = replaceAll(timeREs, "<TIME>")(s)
			return epochRE.ReplaceAllStringFunc(s, func(m string) string {
				if isTime(m, times) {
					return "<TIME>"
				}
				return m
			})
		}},
		{Toolchain, replaceAll(toolchainREs, "<VERSION>")},
		{Derived, func(s string) string {
			return sizeRE.ReplaceAllString(digestRE.ReplaceAllString(s, "<DIGEST>"), `"size": <N>`)
		}},
	}
}

// classifyText names the causes that explain a and b differing: a single
// normalizer that makes them equal, else the set of normalizers that
// together do, else content.
func classifyText(a, b string, ns []normalizer) []Cause {
	for _, n := range ns {
		if n.apply(a) == n.apply(b) {
			return []Cause{n.cause}
		}
	}
	var causes []Cause
	for _, n := range ns {
		na, nb := n.apply(a), n.apply(b)
		if na != a || nb != b {
			causes = appendCause(causes, n.cause)
		}
		a, b = na, nb
	}
	if a == b {
		return causes
	}
	return appendCause(causes, Content)
}

func appendCause(cs []Cause, c Cause) []Cause {
	for _, x := range cs {
		if x == c {
			return cs
		}
	}
	return append(cs, c)
}

// isText reports whether b looks like text.
func isText(b []byte) bool {
	head := b
	if len(head) > 8192 {
		head = head[:8192]
	}
	return utf8.Valid(head) && bytes.IndexByte(head, 0) < 0
}

// printable extracts runs of at least 6 printable ASCII bytes, one per line
// (like strings(1)), to compare binaries by their embedded text.
func printable(b []byte) []string {
	var out []string
	start := -1
	for i := 0; i <= len(b); i++ {
		if i < len(b) && b[i] >= 0x20 && b[i] < 0x7f {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && i-start >= 6 {
			out = append(out, string(b[start:i]))
		}
		start = -1
	}
	return out
}

// binaryTimestamp reports whether every differing byte of two equal-length
// buffers lies in an aligned 32-bit word that reads as a Unix time within
// two days of the builds' times on both sides (zip, gzip and object-file
// headers).
func binaryTimestamp(a, b []byte, times []int64) bool {
	found := false
	for i := 0; i < len(a); i++ {
		if a[i] == b[i] {
			continue
		}
		w := i &^ 3
		if w+4 > len(a) {
			return false
		}
		if !plausible(a[w:w+4], times) || !plausible(b[w:w+4], times) {
			return false
		}
		found = true
		i = w + 3
	}
	return found
}

func plausible(w []byte, times []int64) bool {
	for _, v := range []uint32{binary.LittleEndian.Uint32(w), binary.BigEndian.Uint32(w)} {
		if near(int64(v), times) {
			return true
		}
	}
	return false
}

// window is how far from a build's time a number may be to count as a
// timestamp.
const window = 2 * 24 * 3600

// isTime reports whether a decimal Unix time (s, ms, µs or ns; a fraction
// allowed) lies near one of times; with no times, in 2001 to 2033.
func isTime(s string, times []int64) bool {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 10 {
		s = s[:10]
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return false
	}
	if len(times) == 0 {
		return v >= 1_000_000_000 && v < 2_000_000_000
	}
	return near(v, times)
}

func near(v int64, times []int64) bool {
	for _, t := range times {
		if t > 0 && v >= t-window && v <= t+window {
			return true
		}
	}
	return false
}
