// Command webhookload is a load generator for 'accord serve': from its own
// process, it sends N distinct GitHub deliveries (fresh GUIDs, bodies
// signed with X-Hub-Signature-256) over keep-alive connections, C at a
// time, records each request's latency, and prints JSON:
//
//	{"sent":N,"ok":..,"status":{"202":..},"errors":..,"rps":..,"p50_ms":..,"p99_ms":..,"max_ms":..}
//
// Usage:
//
//	webhookload -url http://127.0.0.1:8080/webhooks/github -secret S -n 20000 -c 64 \
//	    -events builtin|FILE[,FILE...] [-rate R] [-out accepted.txt]
//
// -events: "builtin" (a push to refs/heads/main of a realistic size), or
// files: a payload named after its event (push-branch.json, ping.json:
// the event is the name up to the first "-" or "."), or a JSON array of
// {"event": E, "payload": {...}}. Deliveries cycle through the events.
// Each body gets a first key "accord_load": SEQ (unless -unique=false),
// so no two deliveries carry the same bytes.
//
// -rate R sends at R deliveries/s (open loop: latency counts from when a
// request was due, so a stalled server is not hidden); without it, the C
// connections send back to back (closed loop).
//
// -out writes the delivery ids that got a 2xx, one a line: after a kill -9
// of the server, each of them must be in its queue.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	URL        string
	Secret     string
	SecretFile string
	N          int
	C          int
	Rate       float64
	Events     string
	Out        string
	Unique     bool
	Timeout    time.Duration
	HookID     string
	Ready      string
}

func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:8080/webhooks/github", "the webhook endpoint")
	fs.StringVar(&o.Secret, "secret", "", "the webhook secret (or -secret-file)")
	fs.StringVar(&o.SecretFile, "secret-file", "", "a file holding the webhook secret (trailing newline trimmed)")
	fs.IntVar(&o.N, "n", 10000, "deliveries to send")
	fs.IntVar(&o.C, "c", 64, "concurrent keep-alive connections")
	fs.Float64Var(&o.Rate, "rate", 0, "deliveries per second (open loop); 0: back to back")
	fs.StringVar(&o.Events, "events", "builtin", `"builtin" or payload files, comma-separated`)
	fs.StringVar(&o.Out, "out", "", "write the delivery ids that got a 2xx to this file")
	fs.BoolVar(&o.Unique, "unique", true, `give each body a first key "accord_load": SEQ`)
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "per-request timeout (GitHub's is 10s)")
	fs.StringVar(&o.HookID, "hook-id", "1", "X-GitHub-Hook-ID sent")
	fs.StringVar(&o.Ready, "ready", "", "create this file once the requests are prepared and sending starts")
}

func main() {
	var o options
	fs := flag.NewFlagSet("webhookload", flag.ExitOnError)
	o.addFlags(fs)
	fs.Parse(os.Args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o)
	if res != nil {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "webhookload:", err)
		os.Exit(1)
	}
}

// secret is the secret from -secret or -secret-file.
func (o *options) secret() ([]byte, error) {
	switch {
	case o.Secret != "" && o.SecretFile != "":
		return nil, fmt.Errorf("-secret and -secret-file both set: keep one")
	case o.SecretFile != "":
		b, err := os.ReadFile(o.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("reading -secret-file: %w", err)
		}
		if s := strings.TrimRight(string(b), "\r\n"); s != "" {
			return []byte(s), nil
		}
		return nil, fmt.Errorf("-secret-file %s is empty", o.SecretFile)
	case o.Secret != "":
		return []byte(o.Secret), nil
	}
	return nil, fmt.Errorf("no secret: set -secret or -secret-file to the server's webhook secret")
}

// run sends the deliveries and writes -out; it returns what it measured
// (also when interrupted, with what was sent so far).
func run(ctx context.Context, o options) (*result, error) {
	if o.N <= 0 || o.C <= 0 {
		return nil, fmt.Errorf("-n and -c must be positive")
	}
	secret, err := o.secret()
	if err != nil {
		return nil, err
	}
	events, err := loadEvents(o.Events)
	if err != nil {
		return nil, err
	}
	g, err := newGenerator(o, secret, events)
	if err != nil {
		return nil, err
	}
	if o.Ready != "" {
		if err := os.WriteFile(o.Ready, nil, 0o644); err != nil {
			return nil, fmt.Errorf("writing -ready: %w", err)
		}
	}
	res := g.run(ctx)
	if o.Out != "" {
		if err := writeIDs(o.Out, g.accepted()); err != nil {
			return res, err
		}
	}
	return res, nil
}

// writeIDs writes ids, one a line, and syncs the file.
func writeIDs(path string, ids []string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing -out: %w", err)
	}
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(id)
		b.WriteByte('\n')
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("writing -out: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing -out: %w", err)
	}
	return f.Close()
}
