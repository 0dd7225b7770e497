// Package queue is the durable state of 'accord serve', in one bbolt
// database: accepted deliveries (de-duplicated by X-GitHub-Delivery), the
// runs they start and what became of each. Every write is committed with
// fsync before its caller is told; concurrent writes share one commit
// (group commit: one goroutine commits every write waiting, see
// commitLoop), so a burst of deliveries costs few fsyncs.
//
// The life of a delivery: [Queue.Accept] stores it (before the webhook
// reply); the dispatcher reads [Queue.UndispatchedN], decides what to
// build and calls [Queue.Dispatch], which queues the runs in the same
// transaction that marks the delivery dispatched (or [Queue.Ignore], for
// many that build nothing in one commit); workers take runs with
// [Queue.Next] and end them with [Queue.Finish], [Queue.Retry] or
// [Queue.Requeue]. After a crash, [Queue.Recover] puts the runs that were
// running back in the queue, and the dispatcher finds the deliveries it
// had not dispatched: nothing acknowledged is lost, nothing is run twice
// to completion, and an interrupted run starts again from the beginning.
//
// Records are stored as JSON (the encoding of [StoredDelivery] and [Job]
// is pinned by golden files). A delivery is stored under its arrival
// number, only ever appended: its record as accepted, its body
// (S2-compressed, see body.go), its keys (body digest and id) and, once
// dispatched, its outcome. Nothing on disk is keyed by a GUID or a
// digest, since a B-tree of random keys rewrites a page per delivery at
// every commit: de-duplication and lookups by id use an index in memory
// (index.go, about 95 bytes a delivery), rebuilt from the keys when the
// queue opens. Every write, accepts and the dispatcher's and workers'
// changes alike, goes through the one group committer.
package queue
