//! Socket buffers as guest memory: what AF_UNIX queues and inet socket
//! queues hold is charged to the guest's physical memory, so /proc/meminfo
//! (MemFree, MemAvailable; shown under Slab/SUnreclaim as Linux shows
//! sk_buffs) and `stats` show it, and the guest cannot hold more in
//! socket buffers than its mem= leaves free.
//!
//! The bytes themselves stay in umlrun's heap (AF_UNIX messages, smoltcp's
//! rings), where the socket code copies them at no extra cost; the charge
//! is whole physmem frames taken from the guest's allocator and never
//! written. Such a frame is a hole in the memfd and costs the host nothing,
//! so the host holds each buffered byte once, in the heap, while the guest
//! sees it counted once, as used memory: for the user this is the same as
//! buffers in guest frames (counted, capped by mem=, given back when
//! drained) without a copy into the memfd and a punch per message.
//!
//! Frames are taken and given back in chunks of `CHUNK` frames, with one
//! chunk of slack, so a ping-pong that fills and drains a few bytes does
//! not call the allocator each message; fully drained buffers leave at most
//! that one chunk (64 KiB) charged.
//!
//! The count is `UnixNet::meter` (every queued AF_UNIX message, with its
//! overhead) plus the inet sockets' queued bytes as the last wake-up scan
//! summed them (`Kernel::inet_wake_changed`). It is brought in line after
//! every AF_UNIX operation (`unix_wake`) and every stack run.

use crate::physmem::{Frame, PAGE_SIZE};

/// Frames taken or given back at once.
pub const CHUNK: usize = 16;

/// The frames charged for socket buffers.
#[derive(Debug, Default)]
pub struct SockMem {
    frames: Vec<Frame>,
    /// Bytes queued on inet sockets at the last scan.
    pub inet_queued: usize,
    /// Frames the allocator refused (guest memory full): the buffers are
    /// then capped only by the socket buffer limit.
    pub short: u64,
}

impl SockMem {
    /// Frames charged now.
    pub fn frames(&self) -> usize {
        self.frames.len()
    }
}

/// How many frames `bytes` of buffers should hold, given `held` now:
/// whole chunks, grown at once, shrunk only past one chunk of slack.
pub fn target(bytes: usize, held: usize) -> usize {
    let pages = bytes.div_ceil(PAGE_SIZE);
    let want = pages.div_ceil(CHUNK).saturating_mul(CHUNK);
    if held < want || held > want.saturating_add(CHUNK) {
        want
    } else {
        held
    }
}

impl super::Kernel {
    /// Socket buffer bytes now: AF_UNIX queues and inet queues.
    pub fn sockbuf_bytes(&self) -> usize {
        self.unix
            .meter
            .used()
            .saturating_add(self.sockmem.inet_queued)
    }

    /// Brings the frames charged in line with the buffers (`target`).
    pub(crate) fn sockmem_sync(&mut self) {
        let held = self.sockmem.frames.len();
        let want = target(self.sockbuf_bytes(), held);
        if want == held {
            return;
        }
        if want < held {
            let freed = self.sockmem.frames.split_off(want);
            self.physmem.free_many(&freed);
            return;
        }
        for _ in held..want {
            match self.physmem.alloc() {
                Ok(f) => self.sockmem.frames.push(f),
                Err(_) => {
                    self.sockmem.short = self.sockmem.short.saturating_add(1);
                    crate::log_limited!(
                        log::Level::Info,
                        "socket buffers: guest memory full, {} frames charged",
                        self.sockmem.frames.len()
                    );
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_moves_in_chunks_with_one_chunk_of_slack() {
        assert_eq!(target(0, 0), 0);
        assert_eq!(target(1, 0), CHUNK);
        // A ping-pong between 0 and a few bytes keeps its chunk.
        assert_eq!(target(0, CHUNK), CHUNK);
        assert_eq!(target(300, CHUNK), CHUNK);
        // Growth takes whole chunks at once.
        let big = (CHUNK * 3 + 1) * PAGE_SIZE;
        assert_eq!(target(big, CHUNK), CHUNK * 4);
        // Draining gives back all but one chunk.
        assert_eq!(target(0, CHUNK * 4), 0);
        assert_eq!(target(PAGE_SIZE, CHUNK * 4), CHUNK);
        assert_eq!(target(usize::MAX, 0) % CHUNK, 0);
    }
}
