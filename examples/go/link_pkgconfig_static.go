//go:build tank_pkgconfig && tank_static

package tank

// With -tags tank_pkgconfig,tank_static the package links the installed
// libtank.a in (pkg-config's tank-static.pc), so programs need no libtank
// at run time.

/*
#cgo pkg-config: tank-static
*/
import "C"
