package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/build"
	"github.com/accord-build/accord/internal/builders"
	"github.com/accord-build/accord/internal/evidence"
	"github.com/accord-build/accord/internal/serve/config"
	"github.com/accord-build/accord/verify"
)

// repo is one configured repository, ready to build: its pipeline
// resolved, params typed, builders' keys loaded and policy read, all at
// start, so that a bad config fails then rather than on the first push.
type repo struct {
	cfg       *config.Repo
	params    v1.Params
	trusted   *builderSet
	untrusted *builderSet
	policy    *verify.Policy
}

// builderSet is a builders file's first n builders with their signers.
type builderSet struct {
	set     *builders.Set
	n, k    int
	signers []*attest.Signer
	trust   build.Trust
}

// loadRepos prepares every configured repository. Keys are loaded once
// and stay in this process: no key is ever handed to a build step.
func loadRepos(ctx context.Context, cfg *config.Config) (map[string]*repo, error) {
	out := map[string]*repo{}
	releaseKeys, releaseIDs := map[string]string{}, map[string]string{}
	for i := range cfg.Repos {
		rc := &cfg.Repos[i]
		field := fmt.Sprintf("repos[%d]", i)
		r, err := loadRepo(ctx, cfg.File, field, rc)
		if err != nil {
			return nil, err
		}
		for _, fp := range r.trusted.fingerprints() {
			releaseKeys[fp] = rc.Name
		}
		for _, b := range r.trusted.set.Builders[:r.trusted.n] {
			releaseIDs[b.ID] = rc.Name
		}
		out[strings.ToLower(rc.Name)] = r
	}
	for i := range cfg.Repos {
		r := out[strings.ToLower(cfg.Repos[i].Name)]
		if r.untrusted == nil {
			continue
		}
		field := fmt.Sprintf("repos[%d].untrusted.file", i)
		for _, fp := range r.untrusted.fingerprints() {
			if owner, ok := releaseKeys[fp]; ok {
				return nil, &config.Error{File: cfg.File, Field: field, Msg: fmt.Sprintf("%s holds a key that releases %s: fork code would be signed with a release key", r.untrusted.set.File, owner), Fix: "give the untrusted builders their own keys ('accord keys generate NAME')"}
			}
		}
		// Evidence is replaced by builder identity: an untrusted builder
		// under a release builder's id would replace its provenance.
		for _, b := range r.untrusted.set.Builders[:r.untrusted.n] {
			if owner, ok := releaseIDs[b.ID]; ok {
				return nil, &config.Error{File: cfg.File, Field: field, Msg: fmt.Sprintf("builder %s has the identity %s of a builder that releases %s: its evidence would replace the release's", b.Name, b.ID, owner), Fix: "give the untrusted builders their own names or ids (e.g. name: forks)"}
			}
		}
	}
	return out, nil
}

func loadRepo(ctx context.Context, file, field string, rc *config.Repo) (*repo, error) {
	fail := func(f string, err error, fix string) error {
		return &config.Error{File: file, Field: field + f, Msg: err.Error(), Fix: fix}
	}
	resolved, err := build.Resolve(ctx, rc.Pipeline, false)
	if err != nil {
		return nil, fail(".pipeline", err, "name a catalog pipeline ('accord catalog' lists them) whose step images are pinned by digest")
	}
	params, err := build.ParseParams(paramFlags(rc.Params), &resolved.Pipeline.Pipeline.Spec)
	if err != nil {
		return nil, fail(".params", err, "give each param as NAME: VALUE, typed as the pipeline declares it")
	}
	pol, err := verify.LoadPolicy(rc.Policy)
	if err != nil {
		return nil, fail(".policy", err, "give a verify policy ('accord builders init' writes one)")
	}
	r := &repo{cfg: rc, params: params, policy: pol}
	if r.trusted, err = loadBuilderSet(ctx, rc.Builders); err != nil {
		return nil, fail(".builders", err, "check the builders file and ACCORD_PASSWORD for its keys")
	}
	if rc.Untrusted != nil {
		if r.untrusted, err = loadBuilderSet(ctx, *rc.Untrusted); err != nil {
			return nil, fail(".untrusted", err, "check the untrusted builders file and ACCORD_PASSWORD for its keys")
		}
	}
	return r, nil
}

// paramFlags turns the config's params into NAME=VALUE, sorted.
func paramFlags(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func loadBuilderSet(ctx context.Context, bc config.BuilderSet) (*builderSet, error) {
	set, err := builders.Load(bc.File)
	if err != nil {
		return nil, err
	}
	n := bc.Count
	if n == 0 {
		n = len(set.Builders)
	}
	if n > len(set.Builders) {
		return nil, fmt.Errorf("count %d: %s declares %d builder(s)", n, bc.File, len(set.Builders))
	}
	k := bc.Threshold
	if k == 0 {
		k = n
	}
	bs := &builderSet{set: set, n: n, k: k, signers: make([]*attest.Signer, n)}
	pubs := make([][]byte, n)
	for i, b := range set.Builders[:n] {
		s, err := attest.LoadSigner(ctx, b.Key, passwordFromEnv)
		if err != nil {
			return nil, fmt.Errorf("builder %s: %w", b.Name, err)
		}
		bs.signers[i], pubs[i] = s, s.PublicKeyPEM()
	}
	if err := set.CheckKeys(pubs); err != nil {
		return nil, err
	}
	bs.trust = &build.LazyTrust{Load: func() build.Trust {
		// Loaded on first use, maybe while the server shuts down: not on
		// the start-up context.
		return evidence.LoadTrust(context.Background(), evidence.Sources{BuildersFile: bc.File, BuildersGiven: true}, io.Discard)
	}}
	return bs, nil
}

// passwordFromEnv is the only way the server gets a key's password: it
// never prompts.
func passwordFromEnv() ([]byte, error) {
	if p, ok := attest.PasswordFromEnv(); ok {
		return p, nil
	}
	return nil, errors.New("no key password: set ACCORD_PASSWORD (or COSIGN_PASSWORD) in the server's environment")
}

func (b *builderSet) fingerprints() []string {
	var out []string
	for _, s := range b.signers {
		if fp, err := attest.Fingerprint(s.PublicKeyPEM()); err == nil {
			out = append(out, fp)
		}
	}
	return out
}

// builders are the set's builders for one run, each with its progress;
// with digestOnly, the primary too stores its artifacts by digest only.
func (b *builderSet) builders(progress func(name string) build.Progress, digestOnly bool) []build.Builder {
	out := make([]build.Builder, b.n)
	for i, fb := range b.set.Builders[:b.n] {
		out[i] = build.Builder{Name: fb.Name, ID: fb.ID, Signer: b.signers[i], Runtime: fb.Runtime, Variation: fb.Variation, Validator: i > 0 || digestOnly, Progress: progress(fb.Name)}
	}
	return out
}
