package fakegithub

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxOutput is GitHub's limit on a check run's output summary and text
// (65,535 characters each).
const MaxOutput = 65535

// MaxDescription is GitHub's limit on a commit status description.
const MaxDescription = 140

// CheckRun is a check run as the fake holds it: its latest state.
type CheckRun struct {
	ID          int64
	Repo        string
	Name        string
	HeadSHA     string
	Status      string
	Conclusion  string
	ExternalID  string
	DetailsURL  string
	StartedAt   string
	CompletedAt string
	Title       string
	Summary     string
	Text        string
	// Updates counts the PATCHes it received.
	Updates int
}

// checkRunBody is what create and update accept (the fields go-github
// sends); pointers tell absent from empty.
type checkRunBody struct {
	Name        *string         `json:"name"`
	HeadSHA     *string         `json:"head_sha"`
	DetailsURL  *string         `json:"details_url"`
	ExternalID  *string         `json:"external_id"`
	Status      *string         `json:"status"`
	Conclusion  *string         `json:"conclusion"`
	StartedAt   *string         `json:"started_at"`
	CompletedAt *string         `json:"completed_at"`
	Output      *checkRunOutput `json:"output"`
	Actions     []checkRunAct   `json:"actions"`
}

type checkRunOutput struct {
	Title       *string `json:"title"`
	Summary     *string `json:"summary"`
	Text        *string `json:"text"`
	Annotations []any   `json:"annotations"`
	Images      []any   `json:"images"`
}

type checkRunAct struct {
	Label       string `json:"label"`
	Description string `json:"description"`
	Identifier  string `json:"identifier"`
}

var (
	checkStatuses    = []string{"queued", "in_progress", "completed"}
	checkConclusions = []string{"action_required", "cancelled", "failure", "neutral", "success", "skipped", "timed_out"}
)

// validate checks a check run body as GitHub does; create says whether
// name and head_sha are required.
func (b *checkRunBody) validate(create bool) error {
	if create && (b.Name == nil || *b.Name == "") {
		return fmt.Errorf("name is required")
	}
	if b.Name != nil && *b.Name == "" {
		return fmt.Errorf("name must not be empty")
	}
	if create && (b.HeadSHA == nil || !isSHA(*b.HeadSHA)) {
		return fmt.Errorf("head_sha must be a full 40-hex commit SHA, got %q", deref(b.HeadSHA))
	}
	if !create && b.HeadSHA != nil {
		return fmt.Errorf("head_sha cannot be changed by an update")
	}
	if b.Status != nil && !slices.Contains(checkStatuses, *b.Status) {
		return fmt.Errorf("status %q is not one of %v (waiting, requested and pending are for GitHub Actions only)", *b.Status, checkStatuses)
	}
	if b.Conclusion != nil && !slices.Contains(checkConclusions, *b.Conclusion) {
		return fmt.Errorf("conclusion %q is not one of %v", *b.Conclusion, checkConclusions)
	}
	if (deref(b.Status) == "completed" || b.CompletedAt != nil) && b.Conclusion == nil {
		return fmt.Errorf("conclusion is required when status is completed or completed_at is set")
	}
	for name, ts := range map[string]*string{"started_at": b.StartedAt, "completed_at": b.CompletedAt} {
		if ts != nil {
			if _, err := time.Parse(time.RFC3339, *ts); err != nil {
				return fmt.Errorf("%s %q is not an ISO 8601 timestamp", name, *ts)
			}
		}
	}
	if b.DetailsURL != nil && !isHTTPURL(*b.DetailsURL) {
		return fmt.Errorf("details_url %q is not an http(s) URL", *b.DetailsURL)
	}
	if err := b.Output.validate(); err != nil {
		return err
	}
	return validateActions(b.Actions)
}

