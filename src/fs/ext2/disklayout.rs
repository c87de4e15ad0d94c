//! ext2 on-disk structures: superblock, group descriptor, inode and
//! directory entry, kept as their raw little-endian bytes with typed
//! accessors so unknown fields round-trip untouched. Parsing checks lengths;
//! the meaning of values is checked by the callers (mount, inode, dir).

pub const SUPERBLOCK_OFFSET: u64 = 1024;
pub const SUPERBLOCK_SIZE: usize = 1024;
pub const EXT2_MAGIC: u16 = 0xEF53;
pub const GOOD_OLD_INODE_SIZE: usize = 128;
pub const GOOD_OLD_FIRST_INO: u32 = 11;
pub const GROUP_DESC_SIZE: usize = 32;
pub const ROOT_INO: u32 = 2;
pub const N_DIRECT: usize = 12;
pub const IND_BLOCK: usize = 12;
pub const DIND_BLOCK: usize = 13;
pub const TIND_BLOCK: usize = 14;
pub const N_BLOCKS: usize = 15;
pub const LINK_MAX: u16 = 32000;
pub const NAME_MAX: usize = 255;

pub const STATE_VALID: u16 = 1;

pub const FEATURE_INCOMPAT_FILETYPE: u32 = 0x0002;
pub const FEATURE_RO_COMPAT_SPARSE_SUPER: u32 = 0x0001;
pub const FEATURE_RO_COMPAT_LARGE_FILE: u32 = 0x0002;
pub const FEATURE_RO_COMPAT_BTREE_DIR: u32 = 0x0004;
pub const SUPPORTED_INCOMPAT: u32 = FEATURE_INCOMPAT_FILETYPE;
pub const SUPPORTED_RO_COMPAT: u32 =
    FEATURE_RO_COMPAT_SPARSE_SUPER | FEATURE_RO_COMPAT_LARGE_FILE | FEATURE_RO_COMPAT_BTREE_DIR;

/// Inode flag: the directory carries an htree index (read as linear).
pub const INDEX_FL: u32 = 0x1000;

pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

/// ext2 directory entry file types.
pub const FT_UNKNOWN: u8 = 0;
pub const FT_REG: u8 = 1;
pub const FT_DIR: u8 = 2;
pub const FT_CHR: u8 = 3;
pub const FT_BLK: u8 = 4;
pub const FT_FIFO: u8 = 5;
pub const FT_SOCK: u8 = 6;
pub const FT_SYMLINK: u8 = 7;

/// Linux `DT_*` values returned by readdir.
pub const DT_UNKNOWN: u8 = 0;
pub const DT_FIFO: u8 = 1;
pub const DT_CHR: u8 = 2;
pub const DT_DIR: u8 = 4;
pub const DT_BLK: u8 = 6;
pub const DT_REG: u8 = 8;
pub const DT_LNK: u8 = 10;
pub const DT_SOCK: u8 = 12;

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

macro_rules! field {
    ($get:ident, $set:ident, u32, $off:expr) => {
        pub fn $get(&self) -> u32 {
            le32(&self.0, $off)
        }
        pub fn $set(&mut self, v: u32) {
            put32(&mut self.0, $off, v)
        }
    };
    ($get:ident, $set:ident, u16, $off:expr) => {
        pub fn $get(&self) -> u16 {
            le16(&self.0, $off)
        }
        pub fn $set(&mut self, v: u16) {
            put16(&mut self.0, $off, v)
        }
    };
}

/// The superblock, 1024 bytes at byte 1024 of the device.
#[derive(Clone)]
pub struct Superblock(pub [u8; SUPERBLOCK_SIZE]);

impl Superblock {
    pub fn parse(b: &[u8]) -> Option<Superblock> {
        Some(Superblock(b.get(..SUPERBLOCK_SIZE)?.try_into().ok()?))
    }
    field!(inodes_count, set_inodes_count, u32, 0);
    field!(blocks_count, set_blocks_count, u32, 4);
    field!(r_blocks_count, set_r_blocks_count, u32, 8);
    field!(free_blocks_count, set_free_blocks_count, u32, 12);
    field!(free_inodes_count, set_free_inodes_count, u32, 16);
    field!(first_data_block, set_first_data_block, u32, 20);
    field!(log_block_size, set_log_block_size, u32, 24);
    field!(blocks_per_group, set_blocks_per_group, u32, 32);
    field!(inodes_per_group, set_inodes_per_group, u32, 40);
    field!(mtime, set_mtime, u32, 44);
    field!(wtime, set_wtime, u32, 48);
    field!(mnt_count, set_mnt_count, u16, 52);
    field!(magic, set_magic, u16, 56);
    field!(state, set_state, u16, 58);
    field!(rev_level, set_rev_level, u32, 76);
    field!(first_ino_raw, set_first_ino_raw, u32, 84);
    field!(inode_size_raw, set_inode_size_raw, u16, 88);
    field!(feature_compat_raw, set_feature_compat_raw, u32, 92);
    field!(feature_incompat_raw, set_feature_incompat_raw, u32, 96);
    field!(feature_ro_compat_raw, set_feature_ro_compat_raw, u32, 100);

