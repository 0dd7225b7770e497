// Package fakegithub is a fake GitHub REST API for tests: a local HTTP
// server implementing the few endpoints accord uses (installation tokens,
// check runs, commit statuses, pull requests, webhook deliveries and
// their redelivery, each also under GHES's /api/v3/ prefix), checking
// every call the way GitHub does (kind of credentials, required fields,
// enum values, length limits) and recording it for assertions.
//
// github.com cannot be reached from the test machines; this fake is what
// the GitHub side of `accord serve` is tested against. [New] starts one
// for a test with an App (id, installation id, private key file) and a
// personal access token; the test fails at its end on calls to unknown
// endpoints or calls GitHub would have refused.
package fakegithub
