// Package web is the status page of 'accord serve': server-rendered HTML
// (html/template, inline CSS, no script) listing the recent runs, a page per
// run with its tasks, steps, timings and logs, and the run's stored
// evidence and JSON. Everything that came from a webhook payload (commit
// messages, branch names, pull request titles) is text to the templates and
// escaped by them; the pages are readable on a phone.
package web