    /// Revision 0 has no feature fields: they read as zero.
    pub fn feature_incompat(&self) -> u32 {
        if self.rev_level() == 0 {
            0
        } else {
            self.feature_incompat_raw()
        }
    }
    pub fn feature_ro_compat(&self) -> u32 {
        if self.rev_level() == 0 {
            0
        } else {
            self.feature_ro_compat_raw()
        }
    }
    pub fn first_ino(&self) -> u32 {
        if self.rev_level() == 0 {
            GOOD_OLD_FIRST_INO
        } else {
            self.first_ino_raw()
        }
    }
    pub fn inode_size(&self) -> u32 {
        if self.rev_level() == 0 {
            GOOD_OLD_INODE_SIZE as u32
        } else {
            self.inode_size_raw() as u32
        }
    }
}

/// One 32-byte block group descriptor.
#[derive(Clone)]
pub struct GroupDesc(pub [u8; GROUP_DESC_SIZE]);

impl GroupDesc {
    pub fn parse(b: &[u8]) -> Option<GroupDesc> {
        Some(GroupDesc(b.get(..GROUP_DESC_SIZE)?.try_into().ok()?))
    }
    field!(block_bitmap, set_block_bitmap, u32, 0);
    field!(inode_bitmap, set_inode_bitmap, u32, 4);
    field!(inode_table, set_inode_table, u32, 8);
    field!(free_blocks_count, set_free_blocks_count, u16, 12);
    field!(free_inodes_count, set_free_inodes_count, u16, 14);
    field!(used_dirs_count, set_used_dirs_count, u16, 16);
}

/// The first 128 bytes of an inode (the part every revision has).
#[derive(Clone, PartialEq, Eq)]
pub struct RawInode(pub [u8; GOOD_OLD_INODE_SIZE]);

impl RawInode {
    pub fn parse(b: &[u8]) -> Option<RawInode> {
        Some(RawInode(b.get(..GOOD_OLD_INODE_SIZE)?.try_into().ok()?))
    }
    pub fn zeroed() -> RawInode {
        RawInode([0; GOOD_OLD_INODE_SIZE])
    }
    field!(mode, set_mode, u16, 0);
    field!(uid_lo, set_uid_lo, u16, 2);
    field!(size_lo, set_size_lo, u32, 4);
    field!(atime, set_atime, u32, 8);
    field!(ctime, set_ctime, u32, 12);
    field!(mtime, set_mtime, u32, 16);
    field!(dtime, set_dtime, u32, 20);
    field!(gid_lo, set_gid_lo, u16, 24);
    field!(links_count, set_links_count, u16, 26);
    field!(blocks, set_blocks, u32, 28);
    field!(flags, set_flags, u32, 32);
    field!(generation, set_generation, u32, 100);
    field!(file_acl, set_file_acl, u32, 104);
    field!(size_high, set_size_high, u32, 108);
    field!(uid_high, set_uid_high, u16, 120);
    field!(gid_high, set_gid_high, u16, 122);

