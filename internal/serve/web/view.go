package web

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/accord-build/accord/internal/queue"
	"github.com/accord-build/accord/internal/trigger"
)

// The views are what the templates see: plain strings and flags, every one
// of them text to html/template (none is template.HTML), so payload text
// is always escaped.

type page struct {
	Site    string // Options.Title
	Title   string // this page's title
	Home    string // link to the index
	Refresh int    // seconds; 0: none
}

type indexView struct {
	page
	Runs []runView
}

type errorView struct {
	page
	Code    int
	Message string
}

type runView struct {
	ID, URL, JSONURL string
	State            string
	Verdict          string
	Repo, Ref        string
	Commit, Short    string
	CommitURL        string
	Title            string
	Kind             string
	Untrusted        bool
	Sender           string
	Pipeline         string
	PipelineDigest   string
	Builders         string
	Artifacts        []artifactView
	Evidence         []evidenceView
	Created          string
	Started          string
	Finished         string
	NotBefore        string // a queued retry waits until then
	Duration         string
	Attempt          int
	Error            string
	Reason           string
	SupersededBy     string
	SupersededURL    string
	Rerun, RerunURL  string
	Consensus        string
	Verified         string
}

type artifactView struct {
	Name, Digest, Short string
	Released            bool
}

type evidenceView struct {
	Kind, Artifact, URL string
}

type detailView struct {
	page
	Run      runView
	Live     bool // queued or running
	Builders []builderView
}

type builderView struct {
	Name  string
	Tasks []taskView
}

type taskView struct {
	Name, Status, Duration string
	Steps                  []stepView
}

type stepView struct {
	Anchor, Name, Status, Duration string
	ExitCode                       int
	Log                            string
	Open                           bool
}

func (h *handler) page(title string) page {
	return page{Site: h.opts.Title, Title: title, Home: h.opts.Prefix + "/"}
}

func (h *handler) runURL(id string) string {
	return h.opts.Prefix + "/runs/" + url.PathEscape(id)
}

// runView is one run as the index and its page show it.
func (h *handler) runView(j *queue.Job) runView {
	q := j.Request
	v := runView{
		ID: j.ID, URL: h.runURL(j.ID), JSONURL: h.runURL(j.ID) + ".json",
		State: string(j.State),
		Repo:  q.Repo, Ref: q.Ref, Commit: q.Commit, Short: short(q.Commit, 7),
		CommitURL: commitURL(q.CloneURL, q.Commit),
		Title:     q.Title, Kind: kindText(q), Untrusted: q.Untrusted, Sender: q.Sender,
		Created: stamp(j.Created), Started: stamp(j.Started), Finished: stamp(j.Finished),
		Attempt: j.Attempt, Error: j.Error,
	}
	if j.State == queue.Queued {
		v.NotBefore = stamp(j.NotBefore)
	}
	if j.SupersededBy != "" {
		v.SupersededBy, v.SupersededURL = j.SupersededBy, h.runURL(j.SupersededBy)
		v.Verdict = "superseded by " + j.SupersededBy
	}
	if q.Rerun != "" {
		v.Rerun, v.RerunURL = q.Rerun, h.runURL(q.Rerun)
	}
	rec := j.Record
	if rec == nil {
		return v
	}
	if rec.Verdict != "" {
		v.Verdict = rec.Verdict
	}
	v.Pipeline, v.PipelineDigest = rec.Pipeline, rec.PipelineDigest
	v.Builders = strings.Join(rec.Builders, ", ")
	v.Duration = seconds(rec.Seconds)
	v.Reason = rec.Reason
	v.Consensus, v.Verified = yesNo(rec.Consensus), yesNo(rec.Verified)
	for _, a := range rec.Artifacts {
		v.Artifacts = append(v.Artifacts, artifactView{Name: a.Name, Digest: a.Digest, Short: shortDigest(a.Digest), Released: a.Released})
	}
	for i, e := range rec.Evidence {
		v.Evidence = append(v.Evidence, evidenceView{Kind: e.Kind, Artifact: e.Artifact, URL: v.URL + "/evidence/" + strconv.Itoa(i)})
	}
	return v
}

// detailView is a run's page: the run, and its tasks grouped by builder,
// the primary first.
func (h *handler) detailView(j *queue.Job) detailView {
	v := detailView{page: h.page("Run " + j.ID), Run: h.runView(j), Live: !j.State.Final()}
	if v.Live {
		v.Refresh = h.refresh()
	}
	if j.Record == nil {
		return v
	}
	index := map[string]int{}
	add := func(name string) int {
		if i, ok := index[name]; ok {
			return i
		}
		index[name] = len(v.Builders)
		v.Builders = append(v.Builders, builderView{Name: name})
		return index[name]
	}
	for _, b := range j.Record.Builders {
		add(b)
	}
	for ti, t := range j.Record.Tasks {
		b := &v.Builders[add(t.Builder)]
		tv := taskView{Name: t.Name, Status: t.Status, Duration: seconds(t.Seconds)}
		for si, s := range t.Steps {
			tv.Steps = append(tv.Steps, stepView{
				Anchor: fmt.Sprintf("t%d-s%d", ti, si), Name: s.Name, Status: s.Status,
				Duration: seconds(s.Seconds), ExitCode: s.ExitCode, Log: s.Log,
				Open: s.Log != "" && (s.ExitCode != 0 || failed(s.Status)),
			})
		}
		b.Tasks = append(b.Tasks, tv)
	}
	return v
}

// failed says whether a task's or step's status is a failure.
func failed(status string) bool {
	switch strings.ToLower(status) {
	case "failed", "failure", "error", "errored", "timeout", "cancelled":
		return true
	}
	return false
}

func kindText(q trigger.Request) string {
	s := string(q.Kind)
	switch q.Kind {
	case trigger.KindPullRequest:
		s = "pull request #" + strconv.Itoa(q.PullRequest)
	case "":
		s = "build"
	}
	if q.Untrusted {
		s += " (untrusted: not released)"
	}
	return s
}

// stamp is a time of the server's clock, in UTC, RFC 3339; "" when unset.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// seconds formats a duration measured in seconds: 0.4s, 12.3s, 2m03s,
// 1h02m03s.
func seconds(s float64) string {
	if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 {
		return ""
	}
	if s < 60 {
		return strconv.FormatFloat(s, 'f', 1, 64) + "s"
	}
	d := int64(math.Round(s))
	h, m, sec := d/3600, d/60%60, d%60
	if h > 0 {
		return fmt.Sprintf("%dh%02dm%02ds", h, m, sec)
	}
	return fmt.Sprintf("%dm%02ds", m, sec)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// shortDigest keeps the algorithm and 12 hex digits: sha256:0123456789ab.
func shortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok {
		return short(d, 19)
	}
	return alg + ":" + short(hex, 12)
}

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// commitURL links a commit on its forge: only for an https clone URL with
// no credentials, query or fragment, and a full hex SHA; "" otherwise.
func commitURL(cloneURL, commit string) string {
	if !fullSHA.MatchString(commit) {
		return ""
	}
	u, err := url.Parse(cloneURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return ""
	}
	p := strings.TrimSuffix(strings.TrimRight(u.Path, "/"), ".git")
	if strings.Count(p, "/") < 2 {
		return ""
	}
	return (&url.URL{Scheme: "https", Host: u.Host, Path: p + "/commit/" + commit}).String()
}
