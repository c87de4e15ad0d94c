//! Extended attributes, stored as Linux's ext2 stores them: one block per
//! inode (`i_file_acl`), counted in `i_blocks`. The block: a 32-byte
//! header (magic 0xEA020000, h_refcount, h_blocks = 1, h_hash), then the
//! entries (16 bytes + the name, padded to 4, sorted by name index, name
//! length and name; a zero u32 ends them), the values packed from the
//! block's end downwards, each padded to 4 bytes. Names are kept without
//! their namespace prefix: index 1 user., 4 trusted., 6 security.
//!
//! A block shared by several inodes (h_refcount > 1, as Linux's mbcache
//! makes them) is copied on the first change. Nothing here shares blocks.

use super::disklayout::{read_u32, write_u32};
use super::inode::Inode;
use super::{corrupt, now, Fs, Ino};
use crate::errno::{Errno, KResult};

pub const XATTR_MAGIC: u32 = 0xEA02_0000;
const HEADER: usize = 32;
const ENTRY: usize = 16;
/// s_feature_compat EXT_ATTR.
const FEATURE_COMPAT_EXT_ATTR: u32 = 0x0008;
/// setxattr flags (as `tmpfs::XATTR_*`).
const XATTR_CREATE: u32 = 1;
const XATTR_REPLACE: u32 = 2;

/// Namespace prefixes by name index.
const PREFIXES: [(u8, &[u8]); 3] = [(1, b"user."), (4, b"trusted."), (6, b"security.")];

/// One attribute, its name without the namespace prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub index: u8,
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// `user.foo` -> (1, "foo"). An empty suffix is EINVAL, a namespace ext2
/// does not store EOPNOTSUPP (Linux's xattr_resolve_name).
pub fn split_name(full: &[u8]) -> KResult<(u8, &[u8])> {
    for (index, p) in PREFIXES {
        if let Some(rest) = full.strip_prefix(p) {
            if rest.is_empty() {
                return Err(Errno::EINVAL);
            }
            if rest.len() > 255 {
                return Err(Errno::ERANGE);
            }
            return Ok((index, rest));
        }
    }
    Err(Errno::EOPNOTSUPP)
}

/// The full name of an entry; None for a namespace not handled (POSIX
/// ACLs): those stay on disk, unlisted.
pub fn full_name(e: &Entry) -> Option<Vec<u8>> {
    let (_, p) = PREFIXES.iter().find(|(i, _)| *i == e.index)?;
    let mut n = p.to_vec();
    n.extend_from_slice(&e.name);
    Some(n)
}

/// Linux's ext2_xattr_hash_entry (names hashed as signed chars, as the
/// x86 kernel does; e2fsck accepts both signednesses).
pub fn entry_hash(name: &[u8], value: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &c in name {
        h = (h << 5) ^ (h >> 27) ^ (c as i8 as i32 as u32);
    }
    let mut padded = value.to_vec();
    padded.resize(pad4(value.len()), 0);
    for w in padded.chunks_exact(4) {
        h = (h << 16) ^ (h >> 16) ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
    }
    h
}

/// Linux's ext2_xattr_rehash: the header hash over the entry hashes.
fn block_hash(hashes: &[u32]) -> u32 {
    let mut h: u32 = 0;
    for &e in hashes {
        if e == 0 {
            return 0;
        }
        h = (h << 16) ^ (h >> 16) ^ e;
    }
    h
}

/// Linux's entry order: name index, then name length, then the name.
fn sort(entries: &mut [Entry]) {
    entries.sort_by(|a, b| (a.index, a.name.len(), &a.name).cmp(&(b.index, b.name.len(), &b.name)));
}