    pub fn block(&self, i: usize) -> u32 {
        le32(&self.0, 40 + 4 * i)
    }
    pub fn set_block(&mut self, i: usize, v: u32) {
        put32(&mut self.0, 40 + 4 * i, v)
    }
    /// The 60 bytes of `i_block` (fast symlink target storage).
    pub fn block_bytes(&self) -> &[u8] {
        &self.0[40..100]
    }
    pub fn block_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0[40..100]
    }
    pub fn uid(&self) -> u32 {
        self.uid_lo() as u32 | (self.uid_high() as u32) << 16
    }
    pub fn set_uid(&mut self, v: u32) {
        self.set_uid_lo(v as u16);
        self.set_uid_high((v >> 16) as u16);
    }
    pub fn gid(&self) -> u32 {
        self.gid_lo() as u32 | (self.gid_high() as u32) << 16
    }
    pub fn set_gid(&mut self, v: u32) {
        self.set_gid_lo(v as u16);
        self.set_gid_high((v >> 16) as u16);
    }
    pub fn file_type(&self) -> u32 {
        self.mode() as u32 & S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }
    pub fn is_reg(&self) -> bool {
        self.file_type() == S_IFREG
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }
    /// Size: regular files use `i_size_high` as the upper half; in other
    /// inodes that field is `i_dir_acl` and not part of the size.
    pub fn size(&self) -> u64 {
        if self.is_reg() {
            self.size_lo() as u64 | (self.size_high() as u64) << 32
        } else {
            self.size_lo() as u64
        }
    }
    pub fn set_size(&mut self, v: u64) {
        self.set_size_lo(v as u32);
        if self.is_reg() {
            self.set_size_high((v >> 32) as u32);
        }
    }
    /// Device number: old 16-bit form in block[0], else the new form in block[1].
    pub fn rdev(&self) -> u32 {
        let old = self.block(0);
        if old != 0 {
            let major = (old >> 8) & 0xff;
            let minor = old & 0xff;
            encode_dev(major, minor)
        } else {
            self.block(1)
        }
    }
    pub fn set_rdev(&mut self, dev: u32) {
        let (major, minor) = decode_dev(dev);
        if major < 256 && minor < 256 {
            self.set_block(0, (major << 8) | minor);
            self.set_block(1, 0);
        } else {
            self.set_block(0, 0);
            self.set_block(1, dev);
        }
    }
}

/// Linux `new_encode_dev`: the same bits as glibc `makedev` for major < 4096.
pub fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

pub fn decode_dev(dev: u32) -> (u32, u32) {
    ((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00))
}

/// The `S_IF*` type of a mode mapped to the directory entry file type.
pub fn mode_to_ft(mode: u32) -> u8 {
    match mode & S_IFMT {
        S_IFREG => FT_REG,
        S_IFDIR => FT_DIR,
        S_IFCHR => FT_CHR,
        S_IFBLK => FT_BLK,
        S_IFIFO => FT_FIFO,
        S_IFSOCK => FT_SOCK,
        S_IFLNK => FT_SYMLINK,
        _ => FT_UNKNOWN,
    }
}

pub fn mode_to_dt(mode: u32) -> u8 {
    match mode & S_IFMT {
        S_IFREG => DT_REG,
        S_IFDIR => DT_DIR,
        S_IFCHR => DT_CHR,
        S_IFBLK => DT_BLK,
        S_IFIFO => DT_FIFO,
        S_IFSOCK => DT_SOCK,
        S_IFLNK => DT_LNK,
        _ => DT_UNKNOWN,
    }
}

pub fn ft_to_dt(ft: u8) -> u8 {
    match ft {
        FT_REG => DT_REG,
        FT_DIR => DT_DIR,
        FT_CHR => DT_CHR,
        FT_BLK => DT_BLK,
        FT_FIFO => DT_FIFO,
        FT_SOCK => DT_SOCK,
        FT_SYMLINK => DT_LNK,
        _ => DT_UNKNOWN,
    }
}

/// Directory entry header size (inode, rec_len, name_len, file_type).
pub const DIRENT_HEADER: usize = 8;

/// Space an entry with a name of `name_len` bytes needs (4-byte aligned).
pub fn dirent_len(name_len: usize) -> usize {
    (DIRENT_HEADER + name_len + 3) & !3
}

/// A directory entry as found in a block, checked against the block bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawDirent {
    pub offset: usize,
    pub inode: u32,
    pub rec_len: usize,
    pub name_len: usize,
    pub file_type: u8,
}

/// Why a directory entry is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirentError {
    Truncated,
    RecLenTooSmall,
    RecLenUnaligned,
    PastBlock,
    NameTooLong,
    /// An entry in use with an empty name (Linux rejects it; returned, it
    /// would make `ls -R` recurse forever through "").
    EmptyName,
}

