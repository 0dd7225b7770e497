package trigger

import (
	"encoding/binary"
	"strings"
)

// checkJSON is scanObject; a variable so a test can tell whether the
// parser ran.
var checkJSON = scanObject

// maxJSONDepth is encoding/json's limit on nesting.
const maxJSONDepth = 10000

// isJSONObject says whether body is one JSON object (and only
// whitespace around it): exactly what json.Valid accepts whose first
// value is an object.
func isJSONObject(body []byte) bool {
	ok, _ := scanObject(body)
	return ok
}

// scanObject is isJSONObject in one pass that allocates nothing
// (json.Valid's scanner, a function call per byte, was a fifth of the
// server's time), and on the way reads repository.full_name: repo is
// what encoding/json would decode there, or "" when it cannot tell
// exactly (see repoHint).
func scanObject(body []byte) (ok bool, repo string) {
	s := jsonScanner{b: body}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' || !s.value(0) {
		return false, ""
	}
	s.space()
	if s.i != len(s.b) {
		return false, ""
	}
	return true, s.repo.name()
}

// jsonScanner checks JSON text (RFC 8259, as encoding/json reads it:
// bytes of strings are not checked for UTF-8).
type jsonScanner struct {
	b    []byte
	i    int
	repo repoHint
}

// space skips whitespace.
func (s *jsonScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value checks one value at s.i, nested depth deep.
func (s *jsonScanner) value(depth int) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.container(depth, '}', true)
	case c == '[':
		return s.container(depth, ']', false)
	case c == '"':
		return s.str()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return false
}

// container checks an object (members "key": value) or an array.
func (s *jsonScanner) container(depth int, end byte, object bool) bool {
	if depth+1 > maxJSONDepth {
		return false
	}
	s.i++ // { or [
	s.space()
	if s.i < len(s.b) && s.b[s.i] == end {
		s.i++
		return true
	}
	for {
		role := roleNone
		if object {
			k := s.i
			if s.i >= len(s.b) || s.b[s.i] != '"' || !s.str() {
				return false
			}
			if depth < 2 {
				role = s.repo.member(depth, s.b[k+1:s.i-1])
			}
			s.space()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return false
			}
			s.i++
			s.space()
		}
		v := s.i
		if role == roleRepository {
			s.repo.inRepo = true
		}
		if !s.value(depth + 1) {
			return false
		}
		if role != roleNone {
			s.repo.value(role, s.b[v:s.i])
		}
		s.space()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.space()
		case end:
			s.i++
			return true
		default:
			return false
		}
	}
}

// jsonPlain marks the bytes a string holds as they are (not '"', '\\',
// or a control byte).
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// SWAR constants: a byte of 0x01, of 0x80, in each of a word's 8 bytes.
const (
	lsbs = 0x0101010101010101
	msbs = 0x8080808080808080
)

// plainRun returns the index of the first byte from i on that is not
// plain string content (a '"', a '\\' or a control byte), or len(b): 8
// bytes at a time, the bulk of a payload being strings. A byte b is
// flagged when b < 0x20 (the word minus 0x20 in each byte borrows into
// its top bit where the byte had it clear), or equal to '"' or '\\'
// (their XOR with the byte is then zero, found the same way).
func plainRun(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		ctl := (w - 0x20*lsbs) &^ w
		q := w ^ ('"' * lsbs)
		bs := w ^ ('\\' * lsbs)
		if ((ctl | (q-lsbs)&^q | (bs-lsbs)&^bs) & msbs) != 0 {
			break
		}
	}
	for ; i < len(b) && jsonPlain[b[i]]; i++ {
	}
	return i
}

// str checks a string at s.i (its opening quote).
func (s *jsonScanner) str() bool {
	s.i++
	for s.i < len(s.b) {
		s.i = plainRun(s.b, s.i)
		if s.i >= len(s.b) {
			return false
		}
		c := s.b[s.i]
		if jsonPlain[c] {
			s.i++
			continue
		}
		switch c {
		case '"':
			s.i++
			return true
		case '\\':
			if !s.escape() {
				return false
			}
		default:
			return false // a control byte
		}
	}
	return false
}

// escape checks one escape sequence at s.i (its backslash).
func (s *jsonScanner) escape() bool {
	if s.i+1 >= len(s.b) {
		return false
	}
	switch s.b[s.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i += 2
		return true
	case 'u':
		if s.i+6 > len(s.b) {
			return false
		}
		for _, h := range s.b[s.i+2 : s.i+6] {
			if _, ok := fromHex(h); !ok {
				return false
			}
		}
		s.i += 6
		return true
	}
	return false
}

// literal checks true, false or null at s.i.
func (s *jsonScanner) literal(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// number checks -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? at s.i.
func (s *jsonScanner) number() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.digits() == 0:
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

// digits skips decimal digits and says how many.
func (s *jsonScanner) digits() int {
	start := s.i
	for s.i < len(s.b) && isDigit(s.b[s.i]) {
		s.i++
	}
	return s.i - start
}

// The members of a payload repoHint looks at.
const (
	roleNone       = iota
	roleRepository // the top-level "repository"
	roleFullName   // its "full_name"
)

// repoHint reads repository.full_name while the intake checks the JSON,
// so that the dispatcher can set aside a delivery for a repository the
// server does not build without decoding the whole payload. It names a
// repository only when that is exactly what encoding/json (and so
// go-github) would decode: one top-level member named exactly
// "repository", an object, with one member named exactly "full_name", a
// string of printable ASCII without escapes; and no other key at those
// two levels that encoding/json could take for either name (it matches
// keys without regard to case, after unescaping, with Unicode folding:
// any key there with an escape or a non-ASCII byte makes the hint
// unknown). A payload GitHub sends always meets this.
type repoHint struct {
	inRepo    bool // the object being read is the repository
	repos     int  // top-level members named repository
	fullNames int  // its members named full_name
	unsure    bool
	full      []byte
}

// member classifies the key of a member at depth (0: top level, 1: one
// level down) and says what its value is to the hint.
func (h *repoHint) member(depth int, key []byte) int {
	if depth == 1 && !h.inRepo {
		return roleNone
	}
	want, role := "repository", roleRepository
	if depth == 1 {
		want, role = "full_name", roleFullName
	}
	for _, c := range key {
		if c == '\\' || c >= 0x80 {
			h.unsure = true
			return roleNone
		}
	}
	switch {
	case string(key) == want:
		return role
	case len(key) == len(want) && strings.EqualFold(string(key), want):
		h.unsure = true
	}
	return roleNone
}

// value takes the raw text of a member's value that member classified.
func (h *repoHint) value(role int, raw []byte) {
	switch role {
	case roleRepository:
		h.inRepo = false
		h.repos++
		if raw[0] != '{' {
			h.unsure = true
		}
	case roleFullName:
		h.fullNames++
		if len(raw) < 3 || raw[0] != '"' {
			h.unsure = true
			return
		}
		for _, c := range raw[1 : len(raw)-1] {
			if c < 0x20 || c >= 0x7f || c == '\\' {
				h.unsure = true
				return
			}
		}
		h.full = raw[1 : len(raw)-1]
	}
}

// name is the repository's full name, or "" when the hint is unsure.
func (h *repoHint) name() string {
	if h.unsure || h.repos != 1 || h.fullNames != 1 || h.full == nil {
		return ""
	}
	return string(h.full)
}