/// Parse an xattr block, checking every offset (EIO on a bad one).
pub fn decode(blk: &[u8]) -> KResult<Vec<Entry>> {
    let bad = |what: &str| corrupt(format_args!("xattr block: {what}"));
    if blk.len() < HEADER + 4 || read_u32(blk, 0) != XATTR_MAGIC {
        return Err(bad("bad magic"));
    }
    if read_u32(blk, 8) != 1 {
        return Err(bad("h_blocks is not 1"));
    }
    let mut out = Vec::new();
    let mut off = HEADER;
    loop {
        if off + 4 > blk.len() {
            return Err(bad("entries run past the block"));
        }
        if read_u32(blk, off) == 0 {
            break;
        }
        if off + ENTRY > blk.len() {
            return Err(bad("entry runs past the block"));
        }
        let name_len = blk[off] as usize;
        let index = blk[off + 1];
        let value_offs = u16::from_le_bytes([blk[off + 2], blk[off + 3]]) as usize;
        let value_inum = read_u32(blk, off + 4);
        let value_size = read_u32(blk, off + 8) as usize;
        let name_end = off + ENTRY + name_len;
        if name_len == 0 || name_end > blk.len() {
            return Err(bad("bad name length"));
        }
        if value_inum != 0 {
            return Err(bad("value in another inode"));
        }
        let value = if value_size == 0 {
            Vec::new()
        } else {
            match value_offs.checked_add(value_size) {
                Some(end) if value_offs >= HEADER && end <= blk.len() => {
                    blk[value_offs..end].to_vec()
                }
                _ => return Err(bad("value out of the block")),
            }
        };
        out.push(Entry {
            index,
            name: blk[off + ENTRY..name_end].to_vec(),
            value,
        });
        off = pad4(name_end);
    }
    Ok(out)
}

/// Lay out `entries` in a block of `bs` bytes; None when they do not fit.
pub fn encode(entries: &[Entry], bs: usize, refcount: u32) -> Option<Vec<u8>> {
    let mut entries = entries.to_vec();
    sort(&mut entries);
    let names: usize = entries
        .iter()
        .map(|e| pad4(ENTRY + e.name.len()))
        .sum::<usize>()
        + HEADER
        + 4;
    let values: usize = entries.iter().map(|e| pad4(e.value.len())).sum();
    if names.checked_add(values)? > bs {
        return None;
    }
    let mut blk = vec![0u8; bs];
    write_u32(&mut blk, 0, XATTR_MAGIC);
    write_u32(&mut blk, 4, refcount);
    write_u32(&mut blk, 8, 1);
    let mut off = HEADER;
    let mut min_offs = bs;
    let mut hashes = Vec::with_capacity(entries.len());
    for e in &entries {
        let value_offs = if e.value.is_empty() {
            0
        } else {
            min_offs -= pad4(e.value.len());
            blk[min_offs..min_offs + e.value.len()].copy_from_slice(&e.value);
            min_offs
        };
        let hash = entry_hash(&e.name, &e.value);
        hashes.push(hash);
        blk[off] = e.name.len() as u8;
        blk[off + 1] = e.index;
        blk[off + 2..off + 4].copy_from_slice(&(value_offs as u16).to_le_bytes());
        write_u32(&mut blk, off + 8, e.value.len() as u32);
        write_u32(&mut blk, off + 12, hash);
        blk[off + ENTRY..off + ENTRY + e.name.len()].copy_from_slice(&e.name);
        off = pad4(off + ENTRY + e.name.len());
    }
    write_u32(&mut blk, 12, block_hash(&hashes));
    Some(blk)
}

impl Fs {
    /// The attributes of `i` (none without an xattr block).
    fn xattr_entries(&self, i: &Inode) -> KResult<Vec<Entry>> {
        let b = i.raw.file_acl();
        if b == 0 {
            return Ok(Vec::new());
        }
        let b = self.check_block(b, "xattr block")?;
        decode(&self.read_block(b)?)
    }

    pub fn xattr_get(&self, ino: Ino, name: &[u8]) -> KResult<Vec<u8>> {
        let (index, short) = split_name(name)?;
        let i = self.load_inode(ino)?;
        self.xattr_entries(&i)?
            .into_iter()
            .find(|e| e.index == index && e.name == short)
            .map(|e| e.value)
            .ok_or(Errno::ENODATA)
    }

