package artifact

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/accord-build/accord/internal/engine"
	"github.com/accord-build/accord/internal/store"
)

// TestCollectRefusesReservedNames: a task cannot announce its output under
// a name that would land on another artifact's evidence (cosign's and
// accord's sha256-<hex>.sig|att|links|released tags), nor under a name that
// is no image reference. Nothing is stored, and the victim's evidence is
// intact.
func TestCollectRefusesReservedNames(t *testing.T) {
	ctx := context.Background()
	const victim = "accord.dev/examples/hello"
	tag := func(h, suffix string) string { return victim + ":sha256-" + h + "." + suffix }
	tests := []struct {
		name string
		kind engine.OutputKind
		uri  string // for files: the name under the workspace
	}{
		{"IMAGE_URL on the victim's attestations", engine.Image, tag("%s", "att")},
		{"IMAGE_URL on the victim's signatures", engine.Image, tag("%s", "sig")},
		{"IMAGE_URL on the victim's links", engine.Image, tag("%s", "links")},
		{"IMAGE_URL on the victim's release mark", engine.Image, tag("%s", "released")},
		{"IMAGE_URL on a cosign SBOM tag", engine.Image, tag("%s", "sbom")},
		{"IMAGE_URL with any sha256- tag", engine.Image, victim + ":sha256-%s"},
		{"IMAGE_URL with a sha512- tag", engine.Image, victim + ":sha512-abc"},
		{"IMAGE_URL with a digest", engine.Image, victim + "@sha256:%s"},
		{"IMAGE_URL in upper case", engine.Image, "Accord.dev/Examples/HELLO"},
		{"IMAGE_URL garbage", engine.Image, "not a //reference"},
		{"IMAGE_URL empty tag", engine.Image, victim + ":"},
		{"IMAGE_URL empty", engine.Image, ""},
		{"ARTIFACT_OUTPUTS on the victim's attestations", engine.Artifact, "hello:sha256-%s.att"},
		{"ARTIFACT_OUTPUTS with a digest", engine.Artifact, "hello@sha256:%s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			victimImg := f.writeImage(t, "victim")
			hv, err := f.store.Put(ctx, victim, victimImg)
			if err != nil {
				t.Fatal(err)
			}
			att := store.AttachmentRef(store.Name(f.store, victim), hv, store.AttSuffix)
			evidence := store.Layer{MediaType: store.DSSEMediaType, Blob: []byte(`{"payload":"victim"}`)}
			if _, err := store.Attach(ctx, f.store, att, []store.Layer{evidence}, nil); err != nil {
				t.Fatal(err)
			}
			uri := strings.ReplaceAll(tc.uri, "%s", hv.Hex)
			out := engine.Output{Kind: tc.kind, Task: "build", Hint: "IMAGE_URL", URI: uri}
			if tc.kind == engine.Image {
				out.Digest = digestOfImage(t, f.writeImage(t, "image")).String()
			} else {
				f.writeFile(t, uri, []byte("forged"))
				out.Hint, out.URI, out.Digest = "BINARY_ARTIFACT_OUTPUTS", mount+"/"+uri, sha([]byte("forged"))
			}
			idx, blobs := f.snapshot(t)
			arts, err := Collect(ctx, f.result(out), f.store, true)
			var ne *NameError
			if !errors.As(err, &ne) {
				t.Fatalf("Collect = %v, %v; want a *NameError", arts, err)
			}
			for _, want := range []string{`task "build"`, out.Hint, "fix:"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if idx2, blobs2 := f.snapshot(t); idx2 != idx || len(blobs2) != len(blobs) {
				t.Error("the store changed")
			}
			ls, err := store.Layers(ctx, f.store, att)
			if err != nil || len(ls) != 1 || string(ls[0].Blob) != string(evidence.Blob) {
				t.Errorf("the victim's evidence = %v, %v", ls, err)
			}
		})
	}
}

func TestCheckImageName(t *testing.T) {
	for _, ok := range []string{"example.com/app", "example.com/app:v1", "localhost:5000/app", "localhost:5000/app:v1.2", "app", "accord.dev/examples/hello:sha", "x/sig:att"} {
		if err := CheckImageName(ok); err != nil {
			t.Errorf("CheckImageName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"app:v1.sig", "app:x.att", "app:x.links", "app:x.released", "app:sha256-0", "-app", "app b", "App", "app\n"} {
		if err := CheckImageName(bad); err == nil {
			t.Errorf("CheckImageName(%q): no error", bad)
		}
	}
	for _, ok := range []string{"app", "app-1.0.tar.gz", "App.BIN"} {
		if err := checkFileName(ok); err != nil {
			t.Errorf("checkFileName(%q) = %v", ok, err)
		}
	}
}
