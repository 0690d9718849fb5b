//go:build tank_shared && !tank_pkgconfig

package tank

// With -tags tank_shared the package links target/release/libtank.so instead,
// with an rpath pointing at that directory (where the build leaves the
// libtank.so.1 link the soname asks for).

/*
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -Wl,-rpath,${SRCDIR}/../../target/release -ltank
*/
import "C"
