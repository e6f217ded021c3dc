package webhook

import (
	"context"
	"errors"

	"github.com/buildfleet/buildfleet/manager/store"
)

// batcher group-commits deliveries: concurrent requests wait together for
// one transaction, so one fsync acknowledges many deliveries. Each waiter
// gets its own answer only after the commit.
type batcher struct {
	sink    Sink
	in      chan pending
	onStore func(error) // see Options.OnStore; never nil
}

type pending struct {
	d     store.Delivery
	reply chan result
}

type result struct {
	fresh bool
	err   error
}

const maxBatch = 512

var errStopped = errors.New("webhook intake stopped")

func newBatcher(s Sink, onStore func(error)) *batcher {
	if onStore == nil {
		onStore = func(error) {}
	}
	return &batcher{sink: s, in: make(chan pending, maxBatch), onStore: onStore}
}

func (b *batcher) put(ctx context.Context, d store.Delivery) (bool, error) {
	p := pending{d: d, reply: make(chan result, 1)}
	select {
	case b.in <- p:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case r := <-p.reply:
		return r.fresh, r.err
	case <-ctx.Done():
		// The commit may still happen; GitHub's redelivery is deduplicated.
		return false, ctx.Err()
	}
}

// run is the only writer:
//
//	wait for one ─▶ take all queued (≤512) ─▶ one transaction ─▶ answer each
func (b *batcher) run(ctx context.Context) {
	batch := make([]pending, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			b.drain()
			return
		case p := <-b.in:
			batch = append(batch, p)
		}
	more:
		for len(batch) < maxBatch {
			select {
			case p := <-b.in:
				batch = append(batch, p)
			default:
				break more
			}
		}
		b.commit(ctx, batch)
	}
}

func (b *batcher) commit(ctx context.Context, batch []pending) {
	ds := make([]store.Delivery, len(batch))
	for i, p := range batch {
		ds[i] = p.d
	}
	fresh, err := b.sink.PutDeliveries(context.WithoutCancel(ctx), ds)
	b.onStore(err)
	for i, p := range batch {
		r := result{err: err}
		if err == nil {
			r.fresh = fresh[i]
		}
		p.reply <- r
	}
}

// drain answers whoever still waits after the stop.
func (b *batcher) drain() {
	for {
		select {
		case p := <-b.in:
			p.reply <- result{err: errStopped}
		default:
			return
		}
	}
}
