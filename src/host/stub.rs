//! The stub executable as a sealed memfd that stubs are exec'd from.

use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};

/// A sealed, executable memfd holding the stub ELF.
pub struct StubExe {
    file: std::fs::File,
}

impl StubExe {
    pub fn create(elf: &[u8]) -> std::io::Result<StubExe> {
        Self::create_named("umlrun-stub", elf)
    }

    /// The same for another tiny program (`name`: the memfd's name, seen
    /// in the process's /proc/PID/exe).
    pub fn create_named(name: &str, elf: &[u8]) -> std::io::Result<StubExe> {
        let opts = memfd::MemfdOptions::default()
            .close_on_exec(true)
            .allow_sealing(true);
        let mfd = opts.create(name).map_err(std::io::Error::other)?;
        let mut file = mfd.into_file();
        file.write_all(elf)?;
        let mfd =
            memfd::Memfd::try_from_file(file).map_err(|_| std::io::Error::other("not a memfd"))?;
        mfd.add_seals(&[
            memfd::FileSeal::SealShrink,
            memfd::FileSeal::SealGrow,
            memfd::FileSeal::SealWrite,
        ])
        .map_err(std::io::Error::other)?;
        mfd.add_seal(memfd::FileSeal::SealSeal)
            .map_err(std::io::Error::other)?;
        Ok(StubExe {
            file: mfd.into_file(),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn sealed_against_writes() {
        let exe = StubExe::create(b"\x7fELF....").unwrap();
        let mut f = &exe.file;
        assert!(f.write_all(b"x").is_err());
        let mut s = Vec::new();
        let mut g = std::fs::File::open(format!("/proc/self/fd/{}", exe.fd())).unwrap();
        g.read_to_end(&mut s).unwrap();
        assert_eq!(s, b"\x7fELF....");
    }
}
