package fakegithub

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RedeliveryWindow is how far back GitHub redelivers (3 days on
// github.com): an attempt for an older delivery is refused.
const RedeliveryWindow = 72 * time.Hour

// Delivery is one delivery of a webhook, as GitHub lists it.
type Delivery struct {
	// ID is GitHub's id of this delivery (assigned when 0).
	ID int64
	// GUID is X-GitHub-Delivery; redeliveries share it.
	GUID        string
	DeliveredAt time.Time
	// StatusCode is what the receiver answered; 0 when it could not be
	// reached or timed out.
	StatusCode int
	Event      string
	Action     string
	Redelivery bool
	// Payload is the body sent again on redelivery (see
	// [Server.DeliverTo]); default "{}".
	Payload []byte
}

// Attempt is one redelivery asked for.
type Attempt struct {
	// Hook is "owner/name#id" for a repository hook, "app" for the App's.
	Hook       string
	DeliveryID int64
	GUID       string
	// StatusCode is what the receiver answered the redelivery (200 when
	// no receiver is set with [Server.DeliverTo]).
	StatusCode int
}

type hook struct {
	name       string
	deliveries []Delivery
}

type target struct {
	url    string
	secret []byte
}

// AddRepoDelivery adds a delivery of repository hook id of repo, and
// returns its id.
func (s *Server) AddRepoDelivery(repo string, id int64, d Delivery) int64 {
	return s.addDelivery(fmt.Sprintf("%s#%d", repo, id), d)
}

// AddAppDelivery adds a delivery of the App's hook, and returns its id.
func (s *Server) AddAppDelivery(d Delivery) int64 { return s.addDelivery("app", d) }

func (s *Server) addDelivery(name string, d Delivery) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addDeliveryLocked(name, d)
}

func (s *Server) addDeliveryLocked(name string, d Delivery) int64 {
	h := s.hooks[name]
	if h == nil {
		h = &hook{name: name}
		s.hooks[name] = h
	}
	if d.ID == 0 {
		s.nextID++
		d.ID = 1_000_000 + s.nextID
	}
	if d.Event == "" {
		d.Event = "push"
	}
	h.deliveries = append(h.deliveries, d)
	return d.ID
}

// RepoDeliveries returns the deliveries of a repository hook, newest
// first (redeliveries the fake made included).
func (s *Server) RepoDeliveries(repo string, id int64) []Delivery {
	return s.deliveries(fmt.Sprintf("%s#%d", repo, id))
}

// AppDeliveries returns the deliveries of the App's hook, newest first.
func (s *Server) AppDeliveries() []Delivery { return s.deliveries("app") }

func (s *Server) deliveries(name string) []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hooks[name]; h != nil {
		return h.sorted()
	}
	return nil
}

// sorted is the hook's deliveries newest first, as GitHub lists them.
func (h *hook) sorted() []Delivery {
	out := slices.Clone(h.deliveries)
	slices.SortStableFunc(out, func(a, b Delivery) int {
		if c := b.DeliveredAt.Compare(a.DeliveredAt); c != 0 {
			return c
		}
		return int(b.ID - a.ID)
	})
	return out
}

// RedeliveryAttempts returns the redeliveries asked for, in order.
func (s *Server) RedeliveryAttempts() []Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.attempts)
}

// DeliverTo makes redelivery attempts POST the delivery's payload to url,
// signed with secret (X-Hub-Signature-256) and carrying GitHub's headers,
// as GitHub does; the answer's status becomes the new delivery's.
func (s *Server) DeliverTo(url string, secret []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.target = &target{url: url, secret: secret}
}

// hookOf names the hook a deliveries call is about and checks its
// credentials: a repository hook takes a token or an installation token,
// the App's hook only the App's JWT.
func (s *Server) hookOf(r *request) (string, bool) {
	if r.segs[0] == "app" {
		if r.call.Auth != AuthApp {
			s.refuse(r, http.StatusUnauthorized, "A JSON web token could not be decoded: the App's hook is read with the App's JWT")
			return "", false
		}
		return "app", true
	}
	switch r.call.Auth {
	case AuthToken, AuthInstallation:
	case AuthNone:
		s.refuse(r, http.StatusUnauthorized, "Requires authentication")
		return "", false
	default:
		s.refuse(r, http.StatusForbidden, "A JWT opens /app endpoints only: use an installation token")
		return "", false
	}
	if _, err := strconv.ParseInt(r.segs[4], 10, 64); err != nil {
		s.refuse(r, http.StatusNotFound, "Not Found: hook id "+r.segs[4])
		return "", false
	}
	return r.repo() + "#" + r.segs[4], true
}

