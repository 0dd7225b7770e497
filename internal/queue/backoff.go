package queue

import "time"

// Backoff is the delay before retrying a run whose attempt (1, 2, ...)
// failed for an infrastructure reason: base doubled for each attempt
// after the first, at most max (base when max <= 0). It has no jitter,
// so a run's schedule is predictable.
func Backoff(attempt int, base, max time.Duration) time.Duration {
	if attempt < 1 || base <= 0 {
		return 0
	}
	if max <= 0 {
		max = base
	}
	d := base
	for i := 1; i < attempt; i++ {
		if d >= max/2 {
			return max
		}
		d *= 2
	}
	if d > max {
		return max
	}
	return d
}
