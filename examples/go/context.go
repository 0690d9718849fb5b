package tank

/*
#include "tank.h"
*/
import "C"

import (
	"context"
	"sync"
)

// canceller is the cancel switch of one C call. It ties a context to the
// switch for the length of the call (when the context ends, the call ends
// within 500 ms with StatusCancelled), and the binding itself may trip it
// (a progress func that panicked).
type canceller struct {
	ctx  context.Context
	ptr  *C.TankCancel
	done chan struct{} // nil when ctx can never end
	wg   sync.WaitGroup
}

func newCanceller(ctx context.Context) *canceller {
	c := &canceller{ctx: ctx, ptr: C.tank_cancel_new()}
	if c.ptr == nil {
		panic("tank: tank_cancel_new returned NULL (out of memory)")
	}
	if ctx.Done() == nil {
		return c
	}
	if ctx.Err() != nil {
		// Already over: the call starts cancelled, whenever the watch
		// below gets to run.
		c.trigger()
	}
	c.done = make(chan struct{})
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		select {
		case <-ctx.Done():
			c.trigger()
		case <-c.done:
		}
	}()
	return c
}

// trigger ends the call; call it only before stop.
func (c *canceller) trigger() {
	C.tank_cancel_trigger(c.ptr)
}

// stop ends the watch and frees the switch; it never waits on the network.
// Call it once, after the C call returned.
func (c *canceller) stop() {
	if c.done != nil {
		close(c.done)
		c.wg.Wait()
	}
	C.tank_cancel_free(c.ptr)
	c.ptr = nil
}

// fail turns a failed call's status and error into the Go error, adding
// the context's own error when the context is what ended the call.
func (c *canceller) fail(status C.TankStatus, cerr *C.TankError) error {
	e := takeError(status, cerr)
	if e.Status == StatusCancelled {
		e.cause = c.ctx.Err()
	}
	return e
}