// listDeliveries serves the two delivery lists: newest first, per_page
// (default 30, at most 100; see [Server.SetPageSize]), the next page behind a
// cursor given in the Link header.
func (s *Server) listDeliveries(r *request) {
	name, ok := s.hookOf(r)
	if !ok {
		return
	}
	per, cursor, err := s.pageParams(r)
	if err != nil {
		s.refuse(r, http.StatusUnprocessableEntity, err.Error())
		return
	}
	s.mu.Lock()
	h := s.hooks[name]
	var all []Delivery
	if h != nil {
		all = h.sorted()
	}
	s.mu.Unlock()
	if h == nil {
		notFound(r)
		return
	}
	start := 0
	if cursor != "" {
		id, _ := strconv.ParseInt(strings.TrimPrefix(cursor, "v1_"), 10, 64)
		start = slices.IndexFunc(all, func(d Delivery) bool { return d.ID == id }) + 1
		if start == 0 {
			s.refuse(r, http.StatusUnprocessableEntity, "cursor "+cursor+" is not one this API gave")
			return
		}
	}
	end := min(start+per, len(all))
	if end < len(all) {
		next := fmt.Sprintf("http://%s%s?cursor=v1_%d&per_page=%d", r.Host, r.URL.Path, all[end-1].ID, per)
		r.w.Header().Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", next))
	}
	page := make([]map[string]any, 0, end-start)
	for _, d := range all[start:end] {
		page = append(page, d.json())
	}
	writeJSON(r.w, http.StatusOK, page)
}

func (s *Server) pageParams(r *request) (int, string, error) {
	s.mu.Lock()
	per, most := s.pageSize, s.maxPage
	s.mu.Unlock()
	q := r.call.Query
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, "", fmt.Errorf("per_page %q is not a positive integer", v)
		}
		per = min(n, most)
	}
	if q.Has("page") {
		return 0, "", fmt.Errorf("deliveries are paged with cursor, not page")
	}
	c := q.Get("cursor")
	if c != "" && !strings.HasPrefix(c, "v1_") {
		return 0, "", fmt.Errorf("cursor %q is not one this API gave", c)
	}
	return per, c, nil
}

func (d Delivery) json() map[string]any {
	status := "OK"
	switch {
	case d.StatusCode == 0:
		status = "timed out"
	case d.StatusCode/100 != 2:
		status = "Invalid HTTP Response: " + strconv.Itoa(d.StatusCode)
	}
	return map[string]any{
		"id": d.ID, "guid": d.GUID, "delivered_at": d.DeliveredAt.UTC().Format(time.RFC3339),
		"redelivery": d.Redelivery, "duration": 0.1, "status": status, "status_code": d.StatusCode,
		"event": d.Event, "action": nilIfEmpty(d.Action), "installation_id": nil, "repository_id": nil,
	}
}

// redeliver serves POST .../deliveries/{id}/attempts: the delivery must
// exist and be inside GitHub's window. The fake delivers again right away
// (see [Server.DeliverTo]) and records a new delivery with the same GUID.
func (s *Server) redeliver(r *request) {
	name, ok := s.hookOf(r)
	if !ok {
		return
	}
	idSeg := r.segs[len(r.segs)-2]
	id, _ := strconv.ParseInt(idSeg, 10, 64)
	s.mu.Lock()
	var d Delivery
	found := false
	if h := s.hooks[name]; h != nil {
		i := slices.IndexFunc(h.deliveries, func(d Delivery) bool { return d.ID == id })
		if found = i >= 0; found {
			d = h.deliveries[i]
		}
	}
	now, tgt := s.now(), s.target
	s.mu.Unlock()
	switch {
	case !found:
		s.refuse(r, http.StatusNotFound, "Not Found: no delivery "+idSeg+" of hook "+name)
		return
	case d.DeliveredAt.Before(now.Add(-RedeliveryWindow)):
		s.refuse(r, http.StatusUnprocessableEntity, "Validation Failed: delivery "+idSeg+" is older than the redelivery window")
		return
	}
	code := s.send(tgt, name, d)
	s.mu.Lock()
	s.attempts = append(s.attempts, Attempt{Hook: name, DeliveryID: d.ID, GUID: d.GUID, StatusCode: code})
	s.addDeliveryLocked(name, Delivery{GUID: d.GUID, DeliveredAt: now, StatusCode: code, Event: d.Event, Action: d.Action, Redelivery: true, Payload: d.Payload})
	s.mu.Unlock()
	writeJSON(r.w, http.StatusAccepted, map[string]any{})
}

// send delivers d to the receiver, if one is set, and returns its status
// (0 when it could not be reached).
func (s *Server) send(tgt *target, hookName string, d Delivery) int {
	if tgt == nil {
		return http.StatusOK
	}
	body := d.Payload
	if body == nil {
		body = []byte("{}")
	}
	req, err := http.NewRequest(http.MethodPost, tgt.url, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	mac := hmac.New(sha256.New, tgt.secret)
	mac.Write(body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/fake")
	req.Header.Set("X-GitHub-Event", d.Event)
	req.Header.Set("X-GitHub-Delivery", d.GUID)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	if _, id, ok := strings.Cut(hookName, "#"); ok {
		req.Header.Set("X-GitHub-Hook-ID", id)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
