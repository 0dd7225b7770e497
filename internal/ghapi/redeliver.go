package ghapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/accord-build/accord/internal/serve/config"
)

// Redeliver asks GitHub to deliver again what failed to reach the server
// (GitHub never retries on its own). For each hook it lists the deliveries
// of the last window before now, every page (newest first, stopping at the
// first older than the window), and picks, once per GUID, the newest
// failed delivery (status code not 2xx, or none) of each GUID that has no
// successful delivery in the window and that the server has not seen
// (seen(guid) false: it may have stored a delivery whose reply GitHub
// still counted as failed; a nil seen counts nothing as seen). It asks
// for one attempt of each and returns
// their GUIDs, in the order asked.
//
// A repository hook (repo + id) is listed with the installation token or
// the token; the App's own hook (app: true) with the App's JWT, so it
// needs github.app. An error on one hook, or one refused attempt, does not
// stop the others; the errors are joined.
func (c *Client) Redeliver(ctx context.Context, hooks []config.Hook, window time.Duration, now time.Time, seen func(guid string) (bool, error)) ([]string, error) {
	if window <= 0 {
		return nil, fmt.Errorf("redelivering: window %v: want a positive duration", window)
	}
	since := now.Add(-window)
	var guids []string
	var errs []error
	for i, h := range hooks {
		lister, redeliver, err := c.hookAPI(h)
		if err != nil {
			errs = append(errs, fmt.Errorf("github.redeliver.hooks[%d]: %w", i, err))
			continue
		}
		got, err := c.redeliverHook(ctx, hookName(h), lister, redeliver, since, seen)
		guids = append(guids, got...)
		if err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return guids, errors.Join(errs...)
}

type (
	listFunc      func(ctx context.Context, opts *github.ListCursorOptions) ([]*github.HookDelivery, *github.Response, error)
	redeliverFunc func(ctx context.Context, id int64) (*github.HookDelivery, *github.Response, error)
)

// hookAPI returns the list and redeliver calls of one hook.
func (c *Client) hookAPI(h config.Hook) (listFunc, redeliverFunc, error) {
	if h.App {
		if h.Repo != "" || h.ID != 0 {
			return nil, nil, fmt.Errorf("app: true names the App's own hook: drop repo and id")
		}
		if c.app == nil {
			return nil, nil, fmt.Errorf("app: true needs github.app: the App's hook is read with the App's JWT")
		}
		return c.app.Apps.ListHookDeliveries, c.app.Apps.RedeliverHookDelivery, nil
	}
	owner, name, err := splitRepo(h.Repo)
	if err != nil {
		return nil, nil, fmt.Errorf("repo: %w", err)
	}
	if h.ID <= 0 {
		return nil, nil, fmt.Errorf("id: want the hook's numeric id (the hook's settings URL ends with it)")
	}
	if c.mode == ModeNone {
		return nil, nil, fmt.Errorf("hook %s#%d: reading deliveries needs github.app or github.token", h.Repo, h.ID)
	}
	list := func(ctx context.Context, opts *github.ListCursorOptions) ([]*github.HookDelivery, *github.Response, error) {
		return c.gh.Repositories.ListHookDeliveries(ctx, owner, name, h.ID, opts)
	}
	again := func(ctx context.Context, id int64) (*github.HookDelivery, *github.Response, error) {
		return c.gh.Repositories.RedeliverHookDelivery(ctx, owner, name, h.ID, id)
	}
	return list, again, nil
}

func hookName(h config.Hook) string {
	if h.App {
		return "the App's hook"
	}
	return fmt.Sprintf("hook %s#%d", h.Repo, h.ID)
}

// redeliverHook scans one hook and asks for the attempts.
func (c *Client) redeliverHook(ctx context.Context, name string, list listFunc, again redeliverFunc, since time.Time, seen func(string) (bool, error)) ([]string, error) {
	failedOf, order, err := scan(ctx, name, list, since)
	if err != nil {
		return nil, err
	}
	var guids []string
	var errs []error
	for _, guid := range order {
		if ctx.Err() != nil {
			return guids, errors.Join(append(errs, ctx.Err())...)
		}
		d := failedOf[guid]
		if d == nil {
			continue // delivered fine at least once
		}
		if seen != nil {
			ok, err := seen(guid)
			if err != nil {
				return guids, fmt.Errorf("%s: checking delivery %s: %w", name, guid, err)
			}
			if ok {
				continue
			}
		}
		_, resp, err := again(ctx, d.GetID())
		var accepted *github.AcceptedError
		if err != nil && !errors.As(err, &accepted) {
			// One refused (too old, say) does not stop the others.
			errs = append(errs, apiError(fmt.Sprintf("%s: redelivering %s (delivery %d)", name, guid, d.GetID()), resp, err))
			continue
		}
		guids = append(guids, guid)
	}
	return guids, errors.Join(errs...)
}

// scan lists a hook's deliveries since since. It returns, per GUID, the
// newest failed delivery (nil once any delivery of it succeeded) and the
// GUIDs in the order first met (newest first).
func scan(ctx context.Context, name string, list listFunc, since time.Time) (map[string]*github.HookDelivery, []string, error) {
	failedOf := map[string]*github.HookDelivery{}
	succeeded := map[string]bool{}
	var order []string
	opts := &github.ListCursorOptions{PerPage: 100}
	for pages := 0; ; pages++ {
		if pages == 1000 {
			return nil, nil, fmt.Errorf("%s: more than 1000 pages of deliveries: stopping", name)
		}
		ds, resp, err := list(ctx, opts)
		if err != nil {
			return nil, nil, apiError(fmt.Sprintf("%s: listing deliveries", name), resp, err)
		}
		older := false
		for _, d := range ds {
			if d.GetDeliveredAt().Before(since) {
				older = true
				continue
			}
			guid := d.GetGUID()
			if guid == "" {
				continue
			}
			if _, met := failedOf[guid]; !met && !succeeded[guid] {
				order = append(order, guid)
			}
			code := d.GetStatusCode()
			switch {
			case code >= 200 && code < 300:
				succeeded[guid] = true
				failedOf[guid] = nil
			case succeeded[guid]:
			case failedOf[guid] == nil:
				failedOf[guid] = d // the newest failure: the list is newest first
			}
		}
		if older || resp == nil || resp.Cursor == "" {
			return failedOf, order, nil
		}
		opts.Cursor = resp.Cursor
	}
}
