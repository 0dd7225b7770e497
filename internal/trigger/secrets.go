package trigger

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/accord-build/accord/internal/serve/config"
)

// maxSecretFile bounds a secret file: a webhook secret is a short string,
// a big file is a wrong path.
const maxSecretFile = 64 << 10

// Secrets are the webhook secrets a delivery may be signed with: several
// at once while one is rotated. They come from files or the environment,
// never from a request. A Secrets is safe for concurrent use; the zero
// value and a nil *Secrets accept nothing.
type Secrets struct {
	keys []*secretKey
}

// secretKey is one secret and a pool of HMAC states keyed with it, so a
// verification allocates nothing once the pool is warm.
type secretKey struct {
	key  []byte
	pool sync.Pool // of *macState
}

// macState is a reusable HMAC-SHA256 keyed with one secret and the buffer
// its sum is written to.
type macState struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// SecretError is a secret in the config that cannot be used: the field
// (secrets[i].file, secrets[i].env) and how to fix it.
type SecretError struct {
	Field, Msg, Fix string
}

func (e *SecretError) Error() string {
	s := e.Field + ": " + e.Msg
	if e.Fix != "" {
		s += "\n  fix: " + e.Fix
	}
	return s
}

// LoadSecrets reads the webhook secrets of a config: each from a file
// (relative to dir; its trailing newlines trimmed) or an environment
// variable (read with getenv; os.Getenv when nil), exactly one of the two.
// An empty secret, a repeated one, or none at all is refused with a
// *SecretError naming the field and the fix.
func LoadSecrets(dir string, list []config.Secret, getenv func(string) string) (*Secrets, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if len(list) == 0 {
		return nil, &SecretError{Field: "secrets", Msg: "no webhook secret is configured",
			Fix: "add secrets: [{file: FILE}] or [{env: VAR}] with the secret set on the GitHub webhook"}
	}
	keys := make([][]byte, 0, len(list))
	for i, s := range list {
		key, err := loadSecret(dir, i, s, getenv)
		if err != nil {
			return nil, err
		}
		for j, k := range keys {
			if bytes.Equal(k, key) {
				return nil, &SecretError{Field: fmt.Sprintf("secrets[%d]", i),
					Msg: fmt.Sprintf("is the same secret as secrets[%d]", j), Fix: "remove one of the two"}
			}
		}
		keys = append(keys, key)
	}
	return NewSecrets(keys...)
}

// loadSecret reads list entry i.
func loadSecret(dir string, i int, s config.Secret, getenv func(string) string) ([]byte, error) {
	field := fmt.Sprintf("secrets[%d]", i)
	switch {
	case s.File != "" && s.Env != "":
		return nil, &SecretError{Field: field, Msg: "sets both file and env",
			Fix: "keep one of the two: a secret comes from a file or from the environment"}
	case s.File != "":
		return readSecretFile(dir, field+".file", s.File)
	case s.Env != "":
		v := getenv(s.Env)
		if v == "" {
			return nil, &SecretError{Field: field + ".env",
				Msg: fmt.Sprintf("environment variable %s is not set or empty", s.Env),
				Fix: fmt.Sprintf("export %s with the webhook's secret before starting the server", s.Env)}
		}
		return []byte(v), nil
	default:
		return nil, &SecretError{Field: field, Msg: "sets neither file nor env",
			Fix: "set file: FILE (relative to the config) or env: VAR"}
	}
}

// readSecretFile reads one secret file, trims its trailing newlines and
// refuses an empty or oversized one.
func readSecretFile(dir, field, name string) ([]byte, error) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		fix := "check the path (relative paths are relative to the config file)"
		if errors.Is(err, fs.ErrPermission) {
			fix = "let the server's user read the file"
		}
		return nil, &SecretError{Field: field, Msg: fmt.Sprintf("reading %s: %v", name, err), Fix: fix}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, &SecretError{Field: field, Msg: fmt.Sprintf("reading %s: %v", name, err),
			Fix: "point it at a regular file holding the secret"}
	}
	if len(b) > maxSecretFile {
		return nil, &SecretError{Field: field, Msg: fmt.Sprintf("%s is over %d KiB", name, maxSecretFile>>10),
			Fix: "point it at a file holding only the webhook's secret"}
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return nil, &SecretError{Field: field, Msg: fmt.Sprintf("%s is empty", name),
			Fix: "write the webhook's secret into it (the one set on the GitHub webhook)"}
	}
	return b, nil
}

// NewSecrets makes Secrets from keys (copied). An empty key, or no key at
// all, is refused: an unsigned delivery must never be accepted.
func NewSecrets(keys ...[]byte) (*Secrets, error) {
	if len(keys) == 0 {
		return nil, errors.New("no webhook secret given")
	}
	s := &Secrets{keys: make([]*secretKey, len(keys))}
	for i, k := range keys {
		if len(k) == 0 {
			return nil, fmt.Errorf("webhook secret %d is empty", i)
		}
		sk := &secretKey{key: bytes.Clone(k)}
		sk.pool.New = func() any { return &macState{mac: hmac.New(sha256.New, sk.key)} }
		s.keys[i] = sk
	}
	return s, nil
}

// Len is the number of secrets.
func (s *Secrets) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// Values are the secrets as text, for the server to mask wherever it
// shows text (logs of steps, check runs).
func (s *Secrets) Values() []string {
	if s == nil {
		return nil
	}
	out := make([]string, len(s.keys))
	for i, k := range s.keys {
		out[i] = string(k.key)
	}
	return out
}
