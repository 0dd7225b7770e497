package logwriter

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingFile is a real file that counts the writes it is given, each
// taking a while (as a slow disk or a full pipe does), so lines gather.
type countingFile struct {
	f      *os.File
	mu     sync.Mutex
	writes int
	delay  time.Duration
}

func (c *countingFile) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	time.Sleep(c.delay)
	return c.f.Write(p)
}

// Lines written at once by many goroutines reach the file whole, each
// once, each goroutine's in its order, in fewer writes than lines.
func TestConcurrentLinesShareWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := &countingFile{f: f, delay: time.Millisecond}
	w := New(out)
	const writers, lines = 16, 200
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				fmt.Fprintf(w, "{\"g\":%d,\"i\":%d,\"pad\":%q}\n", g, i, strings.Repeat("x", g*7))
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for _, l := range got {
		var g, i int
		if _, err := fmt.Sscanf(l, "{\"g\":%d,\"i\":%d,", &g, &i); err != nil || !strings.HasSuffix(l, fmt.Sprintf("%q}", strings.Repeat("x", g*7))) {
			t.Fatalf("a line came out broken: %q", l)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
	if len(got) != writers*lines {
		t.Errorf("%d lines in the file, want %d", len(got), writers*lines)
	}
	if out.writes >= writers*lines/2 {
		t.Errorf("%d writes for %d lines: they did not share writes", out.writes, writers*lines)
	}
	t.Logf("%d lines in %d writes", len(got), out.writes)
}

// A line alone is written at once, without waiting for Close or others.
func TestLineAloneIsWrittenAtOnce(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	w := New(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(p) }))
	defer w.Close()
	line := []byte("one line\n")
	w.Write(line)
	copy(line, "CHANGED!") // the Writer keeps a copy, not p
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		s := buf.String()
		mu.Unlock()
		if s == "one line\n" {
			return
		}
		if s != "" || time.Now().After(deadline) {
			t.Fatalf("file holds %q, want the line as written", s)
		}
		time.Sleep(time.Millisecond)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A file slower than the lines holds writers back once maxPending bytes
// wait, instead of letting the buffer grow without bound; Close writes
// what waits, and lines after Close go to the file directly.
func TestBackpressureAndClose(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var buf bytes.Buffer
	w := New(writerFunc(func(p []byte) (int, error) {
		<-release
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}))
	w.maxPending = 64
	w.Write([]byte(strings.Repeat("a", 63) + "\n")) // taken by the flusher, which blocks in the file
	time.Sleep(20 * time.Millisecond)
	w.Write([]byte(strings.Repeat("b", 63) + "\n")) // waits in the buffer: now full
	third := make(chan struct{})
	go func() { w.Write([]byte("c\n")); close(third) }()
	select {
	case <-third:
		t.Fatal("a write over maxPending did not wait for the file")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-third
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("after close\n"))
	mu.Lock()
	defer mu.Unlock()
	want := strings.Repeat("a", 63) + "\n" + strings.Repeat("b", 63) + "\nc\nafter close\n"
	if buf.String() != want {
		t.Errorf("file holds %q, want %q", buf.String(), want)
	}
}

// A line is taken whatever became of the lines before it; the file's
// first error is Close's to return, and a write after Close returns the
// file's own answer.
func TestFileErrorIsReported(t *testing.T) {
	boom := errors.New("disk full")
	var mu sync.Mutex
	fail := true
	var buf bytes.Buffer
	w := New(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			return 0, boom
		}
		return buf.Write(p)
	}))
	if n, err := w.Write([]byte("lost\n")); n != 5 || err != nil {
		t.Errorf("Write = %d, %v; want the line taken", n, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for { // until the flusher has met the error
		mu.Lock()
		failed := !fail
		mu.Unlock()
		if failed || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if n, err := w.Write([]byte("kept\n")); n != 5 || err != nil {
		t.Errorf("Write after the file failed = %d, %v; want the line taken", n, err)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Errorf("Close = %v, want %v", err, boom)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Errorf("second Close = %v, want %v", err, boom)
	}
	mu.Lock()
	got := buf.String()
	mu.Unlock()
	if got != "kept\n" {
		t.Errorf("file holds %q, want the line after the failure", got)
	}
	w2 := New(writerFunc(func([]byte) (int, error) { return 0, boom }))
	w2.Close()
	if _, err := w2.Write([]byte("x\n")); !errors.Is(err, boom) {
		t.Errorf("Write after Close = %v, want the file's %v", err, boom)
	}
}
