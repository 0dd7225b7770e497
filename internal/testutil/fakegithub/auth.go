package fakegithub

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// authOf classifies an Authorization header. GitHub takes "Bearer X" and
// "token X" alike; a JWT is told apart by its three dot-separated parts.
// Called with s.mu held.
func (s *Server) authOf(header string) Auth {
	if header == "" {
		return AuthNone
	}
	scheme, cred, ok := strings.Cut(header, " ")
	if !ok || (!strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token")) || cred == "" {
		return AuthInvalid
	}
	if strings.Count(cred, ".") == 2 {
		if err := s.checkJWT(cred); err != nil {
			return AuthInvalid
		}
		return AuthApp
	}
	if exp, ok := s.tokens[cred]; ok {
		if s.now().Before(exp) {
			return AuthInstallation
		}
		return AuthInvalid
	}
	if cred == s.Token {
		return AuthToken
	}
	return AuthInvalid
}

// JWTError says why an App JWT was refused.
func (s *Server) JWTError(jwt string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkJWT(jwt)
}

// checkJWT checks an App JWT as GitHub does: RS256, signed by the App's
// key, iss the App id, integer iat and exp, exp after now, exp-iat at most
// 10 minutes, iat not in the future (a minute of clock skew allowed).
// Called with s.mu held.
func (s *Server) checkJWT(tok string) error {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a JWT")
	}
	var hdr struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	if hdr.Alg != "RS256" {
		return fmt.Errorf("alg %q: GitHub takes RS256 only", hdr.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("signature does not verify with the App's key")
	}
	var claims map[string]json.RawMessage
	if err := decodeSegment(parts[1], &claims); err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	return s.checkClaims(claims)
}

// checkClaims checks iss, iat and exp. Called with s.mu held.
func (s *Server) checkClaims(claims map[string]json.RawMessage) error {
	var iss any
	if err := json.Unmarshal(claims["iss"], &iss); err != nil {
		return fmt.Errorf("iss missing")
	}
	want := strconv.FormatInt(s.AppID, 10)
	switch v := iss.(type) {
	case string:
		if v != want {
			return fmt.Errorf("iss %q is not the App id %s", v, want)
		}
	case float64:
		if v != float64(s.AppID) {
			return fmt.Errorf("iss %v is not the App id %s", v, want)
		}
	default:
		return fmt.Errorf("iss is not a string or number")
	}
	iat, err := intClaim(claims, "iat")
	if err != nil {
		return err
	}
	exp, err := intClaim(claims, "exp")
	if err != nil {
		return err
	}
	now := s.now().Unix()
	switch {
	case exp <= now:
		return fmt.Errorf("'Expiration time' claim ('exp') is in the past")
	case exp-iat > 600:
		return fmt.Errorf("'Expiration time' claim ('exp') is too far in the future: at most 10 minutes after iat")
	case iat > now+60:
		return fmt.Errorf("'Issued at' claim ('iat') must be an Integer representing a time in the past")
	}
	return nil
}

// intClaim reads a NumericDate claim that must be an integer (GitHub
// refuses fractional timestamps).
func intClaim(claims map[string]json.RawMessage, name string) (int64, error) {
	raw, ok := claims[name]
	if !ok {
		return 0, fmt.Errorf("claim %s missing", name)
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f != math.Trunc(f) {
		return 0, fmt.Errorf("claim %s is not an integer: %s", name, raw)
	}
	return int64(f), nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// accessToken serves POST /app/installations/{id}/access_tokens: an App
// JWT for the App's installation gets a token valid for an hour.
func (s *Server) accessToken(r *request) {
	if r.call.Auth != AuthApp {
		s.refuse(r, http.StatusUnauthorized, "A JSON web token could not be decoded: installation tokens are created with the App's JWT")
		return
	}
	if r.segs[2] != strconv.FormatInt(s.InstallationID, 10) {
		s.refuse(r, http.StatusNotFound, "Not Found: no installation "+r.segs[2]+" of this App")
		return
	}
	s.mu.Lock()
	tok := "ghs_" + randomHex(18)
	exp := s.now().Add(time.Hour).UTC().Truncate(time.Second)
	s.tokens[tok] = exp
	s.mu.Unlock()
	writeJSON(r.w, http.StatusCreated, map[string]any{
		"token":      tok,
		"expires_at": exp.Format(time.RFC3339),
		"permissions": map[string]string{
			"checks": "write", "statuses": "write", "pull_requests": "read",
			"metadata": "read", "repository_hooks": "write",
		},
		"repository_selection": "all",
	})
}

// InstallationTokens returns how many installation tokens were issued.
func (s *Server) InstallationTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokens)
}

// ExpireTokens makes every installation token issued so far invalid (as
// GitHub does after an hour): the next call with one gets 401.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.tokens {
		s.tokens[k] = time.Time{}
	}
}
