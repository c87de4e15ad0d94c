//! Substitution: a frame whose contents are a page of a host file (ubd=mmap),
//! like UML 2.6's `physmem_subst_mapping`.
//!
//! The file page is mapped MAP_SHARED|MAP_FIXED over the frame in umlrun's
//! view and the memfd page is punched, so the host holds one page-cache copy
//! however many guests show it. The table keeps the file's `Arc<File>` alive
//! for as long as the frame shows it; stubs ask `backing` which fd to map.
//! After `unsubstitute` or `free` the platform must re-map the frame in any
//! stub still showing the file page.
//!
//! Each substituted frame may split umlrun's view into two more mappings,
//! and the host caps mappings per process (`vm.max_map_count`, 65530 by
//! default). At that cap even undoing a substitution fails (measured: the
//! replacing mmap gets ENOMEM), so substitutions are capped well below it,
//! at a quarter of the host limit by default (16382 frames, 64 MiB);
//! beyond it `substitute` says `TooManySubstitutions` and callers copy.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use super::{Frame, FrameBacking, Inner, PhysMem, PhysMemError, PAGE_SIZE};
use crate::host::mapping::{max_map_count, MappingError};
use crate::host::memfd::MemFd;

#[derive(Debug)]
struct Substitution {
    file: Arc<File>,
    offset: u64,
    writable: bool,
}

/// Default cap on substituted frames: a quarter of the host's mapping limit
/// (each substitution costs up to two), leaving the rest of the process room.
pub(super) fn default_limit() -> u64 {
    max_map_count().unwrap_or(65530) / 4
}

/// Frame → the host file page it shows.
#[derive(Debug, Default)]
pub(super) struct SubstTable {
    map: HashMap<Frame, Substitution>,
}

impl SubstTable {
    pub(super) fn contains(&self, f: Frame) -> bool {
        self.map.contains_key(&f)
    }

    pub(super) fn len(&self) -> u64 {
        self.map.len() as u64
    }
}

impl Inner {
    /// Shows the memfd page at `f` again and forgets the file page. The memfd
    /// page is a hole, so the frame then reads as zeros. If the host refuses
    /// and the view still shows the file page, the entry stays.
    pub(super) fn drop_substitution(
        &mut self,
        memfd: &MemFd,
        f: Frame,
    ) -> Result<(), PhysMemError> {
        let off = f.offset();
        match self.view.remap_back(off as usize, PAGE_SIZE, memfd, off) {
            Ok(()) => {
                self.subst.map.remove(&f);
                Ok(())
            }
            Err(e) => {
                log::error!("physmem: unsubstituting frame {}: {e}", f.0);
                if matches!(e, MappingError::Reverted(_)) {
                    self.subst.map.remove(&f);
                }
                Err(e.into())
            }
        }
    }
}

impl PhysMem {
    /// Makes allocated frame `f` show the page of `file` at `file_offset`
    /// (4096-aligned). With `writable`, guest writes go to the file (which
    /// must be open for writing); without it, `write` to the frame is
    /// refused. The frame's own memfd page is punched. A frame already
    /// substituted is re-pointed. If the host refuses the mapping (e.g. the
    /// vm.max_map_count limit on scattered substitutions) the frame is left
    /// as it was, except for `Mapping(Reverted)`: then it shows its own
    /// memfd page and reads as zeros.
    ///
    /// The file must not be truncated below that page while it is shown.
    pub fn substitute(
        &self,
        f: Frame,
        file: Arc<File>,
        file_offset: u64,
        writable: bool,
    ) -> Result<(), PhysMemError> {
        if !file_offset.is_multiple_of(PAGE_SIZE as u64) {
            return Err(PhysMemError::Misaligned(file_offset));
        }
        if f.0 >= self.frames {
            return Err(PhysMemError::BadFrame(f));
        }
        let mut inner = self.inner.lock();
        if !inner.alloc.is_allocated(f) {
            return Err(PhysMemError::NotAllocated(f));
        }
        if !inner.subst.contains(f) && inner.subst.len() >= inner.subst_limit {
            return Err(PhysMemError::TooManySubstitutions(inner.subst.len()));
        }
        let off = f.offset();
        if let Err(e) = inner
            .view
            .remap_over(off as usize, PAGE_SIZE, &file, file_offset, writable)
        {
            // `Map`: nothing changed. `Reverted`: the old file page is gone
            // and the frame shows its (punched) memfd page.
            if matches!(e, MappingError::Reverted(_)) {
                inner.subst.map.remove(&f);
            }
            return Err(e.into());
        }
        inner.subst.map.insert(
            f,
            Substitution {
                file,
                offset: file_offset,
                writable,
            },
        );
        self.memfd.punch_hole(off, PAGE_SIZE as u64)?;
        Ok(())
    }

