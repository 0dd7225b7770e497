package trigger

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Acceptor stores accepted deliveries; the queue implements it.
type Acceptor interface {
	// Accept stores d and returns only once it is durable (fsynced), or
	// with an error when it could not be stored. ignored != "" stores it
	// as ignored, with that note, to be recorded but never built. A
	// delivery whose ID was stored before (a redelivery, a replay) changes
	// nothing and returns duplicate=true. Accept may keep d.Body: the
	// Handler never reuses it. Safe for concurrent use.
	Accept(ctx context.Context, d Delivery, ignored string) (duplicate bool, err error)
}

// The verdicts a Handler reports to Observe, one per request.
const (
	VerdictAccepted     = "accepted"     // stored, to be built: 202
	VerdictDuplicate    = "duplicate"    // stored before; nothing new started: 200
	VerdictIgnored      = "ignored"      // stored as ignored (an event not built): 202
	VerdictPing         = "ping"         // GitHub's ping: 200, not stored
	VerdictUnauthorized = "unauthorized" // missing or bad signature: 401, nothing stored
	VerdictTooLarge     = "too_large"    // body over MaxBody: 413
	VerdictBadRequest   = "bad_request"  // content type, headers or JSON: 400
	VerdictMethod       = "method"       // not a POST: 405
	VerdictUnavailable  = "unavailable"  // the store failed: 503 (a redelivery covers it)
)

// Reply statuses in the JSON body of a 2xx reply.
const (
	StatusAccepted  = "accepted"
	StatusDuplicate = "duplicate"
	StatusIgnored   = "ignored"
	StatusPong      = "pong"
	StatusRefused   = "refused" // every 4xx and 5xx
)

// DefaultMaxBody is GitHub's cap on a payload: 25 MiB.
const DefaultMaxBody = 25 << 20

// DefaultAcceptTimeout bounds the wait for the store, so GitHub hears an
// answer well inside its 10 s.
const DefaultAcceptTimeout = 5 * time.Second

// Bounds on the identifying headers: a GitHub delivery id is a GUID (36
// characters), an event name a short snake_case word, a hook id a number.
const (
	maxDeliveryID = 100
	maxEvent      = 64
	maxHookID     = 20
)

// Handler serves POST /webhooks/github. In order: a POST (else 405); a
// Content-Length, then a body, within MaxBody (else 413) and within the
// MaxInflight budget of bodies being read (else 503); the
// X-Hub-Signature-256 of the raw body under one of Secrets, before
// anything else looks at the body (else 401: nothing parsed, nothing
// stored); content type application/json, sane X-GitHub-Event and
// X-GitHub-Delivery headers, and a JSON object (else 400); then ping
// answers 200 (not stored), an event Handles refuses is stored as ignored
// (202), any other is stored (202), a delivery stored before answers 200
// duplicate and starts nothing, and a store failure answers 503. The
// reply is JSON: {"delivery","status","message"}. Every reply comes after
// the store returned: a 2xx means durable.
//
// Handler logs one line per request (never the body or a secret) with
// the keys delivery and event; both are empty until the signature is
// right (a forged request's headers are not repeated). Safe for
// concurrent use once its fields are set; not to be copied after first
// use.
type Handler struct {
	// Secrets are the webhook secrets; nil accepts nothing.
	Secrets *Secrets
	// Store stores deliveries (required).
	Store Acceptor
	// Handles says which events are built; the rest are stored as ignored.
	// Nil: every event is stored to be built (the policy decides later).
	Handles func(event string) bool
	// Observe, when set, is told each request's event (empty unless the
	// signature was right and the header sane, so a forger cannot grow the
	// label set), verdict (Verdict*) and duration.
	Observe func(event, verdict string, d time.Duration)
	// Logger logs one line per request; nil discards.
	Logger *slog.Logger
	// MaxBody bounds a payload; default DefaultMaxBody (GitHub's cap).
	MaxBody int64
	// Now is the clock stamped on Delivery.Received; default time.Now.
	Now func() time.Time
	// AcceptTimeout bounds the wait for Store; default DefaultAcceptTimeout.
	AcceptTimeout time.Duration
	// MaxInflight bounds the bytes of bodies being read and checked at
	// once (each counted at its Content-Length, or MaxBody without one),
	// so that unsigned requests announcing big bodies cannot exhaust
	// memory before their signature is checked; over it: 503. Default
	// 8*MaxBody.
	MaxInflight int64

	inflight atomic.Int64
}

