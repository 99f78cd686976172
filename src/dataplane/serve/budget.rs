//! The read-ahead budget of all downloads of an instance together
//! (`http.download_buffer_bytes`).
//!
//! A download from a local transfer store reads ahead in [`BUFFER`]-sized
//! buffers, at most [`PER_DOWNLOAD`] at a time, each taken from the budget.
//! When the budget is spent, the download goes on with [`SMALL`] buffers taken
//! outside it, so no download ever waits for another to finish. A buffer is
//! handed to the HTTP layer in [`SLICE`]-sized pieces (the layer copies each
//! into the connection's write buffer) and returns to the budget only when the
//! last piece has been copied: a client that stops reading pins at most its
//! own buffers, and its connection's write buffer holds at most a slice.
//!
//! Released buffers are kept for reuse, up to the budget: large allocations
//! are not returned to the system and faulted in again for every megabyte.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use prometheus::IntGauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One read-ahead buffer within the budget.
pub const BUFFER: usize = 1 << 20;
/// Buffers one download holds at most (one being sent, one being read).
pub const PER_DOWNLOAD: usize = 2;
/// A buffer outside the budget, when it is spent.
pub const SMALL: usize = 64 << 10;
/// What the HTTP layer is handed at a time.
pub const SLICE: usize = 64 << 10;

/// The budget shared by every download of an instance (cheap to clone).
#[derive(Clone)]
pub struct ReadAhead {
    inner: Arc<Inner>,
}

struct Inner {
    budget: Arc<Semaphore>,
    total: usize,
    /// Budget buffers released, kept for the next read.
    pool: Mutex<Vec<Vec<u8>>>,
    /// Bytes of read-ahead buffers held now, in the budget and outside it.
    in_use: IntGauge,
}

impl ReadAhead {
    /// A budget of `bytes` (rounded down to whole buffers), reporting to `in_use`.
    pub fn new(bytes: usize, in_use: IntGauge) -> ReadAhead {
        let buffers = bytes / BUFFER;
        ReadAhead {
            inner: Arc::new(Inner {
                budget: Arc::new(Semaphore::new(buffers)),
                total: buffers * BUFFER,
                pool: Mutex::new(Vec::new()),
                in_use,
            }),
        }
    }

    /// The budget in bytes.
    pub fn total(&self) -> usize {
        self.inner.total
    }

    /// A buffer for reading up to `want` bytes: from the budget when one is
    /// free, else a small one outside it. Never waits.
    pub fn buffer(&self, want: usize) -> Buffer {
        let inner = &self.inner;
        if want > SMALL {
            if let Ok(permit) = inner.budget.clone().try_acquire_owned() {
                let mut buf = inner
                    .pool
                    .lock()
                    .ok()
                    .and_then(|mut p| p.pop())
                    .unwrap_or_else(|| vec![0; BUFFER]);
                buf.truncate(want.min(BUFFER));
                inner.in_use.add(BUFFER as i64);
                return Buffer {
                    data: buf,
                    permit: Some(permit),
                    owner: self.clone(),
                    slot: None,
                };
            }
        }
        let len = want.min(SMALL);
        inner.in_use.add(len as i64);
        Buffer {
            data: vec![0; len],
            permit: None,
            owner: self.clone(),
            slot: None,
        }
    }
}

/// A read-ahead buffer; back to the budget (and the gauge) when dropped.
pub struct Buffer {
    data: Vec<u8>,
    permit: Option<OwnedSemaphorePermit>,
    owner: ReadAhead,
    /// The download's own slot ([`PER_DOWNLOAD`]), released with the buffer.
    slot: Option<OwnedSemaphorePermit>,
}

impl Buffer {
    /// Holds `slot` as long as the buffer lives.
    pub fn holding(mut self, slot: OwnedSemaphorePermit) -> Buffer {
        self.slot = Some(slot);
        self
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The filled buffer as bytes that release it when the last slice is dropped.
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for Buffer {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let inner = &self.owner.inner;
        match self.permit.take() {
            Some(permit) => {
                inner.in_use.sub(BUFFER as i64);
                let mut buf = std::mem::take(&mut self.data);
                // Whole-size buffers only; the pool never outgrows the budget.
                if buf.capacity() == BUFFER {
                    buf.resize(BUFFER, 0);
                    if let Ok(mut pool) = inner.pool.lock() {
                        if pool.len() * BUFFER < inner.total {
                            pool.push(buf);
                        }
                    }
                }
                drop(permit);
            }
            None => inner.in_use.sub(self.data.len() as i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge() -> IntGauge {
        IntGauge::new("g", "g").unwrap()
    }

    #[test]
    fn the_budget_bounds_big_buffers_and_small_ones_need_none() {
        let g = gauge();
        let budget = ReadAhead::new(3 * BUFFER + 100, g.clone());
        assert_eq!(budget.total(), 3 * BUFFER);
        let mut held: Vec<Buffer> = (0..3).map(|_| budget.buffer(10 << 20)).collect();
        assert!(held.iter().all(|b| b.len() == BUFFER));
        assert_eq!(g.get(), 3 * BUFFER as i64);
        // Spent: a small buffer outside it, at once.
        let small = budget.buffer(10 << 20);
        assert_eq!(small.len(), SMALL);
        assert_eq!(g.get(), (3 * BUFFER + SMALL) as i64);
        // A short read takes only what it needs.
        assert_eq!(budget.buffer(100).len(), 100);
        drop(small);
        // Frozen, it is released when the last slice goes.
        let mut bytes = held.remove(0).freeze();
        let piece = bytes.split_to(SLICE);
        assert_eq!(budget.buffer(2 * BUFFER).len(), SMALL, "still spent");
        drop(bytes);
        assert_eq!(g.get(), 3 * BUFFER as i64, "two held, one still sliced");
        drop(piece);
        assert_eq!(g.get(), 2 * BUFFER as i64);
        let again = budget.buffer(BUFFER);
        assert_eq!(again.len(), BUFFER, "back in the budget, from the pool");
    }

    #[test]
    fn a_zero_budget_serves_small_buffers() {
        let budget = ReadAhead::new(0, gauge());
        assert_eq!(budget.buffer(BUFFER).len(), SMALL);
    }
}
