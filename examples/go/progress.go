package tank

/*
#include "tank.h"
extern void tankGoProgress(void *user, uint64_t done, uint64_t total);
*/
import "C"

import (
	"runtime/cgo"
	"runtime/debug"
	"unsafe"
)

// progressFn is what one C call taking a TankProgressFn gets for a Go
// progress func: pass fn and user to the call, release the callback once
// the call has returned, and let outcome decide the call's error. For a
// nil func fn and user are NULL.
type progressFn struct {
	fn     C.TankProgressFn
	user   unsafe.Pointer
	handle *cgo.Handle
	state  *progressState
}

// progressState is a progress func in the hands of one call.
type progressState struct {
	report func(done, total int64)
	// cancel ends the call when report panics.
	cancel *canceller
	// panicked is set by the first panic; report does not run after it.
	panicked *PanicError
}

// newProgressFn wraps progress (nil or not) for one C call, which cancel
// can end.
func newProgressFn(progress func(done, total int64), cancel *canceller) progressFn {
	if progress == nil {
		return progressFn{}
	}
	s := &progressState{report: progress, cancel: cancel}
	// A Go pointer to a handle (an integer) may cross for the call.
	h := new(cgo.Handle)
	*h = cgo.NewHandle(s)
	return progressFn{fn: C.TankProgressFn(C.tankGoProgress), user: unsafe.Pointer(h), handle: h, state: s}
}

// release frees the handle; call it after the C call returned.
func (p progressFn) release() {
	if p.handle != nil {
		p.handle.Delete()
	}
}

// outcome is the call's error, given what the C call returned (nil for
// TANK_OK): a panic in the progress func beats it, since the panic is what
// ended the call, and a caller must hear of a panic even when the call
// had already succeeded.
func (p progressFn) outcome(callErr error) error {
	if p.state != nil && p.state.panicked != nil {
		return p.state.panicked
	}
	return callErr
}

// call runs the progress func once. A panic must not unwind from here: the
// frames above are libtank's, which Go cannot unwind (locks held there
// would stay held and the transfer would run on). It is recovered, kept
// for outcome, and the call is cancelled.
func (s *progressState) call(done, total int64) {
	if s.panicked != nil {
		return
	}
	returned := false
	defer func() {
		if returned {
			return
		}
		// recover is nil for panic(nil) (before Go 1.21), which is a
		// panic all the same.
		s.panicked = &PanicError{Value: recover(), Stack: debug.Stack()}
		s.cancel.trigger()
	}()
	s.report(done, total)
	returned = true
}

// tankGoProgress is the TankProgressFn of every call given a Go progress
// func (see newProgressFn): user points at a cgo.Handle of its
// progressState. libtank calls it on the thread that made the call, so it
// runs on the calling goroutine.
//
//export tankGoProgress
func tankGoProgress(user unsafe.Pointer, done, total C.uint64_t) {
	h := *(*cgo.Handle)(user)
	h.Value().(*progressState).call(int64(done), int64(total))
}
