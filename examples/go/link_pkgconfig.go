//go:build tank_pkgconfig && !tank_static

package tank

// With -tags tank_pkgconfig the package links the libtank that
// scripts/install.sh installed, found by pkg-config (tank.pc): the shared
// libtank.so.1, which programs load at run time from the loader's path
// (/usr/local/lib after the install's ldconfig; LD_LIBRARY_PATH otherwise).
// Add tank_static to link libtank.a in instead (link_pkgconfig_static.go).

/*
#cgo pkg-config: tank
*/
import "C"