/// Parse the entry at `offset` of a directory block. `filetype` says whether
/// the FILETYPE feature splits the 16-bit name length into len + type.
pub fn parse_dirent(block: &[u8], offset: usize, filetype: bool) -> Result<RawDirent, DirentError> {
    if offset + DIRENT_HEADER > block.len() {
        return Err(DirentError::Truncated);
    }
    let inode = le32(block, offset);
    let rec_len = le16(block, offset + 4) as usize;
    let (name_len, file_type) = if filetype {
        (block[offset + 6] as usize, block[offset + 7])
    } else {
        (le16(block, offset + 6) as usize, 0)
    };
    if rec_len < dirent_len(1).min(DIRENT_HEADER + 4) {
        return Err(DirentError::RecLenTooSmall);
    }
    if !rec_len.is_multiple_of(4) {
        return Err(DirentError::RecLenUnaligned);
    }
    if offset + rec_len > block.len() {
        return Err(DirentError::PastBlock);
    }
    if name_len > NAME_MAX || (inode != 0 && DIRENT_HEADER + name_len > rec_len) {
        return Err(DirentError::NameTooLong);
    }
    if inode != 0 && name_len == 0 {
        return Err(DirentError::EmptyName);
    }
    Ok(RawDirent {
        offset,
        inode,
        rec_len,
        name_len,
        file_type,
    })
}

/// Write an entry header and name at `offset`.
pub fn write_dirent(
    block: &mut [u8],
    offset: usize,
    inode: u32,
    rec_len: usize,
    name: &[u8],
    file_type: u8,
    filetype: bool,
) {
    put32(block, offset, inode);
    put16(block, offset + 4, rec_len as u16);
    if filetype {
        block[offset + 6] = name.len() as u8;
        block[offset + 7] = file_type;
    } else {
        put16(block, offset + 6, name.len() as u16);
    }
    block[offset + DIRENT_HEADER..offset + DIRENT_HEADER + name.len()].copy_from_slice(name);
}

pub fn set_dirent_inode(block: &mut [u8], offset: usize, inode: u32) {
    put32(block, offset, inode)
}

pub fn set_dirent_rec_len(block: &mut [u8], offset: usize, rec_len: usize) {
    put16(block, offset + 4, rec_len as u16)
}

pub fn set_dirent_file_type(block: &mut [u8], offset: usize, ft: u8, filetype: bool) {
    if filetype {
        block[offset + 7] = ft;
    }
}

pub fn read_u32(b: &[u8], o: usize) -> u32 {
    le32(b, o)
}
pub fn write_u32(b: &mut [u8], o: usize, v: u32) {
    put32(b, o, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirent_roundtrip_and_checks() {
        let mut b = vec![0u8; 1024];
        write_dirent(&mut b, 0, 12, 1024, b"hello", FT_REG, true);
        let d = parse_dirent(&b, 0, true).unwrap();
        assert_eq!(
            (d.inode, d.rec_len, d.name_len, d.file_type),
            (12, 1024, 5, FT_REG)
        );
        set_dirent_rec_len(&mut b, 0, 0);
        assert_eq!(parse_dirent(&b, 0, true), Err(DirentError::RecLenTooSmall));
        set_dirent_rec_len(&mut b, 0, 2048);
        assert_eq!(parse_dirent(&b, 0, true), Err(DirentError::PastBlock));
        set_dirent_rec_len(&mut b, 0, 14);
        assert_eq!(parse_dirent(&b, 0, true), Err(DirentError::RecLenUnaligned));
        assert_eq!(parse_dirent(&b, 1020, true), Err(DirentError::Truncated));
        // Without FILETYPE the name length is 16 bits: 5 | 1<<8 is too long.
        set_dirent_rec_len(&mut b, 0, 1024);
        assert_eq!(parse_dirent(&b, 0, false), Err(DirentError::NameTooLong));
        write_dirent(&mut b, 0, 12, 1024, b"", FT_REG, true);
        assert_eq!(parse_dirent(&b, 0, true), Err(DirentError::EmptyName));
        // A free entry (inode 0) may have any name length.
        set_dirent_inode(&mut b, 0, 0);
        assert!(parse_dirent(&b, 0, true).is_ok());
    }

    #[test]
    fn inode_fields() {
        let mut i = RawInode::zeroed();
        i.set_mode((S_IFREG | 0o644) as u16);
        i.set_size(5 << 32 | 7);
        assert_eq!(i.size(), 5 << 32 | 7);
        i.set_uid(70000);
        assert_eq!(i.uid(), 70000);
        i.set_rdev(encode_dev(8, 1));
        assert_eq!(i.block(0), 0x801);
        assert_eq!(i.rdev(), encode_dev(8, 1));
        i.set_rdev(encode_dev(300, 70000));
        assert_eq!(decode_dev(i.rdev()), (300, 70000));
        let mut d = RawInode::zeroed();
        d.set_mode((S_IFDIR | 0o755) as u16);
        d.set_size_high(99); // i_dir_acl, not size
        assert_eq!(d.size(), 0);
    }
}
