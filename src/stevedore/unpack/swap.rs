//! The temporary sibling tree an unpack builds in, and its rename into place.
