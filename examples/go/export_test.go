package tank

// What the tests (package tank_test) may see of the binding's insides.

// LiveCaches is how many caches hold a libtank cache not yet freed.
func LiveCaches() int64 { return liveCaches.Load() }

// WatchWipedSecrets has f see each C copy of a secret (a password, a
// token) after it was wiped and before it is freed, until stop.
func WatchWipedSecrets(f func(copy []byte)) (stop func()) {
	wipedSecret = f
	return func() { wipedSecret = nil }
}

// ReasonStatuses is the binding's list of reason ids, with the status of
// each.
func ReasonStatuses() map[string]Status {
	out := make(map[string]Status, len(reasonStatuses))
	for id, status := range reasonStatuses {
		out[id] = status
	}
	return out
}
