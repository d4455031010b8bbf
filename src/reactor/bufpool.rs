//! A per-thread pool of I/O buffers, checked out only while bytes are in flight.
//!
//! An idle keep-alive connection holds no buffer: it takes one when its socket turns
//! readable and gives it back once drained. The pool keeps at most `max_cached` buffers of
//! each kind; beyond that, returned buffers are freed, so a burst does not pin memory
//! forever. It is single-threaded by construction (no locks): each loop owns one.

use std::io::{self, Read};

/// A fixed-capacity read buffer with a consumed prefix: bytes `start..end` are unread.
pub struct ReadBuf {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    fn new(capacity: usize) -> Self {
        ReadBuf {
            data: vec![0; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The unread bytes.
    pub fn unread(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// The unread bytes, to change in place (a parser that normalises what it read).
    pub fn unread_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.end]
    }

    /// Appends `bytes` if they fit in the free space; whether they did.
    pub fn put(&mut self, bytes: &[u8]) -> bool {
        if self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let Some(room) = self.data.get_mut(self.end..self.end + bytes.len()) else {
            return false;
        };
        room.copy_from_slice(bytes);
        self.end += bytes.len();
        true
    }

    /// Marks `n` unread bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Whether there are no unread bytes.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether the buffer cannot take another byte without consuming first.
    pub fn is_full(&self) -> bool {
        self.start == 0 && self.end == self.data.len()
    }

    /// The buffer's capacity.
    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// Reads once from `source` into all the free space (unread bytes move to the front
    /// first, so a read short of [`spare`](Self::spare) means the source had no more).
    /// Returns the bytes read; 0 means end of stream, or no space.
    pub fn read_from(&mut self, source: &mut impl Read) -> io::Result<usize> {
        if self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.data.len() {
            return Ok(0);
        }
        let n = source.read(&mut self.data[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// The free space the next [`read_from`](Self::read_from) can fill.
    pub fn spare(&self) -> usize {
        self.data.len() - self.end + self.start
    }
}

/// The pool.
pub struct BufPool {
    read_capacity: usize,
    write_capacity: usize,
    max_cached: usize,
    reads: Vec<ReadBuf>,
    writes: Vec<Vec<u8>>,
}

impl BufPool {
    /// A pool of read buffers of `read_capacity` bytes and write buffers that start at
    /// `write_capacity` bytes, caching at most `max_cached` of each.
    pub fn new(read_capacity: usize, write_capacity: usize, max_cached: usize) -> Self {
        BufPool {
            read_capacity,
            write_capacity,
            max_cached,
            reads: Vec::new(),
            writes: Vec::new(),
        }
    }

    /// Takes an empty read buffer.
    pub fn take_read(&mut self) -> ReadBuf {
        self.reads
            .pop()
            .unwrap_or_else(|| ReadBuf::new(self.read_capacity))
    }

    /// The capacity of the read buffers this pool hands out.
    pub fn read_capacity(&self) -> usize {
        self.read_capacity
    }

    /// Returns a read buffer; its unread bytes are discarded. One of another size (from a
    /// pool this one replaced) is freed, not cached.
    pub fn give_read(&mut self, mut buf: ReadBuf) {
        if self.reads.len() < self.max_cached && buf.capacity() == self.read_capacity {
            buf.start = 0;
            buf.end = 0;
            self.reads.push(buf);
        }
    }

    /// Takes an empty write buffer.
    pub fn take_write(&mut self) -> Vec<u8> {
        self.writes
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.write_capacity))
    }

    /// Returns a write buffer. One that grew far past the usual size (a large response) is
    /// freed rather than cached, so the pool's footprint stays predictable.
    pub fn give_write(&mut self, mut buf: Vec<u8>) {
        if self.writes.len() < self.max_cached && buf.capacity() <= 4 * self.write_capacity {
            buf.clear();
            self.writes.push(buf);
        }
    }

    /// Buffers currently cached (read, write).
    pub fn cached(&self) -> (usize, usize) {
        (self.reads.len(), self.writes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_appends_what_fits_after_the_unread_bytes() {
        let mut pool = BufPool::new(8, 8, 4);
        let mut buf = pool.take_read();
        assert!(buf.put(b"abcde"));
        buf.consume(2);
        assert!(buf.put(b"fgh"));
        assert_eq!(buf.unread(), b"cdefgh");
        assert!(!buf.put(b"ijk"), "past the capacity");
        assert_eq!(buf.unread(), b"cdefgh");
        assert!(buf.put(b"ij"));
        assert!(buf.is_full());
    }

    #[test]
    fn read_buffer_compacts_when_the_tail_is_full() {
        let mut pool = BufPool::new(8, 8, 4);
        let mut buf = pool.take_read();
        let mut src: &[u8] = b"abcdefghijkl";
        assert_eq!(buf.read_from(&mut src).unwrap(), 8);
        assert!(buf.is_full());
        buf.consume(5);
        assert_eq!(buf.unread(), b"fgh");
        assert_eq!(buf.read_from(&mut src).unwrap(), 4);
        assert_eq!(buf.unread(), b"fghijkl");
        buf.consume(7);
        assert!(buf.is_empty());
        pool.give_read(buf);
        assert_eq!(pool.cached(), (1, 0));
    }

    #[test]
    fn pool_caches_at_most_max_and_drops_grown_write_buffers() {
        let mut pool = BufPool::new(8, 8, 1);
        let a = pool.take_write();
        let mut b = pool.take_write();
        b.extend_from_slice(&[0; 100]);
        pool.give_write(b);
        assert_eq!(pool.cached(), (0, 0));
        pool.give_write(a);
        assert_eq!(pool.cached(), (0, 1));
        let c = pool.take_write();
        pool.give_write(c);
        pool.give_write(Vec::with_capacity(8));
        assert_eq!(pool.cached(), (0, 1));
    }
}
