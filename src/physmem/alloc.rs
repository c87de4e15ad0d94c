//! The frame allocator: O(1) alloc and free, double-free detection, and taking
//! free frames out (unplug) and back (plug).
//!
//! Free frames are of two kinds: a stack of frames freed earlier, and a
//! "fresh" range `fresh_next..fresh_end` never handed out. Alloc pops the
//! stack first and only then takes the lowest fresh frame, so the memfd's
//! high-water mark grows only when every freed frame is back in use: memory
//! stays compact. Unplug takes the highest fresh frames first (guest memory
//! shrinks from the top), then stacked ones. Frames unplugged from the top
//! are a range `fresh_end..frames`, not a list: a guest started small with
//! a large `maxmem=` costs no bookkeeping for the memory it may grow into.
//! A byte of state per frame (zero-initialised, so an untouched part costs
//! the host nothing) makes double frees detectable without trusting the
//! caller.
//!
//! This file only does bookkeeping; punching holes is `PhysMem`'s job.

use super::Frame;

/// Per-frame state bytes. Frames of the unplugged top range keep `FREE`:
/// the range itself says they are out.
const FREE: u8 = 0;
const ALLOCATED: u8 = 1;
const UNPLUGGED: u8 = 2;

/// Why a frame could not be freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FreeRefused {
    /// Beyond the end of guest memory.
    OutOfRange,
    /// Free or unplugged already: a double free.
    NotAllocated,
}

#[derive(Debug)]
pub(super) struct FrameAllocator {
    state: Vec<u8>,
    /// Frames freed earlier, all below `fresh_next` or re-plugged.
    stack: Vec<u64>,
    fresh_next: u64,
    /// End of the fresh range; `fresh_end..frames` is unplugged.
    fresh_end: u64,
    frames: u64,
    /// Other unplugged frames (taken from the stack), most recent on top.
    unplugged: Vec<u64>,
    allocated: u64,
}

impl FrameAllocator {
    pub(super) fn new(frames: u64) -> FrameAllocator {
        FrameAllocator {
            state: vec![FREE; frames as usize],
            stack: Vec::new(),
            fresh_next: 0,
            fresh_end: frames,
            frames,
            unplugged: Vec::new(),
            allocated: 0,
        }
    }

    pub(super) fn free_count(&self) -> u64 {
        self.stack.len() as u64 + (self.fresh_end - self.fresh_next)
    }

    pub(super) fn allocated_count(&self) -> u64 {
        self.allocated
    }

    pub(super) fn unplugged_count(&self) -> u64 {
        self.unplugged.len() as u64 + (self.frames - self.fresh_end)
    }

    pub(super) fn is_allocated(&self, f: Frame) -> bool {
        self.state.get(f.0 as usize) == Some(&ALLOCATED)
    }

    /// Hands out a free frame (the most recently freed, else the lowest fresh one).
    pub(super) fn alloc(&mut self) -> Option<Frame> {
        let n = match self.stack.pop() {
            Some(n) => n,
            None if self.fresh_next < self.fresh_end => {
                self.fresh_next += 1;
                self.fresh_next - 1
            }
            None => return None,
        };
        self.state[n as usize] = ALLOCATED;
        self.allocated += 1;
        Some(Frame(n))
    }

    /// Hands out `n` free frames at once, sorted (a fault window): freed
    /// frames first, as `alloc`, then fresh ones, so runs stay adjacent
    /// where they can. None, and nothing taken, when fewer are free.
    pub(super) fn alloc_run(&mut self, n: u64) -> Option<Vec<Frame>> {
        if n > self.free_count() {
            return None;
        }
        let mut out: Vec<Frame> = (0..n).filter_map(|_| self.alloc()).collect();
        debug_assert_eq!(out.len() as u64, n);
        out.sort_unstable();
        Some(out)
    }

    /// Takes an allocated frame back.
    pub(super) fn free(&mut self, f: Frame) -> Result<(), FreeRefused> {
        let slot = self
            .state
            .get_mut(f.0 as usize)
            .ok_or(FreeRefused::OutOfRange)?;
        if *slot != ALLOCATED {
            return Err(FreeRefused::NotAllocated);
        }
        *slot = FREE;
        self.allocated -= 1;
        self.stack.push(f.0);
        Ok(())
    }

    /// Takes up to `n` free frames out of circulation: the top of the
    /// fresh range first (one range, whatever its size), then freed ones.
    /// Returns the runs taken as (first frame, count), for punching.
    pub(super) fn unplug(&mut self, n: u64) -> Vec<(Frame, u64)> {
        let mut runs = Vec::new();
        let from_top = n.min(self.fresh_end - self.fresh_next);
        if from_top > 0 {
            self.fresh_end -= from_top;
            runs.push((Frame(self.fresh_end), from_top));
        }
        let mut taken = from_top;
        while taken < n {
            let Some(f) = self.stack.pop() else { break };
            self.state[f as usize] = UNPLUGGED;
            self.unplugged.push(f);
            runs.push((Frame(f), 1));
            taken += 1;
        }
        runs
    }

