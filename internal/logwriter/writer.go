package logwriter

import (
	"io"
	"sync"
)

// DefaultMaxPending is how many bytes of lines may wait for the file
// before Write waits for them to be written.
const DefaultMaxPending = 1 << 20

// Writer joins concurrent writes into one write of the file under it;
// see the package documentation. Its methods are safe for concurrent use.
type Writer struct {
	out        io.Writer
	maxPending int

	mu      sync.Mutex
	drained *sync.Cond // signalled after each write to out
	pending []byte     // given, not yet written
	closed  bool
	err     error // the first error out returned
	once    sync.Once

	kick chan struct{} // something is pending (capacity 1)
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the flusher has written all and stopped
}

// New returns a Writer over out and starts its flusher; Close stops it.
func New(out io.Writer) *Writer {
	w := &Writer{out: out, maxPending: DefaultMaxPending, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	w.drained = sync.NewCond(&w.mu)
	go w.flusher()
	return w
}

// Write copies p (it does not keep it) to be written with whatever else
// is waiting. It waits only while more than DefaultMaxPending bytes are
// waiting (a file slower than the lines). A line taken is reported
// written; an error of the file is Close's to return (a log handler has
// nothing better to do with it). After Close, Write writes p to the file
// itself and returns what it returns.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.pending) >= w.maxPending && !w.closed {
		w.drained.Wait()
	}
	if w.closed {
		defer w.mu.Unlock()
		return w.out.Write(p)
	}
	w.pending = append(w.pending, p...)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default: // already kicked: the flusher will take p too
	}
	return len(p), nil
}

// flusher writes what is pending each time it is kicked, until Close.
func (w *Writer) flusher() {
	defer close(w.done)
	var spare []byte
	for {
		select {
		case <-w.kick:
		case <-w.stop:
			w.flush(&spare)
			return
		}
		w.flush(&spare)
	}
}

// flush writes what is pending in one write, swapping buffers so that
// writers go on while the file is written.
func (w *Writer) flush(spare *[]byte) {
	w.mu.Lock()
	batch := w.pending
	w.pending = (*spare)[:0]
	w.drained.Broadcast() // room again: writers fill the other buffer meanwhile
	w.mu.Unlock()
	if len(batch) > 0 {
		if _, err := w.out.Write(batch); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	}
	if cap(batch) > 4*w.maxPending {
		batch = nil // a burst made it big: let it go
	}
	*spare = batch[:0]
}

// Close writes what is waiting and stops the flusher; later writes go to
// the file directly. It returns the first error the file returned while
// the Writer wrote for others (lines may have been lost then). Close is
// idempotent.
func (w *Writer) Close() error {
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		w.mu.Lock()
		defer w.mu.Unlock()
		// Lines given while the flusher stopped.
		if len(w.pending) > 0 {
			if _, err := w.out.Write(w.pending); err != nil && w.err == nil {
				w.err = err
			}
			w.pending = nil
		}
		w.closed = true
		w.drained.Broadcast()
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
