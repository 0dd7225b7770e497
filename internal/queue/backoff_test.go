package queue

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	cases := []struct {
		attempt   int
		base, max time.Duration
		want      time.Duration
	}{
		{1, time.Second, time.Minute, time.Second},
		{2, time.Second, time.Minute, 2 * time.Second},
		{3, time.Second, time.Minute, 4 * time.Second},
		{6, time.Second, time.Minute, 32 * time.Second},
		{7, time.Second, time.Minute, time.Minute},
		{1000, time.Second, time.Minute, time.Minute},
		{0, time.Second, time.Minute, 0},
		{-1, time.Second, time.Minute, 0},
		{3, 0, time.Minute, 0},
		{1, 2 * time.Minute, time.Minute, time.Minute},
		{80, time.Hour, 24 * time.Hour, 24 * time.Hour},
		{5, time.Second, 0, time.Second},
	}
	for _, c := range cases {
		if got := Backoff(c.attempt, c.base, c.max); got != c.want {
			t.Errorf("Backoff(%d, %v, %v) = %v, want %v", c.attempt, c.base, c.max, got, c.want)
		}
	}
}
