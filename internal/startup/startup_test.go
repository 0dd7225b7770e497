package startup

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// gcPercent reads the collector's setting (without setting it, which
// would race with Done's cleanup).
func gcPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
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

// waitGC collects until the setting is want, or fails.
func waitGC(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for gcPercent() != want {
		if time.Now().After(deadline) {
			t.Fatalf("after collections the setting is %d, want %d", gcPercent(), want)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

// TestPreferGCPercent: a command's preferred setting wins over GOGC's
// default whether it is set before or after the first collection puts
// the setting back, and loses to GOGC set in the environment.
func TestPreferGCPercent(t *testing.T) {
	unprefer := func() {
		restore.Lock()
		restore.preferred = false
		restore.Unlock()
	}
	defer func(p int) { percent = p; unprefer(); debug.SetGCPercent(p) }(percent)
	t.Run("before Done", func(t *testing.T) {
		unprefer()
		percent = 100
		PreferGCPercent(200)
		Done()
		waitGC(t, 200)
	})
	t.Run("before the first collection", func(t *testing.T) {
		unprefer()
		percent = 100
		Done()
		PreferGCPercent(300)
		if p := gcPercent(); p != firstPercent {
			t.Fatalf("before the first collection the setting is %d, want %d", p, firstPercent)
		}
		waitGC(t, 300)
		for range 3 { // and it stays
			runtime.GC()
			time.Sleep(time.Millisecond)
		}
		if p := gcPercent(); p != 300 {
			t.Errorf("the setting went back to %d", p)
		}
	})
	t.Run("after it", func(t *testing.T) {
		unprefer()
		percent = 100
		Done()
		waitGC(t, 100)
		PreferGCPercent(250)
		if p := gcPercent(); p != 250 {
			t.Errorf("the setting is %d, want 250 at once", p)
		}
	})
	t.Run("GOGC set", func(t *testing.T) {
		unprefer()
		t.Setenv("GOGC", "50")
		percent = 50
		Done()
		PreferGCPercent(300)
		waitGC(t, 50)
	})
}
