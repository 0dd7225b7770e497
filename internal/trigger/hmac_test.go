package trigger

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// The example from GitHub's documentation on validating deliveries.
func TestSignGitHubExample(t *testing.T) {
	got := Sign([]byte("It's a Secret to Everybody"), []byte("Hello, World!"))
	want := "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	s := mustSecrets(t, secretA, secretB)
	body := []byte(pushBody)
	good := Sign(secretA, body)
	mac := hmac.New(sha256.New, secretA)
	mac.Write(body)
	sum := mac.Sum(nil)
	sha1Len := "sha1=" + hex.EncodeToString(sum[:20])
	tests := []struct {
		name   string
		header string
		body   []byte
		want   bool
	}{
		{"first secret", good, body, true},
		{"second secret", Sign(secretB, body), body, true},
		{"upper-case hex", "sha256=" + strings.ToUpper(good[7:]), body, true},
		{"unknown secret", Sign(secretC, body), body, false},
		{"other body", good, append([]byte(pushBody), ' '), false},
		{"empty body, signature of another", good, nil, false},
		{"empty header", "", body, false},
		{"no prefix", good[7:], body, false},
		{"upper-case prefix", "SHA256=" + good[7:], body, false},
		{"sha1 prefix", "sha1=" + good[7:], body, false},
		{"sha1-length digest", sha1Len, body, false},
		{"truncated", good[:len(good)-2], body, false},
		{"one more digit", good + "0", body, false},
		{"trailing space", good + " ", body, false},
		{"leading space", " " + good, body, false},
		{"non-hex digit", good[:10] + "g" + good[11:], body, false},
		{"last bit flipped", good[:len(good)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", good[len(good)-1])^1)]), body, false},
		{"two signatures", good + "," + good, body, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Verify(tc.body, tc.header); got != tc.want {
				t.Errorf("Verify(%q) = %v, want %v", tc.header, got, tc.want)
			}
		})
	}
}

// Rotation: any of the configured secrets is accepted, the old one as long
// as it stays in the list, and no other.
func TestVerifyRotation(t *testing.T) {
	body := []byte(pushBody)
	old, both, rotated := mustSecrets(t, secretA), mustSecrets(t, secretA, secretB), mustSecrets(t, secretB)
	for _, tc := range []struct {
		name   string
		s      *Secrets
		secret []byte
		want   bool
	}{
		{"before: old", old, secretA, true},
		{"before: new", old, secretB, false},
		{"during: old", both, secretA, true},
		{"during: new", both, secretB, true},
		{"during: other", both, secretC, false},
		{"after: old", rotated, secretA, false},
		{"after: new", rotated, secretB, true},
	} {
		if got := tc.s.Verify(body, Sign(tc.secret, body)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Verify allocates nothing once warm, whatever the number of secrets.
func TestVerifyAllocs(t *testing.T) {
	s := mustSecrets(t, secretA, secretB, secretC)
	body := []byte(strings.Repeat(pushBody, 50))
	sig := Sign(secretC, body)
	if n := testing.AllocsPerRun(200, func() {
		if !s.Verify(body, sig) {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Errorf("Verify allocates %v times", n)
	}
}

func BenchmarkVerify(b *testing.B) {
	s := mustSecrets(b, secretA, secretB)
	body := []byte(strings.Repeat("x", 7000))
	sig := Sign(secretB, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !s.Verify(body, sig) {
				b.Fatal("refused")
			}
		}
	})
}

// Verify tries every secret, also after one matched (no early exit that
// would tell by its timing which secret signed the delivery).
func TestVerifyTriesEverySecret(t *testing.T) {
	body := []byte(pushBody)
	for _, tc := range []struct {
		name string
		sig  string
	}{
		{"first matches", Sign(secretA, body)},
		{"middle matches", Sign(secretB, body)},
		{"none matches", Sign([]byte("other"), body)},
	} {
		s := mustSecrets(t, secretA, secretB, secretC)
		used := make([]int, len(s.keys))
		for i, k := range s.keys {
			newState := k.pool.New
			k.pool.New = func() any { used[i]++; return newState() }
		}
		s.Verify(body, tc.sig)
		for i, n := range used {
			if n != 1 {
				t.Errorf("%s: secret %d computed %d times, want 1", tc.name, i, n)
			}
		}
	}
}
