// Package ghapi is accord serve's side of GitHub's REST API, through
// google/go-github: it reads pull requests (for /ok-to-test and /retest),
// reports runs back (check runs as a GitHub App, authenticated with
// bradleyfalzon/ghinstallation; commit statuses with a token), and asks for
// the redelivery of webhook deliveries that failed while the server was
// away. The base URL is configurable (GitHub Enterprise Server).
//
// Text from payloads (titles, branch names) is escaped wherever it lands in
// Markdown; logs are cut to GitHub's limits ([Tail]) after the server has
// masked secret values in them ([Mask]).
//
// Tests run against internal/testutil/fakegithub: github.com is never
// reached.
package ghapi