// outcome is what became of one request.
type outcome struct {
	code     int
	verdict  string
	status   string
	message  string
	delivery string // set once the signature was right and the header sane
	event    string // likewise
	repo     string // likewise: the payload's repository, when the intake could read it
	err      error  // for the log only
}

// ServeHTTP handles one delivery; see [Handler].
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	o := h.serve(r)
	if o.code == http.StatusMethodNotAllowed {
		w.Header()["Allow"] = allowPost
	}
	writeReply(w, o)
	if h.Observe != nil {
		h.Observe(o.event, o.verdict, time.Since(start))
	}
	h.log(r, o, time.Since(start))
}

// serve decides the reply; it never writes.
func (h *Handler) serve(r *http.Request) outcome {
	if r.Method != http.MethodPost {
		return refuse(http.StatusMethodNotAllowed, VerdictMethod, "only POST is served here")
	}
	limit := h.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	if r.ContentLength > limit {
		return tooLarge(limit)
	}
	release, ok := h.reserve(r.ContentLength, limit)
	if !ok {
		return refuse(http.StatusServiceUnavailable, VerdictUnavailable,
			"too many bodies are being read at once; redeliver it later")
	}
	defer release()
	body, o, ok := readBody(r.Body, r.ContentLength, limit)
	if !ok {
		return o
	}
	if o, ok := h.checkSignature(r.Header, body); !ok {
		return o
	}
	d, o, ok := checkHeaders(r.Header)
	if !ok {
		return o
	}
	isObject, repo := checkJSON(body)
	if !isObject {
		o = refuse(http.StatusBadRequest, VerdictBadRequest, "the body is not a JSON object")
		o.delivery, o.event = d.ID, d.Event
		return o
	}
	d.Body, d.Repo = body, repo
	o = h.accept(r.Context(), d)
	o.repo = repo
	return o
}

// reserve counts a body of length (limit when unknown) against
// MaxInflight; release gives it back.
func (h *Handler) reserve(length, limit int64) (release func(), ok bool) {
	budget := h.MaxInflight
	if budget <= 0 {
		budget = 8 * limit
	}
	n := max(length, 0)
	if length < 0 {
		n = limit
	}
	if h.inflight.Add(n) > budget && n > 0 {
		h.inflight.Add(-n)
		return nil, false
	}
	return func() { h.inflight.Add(-n) }, true
}