func (o *checkRunOutput) validate() error {
	if o == nil {
		return nil
	}
	if o.Title == nil || *o.Title == "" || o.Summary == nil || *o.Summary == "" {
		return fmt.Errorf("output needs a title and a summary")
	}
	for name, v := range map[string]*string{"output.summary": o.Summary, "output.text": o.Text, "output.title": o.Title} {
		if v != nil && utf8.RuneCountInString(*v) > MaxOutput {
			return fmt.Errorf("%s is %d characters: over GitHub's %d", name, utf8.RuneCountInString(*v), MaxOutput)
		}
		if v != nil && !utf8.ValidString(*v) {
			return fmt.Errorf("%s is not valid UTF-8", name)
		}
	}
	if len(o.Annotations) > 50 {
		return fmt.Errorf("output.annotations has %d entries: at most 50 per request", len(o.Annotations))
	}
	return nil
}

func validateActions(acts []checkRunAct) error {
	if len(acts) > 3 {
		return fmt.Errorf("actions has %d entries: at most 3", len(acts))
	}
	for i, a := range acts {
		if a.Label == "" || len(a.Label) > 20 || a.Description == "" || len(a.Description) > 40 || a.Identifier == "" || len(a.Identifier) > 20 {
			return fmt.Errorf("actions[%d]: label ≤ 20, description ≤ 40, identifier ≤ 20 characters, all required", i)
		}
	}
	return nil
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// checksAuth refuses anything but an installation token: only GitHub Apps
// write check runs.
func (s *Server) checksAuth(r *request) bool {
	if r.call.Auth == AuthInstallation {
		return true
	}
	msg := "You must authenticate via a GitHub App."
	if r.call.Auth == AuthNone {
		s.refuse(r, http.StatusUnauthorized, "Requires authentication: "+msg)
	} else {
		s.refuse(r, http.StatusForbidden, fmt.Sprintf("Resource not accessible with %s credentials: %s", r.call.Auth, msg))
	}
	return false
}

// createCheckRun serves POST /repos/{o}/{r}/check-runs.
func (s *Server) createCheckRun(r *request) {
	var b checkRunBody
	if !s.checksAuth(r) || !s.decode(r, &b) {
		return
	}
	if err := b.validate(true); err != nil {
		s.refuse(r, http.StatusUnprocessableEntity, "Validation Failed: "+err.Error())
		return
	}
	s.mu.Lock()
	s.nextID++
	cr := &CheckRun{ID: 9000 + s.nextID, Repo: r.repo(), Name: *b.Name, HeadSHA: *b.HeadSHA, Status: "queued"}
	cr.apply(&b)
	s.checkRuns[cr.Repo] = append(s.checkRuns[cr.Repo], cr)
	out := cr.json()
	s.mu.Unlock()
	writeJSON(r.w, http.StatusCreated, out)
}

// updateCheckRun serves PATCH /repos/{o}/{r}/check-runs/{id}.
func (s *Server) updateCheckRun(r *request) {
	var b checkRunBody
	if !s.checksAuth(r) || !s.decode(r, &b) {
		return
	}
	if err := b.validate(false); err != nil {
		s.refuse(r, http.StatusUnprocessableEntity, "Validation Failed: "+err.Error())
		return
	}
	id, _ := strconv.ParseInt(r.segs[4], 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cr := range s.checkRuns[r.repo()] {
		if cr.ID == id {
			cr.apply(&b)
			cr.Updates++
			writeJSON(r.w, http.StatusOK, cr.json())
			return
		}
	}
	if s.deleted[id] {
		notFound(r) // it was there: a client may make a new one
		return
	}
	s.refuse(r, http.StatusNotFound, fmt.Sprintf("Not Found: no check run %s in %s", r.segs[4], r.repo()))
}

// DeleteCheckRuns deletes repo's check runs (as deleting their check
// suite does): updating one then gets 404, which is not counted as refused.
func (s *Server) DeleteCheckRuns(repo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cr := range s.checkRuns[repo] {
		s.deleted[cr.ID] = true
	}
	delete(s.checkRuns, repo)
}

// apply sets the fields b carries.
func (cr *CheckRun) apply(b *checkRunBody) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&cr.Name, b.Name)
	set(&cr.Status, b.Status)
	set(&cr.Conclusion, b.Conclusion)
	set(&cr.ExternalID, b.ExternalID)
	set(&cr.DetailsURL, b.DetailsURL)
	set(&cr.StartedAt, b.StartedAt)
	set(&cr.CompletedAt, b.CompletedAt)
	if b.Conclusion != nil {
		cr.Status = "completed" // as GitHub does
	}
	if b.Output != nil {
		set(&cr.Title, b.Output.Title)
		set(&cr.Summary, b.Output.Summary)
		set(&cr.Text, b.Output.Text)
	}
}