    /// Puts up to `n` unplugged frames back into circulation, the most
    /// recently unplugged first; returns how many.
    pub(super) fn plug(&mut self, n: u64) -> u64 {
        let mut given = 0;
        while given < n {
            let Some(f) = self.unplugged.pop() else {
                break;
            };
            self.state[f as usize] = FREE;
            self.stack.push(f);
            given += 1;
        }
        let from_top = (n - given).min(self.frames - self.fresh_end);
        self.fresh_end += from_top;
        given + from_top
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn hands_out_low_frames_first_and_reuses_freed() {
        let mut a = FrameAllocator::new(8);
        assert_eq!(a.alloc(), Some(Frame(0)));
        assert_eq!(a.alloc(), Some(Frame(1)));
        assert_eq!(a.alloc(), Some(Frame(2)));
        a.free(Frame(1)).unwrap();
        assert_eq!(a.alloc(), Some(Frame(1)));
        assert_eq!(a.alloc(), Some(Frame(3)));
    }

    #[test]
    fn exhaustion_and_counts() {
        let mut a = FrameAllocator::new(3);
        for _ in 0..3 {
            a.alloc().unwrap();
        }
        assert_eq!(a.alloc(), None);
        assert_eq!(a.allocated_count(), 3);
        assert_eq!(a.free_count(), 0);
    }

    #[test]
    fn double_free_is_refused_and_harmless() {
        let mut a = FrameAllocator::new(4);
        let f = a.alloc().unwrap();
        a.free(f).unwrap();
        assert_eq!(a.free(f), Err(FreeRefused::NotAllocated));
        assert_eq!(a.free(Frame(99)), Err(FreeRefused::OutOfRange));
        assert_eq!(a.free(Frame(3)), Err(FreeRefused::NotAllocated));
        // The frame is handed out once only.
        let x = a.alloc().unwrap();
        let y = a.alloc().unwrap();
        assert_ne!(x, y);
        assert_eq!(a.free_count(), 2);
    }

    #[test]
    fn unplug_takes_from_the_top_and_plug_restores() {
        let mut a = FrameAllocator::new(8);
        let f0 = a.alloc().unwrap();
        let f1 = a.alloc().unwrap();
        a.free(f1).unwrap();
        let taken = a.unplug(7);
        assert_eq!(taken, vec![(Frame(2), 6), (Frame(1), 1)]);
        assert_eq!(a.unplugged_count(), 7);
        assert_eq!(a.free_count(), 0);
        assert_eq!(a.alloc(), None);
        assert!(a.free(Frame(5)).is_err());
        assert_eq!(a.plug(100), 7);
        assert_eq!(a.free_count(), 7);
        let mut got: Vec<u64> = (0..7).map(|_| a.alloc().unwrap().0).collect();
        got.sort();
        assert_eq!(got, vec![1, 2, 3, 4, 5, 6, 7]);
        assert!(a.is_allocated(f0));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Alloc,
        Free(usize),
        FreeBogus(u64),
        Unplug(u64),
        Plug(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Alloc),
            3 => any::<usize>().prop_map(Op::Free),
            1 => (0u64..80).prop_map(Op::FreeBogus),
            1 => (0u64..20).prop_map(Op::Unplug),
            1 => (0u64..20).prop_map(Op::Plug),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_model(ops in proptest::collection::vec(op(), 1..300)) {
            const N: u64 = 64;
            let mut a = FrameAllocator::new(N);
            let mut held: BTreeSet<u64> = BTreeSet::new();
            let mut unplugged = 0u64;
            for op in ops {
                match op {
                    Op::Alloc => match a.alloc() {
                        Some(f) => {
                            prop_assert!(f.0 < N);
                            prop_assert!(held.insert(f.0), "frame {} handed out twice", f.0);
                        }
                        None => prop_assert_eq!(held.len() as u64 + unplugged, N),
                    },
                    Op::Free(i) => {
                        if !held.is_empty() {
                            let f = *held.iter().nth(i % held.len()).unwrap();
                            held.remove(&f);
                            prop_assert_eq!(a.free(Frame(f)), Ok(()));
                        }
                    }
                    Op::FreeBogus(f) => {
                        if !held.contains(&f) {
                            prop_assert!(a.free(Frame(f)).is_err());
                        }
                    }
                    Op::Unplug(n) => {
                        let free = N - held.len() as u64 - unplugged;
                        let taken: Vec<u64> = a
                            .unplug(n)
                            .into_iter()
                            .flat_map(|(f, c)| f.0..f.0 + c)
                            .collect();
                        prop_assert_eq!(taken.len() as u64, n.min(free));
                        for f in &taken {
                            prop_assert!(!held.contains(f));
                            prop_assert!(*f < N);
                        }
                        unplugged += taken.len() as u64;
                    }
                    Op::Plug(n) => {
                        let given = a.plug(n);
                        prop_assert_eq!(given, n.min(unplugged));
                        unplugged -= given;
                    }
                }
                prop_assert_eq!(a.allocated_count(), held.len() as u64);
                prop_assert_eq!(a.unplugged_count(), unplugged);
                prop_assert_eq!(a.free_count() + a.allocated_count() + a.unplugged_count(), N);
            }
        }
    }
}
