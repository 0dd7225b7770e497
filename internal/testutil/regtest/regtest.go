// Package regtest runs, for tests, Debian's docker-registry (the CNCF
// distribution registry) on a loopback port, optionally with htpasswd
// authentication, and writes Docker config files holding credentials
// for it.
package regtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Registry is a running docker-registry.
type Registry struct {
	// Addr is its host:port on 127.0.0.1.
	Addr string
	// Dir is its storage root directory (filesystem driver), for tests
	// that tamper with what it serves.
	Dir string
}

// Options configure [Start].
type Options struct {
	// User and Password, when set, require HTTP basic authentication
	// (htpasswd, bcrypt) for every request.
	User, Password string
}

// Start runs docker-registry ($ACCORD_REGISTRY_BIN, else from PATH) until
// the test ends. Without it the test fails, naming the fix: the README's
// test command installs it.
func Start(t testing.TB, o Options) *Registry {
	t.Helper()
	bin := os.Getenv("ACCORD_REGISTRY_BIN")
	if bin == "" {
		bin, _ = exec.LookPath("docker-registry")
	}
	if bin == "" {
		t.Fatal("docker-registry is not installed: run the README's test command (hack/test.sh), which installs it, or set ACCORD_REGISTRY_BIN")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	r := &Registry{Addr: addr, Dir: filepath.Join(dir, "data")}
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: %s}\n", r.Dir, addr)
	if o.User != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, []byte(o.User+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth: {htpasswd: {realm: accord-test, path: %s}}\n", pw)
	}
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgFile)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			l := logs.String()
			if len(l) > 4000 {
				l = "..." + l[len(l)-4000:]
			}
			t.Logf("docker-registry on %s:\n%s", addr, l)
		}
	})
	for range 100 {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("docker-registry on %s did not come up:\n%s", addr, logs.String())
	return nil
}

// DockerConfig writes a Docker config.json in a new directory holding the
// credentials (registry host:port -> user, password) and returns the
// directory, for DOCKER_CONFIG.
func DockerConfig(t testing.TB, creds map[string][2]string) string {
	t.Helper()
	auths := map[string]map[string]string{}
	for reg, c := range creds {
		auths[reg] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(c[0] + ":" + c[1]))}
	}
	b, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// BlobFile is the file in which r stores the blob (or manifest) with
// digest "sha256:<hex>", for tests that change what it serves.
func (r *Registry) BlobFile(digestHex string) string {
	return filepath.Join(r.Dir, "docker", "registry", "v2", "blobs", "sha256", digestHex[:2], digestHex, "data")
}