func (cr *CheckRun) json() map[string]any {
	return map[string]any{
		"id": cr.ID, "name": cr.Name, "head_sha": cr.HeadSHA, "status": cr.Status,
		"conclusion": nilIfEmpty(cr.Conclusion), "external_id": cr.ExternalID,
		"details_url": cr.DetailsURL, "started_at": nilIfEmpty(cr.StartedAt), "completed_at": nilIfEmpty(cr.CompletedAt),
		"html_url": fmt.Sprintf("https://github.com/%s/runs/%d", cr.Repo, cr.ID),
		"output":   map[string]any{"title": cr.Title, "summary": cr.Summary, "text": cr.Text},
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CheckRuns returns the check runs of repo (owner/name) in the order they
// were created, each in its latest state.
func (s *Server) CheckRuns(repo string) []CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CheckRun
	for _, cr := range s.checkRuns[repo] {
		out = append(out, *cr)
	}
	return out
}

// Status is one commit status as posted.
type Status struct {
	Repo        string
	SHA         string
	State       string
	TargetURL   string
	Description string
	Context     string
}

var statusStates = []string{"error", "failure", "pending", "success"}

// createStatus serves POST /repos/{o}/{r}/statuses/{sha}: a token with
// push access (or an installation token), state one of GitHub's four,
// description at most 140 characters.
func (s *Server) createStatus(r *request) {
	switch r.call.Auth {
	case AuthToken, AuthInstallation:
	case AuthNone:
		s.refuse(r, http.StatusUnauthorized, "Requires authentication")
		return
	default:
		s.refuse(r, http.StatusForbidden, "Resource not accessible with "+string(r.call.Auth)+" credentials")
		return
	}
	var b struct {
		State       *string `json:"state"`
		TargetURL   *string `json:"target_url"`
		Description *string `json:"description"`
		Context     *string `json:"context"`
	}
	if !s.decode(r, &b) {
		return
	}
	if err := validateStatus(r.segs[4], b.State, b.TargetURL, b.Description); err != nil {
		s.refuse(r, http.StatusUnprocessableEntity, "Validation Failed: "+err.Error())
		return
	}
	st := Status{Repo: r.repo(), SHA: r.segs[4], State: *b.State, TargetURL: deref(b.TargetURL), Description: deref(b.Description), Context: deref(b.Context)}
	if st.Context == "" {
		st.Context = "default"
	}
	key := st.Repo + " " + st.SHA
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	s.statuses[key] = append(s.statuses[key], st)
	s.mu.Unlock()
	writeJSON(r.w, http.StatusCreated, map[string]any{"id": id, "state": st.State, "context": st.Context, "description": st.Description, "target_url": st.TargetURL})
}

func validateStatus(sha string, state, target, desc *string) error {
	switch {
	case !isSHA(sha):
		return fmt.Errorf("sha %q is not a full 40-hex commit SHA", sha)
	case state == nil || !slices.Contains(statusStates, *state):
		return fmt.Errorf("state %q is not one of %v", deref(state), statusStates)
	case target != nil && *target != "" && !isHTTPURL(*target):
		return fmt.Errorf("target_url %q is not an http(s) URL", *target)
	case desc != nil && utf8.RuneCountInString(*desc) > MaxDescription:
		return fmt.Errorf("description is too long (maximum is %d characters)", MaxDescription)
	}
	return nil
}

// Statuses returns the commit statuses posted for repo at sha, in order.
func (s *Server) Statuses(repo, sha string) []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.statuses[repo+" "+sha])
}
