package attest

import (
	"os"
	"path/filepath"
	"testing"
)

// TestScratchDir: in-toto's scratch files go to the memory filesystem
// when there is one, they are few and $TMPDIR names no other place;
// otherwise to the temporary directory, as before.
func TestScratchDir(t *testing.T) {
	mem := t.TempDir()
	tmp := t.TempDir()
	defer func(m string) { memTemp = m }(memTemp)
	tests := []struct {
		name, tmpdir, mem string
		size              int64
		want              string
	}{
		{"a few link files", "", mem, 100 << 10, mem},
		{"$TMPDIR set", tmp, mem, 100 << 10, tmp},
		{"more than the memory filesystem takes", "", mem, scratchMemMax + 1, os.TempDir()},
		{"no memory filesystem", "", filepath.Join(mem, "missing"), 100 << 10, os.TempDir()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TMPDIR", tc.tmpdir)
			memTemp = tc.mem
			want := tc.want
			if tc.tmpdir != "" {
				want = tc.tmpdir
			}
			d, err := ScratchDir("accord-test-", tc.size)
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(d)
			if filepath.Dir(d) != filepath.Clean(want) {
				t.Errorf("scratch dir %s, want one in %s", d, want)
			}
			if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o700 {
				t.Errorf("scratch dir %v %v, want a 0700 directory", st, err)
			}
		})
	}
}
