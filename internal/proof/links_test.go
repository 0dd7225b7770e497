package proof

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/internal/store"
)

func TestLinksBundleRoundTrip(t *testing.T) {
	files := map[string][]byte{"b.step.1234abcd.link": []byte(`{"b":1}`), "a.step.1234abcd.link": []byte(`{"a":1}`)}
	tb, err := tarFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := tarFiles(files)
	if string(tb) != string(again) {
		t.Error("the links bundle is not deterministic")
	}
	got, err := ReadLinks([]store.Layer{
		{MediaType: store.LinksBundleMediaType, Blob: tb},
		{MediaType: store.LinkMediaType, Blob: []byte(`{"c":1}`), Annotations: map[string]string{"org.opencontainers.image.title": "../c.step.5678.link"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"a.step.1234abcd.link": []byte(`{"a":1}`), "b.step.1234abcd.link": []byte(`{"b":1}`), "c.step.5678.link": []byte(`{"c":1}`)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("links (-want +got):\n%s", diff)
	}
	if _, err := ReadLinks([]store.Layer{{MediaType: store.LinksBundleMediaType, Blob: []byte("not a tar, long enough to be read as a header block? no")}}); err == nil {
		t.Log("a short blob reads as an empty archive")
	}
}