    /// Makes `f` show its own memfd page again; with `keep_contents` the file
    /// page's bytes are copied into it first, otherwise it reads as zeros.
    pub fn unsubstitute(&self, f: Frame, keep_contents: bool) -> Result<(), PhysMemError> {
        if f.0 >= self.frames {
            return Err(PhysMemError::BadFrame(f));
        }
        let mut inner = self.inner.lock();
        if !inner.subst.contains(f) {
            return Err(PhysMemError::NotSubstituted(f));
        }
        let off = f.offset();
        let mut page = Box::new([0u8; PAGE_SIZE]);
        if keep_contents {
            inner.view.read_at(off as usize, &mut page[..])?;
        }
        inner.drop_substitution(&self.memfd, f)?;
        if keep_contents {
            inner.view.write_at(off as usize, &page[..])?;
        } else {
            // Already a hole since `substitute`; punch again so the frame
            // surely reads as zeros whatever touched the memfd meanwhile.
            self.memfd.punch_hole(off, PAGE_SIZE as u64)?;
        }
        Ok(())
    }

    /// Which host fd and offset a stub maps to show `f`.
    ///
    /// # Panics
    /// If `f` is beyond guest memory (a kernel bug: frames come from `alloc`).
    pub fn backing(&self, f: Frame) -> FrameBacking {
        assert!(
            f.0 < self.frames,
            "physmem::backing of frame {} beyond {} frames",
            f.0,
            self.frames
        );
        match self.inner.lock().subst.map.get(&f) {
            Some(s) => FrameBacking {
                fd: s.file.as_raw_fd(),
                offset: s.offset,
                writable: s.writable,
            },
            None => FrameBacking {
                fd: self.memfd_raw(),
                offset: f.offset(),
                writable: true,
            },
        }
    }

    /// Most frames that may be substituted at once.
    pub fn substitution_limit(&self) -> u64 {
        self.inner.lock().subst_limit
    }

    /// Changes the cap on substituted frames (frames substituted already stay).
    /// Raising it toward the host's `vm.max_map_count` / 2 risks substitutions
    /// that can no longer be undone.
    pub fn set_substitution_limit(&self, frames: u64) {
        self.inner.lock().subst_limit = frames;
    }

