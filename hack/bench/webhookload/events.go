package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// event is one payload to send and its X-GitHub-Event.
type event struct {
	Name    string          `json:"event"`
	Payload json.RawMessage `json:"payload"`
}

// loadEvents reads -events: "builtin", or comma-separated files.
func loadEvents(spec string) ([]event, error) {
	if spec == "" || spec == "builtin" {
		return []event{{Name: "push", Payload: builtinPush()}}, nil
	}
	var out []event
	for _, file := range strings.Split(spec, ",") {
		evs, err := loadEventFile(strings.TrimSpace(file))
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
	}
	return out, nil
}

// loadEventFile reads one file: a JSON array of {event, payload}, or one
// payload named after its event.
func loadEventFile(file string) ([]event, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading -events: %w", err)
	}
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '[':
		var evs []event
		if err := json.Unmarshal(b, &evs); err != nil {
			return nil, fmt.Errorf("-events %s: %w", file, err)
		}
		for i, e := range evs {
			if e.Name == "" || len(e.Payload) == 0 || e.Payload[0] != '{' {
				return nil, fmt.Errorf("-events %s: entry %d needs an event name and an object payload", file, i)
			}
		}
		return evs, nil
	case len(b) > 0 && b[0] == '{' && json.Valid(b):
		name := filepath.Base(file)
		if i := strings.IndexAny(name, "-."); i > 0 {
			name = name[:i]
		}
		return []event{{Name: name, Payload: b}}, nil
	}
	return nil, fmt.Errorf("-events %s: neither a JSON object (a payload) nor an array of {event, payload}", file)
}

// withSeq returns payload with a first key "accord_load": seq, so that
// no two deliveries carry the same bytes (payload is a JSON object).
func withSeq(dst, payload []byte, seq int) []byte {
	dst = append(dst[:0], `{"accord_load":`...)
	dst = strconv.AppendInt(dst, int64(seq), 10)
	rest := bytes.TrimSpace(payload[1:])
	if len(rest) > 0 && rest[0] != '}' {
		dst = append(dst, ',')
	}
	return append(dst, rest...)
}

// builtinPush is a push of one commit to refs/heads/main, shaped and sized
// like GitHub's (about 7 KB).
func builtinPush() json.RawMessage {
	const owner, name = "accord-build", "demo"
	full := owner + "/" + name
	api, web := "https://api.github.com/repos/"+full, "https://github.com/"+full
	user := func(login string, id int) map[string]any {
		u := map[string]any{"login": login, "id": id, "node_id": "MDQ6VXNlcjE=", "type": "User", "site_admin": false,
			"avatar_url": "https://avatars.githubusercontent.com/u/" + strconv.Itoa(id) + "?v=4", "gravatar_id": "",
			"url": "https://api.github.com/users/" + login, "html_url": "https://github.com/" + login}
		for _, k := range []string{"followers", "following{/other_user}", "gists{/gist_id}", "starred{/owner}{/repo}",
			"subscriptions", "organizations", "repos", "events{/privacy}", "received_events"} {
			u[strings.SplitN(k, "{", 2)[0]+"_url"] = "https://api.github.com/users/" + login + "/" + k
		}
		return u
	}
	repo := map[string]any{"id": 186853002, "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=", "name": name, "full_name": full,
		"private": false, "owner": user(owner, 21031067), "html_url": web, "description": "a demo built by accord",
		"fork": false, "url": web, "created_at": 1557933565, "updated_at": "2026-12-01T12:00:00Z", "pushed_at": 1764590400,
		"git_url": "git://github.com/" + full + ".git", "ssh_url": "git@github.com:" + full + ".git",
		"clone_url": web + ".git", "svn_url": web, "homepage": nil, "size": 4123, "stargazers_count": 12,
		"watchers_count": 12, "language": "Go", "has_issues": true, "has_projects": true, "has_downloads": true,
		"has_wiki": true, "has_pages": false, "forks_count": 3, "archived": false, "disabled": false,
		"open_issues_count": 2, "license": nil, "forks": 3, "open_issues": 2, "watchers": 12,
		"default_branch": "main", "stargazers": 12, "master_branch": "main", "visibility": "public", "topics": []string{}}
	for _, k := range []string{"forks", "keys{/key_id}", "collaborators{/collaborator}", "teams", "hooks",
		"issues/events{/number}", "events", "assignees{/user}", "branches{/branch}", "tags", "blobs{/sha}",
		"git/tags{/sha}", "git/refs{/sha}", "git/trees{/sha}", "statuses/{sha}", "languages", "stargazers",
		"contributors", "subscribers", "subscription", "commits{/sha}", "git/commits{/sha}", "comments{/number}",
		"issues/comments{/number}", "contents/{+path}", "compare/{base}...{head}", "merges", "{archive_format}{/ref}",
		"downloads", "issues{/number}", "pulls{/number}", "milestones{/number}", "notifications{?since,all,participating}",
		"labels{/name}", "releases{/id}", "deployments"} {
		key := strings.NewReplacer("/", "_", "{", "", "}", "", "+", "", ".", "", "?", "", ",", "").Replace(strings.SplitN(k, "{", 2)[0])
		if key == "" {
			key = "archive"
		}
		repo[strings.Trim(key, "_")+"_url"] = api + "/" + k
	}
	const after = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	commit := map[string]any{"id": after, "tree_id": "f9d2a07e9488b91af2641b26b9407fe22a451433", "distinct": true,
		"message":   "engine: run steps in a fresh sandbox\n\nEach step gets its own rootfs and network namespace.",
		"timestamp": "2026-12-01T11:59:30Z", "url": web + "/commit/" + after,
		"author":    map[string]any{"name": "Ada Lovelace", "email": "ada@example.com", "username": "ada"},
		"committer": map[string]any{"name": "Ada Lovelace", "email": "ada@example.com", "username": "ada"},
		"added":     []string{"internal/engine/local/sandbox.go"}, "removed": []string{},
		"modified": []string{"internal/engine/local/run.go", "internal/engine/local/run_test.go", "README.md"}}
	p := map[string]any{"ref": "refs/heads/main", "before": "9049f1265b7d61be4a8904a9a27120d2064dab3b", "after": after,
		"repository": repo, "pusher": map[string]any{"name": "ada", "email": "ada@example.com"}, "sender": user("ada", 583231),
		"created": false, "deleted": false, "forced": false, "base_ref": nil,
		"compare": web + "/compare/9049f1265b7d...6113728f27ae", "commits": []any{commit}, "head_commit": commit}
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return b
}
