package ghapi

import (
	"fmt"
	"strings"

	"github.com/accord-build/accord/internal/queue"
)

// Limits on the failed steps' logs in a check run's text.
const (
	// LogLines is the most lines of one failed step's log shown.
	LogLines = 60
	// LogBytes is the most bytes of one failed step's log shown.
	LogBytes = 8 << 10
)

// summary is the check run's Markdown summary: the verdict, the run's
// identity, the artifacts, the per-task table and the links. Everything
// not ours (titles, refs, names) is escaped; it fits in [MaxOutput].
func summary(job *queue.Job, runURL string) string {
	var b strings.Builder
	rec := job.Record
	fmt.Fprintf(&b, "**%s**", md(title(job)))
	if rec != nil {
		fmt.Fprintf(&b, " · consensus: %s · verified: %s", yesNo(rec.Consensus), yesNo(rec.Verified))
	}
	b.WriteString("\n\n")
	req := job.Request
	if runURL != "" {
		fmt.Fprintf(&b, "Run [%s](%s)", md(job.ID), linkURL(runURL))
	} else {
		fmt.Fprintf(&b, "Run %s", md(job.ID))
	}
	fmt.Fprintf(&b, " · commit `%s` · %s", req.Commit, md(req.Ref))
	if rec != nil && rec.Pipeline != "" {
		fmt.Fprintf(&b, " · pipeline %s", md(rec.Pipeline))
	}
	if req.Untrusted {
		b.WriteString(" · **untrusted** (from a fork: built by the untrusted builders, never released)")
	}
	b.WriteString("\n")
	if req.Title != "" {
		fmt.Fprintf(&b, "\n> %s\n", md(truncate(req.Title, 300)))
	}
	if job.Error != "" {
		fmt.Fprintf(&b, "\n%s\n", md(truncate(job.Error, 2000)))
	}
	if rec != nil {
		writeRecord(&b, rec, runURL)
	}
	return truncate(b.String(), MaxOutput)
}

// writeRecord writes the reason, the artifacts, the tasks and the
// evidence links of a record.
func writeRecord(b *strings.Builder, rec *queue.Record, runURL string) {
	if rec.Reason != "" {
		fmt.Fprintf(b, "\n%s\n", md(truncate(rec.Reason, 4000)))
	}
	if len(rec.Builders) > 0 {
		names := make([]string, len(rec.Builders))
		for i, n := range rec.Builders {
			names[i] = md(n)
		}
		fmt.Fprintf(b, "\nBuilders: %s (the first is the primary)\n", strings.Join(names, ", "))
	}
	if len(rec.Artifacts) > 0 {
		b.WriteString("\n### Artifacts\n\n| artifact | digest | released |\n|---|---|---|\n")
		for _, a := range rec.Artifacts {
			fmt.Fprintf(b, "| %s | %s | %s |\n", md(a.Name), digest(a.Digest), yesNo(a.Released))
		}
	}
	if len(rec.Tasks) > 0 {
		b.WriteString("\n### Tasks\n\n| builder | task | status | seconds |\n|---|---|---|---:|\n")
		for _, t := range rec.Tasks {
			fmt.Fprintf(b, "| %s | %s | %s | %.1f |\n", md(t.Builder), md(t.Name), md(t.Status), t.Seconds)
		}
		fmt.Fprintf(b, "\nTotal: %.1f s\n", rec.Seconds)
	}
	if runURL == "" || len(rec.Evidence) == 0 {
		return
	}
	b.WriteString("\n### Evidence\n\n")
	for i, e := range rec.Evidence {
		about := ""
		if e.Artifact != "" {
			about = " of " + md(e.Artifact)
		}
		fmt.Fprintf(b, "- [%s%s](%s/evidence/%d)\n", md(e.Kind), about, linkURL(strings.TrimRight(runURL, "/")), i)
	}
}

// digest shows an algorithm:hex digest as code, anything else escaped.
func digest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || alg == "" || hex == "" || strings.ContainsFunc(d, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r == ':')
	}) {
		return md(d)
	}
	return "`" + d + "`"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// logsText is the check run's text: the tail of each failed step's log,
// in a code block each, within [MaxOutput]. The logs come masked from the
// server; they are cut here ([Tail]) after that.
func logsText(job *queue.Job) string {
	if job.Record == nil {
		return ""
	}
	var b strings.Builder
	const more = "\n_More on the run page._\n"
	for _, t := range job.Record.Tasks {
		for _, s := range t.Steps {
			if !failed(s) || s.Log == "" {
				continue
			}
			log := strings.ToValidUTF8(Tail(s.Log, LogLines, LogBytes), "\uFFFD")
			f := fence(log)
			part := fmt.Sprintf("#### %s / %s / %s (exit %d, last lines)\n\n%stext\n%s\n%s\n\n",
				md(t.Builder), md(t.Name), md(s.Name), s.ExitCode, f, strings.TrimSuffix(log, "\n"), f)
			if b.Len()+len(part)+len(more) > MaxOutput {
				b.WriteString(more)
				return b.String()
			}
			b.WriteString(part)
		}
	}
	return b.String()
}

// failed says whether a step failed: a nonzero exit or a failed or timed
// out status.
func failed(s queue.RecordStep) bool {
	st := strings.ToLower(s.Status)
	return s.ExitCode != 0 || strings.Contains(st, "fail") || strings.Contains(st, "timedout") || strings.Contains(st, "timed out") || st == "error"
}