    /// Whether `f` currently shows a host file page.
    pub fn is_substituted(&self, f: Frame) -> bool {
        self.inner.lock().subst.contains(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(pages: &[u8]) -> Arc<File> {
        let mut f = tempfile::tempfile().unwrap();
        for &b in pages {
            f.write_all(&[b; PAGE_SIZE]).unwrap();
        }
        Arc::new(f)
    }

    #[test]
    fn substitute_shows_the_file_and_refuses_writes() {
        let pm = PhysMem::new(16 * 4096).unwrap();
        let f = pm.alloc().unwrap();
        pm.write(f, 0, &[9; PAGE_SIZE]).unwrap();
        let file = file_of(&[1, 2, 3]);
        pm.substitute(f, file.clone(), 2 * 4096, false).unwrap();
        assert!(pm.is_substituted(f));
        let mut buf = [0u8; 16];
        pm.read(f, 100, &mut buf);
        assert_eq!(buf, [3; 16]);
        assert!(matches!(
            pm.write(f, 0, b"x"),
            Err(PhysMemError::ReadOnly(_))
        ));
        let other = pm.alloc().unwrap();
        assert!(matches!(
            pm.copy_frame(other, f),
            Err(PhysMemError::ReadOnly(_))
        ));
        let b = pm.backing(f);
        assert_eq!(b.fd, file.as_raw_fd());
        assert_eq!(b.offset, 2 * 4096);
        assert!(!b.writable);
        assert_eq!(pm.stats().frames_substituted, 1);
        // The memfd page was punched.
        assert_eq!(pm.stats().host_resident_bytes, 0);
    }

    #[test]
    fn substitute_preconditions() {
        let pm = PhysMem::new(4 * 4096).unwrap();
        let file = file_of(&[1]);
        assert!(matches!(
            pm.substitute(Frame(0), file.clone(), 0, false),
            Err(PhysMemError::NotAllocated(_))
        ));
        let f = pm.alloc().unwrap();
        assert!(matches!(
            pm.substitute(f, file.clone(), 100, false),
            Err(PhysMemError::Misaligned(100))
        ));
        assert!(matches!(
            pm.substitute(Frame(99), file.clone(), 0, false),
            Err(PhysMemError::BadFrame(_))
        ));
        assert!(pm.substitute(f, file.clone(), 4096, false).is_err());
        assert!(!pm.is_substituted(f));
        assert!(matches!(
            pm.unsubstitute(f, true),
            Err(PhysMemError::NotSubstituted(_))
        ));
    }

    #[test]
    fn substitutions_are_capped() {
        let pm = PhysMem::new(8 * 4096).unwrap();
        assert!(pm.substitution_limit() >= 1000);
        pm.set_substitution_limit(2);
        let file = file_of(&[1, 2, 3]);
        let fs: Vec<Frame> = (0..3).map(|_| pm.alloc().unwrap()).collect();
        pm.substitute(fs[0], file.clone(), 0, false).unwrap();
        pm.substitute(fs[1], file.clone(), 4096, false).unwrap();
        assert!(matches!(
            pm.substitute(fs[2], file.clone(), 0, false),
            Err(PhysMemError::TooManySubstitutions(2))
        ));
        assert!(!pm.is_substituted(fs[2]));
        pm.write(fs[2], 0, b"copy instead").unwrap();
        // Re-pointing a substituted frame is not a new substitution.
        pm.substitute(fs[1], file.clone(), 2 * 4096, false).unwrap();
        pm.unsubstitute(fs[0], false).unwrap();
        pm.substitute(fs[2], file.clone(), 0, false).unwrap();
    }

    #[test]
    fn unsubstitute_keeps_or_drops_contents() {
        let pm = PhysMem::new(4 * 4096).unwrap();
        let file = file_of(&[0x5a]);
        let a = pm.alloc().unwrap();
        pm.substitute(a, file.clone(), 0, false).unwrap();
        pm.unsubstitute(a, true).unwrap();
        assert!(!pm.is_substituted(a));
        let mut buf = [0u8; PAGE_SIZE];
        pm.read(a, 0, &mut buf);
        assert!(buf.iter().all(|&b| b == 0x5a));
        pm.write(a, 0, b"mine").unwrap();
        assert_eq!(pm.backing(a).fd, pm.memfd_raw());

        pm.substitute(a, file.clone(), 0, false).unwrap();
        pm.unsubstitute(a, false).unwrap();
        pm.read(a, 0, &mut buf);
        assert!(buf.iter().all(|&b| b == 0));
    }

    #[test]
    fn writable_substitution_writes_through_and_repoints() {
        let pm = PhysMem::new(4 * 4096).unwrap();
        let tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.as_file().set_len(2 * 4096).unwrap();
        let file = Arc::new(tmp.reopen().unwrap());
        let a = pm.alloc().unwrap();
        pm.substitute(a, file.clone(), 4096, true).unwrap();
        pm.write(a, 8, b"cow").unwrap();
        let on_disk = std::fs::read(tmp.path()).unwrap();
        assert_eq!(&on_disk[4096 + 8..4096 + 11], b"cow");
        // Re-point to another page of the file.
        pm.substitute(a, file.clone(), 0, true).unwrap();
        let mut buf = [1u8; 3];
        pm.read(a, 8, &mut buf);
        assert_eq!(buf, [0; 3]);
        assert_eq!(pm.backing(a).offset, 0);
        assert_eq!(pm.stats().frames_substituted, 1);
    }

    #[test]
    fn free_undoes_substitution_and_drops_the_file() {
        let pm = PhysMem::new(4 * 4096).unwrap();
        let file = file_of(&[7]);
        let a = pm.alloc().unwrap();
        pm.substitute(a, file.clone(), 0, false).unwrap();
        assert_eq!(Arc::strong_count(&file), 2);
        pm.free(a);
        assert_eq!(Arc::strong_count(&file), 1);
        assert!(!pm.is_substituted(a));
        let b = pm.alloc().unwrap();
        assert_eq!(a, b);
        let mut buf = [1u8; PAGE_SIZE];
        pm.read(b, 0, &mut buf);
        assert!(buf.iter().all(|&x| x == 0));
        pm.write(b, 0, b"ok").unwrap();
    }
}
