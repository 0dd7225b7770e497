package queue

import (
	"encoding/binary"
	"fmt"

	"github.com/accord-build/accord/internal/trigger"
)

// Pending is an accepted delivery waiting for the dispatcher, as the
// pending list holds it: its arrival, id, event and the repository the
// intake read from its body ("" when it could not tell). That is enough
// for the dispatcher to set aside a delivery the server does not build
// without reading its record or its body.
type Pending struct {
	Arrival uint64
	ID      string
	Event   string
	Repo    string
}

// pendingFormat is the first byte of a pending value (version 4 on; the
// values of earlier versions were the id alone).
const pendingFormat = 1

// pendingValue is d's entry in the pending bucket: the format byte, the
// id and the event each after its length (uvarint), then the repository.
func pendingValue(d trigger.Delivery) []byte {
	v := make([]byte, 0, 1+2*binary.MaxVarintLen16+len(d.ID)+len(d.Event)+len(d.Repo))
	v = append(v, pendingFormat)
	v = binary.AppendUvarint(v, uint64(len(d.ID)))
	v = append(v, d.ID...)
	v = binary.AppendUvarint(v, uint64(len(d.Event)))
	v = append(v, d.Event...)
	return append(v, d.Repo...)
}

// decodePending reads the pending entry of key and value.
func decodePending(k, v []byte) (Pending, error) {
	if len(k) != 8 {
		return Pending{}, fmt.Errorf("pending entry with a key of %d bytes (%x): the database is damaged", len(k), k)
	}
	damaged := func(what string) (Pending, error) {
		return Pending{}, fmt.Errorf("pending delivery (arrival %d): %s: the database is damaged", binary.BigEndian.Uint64(k), what)
	}
	if len(v) == 0 || v[0] != pendingFormat {
		return damaged("unknown format")
	}
	p := Pending{Arrival: binary.BigEndian.Uint64(k)}
	rest := v[1:]
	for _, f := range []*string{&p.ID, &p.Event} {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return damaged("truncated")
		}
		*f = string(rest[w : w+int(n)])
		rest = rest[w+int(n):]
	}
	if p.ID == "" {
		return damaged("no id")
	}
	p.Repo = string(rest)
	return p, nil
}

// delivery is p as a delivery without its body or the rest of its
// record.
func (p Pending) delivery() StoredDelivery {
	return StoredDelivery{Delivery: trigger.Delivery{ID: p.ID, Event: p.Event, Repo: p.Repo}, State: DeliveryAccepted, Arrival: p.Arrival}
}
