// Package queue is the durable state of 'accord serve', in one bbolt
// database: accepted deliveries (de-duplicated by X-GitHub-Delivery), the
// runs they start and what became of each. Every write is committed with
// fsync before its caller is told; concurrent accepts share one commit
// (group commit), so a burst of deliveries costs few fsyncs.
package queue
