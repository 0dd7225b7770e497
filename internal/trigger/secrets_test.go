package trigger

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accord-build/accord/internal/serve/config"
)

func TestLoadSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return name
	}
	write("a", "first webhook secret\n")
	write("crlf", "second webhook secret, rotated in\r\n")
	write("bare", "first webhook secret")
	write("empty", "")
	write("newline", "\n\n")
	write("huge", strings.Repeat("x", 65<<10))
	abs := filepath.Join(dir, "bare")
	env := map[string]string{"HOOK_A": "first webhook secret", "HOOK_B": "second webhook secret, rotated in", "EMPTY": ""}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name    string
		list    []config.Secret
		field   string // of the error; "" = loads
		accepts [][]byte
	}{
		{name: "file, trailing newline trimmed", list: []config.Secret{{File: "a"}}, accepts: [][]byte{secretA}},
		{name: "file, CRLF trimmed", list: []config.Secret{{File: "crlf"}}, accepts: [][]byte{secretB}},
		{name: "absolute file", list: []config.Secret{{File: abs}}, accepts: [][]byte{secretA}},
		{name: "env", list: []config.Secret{{Env: "HOOK_B"}}, accepts: [][]byte{secretB}},
		{name: "rotation: file and env", list: []config.Secret{{File: "a"}, {Env: "HOOK_B"}}, accepts: [][]byte{secretA, secretB}},
		{name: "none", list: nil, field: "secrets"},
		{name: "empty file", list: []config.Secret{{File: "a"}, {File: "empty"}}, field: "secrets[1].file"},
		{name: "only newlines", list: []config.Secret{{File: "newline"}}, field: "secrets[0].file"},
		{name: "missing file", list: []config.Secret{{File: "nope"}}, field: "secrets[0].file"},
		{name: "directory", list: []config.Secret{{File: "."}}, field: "secrets[0].file"},
		{name: "huge file", list: []config.Secret{{File: "huge"}}, field: "secrets[0].file"},
		{name: "env unset", list: []config.Secret{{Env: "NOPE"}}, field: "secrets[0].env"},
		{name: "env empty", list: []config.Secret{{Env: "HOOK_A"}, {Env: "EMPTY"}}, field: "secrets[1].env"},
		{name: "both", list: []config.Secret{{File: "a", Env: "HOOK_A"}}, field: "secrets[0]"},
		{name: "neither", list: []config.Secret{{}}, field: "secrets[0]"},
		{name: "same secret twice", list: []config.Secret{{File: "a"}, {Env: "HOOK_A"}}, field: "secrets[1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadSecrets(dir, tc.list, getenv)
			if tc.field != "" {
				var se *SecretError
				if !errors.As(err, &se) || se.Field != tc.field || se.Fix == "" {
					t.Fatalf("error %v, want a *SecretError on %s with a fix", err, tc.field)
				}
				if !strings.Contains(err.Error(), tc.field+":") || !strings.Contains(err.Error(), "fix: ") {
					t.Errorf("error text %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Len() != len(tc.accepts) {
				t.Errorf("Len %d, want %d", s.Len(), len(tc.accepts))
			}
			body := []byte(pushBody)
			for _, k := range tc.accepts {
				if !s.Verify(body, Sign(k, body)) {
					t.Errorf("refuses a body signed with %q", k)
				}
			}
			if s.Verify(body, Sign(secretC, body)) {
				t.Errorf("accepts a secret it was not given")
			}
		})
	}
}

// LoadSecrets reads the process environment when getenv is nil.
func TestLoadSecretsEnviron(t *testing.T) {
	t.Setenv("ACCORD_TEST_HOOK_SECRET", string(secretA))
	s, err := LoadSecrets("", []config.Secret{{Env: "ACCORD_TEST_HOOK_SECRET"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Verify([]byte("{}"), Sign(secretA, []byte("{}"))) {
		t.Error("refuses the environment's secret")
	}
}

func TestNewSecretsRefusesEmpty(t *testing.T) {
	for _, keys := range [][][]byte{nil, {{}}, {secretA, nil}} {
		if _, err := NewSecrets(keys...); err == nil {
			t.Errorf("NewSecrets(%q) accepted", keys)
		}
	}
}

// NewSecrets copies its keys: a caller that reuses its buffer changes nothing.
func TestNewSecretsCopies(t *testing.T) {
	k := []byte("mutable secret")
	s := mustSecrets(t, k)
	sig := Sign([]byte("mutable secret"), []byte("{}"))
	copy(k, "XXXXXXX")
	if !s.Verify([]byte("{}"), sig) {
		t.Error("the secret changed with the caller's buffer")
	}
}
