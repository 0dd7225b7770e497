package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOneKeyTwoBuilders: a builders file whose validator signs with the
// primary's key, the file copied with CRLF line ends or a comment, is
// refused by 'accord run --builders' and 'accord builders check' before
// anything is built: one key under two identities would count twice.
func TestOneKeyTwoBuilders(t *testing.T) {
	t.Setenv("ACCORD_PASSWORD", "")
	for _, tc := range []struct {
		name  string
		write func(primary []byte) []byte
	}{
		{"the same file", func(b []byte) []byte { return b }},
		{"CRLF line ends", func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) }},
		{"a comment line", func(b []byte) []byte { return append([]byte("# the validator's key\n"), b...) }},
		{"trailing newlines", func(b []byte) []byte { return append(append([]byte{}, b...), "\n\n"...) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "b")
			if _, stderr, err := accord(t, "builders", "init", dir, "--validators", "1", "--validator-runtime", "runc"); err != nil {
				t.Fatalf("builders init: %v\n%s", err, stderr)
			}
			primary, err := os.ReadFile(filepath.Join(dir, "primary.key"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "validator-1.key"), tc.write(primary), 0o600); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "builders.yaml")
			for _, args := range [][]string{
				{"run", "--source", t.TempDir(), "--store", filepath.Join(t.TempDir(), "store"), "--builders", "2", "--builders-file", file},
				{"builders", "check", file},
			} {
				_, _, err := accord(t, args...)
				if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "builders[1].key") || !strings.Contains(err.Error(), "same key as builders[0]") {
					t.Errorf("accord %s: %v; want exit 2 naming builders[1].key", args[0], err)
				}
			}
		})
	}
}
