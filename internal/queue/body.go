package queue

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"
)

// Stored bodies start with a format byte. Payloads are JSON, full of
// repeated URLs: S2 (Snappy's successor, klauspost/compress) stores them
// in under half the bytes at several hundred MB/s, and bytes written are
// what a commit's fsync waits for.
const (
	bodyRaw byte = 'r' // the body as it came
	bodyS2  byte = 's' // the body, S2-compressed
)

// encodeScratch holds the buffers bodies are compressed into (each is
// then copied at its size).
var encodeScratch sync.Pool

// encodeBody is body as stored: S2-compressed when that is smaller.
func encodeBody(body []byte) []byte {
	n := s2.MaxEncodedLen(len(body))
	scratch, _ := encodeScratch.Get().(*[]byte)
	if scratch == nil || cap(*scratch) < n {
		scratch = new([]byte)
		*scratch = make([]byte, n)
	}
	defer encodeScratch.Put(scratch)
	enc := s2.Encode(*scratch, body) // written from (*scratch)[0] on
	if len(enc) >= len(body) {
		return append([]byte{bodyRaw}, body...)
	}
	return append([]byte{bodyS2}, enc...)
}

// decodeBody is encodeBody's inverse; v is only read (it may be bbolt's
// memory), the body returned is a copy.
func decodeBody(v []byte) ([]byte, error) {
	if len(v) == 0 {
		return nil, fmt.Errorf("no body: the database is damaged")
	}
	switch v[0] {
	case bodyRaw:
		return append([]byte(nil), v[1:]...), nil
	case bodyS2:
		body, err := s2.Decode(nil, v[1:])
		if err != nil {
			return nil, fmt.Errorf("body: %w: the database is damaged", err)
		}
		return body, nil
	}
	return nil, fmt.Errorf("body of format %q: the database is damaged", v[0])
}
