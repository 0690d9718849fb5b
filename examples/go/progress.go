package tank

/*
#include "tank.h"
extern void tankGoProgress(void *user, uint64_t done, uint64_t total);
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// progressFn is what one C call taking a TankProgressFn gets for a Go
// progress func: pass fn and user to the call, and release the callback
// once the call has returned. For a nil func fn and user are NULL.
type progressFn struct {
	fn     C.TankProgressFn
	user   unsafe.Pointer
	handle *cgo.Handle
}

// newProgressFn wraps progress (nil or not) for one C call.
func newProgressFn(progress func(done, total int64)) progressFn {
	if progress == nil {
		return progressFn{}
	}
	// A Go pointer to a handle (an integer) may cross for the call.
	h := new(cgo.Handle)
	*h = cgo.NewHandle(progress)
	return progressFn{fn: C.TankProgressFn(C.tankGoProgress), user: unsafe.Pointer(h), handle: h}
}

// release frees the handle; call it after the C call returned.
func (p progressFn) release() {
	if p.handle != nil {
		p.handle.Delete()
	}
}

// tankGoProgress is the TankProgressFn of every call given a Go progress
// func (see newProgressFn): user points at a cgo.Handle of that func.
// libtank calls it on the thread that made the call, so it runs on the
// calling goroutine.
//
//export tankGoProgress
func tankGoProgress(user unsafe.Pointer, done, total C.uint64_t) {
	h := *(*cgo.Handle)(user)
	h.Value().(func(done, total int64))(int64(done), int64(total))
}
