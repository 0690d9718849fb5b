package tank

// What the tests (package tank_test) may see of the binding's insides.

// LiveCaches is how many caches hold a libtank cache not yet freed.
func LiveCaches() int64 { return liveCaches.Load() }
