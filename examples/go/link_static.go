//go:build !tank_shared

package tank

// By default the package links target/release/libtank.a in, so a built Go
// program runs without LD_LIBRARY_PATH. The extra libraries are what a Rust
// staticlib needs from glibc (see the top-level README).

/*
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libtank.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
*/
import "C"
