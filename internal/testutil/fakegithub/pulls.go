package fakegithub

import (
	"fmt"
	"net/http"
	"strconv"
)

// Pull is a pull request the fake serves.
type Pull struct {
	// Repo is the base repository (owner/name); Number its number.
	Repo   string
	Number int
	Title  string
	// State is open (default) or closed.
	State  string
	Author string
	// HeadRepo is the repository of the head branch (a fork's full name;
	// default Repo); HeadCloneURL defaults to https://github.com/<HeadRepo>.git.
	HeadRepo     string
	HeadCloneURL string
	HeadRef      string
	HeadSHA      string
	// BaseRef defaults to main.
	BaseRef string
}

// AddPull adds (or replaces) a pull request, filling its defaults.
func (s *Server) AddPull(p Pull) {
	if p.State == "" {
		p.State = "open"
	}
	if p.HeadRepo == "" {
		p.HeadRepo = p.Repo
	}
	if p.HeadCloneURL == "" {
		p.HeadCloneURL = "https://github.com/" + p.HeadRepo + ".git"
	}
	if p.BaseRef == "" {
		p.BaseRef = "main"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pulls[fmt.Sprintf("%s#%d", p.Repo, p.Number)] = p
}

// getPull serves GET /repos/{o}/{r}/pulls/{n}: readable without
// credentials (public repositories), with a token or an installation
// token; not with the App's JWT, which only opens /app endpoints.
func (s *Server) getPull(r *request) {
	if r.call.Auth == AuthApp {
		s.refuse(r, http.StatusForbidden, "A JWT opens /app endpoints only: use an installation token")
		return
	}
	n, err := strconv.Atoi(r.segs[4])
	if err != nil || n <= 0 {
		s.refuse(r, http.StatusNotFound, "Not Found: pull request number "+r.segs[4])
		return
	}
	s.mu.Lock()
	p, ok := s.pulls[fmt.Sprintf("%s#%d", r.repo(), n)]
	s.mu.Unlock()
	if !ok {
		notFound(r)
		return
	}
	repo := func(full, clone string) map[string]any {
		return map[string]any{"full_name": full, "clone_url": clone}
	}
	writeJSON(r.w, http.StatusOK, map[string]any{
		"number": p.Number, "state": p.State, "title": p.Title,
		"user":     map[string]any{"login": p.Author},
		"html_url": fmt.Sprintf("https://github.com/%s/pull/%d", p.Repo, p.Number),
		"head":     map[string]any{"ref": p.HeadRef, "sha": p.HeadSHA, "repo": repo(p.HeadRepo, p.HeadCloneURL)},
		"base":     map[string]any{"ref": p.BaseRef, "repo": repo(p.Repo, "https://github.com/"+p.Repo+".git")},
	})
}
