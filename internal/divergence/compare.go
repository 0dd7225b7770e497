package divergence

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// Evidence is the differing bytes of one spot, in context.
type Evidence struct {
	// At says where: "line 3", "byte 0x1f0", or a header field.
	At string `json:"at"`
	A  string `json:"a"`
	B  string `json:"b"`
}

// Difference is one differing path and why it differs.
type Difference struct {
	Path     string     `json:"path"`
	Causes   []Cause    `json:"causes"`
	Detail   string     `json:"detail"`
	Evidence []Evidence `json:"evidence,omitempty"`
}

// Hints are what the builds' provenance says about how they differ.
type Hints struct {
	// BuildPaths are the builders' workspace roots and other paths they
	// are known to have built under.
	BuildPaths []string
	// DependenciesA and DependenciesB map each build's resolved
	// dependencies (name to digest); a difference is a toolchain cause.
	// Compared only when both are known.
	DependenciesA, DependenciesB map[string]string
	// Times are the builds' times (Unix seconds: start, finish,
	// SOURCE_DATE_EPOCH). A number or binary word counts as a timestamp
	// only within two days of one of them.
	Times []int64
}

// maxEvidence bounds the evidence kept per path.
const maxEvidence = 8

// Compare lists every path in which a and b differ, classified.
func Compare(a, b *Tree, h Hints) []Difference {
	ns := normalizers(h.BuildPaths, h.Times)
	var out []Difference
	deps := sortedUnion(h.DependenciesA, h.DependenciesB)
	if h.DependenciesA == nil || h.DependenciesB == nil {
		deps = nil
	}
	for _, name := range deps {
		da, db := h.DependenciesA[name], h.DependenciesB[name]
		if da != db {
			out = append(out, Difference{Path: "provenance: resolvedDependencies " + name, Causes: []Cause{Toolchain},
				Detail: "the builds used different inputs", Evidence: []Evidence{{At: "digest", A: orNone(da), B: orNone(db)}}})
		}
	}
	paths := sortedUnion(a.Entries, b.Entries)
	var archives []string
	for _, p := range paths {
		ea, eb := a.Entries[p], b.Entries[p]
		switch {
		case ea == nil:
			out = append(out, Difference{Path: p, Causes: []Cause{Content}, Detail: "only in B"})
			continue
		case eb == nil:
			out = append(out, Difference{Path: p, Causes: []Cause{Content}, Detail: "only in A"})
			continue
		case ea.Kind != eb.Kind:
			out = append(out, Difference{Path: p, Causes: []Cause{Content}, Detail: fmt.Sprintf("a %s in A, a %s in B", ea.Kind, eb.Kind)})
			continue
		}
		if d, ok := compareMeta(p, ea, eb); ok {
			out = append(out, d)
		}
		if ea.Link != eb.Link {
			out = append(out, Difference{Path: p, Causes: classifyText(ea.Link, eb.Link, ns), Detail: "link targets differ",
				Evidence: []Evidence{{At: "link", A: ea.Link, B: eb.Link}}})
		}
		if ea.Digest == eb.Digest && bytes.Equal(ea.Data, eb.Data) {
			continue
		}
		if ea.Archive && eb.Archive {
			archives = append(archives, p)
			out = append(out, compareArchive(p, a, b)...)
			continue
		}
		if bytes.Equal(ea.Data, eb.Data) {
			out = append(out, Difference{Path: p, Causes: []Cause{Content}, Detail: fmt.Sprintf("differs after the first %d bytes (sha256 %s vs %s)", maxEntryData, ea.Digest, eb.Digest)})
			continue
		}
		out = append(out, compareData(p, ea, eb, h.Times, ns))
	}
	// An archive whose bytes differ while nothing in it was found to: the
	// difference is in what was not compared (padding, trailing bytes,
	// unparsed headers). It is reported, never dropped.
	for _, p := range archives {
		if !explained(out, p) {
			out = append(out, Difference{Path: p, Causes: []Cause{Content}, Detail: "archive bytes differ outside the members compared",
				Evidence: byteEvidence(a.Entries[p].Data, b.Entries[p].Data)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func explained(ds []Difference, p string) bool {
	for _, d := range ds {
		if d.Path == p || strings.HasPrefix(d.Path, p+"!/") {
			return true
		}
	}
	return false
}

// compareMeta compares what archives record about a member.
func compareMeta(p string, a, b *Entry) (Difference, bool) {
	var ev []Evidence
	var causes []Cause
	if a.Mode != b.Mode {
		ev = append(ev, Evidence{At: "mode", A: fmt.Sprintf("%04o", a.Mode), B: fmt.Sprintf("%04o", b.Mode)})
		causes = appendCause(causes, ModeOwner)
	}
	if a.UID != b.UID || a.GID != b.GID || a.Owner != b.Owner {
		ev = append(ev, Evidence{At: "owner", A: fmt.Sprintf("%d:%d %s", a.UID, a.GID, a.Owner), B: fmt.Sprintf("%d:%d %s", b.UID, b.GID, b.Owner)})
		causes = appendCause(causes, ModeOwner)
	}
	if a.Extra != b.Extra {
		ev = append(ev, Evidence{At: "header records (xattrs, capabilities, devices)", A: a.Extra, B: b.Extra})
		causes = appendCause(causes, ModeOwner)
	}
	if a.ModTime != b.ModTime {
		ev = append(ev, Evidence{At: "mtime", A: fmt.Sprint(a.ModTime), B: fmt.Sprint(b.ModTime)})
		causes = appendCause(causes, Timestamp)
	}
	if len(ev) == 0 {
		return Difference{}, false
	}
	return Difference{Path: p, Causes: causes, Detail: "archive header differs", Evidence: ev}, true
}

// compareArchive explains an archive whose members were compared on their
// own: member order, header notes, or bytes outside the members.
func compareArchive(p string, a, b *Tree) []Difference {
	var out []Difference
	if i, x, y, ok := firstOrderDifference(a.Orders[p], b.Orders[p]); ok {
		out = append(out, Difference{Path: p, Causes: []Cause{FileOrder}, Detail: "the same members in another order",
			Evidence: []Evidence{{At: fmt.Sprintf("member %d", i), A: x, B: y}}})
	}
	na, nb := a.Notes[p], b.Notes[p]
	for _, k := range sortedUnion(na, nb) {
		if na[k] != nb[k] {
			c := Content
			if strings.Contains(k, "mtime") && isTime(na[k], nil) && isTime(nb[k], nil) {
				c = Timestamp
			}
			out = append(out, Difference{Path: p, Causes: []Cause{c}, Detail: k + " differs", Evidence: []Evidence{{At: k, A: na[k], B: nb[k]}}})
		}
	}
	return out
}

// firstOrderDifference compares the order of the members both lists have.
func firstOrderDifference(a, b []string) (int, string, string, bool) {
	inB := map[string]bool{}
	for _, x := range b {
		inB[x] = true
	}
	inA := map[string]bool{}
	for _, x := range a {
		inA[x] = true
	}
	var ca, cb []string
	for _, x := range a {
		if inB[x] {
			ca = append(ca, x)
		}
	}
	for _, x := range b {
		if inA[x] {
			cb = append(cb, x)
		}
	}
	for i := range ca {
		if ca[i] != cb[i] {
			return i, ca[i], cb[i], true
		}
	}
	return 0, "", "", false
}

// compareData classifies two differing file contents.
func compareData(p string, ea, eb *Entry, times []int64, ns []normalizer) Difference {
	a, b := ea.Data, eb.Data
	if !isImageMetadata(p) {
		ns = withoutDerived(ns)
	}
	if isText(a) && isText(b) {
		la, lb := lines(string(a)), lines(string(b))
		// Reordered lines are output order only in data: in a script or
		// an executable, order is meaning.
		data := ea.Mode&0o111 == 0 && eb.Mode&0o111 == 0 && !bytes.HasPrefix(a, []byte("#!")) && !bytes.HasPrefix(b, []byte("#!"))
		if data && len(la) > 1 && sameMultiset(la, lb) {
			i := 0
			for i < len(la) && la[i] == lb[i] {
				i++
			}
			return Difference{Path: p, Causes: []Cause{Ordering}, Detail: "the same lines in another order (map or hash iteration order?)",
				Evidence: []Evidence{{At: fmt.Sprintf("line %d", i+1), A: clip(la[i]), B: clip(lb[i])}}}
		}
		d := compareLines(p, la, lb, ns, "line")
		d.Detail = "text differs: " + d.Detail
		return d
	}
	sa, sb := printable(a), printable(b)
	if !equalStrings(sa, sb) {
		d := compareLines(p, sa, sb, ns, "string")
		d.Detail = fmt.Sprintf("binary (%d vs %d bytes); its embedded strings differ: %s", len(a), len(b), d.Detail)
		return d
	}
	d := Difference{Path: p, Causes: []Cause{Content}}
	if len(a) == len(b) && binaryTimestamp(a, b, times) {
		d.Causes = []Cause{Timestamp}
	}
	d.Detail = fmt.Sprintf("binary (%d vs %d bytes); differing bytes", len(a), len(b))
	d.Evidence = byteEvidence(a, b)
	return d
}

// compareLines diffs two line lists and classifies every hunk.
func compareLines(p string, a, b []string, ns []normalizer, unit string) Difference {
	hunks := diffLines(a, b)
	d := Difference{Path: p, Detail: fmt.Sprintf("%d differing hunk(s)", len(hunks))}
	for _, h := range hunks {
		ta, tb := strings.Join(a[h.a0:h.a1], "\n"), strings.Join(b[h.b0:h.b1], "\n")
		for _, c := range classifyText(ta, tb, ns) {
			d.Causes = appendCause(d.Causes, c)
		}
		if len(d.Evidence) < maxEvidence {
			ea, eb := excerpt(ta, tb)
			d.Evidence = append(d.Evidence, Evidence{At: fmt.Sprintf("%s %d", unit, h.a0+1), A: ea, B: eb})
		}
	}
	if len(d.Causes) == 0 {
		d.Causes = []Cause{Content}
	}
	sortCauses(d.Causes)
	return d
}

type hunk struct{ a0, a1, b0, b1 int }

// diffLines returns the differing hunks of a and b: an LCS alignment when
// it is small enough, else the span between the common prefix and suffix.
func diffLines(a, b []string) []hunk {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	if len(ma)*len(mb) > 4_000_000 || len(ma) == 0 || len(mb) == 0 {
		return []hunk{{pre, len(a) - suf, pre, len(b) - suf}}
	}
	// lcs[i][j] is the LCS length of ma[i:] and mb[j:].
	n, m := len(ma), len(mb)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if ma[i] == mb[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []hunk
	i, j := 0, 0
	open := false
	var cur hunk
	for i < n || j < m {
		if i < n && j < m && ma[i] == mb[j] {
			if open {
				cur.a1, cur.b1 = pre+i, pre+j
				out = append(out, cur)
				open = false
			}
			i++
			j++
			continue
		}
		if !open {
			cur = hunk{a0: pre + i, b0: pre + j}
			open = true
		}
		if j >= m || (i < n && lcs[i+1][j] >= lcs[i][j+1]) {
			i++
		} else {
			j++
		}
	}
	if open {
		cur.a1, cur.b1 = pre+i, pre+j
		out = append(out, cur)
	}
	return out
}

// excerpt cuts a and b to the first differing position with context.
func excerpt(a, b string) (string, string) {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	start := max(0, i-40)
	cut := func(s string) string {
		if start > len(s) {
			return ""
		}
		end := min(len(s), i+80)
		pre := ""
		if start > 0 {
			pre = "…"
		}
		post := ""
		if end < len(s) {
			post = "…"
		}
		return pre + s[start:end] + post
	}
	return cut(a), cut(b)
}

// byteEvidence shows the first differing bytes in hex, with context.
func byteEvidence(a, b []byte) []Evidence {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	start := max(0, i-8)
	hx := func(s []byte) string {
		end := min(len(s), i+24)
		if start >= end {
			return ""
		}
		return fmt.Sprintf("% x", s[start:end])
	}
	return []Evidence{{At: fmt.Sprintf("byte 0x%x", i), A: hx(a), B: hx(b)}}
}

func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

func clip(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

func sameMultiset(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	sa, sb := append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(sa)
	sort.Strings(sb)
	return equalStrings(sa, sb)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sortedUnion[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	var out []string
	for k := range a {
		seen[k] = true
		out = append(out, k)
	}
	for k := range b {
		if !seen[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// isImageMetadata reports whether p is an image's manifest or config, where
// digests and sizes follow from the layers.
func isImageMetadata(p string) bool { return p == "manifest.json" || p == "config.json" }

func withoutDerived(ns []normalizer) []normalizer {
	out := make([]normalizer, 0, len(ns))
	for _, n := range ns {
		if n.cause != Derived {
			out = append(out, n)
		}
	}
	return out
}

var causeRank = map[Cause]int{Timestamp: 0, BuildPath: 1, FileOrder: 2, Ordering: 3, ModeOwner: 4, Toolchain: 5, Content: 6, Derived: 7, SBOM: 8, Inputs: 9}

func sortCauses(cs []Cause) {
	sort.Slice(cs, func(i, j int) bool { return causeRank[cs[i]] < causeRank[cs[j]] })
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
