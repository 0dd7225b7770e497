package trigger

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// signaturePrefix starts X-Hub-Signature-256. There is no SHA-1 fallback:
// the legacy X-Hub-Signature (sha1=...) is never read.
const signaturePrefix = "sha256="

// Verify reports whether header, an X-Hub-Signature-256 value
// ("sha256=" and 64 hex digits), is the HMAC-SHA256 of the raw body under
// any of the secrets. Every secret is tried and compared in constant time
// (so the time taken does not tell which one matched, or how close a
// forgery came); a malformed header, a nil or empty Secrets, are refused.
// Verify allocates nothing once warm and is safe for concurrent use.
func (s *Secrets) Verify(body []byte, header string) bool {
	if s == nil || len(s.keys) == 0 {
		return false
	}
	var sum [sha256.Size]byte
	if !decodeSignature(header, &sum) {
		return false
	}
	return s.equalAny(body, &sum)
}

// decodeSignature decodes "sha256=<64 hex digits>" into sum. Upper-case
// hex is taken too (the header is compared by value, not by text).
func decodeSignature(header string, sum *[sha256.Size]byte) bool {
	if len(header) != len(signaturePrefix)+2*sha256.Size || header[:len(signaturePrefix)] != signaturePrefix {
		return false
	}
	hx := header[len(signaturePrefix):]
	bad := false
	for i := range sum {
		hi, ok1 := fromHex(hx[2*i])
		lo, ok2 := fromHex(hx[2*i+1])
		bad = bad || !ok1 || !ok2
		sum[i] = hi<<4 | lo
	}
	return !bad
}

// fromHex is the value of one hex digit.
func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Sign is the X-Hub-Signature-256 header value GitHub sends for body
// signed with secret: "sha256=" and the hex HMAC-SHA256 of the raw body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	var b strings.Builder
	b.Grow(len(signaturePrefix) + 2*sha256.Size)
	b.WriteString(signaturePrefix)
	const digits = "0123456789abcdef"
	for _, c := range m.Sum(nil) {
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&0x0f])
	}
	return b.String()
}

// equalAny reports, in time that depends on neither which secret matched
// nor where a mismatch is, whether sum is the HMAC of body under any of
// the secrets: every secret is tried, none is skipped.
func (s *Secrets) equalAny(body []byte, sum *[sha256.Size]byte) bool {
	ok := 0
	for _, k := range s.keys {
		st := k.pool.Get().(*macState)
		st.mac.Reset()
		st.mac.Write(body)
		st.mac.Sum(st.sum[:0])
		ok |= subtle.ConstantTimeCompare(st.sum[:], sum[:])
		k.pool.Put(st)
	}
	return ok == 1
}
