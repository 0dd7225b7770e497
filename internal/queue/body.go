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

// encodeBody is body as stored: S2-compressed when that is smaller.
func encodeBody(body []byte) []byte {
	enc := appendBody(nil, body)
	return enc[:len(enc):len(enc)]
}

// appendBody is encodeBody written into dst's memory (grown if it is too
// small) instead of a slice of its own: the format byte, then the body
// compressed in place (or, when that is not smaller, copied).
func appendBody(dst, body []byte) []byte {
	n := 1 + s2.MaxEncodedLen(len(body))
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	enc := s2.Encode(dst[1:], body) // dst[1:] is big enough: written in place
	if len(enc) >= len(body) {
		dst[0] = bodyRaw
		return append(dst[:1], body...)
	}
	dst[0] = bodyS2
	return dst[:1+len(enc)]
}

// bodyBufs holds the memory accepts encode bodies into: given back once
// the commit that wrote the body is over (bbolt has copied it into its
// pages by then), so a burst of deliveries does not allocate, and the
// collector does not sweep, a body's worth each.
var bodyBufs sync.Pool

// maxPooledBody is the largest buffer bodyBufs keeps.
const maxPooledBody = 256 << 10

func getBodyBuf() []byte {
	if b, ok := bodyBufs.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

func putBodyBuf(b []byte) {
	if cap(b) > 0 && cap(b) <= maxPooledBody {
		bodyBufs.Put(&b)
	}
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
