package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/accord-build/accord/internal/build"
	"github.com/accord-build/accord/internal/engine"
)

// progress prints task and step progress to w: with colour and a status
// column on a terminal, as plain lines when piped. Step output is streamed
// line by line, prefixed with task/step. Safe for concurrent use.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	quiet bool
	start time.Time
}

func newProgress(w io.Writer, quiet bool) *progress {
	return &progress{w: w, tty: isTerminal(w), quiet: quiet, start: time.Now()}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) color(code, s string) string {
	if !p.tty {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, args...)
}

func (p *progress) elapsed() string {
	return fmt.Sprintf("%6.1fs", time.Since(p.start).Seconds())
}

// Started prints what is about to run (not in quiet mode).
func (p *progress) Started(pl build.PipelineInfo, s build.SourceInfo, runtime string, rootless bool) {
	p.mu.Lock()
	p.start = time.Now()
	p.mu.Unlock()
	if p.quiet {
		return
	}
	src := "directory (SOURCE_DATE_EPOCH=" + fmt.Sprint(s.SourceDateEpoch) + ", from --source-date-epoch)"
	if s.Commit != "" {
		src = fmt.Sprintf("%s @ %s (SOURCE_DATE_EPOCH=%d, the commit time)", s.URI, s.Commit, s.SourceDateEpoch)
	}
	mode := "root"
	if rootless {
		mode = "rootless"
	}
	p.printf("pipeline %s %s\nsource   %s\nruntime  %s (%s)\n", pl.Name, pl.Digest, src, runtime, mode)
}

// Rebuilding says what a rebuild rebuilds (not in quiet mode).
func (p *progress) Rebuilding(artifact, recordedBy string) {
	if !p.quiet {
		p.printf("rebuilding %s from the provenance of %s\n", artifact, recordedBy)
	}
}

func (p *progress) TaskStarted(task string) {
	if p.quiet {
		return
	}
	p.printf("%s %s task %s\n", p.elapsed(), p.color("36", "start"), task)
}

func (p *progress) StepStarted(task, step, image string) {
	if p.quiet {
		return
	}
	p.printf("%s %s step %s/%s  %s\n", p.elapsed(), p.color("36", "start"), task, step, image)
}

func (p *progress) StepOutput(task, step string) (interface{ Write([]byte) (int, error) }, interface{ Write([]byte) (int, error) }) {
	// Step output goes to stderr even with -o json: stdout stays pure JSON
	// and a failing step's own words stay visible.
	prefix := p.color("2", task+"/"+step+"| ")
	return &lineWriter{p: p, prefix: prefix}, &lineWriter{p: p, prefix: prefix}
}

func (p *progress) StepFinished(task string, r engine.StepResult) {
	if p.quiet {
		return
	}
	p.printf("%s %s step %s/%s  exit %d, %.1fs\n", p.elapsed(), p.status(r.Status), task, r.Name, r.ExitCode, r.Seconds)
}

func (p *progress) TaskFinished(r engine.TaskResult) {
	if p.quiet {
		return
	}
	net := ""
	if r.Network {
		net = " (network)"
	}
	p.printf("%s %s task %s%s  %.1fs\n", p.elapsed(), p.status(r.Status), r.Name, net, r.Seconds)
}

func (p *progress) status(s engine.Status) string {
	switch s {
	case engine.Succeeded:
		return p.color("32", "done ")
	case engine.Skipped:
		return p.color("33", "skip ")
	}
	return p.color("31", "FAIL ")
}

// lineWriter prefixes each complete line; a partial line waits for its end.
type lineWriter struct {
	p      *progress
	prefix string
	buf    []byte
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.p.printf("%s%s\n", l.prefix, l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	return len(b), nil
}
