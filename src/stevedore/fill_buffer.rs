//! A buffer of fixed capacity, filled front to back by one writer while
//! another thread reads (hashes) the part already written. Receiving and
//! hashing then share one copy of the bytes: the network chunks are dropped
//! as soon as they are copied, so the HTTP stack reuses its read buffers
//! instead of allocating fresh memory for every chunk held by the hasher.

use std::sync::Arc;

/// The allocation, shared by the writer and the reader; freed when the last
/// of them lets go, so a reader still running (after a panic, say) never
/// reads freed memory.
struct Allocation {
    ptr: *mut u8,
    capacity: usize,
}

// SAFETY: the allocation is plain bytes owned by this struct; access to it
// is coordinated by `FillBuffer` (one writer) and `Filled` (read-only ranges
// the writer has finished and never touches again).
unsafe impl Send for Allocation {}
unsafe impl Sync for Allocation {}

impl Drop for Allocation {
    fn drop(&mut self) {
        // SAFETY: ptr and capacity came from a Vec<u8> that was forgotten;
        // length 0 is always valid for u8.
        unsafe { drop(Vec::from_raw_parts(self.ptr, 0, self.capacity)) };
    }
}

/// The writer's side.
pub struct FillBuffer {
    allocation: Arc<Allocation>,
    len: usize,
}

/// A range the writer has finished: readable from any thread, never written
/// again, kept alive by its own reference to the allocation.
pub struct Filled {
    allocation: Arc<Allocation>,
    start: usize,
    end: usize,
}

impl Filled {
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: [start, end) was written before this value was made (the
        // channel that carried it orders the writes before this read), lies
        // within the allocation, and the writer only writes past `end`.
        unsafe {
            std::slice::from_raw_parts(self.allocation.ptr.add(self.start), self.end - self.start)
        }
    }
}

impl FillBuffer {
    /// Reserves exactly `capacity` bytes; `None` when that much memory
    /// cannot be had.
    pub fn with_capacity(capacity: usize) -> Option<FillBuffer> {
        let mut v: Vec<u8> = Vec::new();
        v.try_reserve_exact(capacity).ok()?;
        let mut v = std::mem::ManuallyDrop::new(v);
        let allocation = Allocation {
            ptr: v.as_mut_ptr(),
            capacity: v.capacity(),
        };
        Some(FillBuffer {
            allocation: Arc::new(allocation),
            len: 0,
        })
    }

    pub fn filled(&self) -> usize {
        self.len
    }

    pub fn capacity(&self) -> usize {
        self.allocation.capacity
    }

    /// The address of the first byte, for `madvise`.
    pub fn base_addr(&self) -> usize {
        self.allocation.ptr as usize
    }

    /// Appends `bytes`; false (and nothing written) when they do not fit.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.capacity() - self.len {
            return false;
        }
        // SAFETY: the destination [len, len + n) is inside the allocation,
        // was never handed out as `Filled`, and cannot overlap `bytes`,
        // which lives elsewhere.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.allocation.ptr.add(self.len),
                bytes.len(),
            );
        }
        self.len += bytes.len();
        true
    }

    /// Hands out `[start, len)` for reading.
    pub fn filled_from(&self, start: usize) -> Filled {
        Filled {
            allocation: self.allocation.clone(),
            start,
            end: self.len,
        }
    }

    /// The bytes as a Vec, without copying, once no `Filled` is alive; a
    /// copy otherwise (only after a reader failed to finish).
    pub fn into_vec(self) -> Vec<u8> {
        let len = self.len;
        match Arc::try_unwrap(self.allocation) {
            Ok(allocation) => {
                let allocation = std::mem::ManuallyDrop::new(allocation);
                // SAFETY: the allocation came from a Vec<u8> of this
                // capacity, its first `len` bytes are written, and
                // ManuallyDrop keeps `Allocation::drop` from freeing it.
                unsafe { Vec::from_raw_parts(allocation.ptr, len, allocation.capacity) }
            }
            Err(shared) => {
                // SAFETY: the first `len` bytes are written and alive.
                unsafe { std::slice::from_raw_parts(shared.ptr, len) }.to_vec()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_hands_out_ranges_and_becomes_a_vec_without_copying() {
        let mut b = FillBuffer::with_capacity(10).unwrap();
        assert!(b.push(b"hello"));
        let first = b.filled_from(0);
        assert!(b.push(b"world"));
        assert!(!b.push(b"!"), "full");
        let second = b.filled_from(5);
        let reader = std::thread::spawn(move || [first.as_slice(), second.as_slice()].concat());
        assert_eq!(reader.join().unwrap(), b"helloworld");
        let base = b.base_addr();
        let v = b.into_vec();
        assert_eq!(v, b"helloworld");
        assert_eq!(v.as_ptr() as usize, base, "no copy");
        assert_eq!(v.capacity(), 10);
    }

    #[test]
    fn a_live_reader_keeps_the_memory() {
        let mut b = FillBuffer::with_capacity(4).unwrap();
        assert!(b.push(b"abcd"));
        let held = b.filled_from(0);
        let v = b.into_vec();
        assert_eq!(v, b"abcd");
        assert_eq!(held.as_slice(), b"abcd");
        assert!(FillBuffer::with_capacity(usize::MAX).is_none());
    }
}
