package startup

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// gcPercent reads the collector's setting.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestDone: the collector is off during init; Done turns it on with the
// first collection put off, and the first collection restores GOGC's
// setting; GOGC=off and settings above firstPercent are restored at once.
func TestDone(t *testing.T) {
	if p := gcPercent(); p != -1 {
		t.Fatalf("during init the collector's setting is %d, want -1 (off)", p)
	}
	for _, tc := range []struct {
		name        string
		gogc, first int
	}{
		{"GOGC unset", 100, firstPercent},
		{"GOGC=50", 50, firstPercent},
		{"GOGC=off", -1, -1},
		{"GOGC=800", 800, 800},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(p int) { percent = p; debug.SetGCPercent(-1) }(percent)
			percent = tc.gogc
			Done()
			if p := gcPercent(); p != tc.first {
				t.Fatalf("after Done the setting is %d, want %d until the first collection", p, tc.first)
			}
			deadline := time.Now().Add(10 * time.Second)
			for gcPercent() != tc.gogc {
				if time.Now().After(deadline) {
					t.Fatalf("after a collection the setting is %d, want GOGC's %d", gcPercent(), tc.gogc)
				}
				runtime.GC()
				time.Sleep(time.Millisecond)
			}
		})
	}
	debug.SetGCPercent(percent)
}
