package tank

/*
#include <stdint.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// tankGoProgress is the TankProgressFn every FetchBlobToFile passes: user
// points at a cgo.Handle of the caller's func. libtank calls it on the
// thread that made the call, so it runs on the calling goroutine.
//
//export tankGoProgress
func tankGoProgress(user unsafe.Pointer, done, total C.uint64_t) {
	h := *(*cgo.Handle)(user)
	h.Value().(func(done, total int64))(int64(done), int64(total))
}
