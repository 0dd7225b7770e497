package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/source"
)

// fetchSource gives the build its source: a directory as is, or a git
// repository fetched at the exact commit into work.
func fetchSource(ctx context.Context, s Source, work, id string) (engine.Source, SourceInfo, func(), error) {
	loc := s.URI
	if loc == "" {
		loc = s.Dir
	}
	if loc == "" {
		return engine.Source{DateEpoch: s.DateEpoch}, SourceInfo{SourceDateEpoch: s.DateEpoch}, func() {}, nil
	}
	st, err := os.Stat(loc)
	isDir := err == nil && st.IsDir()
	if isDir && s.Revision == "" {
		abs, _ := filepath.Abs(loc)
		return engine.Source{Dir: abs, DateEpoch: s.DateEpoch}, SourceInfo{Dir: true, SourceDateEpoch: s.DateEpoch}, func() {}, nil
	}
	if !isDir && !strings.Contains(loc, "://") && !strings.Contains(loc, "@") {
		return engine.Source{}, SourceInfo{}, nil, fmt.Errorf("--source %q is neither a directory nor a git URL\n  fix: give an existing directory, or a git URL with --revision", loc)
	}
	uri := loc
	if isDir {
		abs, _ := filepath.Abs(loc)
		uri = "file://" + abs
	}
	dir := filepath.Join(work, id+"-src")
	co, err := source.Fetch(ctx, uri, s.Revision, dir)
	cleanup := func() { os.RemoveAll(dir) }
	if err != nil {
		cleanup()
		return engine.Source{}, SourceInfo{}, nil, err
	}
	return engine.Source{Dir: co.Dir, URI: co.URI, Ref: co.Ref, Commit: co.Commit, DateEpoch: co.DateEpoch},
		SourceInfo{URI: co.URI, Ref: co.Ref, Commit: co.Commit, SourceDateEpoch: co.DateEpoch}, cleanup, nil
}
