package serve

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/accord-build/accord/internal/serve/config"
	"github.com/accord-build/accord/internal/store"
	"github.com/accord-build/accord/internal/trigger"
)

// Check is one prerequisite of the server, as 'accord doctor' shows it.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Preflight checks what the server needs before it starts, without
// starting it: the secrets, the state directory, the address, the store,
// each repository's pipeline, builders' keys and policy, the GitHub App's
// key.
func Preflight(ctx context.Context, cfg *config.Config, getenv func(string) string) []Check {
	var cs []Check
	add := func(name string, err error, ok, fix string) {
		c := Check{Name: name, OK: err == nil, Detail: ok}
		if err != nil {
			c.Detail, c.Fix = err.Error(), fix
			var ce *config.Error
			if errors.As(err, &ce) {
				c.Detail, c.Fix = ce.File+": field "+ce.Field+": "+ce.Msg, ce.Fix
			}
		}
		cs = append(cs, c)
	}
	sec, err := trigger.LoadSecrets(filepath.Dir(cfg.File), cfg.Secrets, getenv)
	n := 0
	if sec != nil {
		n = sec.Len()
	}
	add("webhook secrets", err, fmt.Sprintf("%d secret(s) readable", n), "fix the secrets' files or environment variables")
	add("state directory", writable(cfg.StateDir), cfg.StateDir+" is writable", "create it, writable by the server's user")
	add("listen address", listenable(cfg.Listen), cfg.Listen+" is free", "stop what listens there, or change listen")
	_, err = store.Open(cfg.Store, store.WithAllowedRegistries(cfg.AllowRegistries...))
	add("store", err, cfg.Store, "give an OCI layout directory or HOST/REPO")
	_, err = loadRepos(ctx, cfg)
	add("repositories", err, fmt.Sprintf("%d repositories: pipelines, builders' keys and policies load", len(cfg.Repos)), "fix the field named")
	if a := cfg.GitHub.App; a != nil {
		add("github app key", appKey(a.PrivateKeyFile), a.PrivateKeyFile+" is an RSA private key", "download the App's private key (PEM) from its settings")
	}
	return cs
}

func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

func listenable(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

func appKey(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return fmt.Errorf("%s holds no PEM block", file)
	}
	if _, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil {
		return fmt.Errorf("%s: not an RSA private key: %v", file, err)
	}
	return nil
}