    pub fn xattr_list(&self, ino: Ino) -> KResult<Vec<Vec<u8>>> {
        let i = self.load_inode(ino)?;
        Ok(self
            .xattr_entries(&i)?
            .iter()
            .filter_map(full_name)
            .collect())
    }

    /// Set (`Some`) or remove (`None`) one attribute, rewriting the block.
    pub fn xattr_set(
        &mut self,
        ino: Ino,
        name: &[u8],
        value: Option<&[u8]>,
        flags: u32,
    ) -> KResult<()> {
        self.check_rw()?;
        let (index, short) = split_name(name)?;
        let bs = self.geo.block_size as usize;
        if value.is_some_and(|v| v.len() > bs) {
            // Linux's ext2_xattr_set.
            return Err(Errno::ERANGE);
        }
        let mut i = self.load_inode(ino)?;
        let mut entries = self.xattr_entries(&i)?;
        let pos = entries
            .iter()
            .position(|e| e.index == index && e.name == short);
        match (value, pos) {
            (None, None) => return Err(Errno::ENODATA),
            (None, Some(p)) => {
                entries.remove(p);
            }
            (Some(_), Some(_)) if flags & XATTR_CREATE != 0 => return Err(Errno::EEXIST),
            (Some(_), None) if flags & XATTR_REPLACE != 0 => return Err(Errno::ENODATA),
            (Some(v), Some(p)) => entries[p].value = v.to_vec(),
            (Some(v), None) => entries.push(Entry {
                index,
                name: short.to_vec(),
                value: v.to_vec(),
            }),
        }
        i.raw.set_ctime(now());
        if entries.is_empty() {
            self.release_xattr_block(&mut i)?;
            return self.write_inode(&i);
        }
        let blk = encode(&entries, bs, 1).ok_or(Errno::ENOSPC)?;
        let old = i.raw.file_acl();
        let shared = old != 0 && read_u32(&self.read_block(old)?, 4) > 1;
        if old != 0 && !shared {
            self.write_block(old, &blk)?;
            return self.write_inode(&i);
        }
        let goal = self.geo.first_data_block
            + (ino - 1) / self.geo.inodes_per_group * self.geo.blocks_per_group;
        let b = self.alloc_block(goal)?;
        if let Err(e) = self.write_block(b, &blk) {
            let _ = self.free_block(b);
            return Err(e);
        }
        if shared {
            // Drop our reference to the shared block (i_blocks unchanged).
            let mut ob = self.read_block(old)?;
            let refs = read_u32(&ob, 4);
            write_u32(&mut ob, 4, refs - 1);
            self.write_block(old, &ob)?;
        } else {
            let spb = self.geo.block_size / 512;
            i.raw.set_blocks(i.raw.blocks().saturating_add(spb));
        }
        i.raw.set_file_acl(b);
        self.write_inode(&i)?;
        if self.sb.rev_level() >= 1 {
            let compat = self.sb.feature_compat_raw();
            if compat & FEATURE_COMPAT_EXT_ATTR == 0 {
                self.sb
                    .set_feature_compat_raw(compat | FEATURE_COMPAT_EXT_ATTR);
                self.sb_dirty = true;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u8, name: &str, value: &[u8]) -> Entry {
        Entry {
            index,
            name: name.as_bytes().to_vec(),
            value: value.to_vec(),
        }
    }

    #[test]
    fn names_split_by_namespace() {
        assert_eq!(split_name(b"user.foo").unwrap(), (1, &b"foo"[..]));
        assert_eq!(split_name(b"trusted.x").unwrap(), (4, &b"x"[..]));
        assert_eq!(
            split_name(b"security.selinux").unwrap(),
            (6, &b"selinux"[..])
        );
        assert_eq!(split_name(b"user."), Err(Errno::EINVAL));
        assert_eq!(
            split_name(b"system.posix_acl_access"),
            Err(Errno::EOPNOTSUPP)
        );
        assert_eq!(split_name(b"other.x"), Err(Errno::EOPNOTSUPP));
    }

    #[test]
    fn block_layout_is_linuxs() {
        let entries = vec![e(1, "zz", b"hello"), e(1, "a", b"12345678"), e(4, "t", b"")];
        let blk = encode(&entries, 1024, 1).unwrap();
        assert_eq!(read_u32(&blk, 0), XATTR_MAGIC);
        assert_eq!(read_u32(&blk, 4), 1);
        assert_eq!(read_u32(&blk, 8), 1);
        // Sorted: user "a" (shorter name first), user "zz", trusted "t".
        assert_eq!(blk[32], 1);
        assert_eq!(blk[33], 1);
        assert_eq!(&blk[48..49], b"a");
        // First value at the block's end, 4-byte aligned.
        let offs = u16::from_le_bytes([blk[34], blk[35]]) as usize;
        assert_eq!(offs, 1024 - 8);
        assert_eq!(&blk[offs..offs + 8], b"12345678");
        assert_eq!(read_u32(&blk, 40), 8);
        // Second entry at 32 + pad4(17) = 52.
        assert_eq!(blk[52], 2);
        assert_eq!(&blk[68..70], b"zz");
        let offs2 = u16::from_le_bytes([blk[54], blk[55]]) as usize;
        assert_eq!(offs2, 1024 - 8 - 8);
        assert_eq!(&blk[offs2..offs2 + 5], b"hello");
        // Third: trusted, empty value at offset 0; then the terminator.
        assert_eq!(blk[72], 1);
        assert_eq!(blk[73], 4);
        assert_eq!(u16::from_le_bytes([blk[74], blk[75]]), 0);
        assert_eq!(read_u32(&blk, 92), 0);
        // Entry hashes as Linux computes them, header hash over them.
        let h = |o: usize| read_u32(&blk, o + 12);
        assert_eq!(h(32), entry_hash(b"a", b"12345678"));
        let bh = block_hash(&[h(32), h(52), h(72)]);
        assert_eq!(read_u32(&blk, 12), bh);
        // Round trip.
        let mut want = entries.clone();
        sort(&mut want);
        assert_eq!(decode(&blk).unwrap(), want);
    }

    #[test]
    fn hash_matches_linux() {
        // By hand: 'a' = 0x61; then the value words "1234" and "5678".
        let mut h: u32 = 0x61;
        h = (h << 16) ^ (h >> 16) ^ u32::from_le_bytes(*b"1234");
        h = (h << 16) ^ (h >> 16) ^ u32::from_le_bytes(*b"5678");
        assert_eq!(entry_hash(b"a", b"12345678"), h);
        // A short value is padded with zeros.
        assert_eq!(
            entry_hash(b"", b"ab"),
            u32::from_le_bytes([b'a', b'b', 0, 0])
        );
        // Names hash as signed chars.
        assert_eq!(entry_hash(&[0x80], b""), 0xffff_ff80);
    }

    #[test]
    fn a_full_block_is_refused() {
        let big = vec![7u8; 1024 - 32 - 4 - 20];
        assert!(encode(&[e(1, "a", &big)], 1024, 1).is_some());
        assert!(encode(&[e(1, "a", &big), e(1, "b", b"")], 1024, 1).is_none());
        assert!(encode(&[e(1, "abcde", &big)], 1024, 1).is_none());
    }

    #[test]
    fn bad_blocks_are_eio() {
        let mut blk = encode(&[e(1, "a", b"v")], 1024, 1).unwrap();
        assert_eq!(decode(&blk[..]).unwrap().len(), 1);
        let mut nomagic = blk.clone();
        nomagic[3] = 0;
        assert_eq!(decode(&nomagic), Err(Errno::EIO));
        // Value offset past the block.
        blk[34..36].copy_from_slice(&1023u16.to_le_bytes());
        write_u32(&mut blk, 40, 4);
        assert_eq!(decode(&blk), Err(Errno::EIO));
        // Entries never ending.
        let mut endless = vec![0xffu8; 64];
        write_u32(&mut endless, 0, XATTR_MAGIC);
        write_u32(&mut endless, 8, 1);
        endless[32] = 200;
        assert_eq!(decode(&endless), Err(Errno::EIO));
    }
}
