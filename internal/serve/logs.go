package serve

import (
	"strings"
	"sync"

	"github.com/accord-build/accord/internal/build"
	"github.com/accord-build/accord/internal/engine"
)

// maxLog is how much of a step's output the server keeps: the tail.
const maxLog = 64 << 10

// logs captures every step's output of one run, per builder, keeping the
// tail of each.
type logs struct {
	mu    sync.Mutex
	steps map[string]*tail // "builder/task/step"
}

func newLogs() *logs { return &logs{steps: map[string]*tail{}} }

// progress is builder name's [build.Progress].
func (l *logs) progress(name string) build.Progress { return &capture{l: l, builder: name} }

// text is the captured tail of one step.
func (l *logs) text(builder, task, step string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.steps[builder+"/"+task+"/"+step]
	if t == nil {
		return ""
	}
	return t.String()
}

func (l *logs) writer(builder, task, step string) *tail {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := builder + "/" + task + "/" + step
	if l.steps[k] == nil {
		l.steps[k] = &tail{}
	}
	return l.steps[k]
}

// tail keeps the last maxLog bytes written to it.
type tail struct {
	mu      sync.Mutex
	b       []byte
	dropped bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - maxLog; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
		t.dropped = true
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(t.b)
	if t.dropped {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
		s = "[earlier output cut]\n" + s
	}
	return s
}

// capture is one builder's progress: it keeps step output, nothing else.
type capture struct {
	l       *logs
	builder string
}

func (c *capture) Started(build.PipelineInfo, build.SourceInfo, string, bool) {}
func (c *capture) TaskStarted(string)                                         {}
func (c *capture) StepStarted(string, string, string)                         {}
func (c *capture) StepFinished(string, engine.StepResult)                     {}
func (c *capture) TaskFinished(engine.TaskResult)                             {}
func (c *capture) StepOutput(task, step string) (stdout, stderr interface{ Write([]byte) (int, error) }) {
	w := c.l.writer(c.builder, task, step)
	return w, w
}

// mask replaces every secret value in s.
func mask(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "***")
		}
	}
	return s
}
