package tank

/*
#include "tank.h"
*/
import "C"

import "math"

// SetConnections says how calls through the cache fetch big blobs. A blob
// of at least threshold bytes (0: the default, 64 MiB) from a server that
// honours Range (a CDN a registry redirects to, typically) is fetched as
// several ranges at once over up to perBlob separate connections (0: the
// default, 4; 1: one connection, ranges off), past the per-connection cap
// such servers put on each. The bytes are still verified against the
// digest in one pass, in order, and a call cut short keeps every range
// that arrived for the next call to the same path. A server that ignores
// Range, or answers it wrongly, gets one connection, with nothing fetched
// twice.
//
// perHost (0: the default, 16) bounds the connections a Pull holds to one
// host at once, its layers and their ranges together, so a many-layer
// image does not open hundreds. perBlob is at most 64, perHost at most 256
// and not below perBlob (each 0 standing for its default); a negative
// value, or one out of those bounds, is ErrBadInput and leaves the
// cache's settings as they were. Calls that start afterwards use the new
// settings; calls in flight keep theirs.
func (c *Cache) SetConnections(perBlob, perHost int, threshold int64) error {
	// Checked here, not in C: the C arguments are unsigned, and a negative
	// int (or one past 32 bits) would reach libtank as some other number.
	for _, a := range []struct {
		name  string
		value int64
	}{{"per_blob", int64(perBlob)}, {"per_host", int64(perHost)}, {"threshold", threshold}} {
		if a.value < 0 {
			return badInput(ReasonBadInput, "%s %d is negative (0 is the default)", a.name, a.value)
		}
	}
	if uint64(perBlob) > math.MaxUint32 || uint64(perHost) > math.MaxUint32 {
		return badInput(ReasonBadInput, "per_blob %d, per_host %d: past 32 bits", perBlob, perHost)
	}
	return c.set(func(cc *C.TankCache, _ []*C.char, e **C.TankError) C.TankStatus {
		return C.tank_cache_set_connections(cc, C.uint32_t(perBlob), C.uint32_t(perHost),
			C.uint64_t(threshold), e)
	})
}
