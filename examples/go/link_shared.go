//go:build tank_shared

package tank

// With -tags tank_shared the package links target/release/libtank.so instead,
// with an rpath pointing at that directory.

/*
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -Wl,-rpath,${SRCDIR}/../../target/release -ltank
*/
import "C"
