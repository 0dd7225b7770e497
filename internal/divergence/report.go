package divergence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// PredicateType is the in-toto predicate type of a divergence report.
const PredicateType = "https://accord.dev/attestations/divergence/v1"

// Side is one of the two compared artifacts.
type Side struct {
	Name    string `json:"name"`
	Digest  string `json:"digest"`
	Builder string `json:"builder,omitempty"`
}

// Report is the divergence report: the predicate of its attestation.
type Report struct {
	A           Side         `json:"a"`
	B           Side         `json:"b"`
	Identical   bool         `json:"identical"`
	Causes      []Cause      `json:"causes"`
	Differences []Difference `json:"differences"`
	// Error says why the comparison could not be completed; the builds
	// still disagree.
	Error string `json:"error,omitempty"`
	// Diffoscope is diffoscope's text diff, when it was available.
	Diffoscope *Diffoscope `json:"diffoscope,omitempty"`
}

// Diffoscope is what diffoscope said.
type Diffoscope struct {
	Output    string `json:"output"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Of reports a divergence that is not in the artifacts' bytes (their SBOMs
// or the builds' inputs differ): one difference per path, all of cause c.
func Of(a, b Side, c Cause, paths []string, detail string) *Report {
	r := &Report{A: a, B: b, Causes: []Cause{c}, Differences: []Difference{}}
	for _, p := range paths {
		r.Differences = append(r.Differences, Difference{Path: p, Causes: []Cause{c}, Detail: detail})
	}
	return r
}

// New compares two unpacked artifacts.
func New(a, b Side, ta, tb *Tree, h Hints) *Report {
	r := &Report{A: a, B: b, Differences: Compare(ta, tb, h)}
	if r.Differences == nil {
		r.Differences = []Difference{}
	}
	r.Identical = a.Digest != "" && a.Digest == b.Digest
	var all, explaining []Cause
	for _, d := range r.Differences {
		for _, c := range d.Causes {
			all = appendCause(all, c)
			if c != Derived {
				explaining = appendCause(explaining, c)
			}
		}
	}
	if len(explaining) == 0 {
		explaining = all
	}
	if explaining == nil {
		explaining = []Cause{}
	}
	sortCauses(explaining)
	r.Causes = explaining
	return r
}

// maxDiffoscope bounds the diffoscope output kept.
const maxDiffoscope = 64 << 10

// RunDiffoscope runs diffoscope (when installed) on the top-level files of
// both trees that differ; it returns nil when diffoscope is not installed.
func RunDiffoscope(ctx context.Context, ta, tb *Tree) (*Diffoscope, error) {
	bin, err := exec.LookPath("diffoscope")
	if err != nil {
		return nil, nil
	}
	dir, err := os.MkdirTemp("", "accord-diffoscope-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var out bytes.Buffer
	for i, p := range sortedUnion(ta.Entries, tb.Entries) {
		ea, eb := ta.Entries[p], tb.Entries[p]
		if strings.Contains(p, "!/") || ea == nil || eb == nil || bytes.Equal(ea.Data, eb.Data) {
			continue
		}
		// Files are named by index (and the entry's base name, which tells
		// diffoscope the format): entry names come from the artifacts.
		base := path.Base(path.Clean("/" + p))
		if base == "/" || base == "." || base == ".." {
			base = "file"
		}
		sub := strconv.Itoa(i)
		fa, fb := filepath.Join(dir, "a", sub, base), filepath.Join(dir, "b", sub, base)
		for _, f := range []struct {
			name string
			data []byte
		}{{fa, ea.Data}, {fb, eb.Data}} {
			if err := os.MkdirAll(filepath.Dir(f.name), 0o700); err != nil {
				return nil, err
			}
			if err := os.WriteFile(f.name, f.data, 0o600); err != nil {
				return nil, err
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		cmd := exec.CommandContext(cctx, bin, "--text", "-", "--no-progress", fa, fb)
		cmd.Dir = dir
		var o bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &o
		err := cmd.Run()
		cancel()
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
			fmt.Fprintf(&out, "diffoscope on %s failed: %v\n", p, err)
		}
		fmt.Fprintf(&out, "# %s\n", p)
		out.WriteString(strings.ReplaceAll(o.String(), dir+"/", ""))
	}
	d := &Diffoscope{Output: out.String()}
	if len(d.Output) > maxDiffoscope {
		d.Output, d.Truncated = d.Output[:maxDiffoscope], true
	}
	return d, nil
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "A: %s@%s", r.A.Name, r.A.Digest)
	if r.A.Builder != "" {
		fmt.Fprintf(w, "  (built by %s)", r.A.Builder)
	}
	fmt.Fprintf(w, "\nB: %s@%s", r.B.Name, r.B.Digest)
	if r.B.Builder != "" {
		fmt.Fprintf(w, "  (built by %s)", r.B.Builder)
	}
	fmt.Fprintln(w)
	if r.Error != "" {
		fmt.Fprintf(w, "the comparison is incomplete: %s\n", r.Error)
	}
	if len(r.Differences) == 0 {
		if r.Identical {
			fmt.Fprintln(w, "identical")
		} else {
			fmt.Fprintln(w, "no difference found in the unpacked contents")
		}
		return
	}
	fmt.Fprintf(w, "%d difference(s); cause(s): %s\n", len(r.Differences), joinCauses(r.Causes))
	for _, d := range r.Differences {
		fmt.Fprintf(w, "\n  %s  [%s]\n    %s\n", d.Path, joinCauses(d.Causes), d.Detail)
		for _, e := range d.Evidence {
			fmt.Fprintf(w, "    %s:\n      A: %q\n      B: %q\n", e.At, e.A, e.B)
		}
	}
	if r.Diffoscope != nil && r.Diffoscope.Output != "" {
		fmt.Fprintf(w, "\ndiffoscope:\n%s", r.Diffoscope.Output)
		if r.Diffoscope.Truncated {
			fmt.Fprintln(w, "[truncated]")
		}
	}
}

func joinCauses(cs []Cause) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}
