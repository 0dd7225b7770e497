package main

import (
	"os"
	"testing"

	"github.com/accord-build/accord/internal/startup"
)

// TestMain turns the garbage collector back on, as main does: package
// startup switches it off while packages initialise, and a test binary
// never runs main.
func TestMain(m *testing.M) {
	startup.Done()
	os.Exit(m.Run())
}