// accept stores a checked delivery and turns the store's answer into the reply.
func (h *Handler) accept(ctx context.Context, d Delivery) outcome {
	o := outcome{delivery: d.ID, event: d.Event}
	if d.Event == "ping" {
		o.code, o.verdict, o.status, o.message = http.StatusOK, VerdictPing, StatusPong, "pong: the signature is right"
		return o
	}
	var ignored string
	if h.Handles != nil && !h.Handles(d.Event) {
		ignored = "event " + d.Event + " is not built"
	}
	d.Received = h.now()
	timeout := h.AcceptTimeout
	if timeout <= 0 {
		timeout = DefaultAcceptTimeout
	}
	// The store finishes what it started even if GitHub hangs up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	dup, err := h.Store.Accept(ctx, d, ignored)
	switch {
	case err != nil:
		o.code, o.verdict, o.status, o.err = http.StatusServiceUnavailable, VerdictUnavailable, StatusRefused, err
		o.message = "the delivery could not be stored; redeliver it later"
	case dup:
		o.code, o.verdict, o.status = http.StatusOK, VerdictDuplicate, StatusDuplicate
		o.message = "delivery " + d.ID + " was received before; nothing new was started"
	case ignored != "":
		o.code, o.verdict, o.status, o.message = http.StatusAccepted, VerdictIgnored, StatusIgnored, ignored
	default:
		o.code, o.verdict, o.status, o.message = http.StatusAccepted, VerdictAccepted, StatusAccepted, "stored; the server's policy decides what it builds"
	}
	return o
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func refuse(code int, verdict, msg string) outcome {
	return outcome{code: code, verdict: verdict, status: StatusRefused, message: msg}
}

func tooLarge(limit int64) outcome {
	return refuse(http.StatusRequestEntityTooLarge, VerdictTooLarge,
		"the body is over "+strconv.FormatInt(limit, 10)+" bytes")
}

// preallocMax is the largest body read into a slice of its announced
// length at once.
const preallocMax = 1 << 20

// bufPool holds buffers for bodies sent without a Content-Length.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads the whole body, at most limit bytes, into a slice of its
// own (the Delivery keeps it): with a Content-Length, exactly that many
// bytes in one allocation; without, through a pooled buffer.
func readBody(rc io.Reader, length, limit int64) ([]byte, outcome, bool) {
	if length >= 0 && length <= preallocMax {
		body := make([]byte, length)
		if _, err := io.ReadFull(rc, body); err != nil {
			return nil, readError(err), false
		}
		var one [1]byte
		if n, _ := rc.Read(one[:]); n > 0 {
			return nil, refuse(http.StatusBadRequest, VerdictBadRequest, "the body is longer than its Content-Length"), false
		}
		return body, outcome{}, true
	}
	if length > preallocMax {
		// Grow with what arrives, not with what was announced: an
		// unsigned request that claims 25 MiB and sends little costs little.
		var buf bytes.Buffer
		buf.Grow(preallocMax)
		if _, err := buf.ReadFrom(io.LimitReader(rc, length+1)); err != nil {
			return nil, readError(err), false
		}
		if int64(buf.Len()) != length {
			return nil, refuse(http.StatusBadRequest, VerdictBadRequest, "the body's length differs from its Content-Length"), false
		}
		return buf.Bytes(), outcome{}, true
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 {
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, readError(err), false
	}
	if n > limit {
		return nil, tooLarge(limit), false
	}
	return bytes.Clone(buf.Bytes()), outcome{}, true
}

func readError(err error) outcome {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return tooLarge(mb.Limit)
	}
	o := refuse(http.StatusBadRequest, VerdictBadRequest, "reading the body failed")
	o.err = err
	return o
}

// checkSignature is the first look at the body: X-Hub-Signature-256 must
// be one value, the body's HMAC under one of the secrets.
func (h *Handler) checkSignature(hd http.Header, body []byte) (outcome, bool) {
	sig := hd["X-Hub-Signature-256"]
	switch {
	case len(sig) == 0 && len(hd["X-Hub-Signature"]) > 0:
		return refuse(http.StatusUnauthorized, VerdictUnauthorized,
			"X-Hub-Signature (SHA-1) is not accepted: set a secret on the webhook so GitHub sends X-Hub-Signature-256"), false
	case len(sig) == 0:
		return refuse(http.StatusUnauthorized, VerdictUnauthorized,
			"X-Hub-Signature-256 is missing: set the webhook's secret to the server's"), false
	case len(sig) > 1:
		return refuse(http.StatusUnauthorized, VerdictUnauthorized, "X-Hub-Signature-256 is sent more than once"), false
	case !h.Secrets.Verify(body, sig[0]):
		return refuse(http.StatusUnauthorized, VerdictUnauthorized,
			"X-Hub-Signature-256 does not match: the webhook's secret differs from the server's"), false
	}
	return outcome{}, true
}

// checkHeaders checks the content type and the identifying headers of a
// signed delivery (headers are not signed: they are bounded here).
func checkHeaders(hd http.Header) (Delivery, outcome, bool) {
	if o, ok := checkContentType(hd["Content-Type"]); !ok {
		return Delivery{}, o, false
	}
	event, ok := single(hd, "X-Github-Event", maxEvent, isEventByte)
	if !ok {
		return Delivery{}, refuse(http.StatusBadRequest, VerdictBadRequest,
			"X-GitHub-Event must be one event name (lower-case letters, digits, _)"), false
	}
	id, ok := single(hd, "X-Github-Delivery", maxDeliveryID, isIDByte)
	if !ok {
		o := refuse(http.StatusBadRequest, VerdictBadRequest,
			"X-GitHub-Delivery must be one delivery GUID (letters, digits, -, _, .; at most 100)")
		o.event = event
		return Delivery{}, o, false
	}
	d := Delivery{ID: id, Event: event}
	if len(hd["X-Github-Hook-Id"]) > 0 {
		hook, ok := single(hd, "X-Github-Hook-Id", maxHookID, isDigit)
		if !ok {
			o := refuse(http.StatusBadRequest, VerdictBadRequest, "X-GitHub-Hook-ID must be one number")
			o.delivery, o.event = id, event
			return Delivery{}, o, false
		}
		d.HookID = hook
	}
	return d, outcome{}, true
}

// checkContentType requires application/json (parameters such as
// charset allowed); GitHub's other choice, form-encoded, is refused with
// the fix.
func checkContentType(v []string) (outcome, bool) {
	if len(v) != 1 {
		return refuse(http.StatusBadRequest, VerdictBadRequest,
			"Content-Type must be application/json: set the webhook's content type to application/json"), false
	}
	mt, _, _ := strings.Cut(v[0], ";")
	mt = strings.TrimSpace(mt)
	switch {
	case strings.EqualFold(mt, "application/json"):
		return outcome{}, true
	case strings.EqualFold(mt, "application/x-www-form-urlencoded"):
		return refuse(http.StatusBadRequest, VerdictBadRequest,
			"form-encoded deliveries are not accepted: set the webhook's content type to application/json"), false
	}
	return refuse(http.StatusBadRequest, VerdictBadRequest,
		"Content-Type must be application/json: set the webhook's content type to application/json"), false
}

// single is the one value of header key, if it is 1..max bytes that all
// pass ok.
func single(hd http.Header, key string, max int, ok func(byte) bool) (string, bool) {
	v := hd[key]
	if len(v) != 1 || len(v[0]) == 0 || len(v[0]) > max {
		return "", false
	}
	for i := 0; i < len(v[0]); i++ {
		if !ok(v[0][i]) {
			return "", false
		}
	}
	return v[0], true
}

func isDigit(c byte) bool     { return '0' <= c && c <= '9' }
func isLower(c byte) bool     { return 'a' <= c && c <= 'z' }
func isEventByte(c byte) bool { return isLower(c) || isDigit(c) || c == '_' }
func isIDByte(c byte) bool {
	return isLower(c) || isDigit(c) || ('A' <= c && c <= 'Z') || c == '-' || c == '_' || c == '.'
}

// allowPost is the Allow header of a 405 (read-only).
var allowPost = []string{http.MethodPost}

// Reply headers (read-only slices, set without allocating).
var (
	jsonContentType = []string{"application/json"}
	noSniff         = []string{"nosniff"}
	noStore         = []string{"no-store"}
)

// writeReply writes o as {"delivery","status","message"}.
func writeReply(w http.ResponseWriter, o outcome) {
	hd := w.Header()
	hd["Content-Type"] = jsonContentType
	hd["X-Content-Type-Options"] = noSniff
	hd["Cache-Control"] = noStore
	b := make([]byte, 0, 64+len(o.delivery)+len(o.message))
	b = append(b, `{"delivery":`...)
	b = appendJSONString(b, o.delivery)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, o.status)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, o.message)
	b = append(b, "}\n"...)
	// net/http sets Content-Length: the reply is one small write.
	w.WriteHeader(o.code)
	w.Write(b)
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// does (quotes, backslashes, control bytes, <, >, &; invalid UTF-8 as
// U+FFFD).
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// log writes one line for the request: never the body, never a secret,
// and the delivery and event only once the signature was right.
func (h *Handler) log(r *http.Request, o outcome, took time.Duration) {
	if h.Logger == nil {
		return
	}
	level := slog.LevelInfo
	switch {
	case o.code >= 500:
		level = slog.LevelError
	case o.code >= 400:
		level = slog.LevelWarn
	}
	ctx := r.Context()
	if !h.Logger.Enabled(ctx, level) {
		return
	}
	attrs := [...]slog.Attr{
		slog.String("delivery", o.delivery),
		slog.String("event", o.event),
		slog.String("repo", o.repo),
		slog.String("verdict", o.verdict),
		slog.Int("code", o.code),
		slog.Duration("took", took),
		slog.String("remote", r.RemoteAddr),
		{},
	}
	n := len(attrs) - 1
	if o.err != nil {
		attrs[n] = slog.String("error", o.err.Error())
		n++
	}
	h.Logger.LogAttrs(ctx, level, "webhook", attrs[:n]...)
}
