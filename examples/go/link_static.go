//go:build !tank_shared && !tank_pkgconfig

package tank

// By default the package links target/release/libtank.a in, so a built Go
// program runs without LD_LIBRARY_PATH. The extra libraries are what a Rust
// staticlib needs from glibc, as rustc reports them
// (bash scripts/native-static-libs.sh; tests/install.rs checks they agree).
// With -tags tank_pkgconfig the package uses an installed libtank instead
// (link_pkgconfig.go).

/*
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libtank.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
*/
import "C"
