package tank

/*
#include "tank.h"
*/
import "C"

import (
	"context"
	"sync"
)

// canceller ties a context to a TankCancel for the length of one C call:
// when the context ends, the call ends (within 500 ms) with StatusCancelled.
type canceller struct {
	ctx  context.Context
	ptr  *C.TankCancel // nil when ctx can never end
	done chan struct{}
	wg   sync.WaitGroup
}

func newCanceller(ctx context.Context) *canceller {
	c := &canceller{ctx: ctx}
	if ctx.Done() == nil {
		return c
	}
	c.ptr = C.tank_cancel_new()
	if c.ptr == nil {
		panic("tank: tank_cancel_new returned NULL (out of memory)")
	}
	if ctx.Err() != nil {
		// Already over: the call starts cancelled, whenever the watch
		// below gets to run.
		C.tank_cancel_trigger(c.ptr)
	}
	c.done = make(chan struct{})
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		select {
		case <-ctx.Done():
			C.tank_cancel_trigger(c.ptr)
		case <-c.done:
		}
	}()
	return c
}

// stop ends the watch and frees the switch; it never waits on the network.
func (c *canceller) stop() {
	if c.ptr == nil {
		return
	}
	close(c.done)
	c.wg.Wait()
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
