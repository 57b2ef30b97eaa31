package serve

import (
	"context"
	"slices"
	"sync"
)

// queue lets at most slots generations run at once; the others wait in arrival order, and
// each waiter hears its place in line whenever it changes.
type queue struct {
	mu      sync.Mutex
	slots   int
	running int
	waiting []*ticket
}

// ticket is one waiting generation.
type ticket struct {
	ready chan struct{} // closed when the ticket gets a slot
	moved chan struct{} // signalled (buffered 1) when the ticket moves up the line
}

func newQueue(slots int) *queue { return &queue{slots: max(1, slots)} }

// acquire waits for a slot. position is called with the number of generations ahead of this
// one (running ones not counted: 1 = next) each time it changes, and not at all when a slot
// is free at once. It returns the slot's release function, or ctx's error if ctx ends first
// (the ticket then leaves the line).
func (q *queue) acquire(ctx context.Context, position func(int)) (func(), error) {
	q.mu.Lock()
	if q.running < q.slots && len(q.waiting) == 0 {
		q.running++
		q.mu.Unlock()
		return q.releaseFunc(), nil
	}
	t := &ticket{ready: make(chan struct{}), moved: make(chan struct{}, 1)}
	q.waiting = append(q.waiting, t)
	pos := len(q.waiting)
	q.mu.Unlock()
	position(pos)
	for {
		select {
		case <-t.ready:
			return q.releaseFunc(), nil
		case <-t.moved:
			q.mu.Lock()
			pos := slices.Index(q.waiting, t) + 1
			q.mu.Unlock()
			if pos > 0 {
				position(pos)
			}
		case <-ctx.Done():
			q.mu.Lock()
			if i := slices.Index(q.waiting, t); i >= 0 {
				q.waiting = slices.Delete(q.waiting, i, i+1)
				q.notifyMoved(i)
				q.mu.Unlock()
				return nil, ctx.Err()
			}
			q.mu.Unlock()
			// The slot was granted as ctx ended: hand it on.
			<-t.ready
			q.releaseFunc()()
			return nil, ctx.Err()
		}
	}
}

// releaseFunc returns a function that frees the slot once, handing it to the first waiter.
func (q *queue) releaseFunc() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			if len(q.waiting) == 0 {
				q.running--
				return
			}
			next := q.waiting[0]
			q.waiting = q.waiting[1:]
			close(next.ready) // the slot passes to next; running is unchanged
			q.notifyMoved(0)
		})
	}
}

// notifyMoved tells the waiters from index i on that they moved up. q.mu is held.
func (q *queue) notifyMoved(i int) {
	for _, t := range q.waiting[i:] {
		select {
		case t.moved <- struct{}{}:
		default:
		}
	}
}

// state is the number of running and waiting generations.
func (q *queue) state() (running, waiting int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.running, len(q.waiting)
}
