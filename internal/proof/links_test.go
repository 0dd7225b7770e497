package proof

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/accord-build/accord/attest"
	"github.com/accord-build/accord/internal/store"
)

func TestReadLinks(t *testing.T) {
	if string(store.LinksBundleMediaType) != attest.LinksBundleMediaType {
		t.Fatalf("store and attest disagree on the links bundle media type: %q, %q", store.LinksBundleMediaType, attest.LinksBundleMediaType)
	}
	files := map[string][]byte{"b.step.1234abcd.link": []byte(`{"b":1}`), "a.step.1234abcd.link": []byte(`{"a":1}`)}
	tb, err := attest.LinksBundle(files)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadLinks([]store.Layer{
		{MediaType: store.LinksBundleMediaType, Blob: tb},
		{MediaType: store.LinksBundleMediaType, Blob: []byte(strings.Repeat("junk", 200)), Annotations: map[string]string{store.BuilderAnnotation: "https://intruder"}},
		{MediaType: store.LinkMediaType, Blob: []byte(`{"c":1}`), Annotations: map[string]string{"org.opencontainers.image.title": "../c.step.5678.link"}},
	})
	if err == nil || !strings.Contains(err.Error(), "links layer 2") || !strings.Contains(err.Error(), "https://intruder") {
		t.Errorf("err = %v, want one naming the junk layer", err)
	}
	want := map[string][]byte{"a.step.1234abcd.link": []byte(`{"a":1}`), "b.step.1234abcd.link": []byte(`{"b":1}`), "c.step.5678.link": []byte(`{"c":1}`)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("links (-want +got):\n%s", diff)
	}
}
