// Package queue is the durable state of 'accord serve', in one bbolt
// database: accepted deliveries (de-duplicated by X-GitHub-Delivery), the
// runs they start and what became of each. Every write is committed with
// fsync before its caller is told; concurrent accepts share one commit
// (group commit: one goroutine commits every accept waiting, see
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
// is pinned by golden files); a delivery's body is stored raw, under its
// arrival number, beside its record.
package queue
