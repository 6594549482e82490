//! The WAL's on-disk format: file names, the file header and the entry frame.
//!
//! Everything here is pure byte layout (no I/O), so that recovery, the streaming reader and the
//! tests agree on one definition. All integers are little-endian; nothing depends on the host.
//!
//! ```text
//! file header (HEADER_LEN = 24 bytes)
//!   0..8    magic          b"VELAWAL\0"
//!   8..12   version  u32   FORMAT_VERSION (1)
//!   12..20  first_lsn u64  LSN of the file's first entry (equals the number in the file name)
//!   20..24  crc32    u32   crc32 of bytes 0..20
//! entry frame (FRAME_HEAD_LEN = 16 bytes + payload)
//!   0..4    len      u32   payload length in bytes (the frame is 16 + len bytes)
//!   4..8    crc32    u32   crc32 of bytes 8..16+len, i.e. the 8 LSN bytes then the payload
//!   8..16   lsn      u64
//!   16..    payload  [u8; len]
//! ```

use super::Lsn;

/// The first bytes of every WAL file.
pub const MAGIC: [u8; 8] = *b"VELAWAL\0";
/// The only format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the file header in bytes.
pub const HEADER_LEN: u64 = 24;
/// Length of an entry frame's fixed part (`len`, `crc32`, `lsn`) in bytes.
pub const FRAME_HEAD_LEN: u64 = 16;

const NAME_PREFIX: &str = "wal-";
const NAME_SUFFIX: &str = ".log";
const NAME_DIGITS: usize = 20;

/// The file name of the WAL file whose first entry is `first_lsn`:
/// `wal-00000000000000000001.log`. Zero-padded to 20 digits (all of `u64`), so names sort
/// by LSN.
pub fn file_name(first_lsn: Lsn) -> String {
    format!("{NAME_PREFIX}{first_lsn:0NAME_DIGITS$}{NAME_SUFFIX}")
}

/// The first LSN encoded in a WAL file name, or `None` if `name` is not a WAL file name.
pub fn parse_file_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_prefix(NAME_PREFIX)?.strip_suffix(NAME_SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Encodes the header of a file whose first entry is `first_lsn`.
pub fn encode_header(first_lsn: Lsn) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32fast::hash(&h[0..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// What a file's first `HEADER_LEN` bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderCheck {
    /// A valid header of this format version.
    Valid { first_lsn: Lsn },
    /// Magic, checksum or length is wrong: a torn or damaged header (recovery drops the file).
    Damaged,
    /// An intact header of a version this build does not know (recovery refuses to open).
    UnknownVersion(u32),
}

/// Checks a file header; `bytes` may be shorter than `HEADER_LEN` (a torn header).
pub fn check_header(bytes: &[u8]) -> HeaderCheck {
    let Some(h) = bytes.get(..HEADER_LEN as usize) else {
        return HeaderCheck::Damaged;
    };
    if h[0..8] != MAGIC || crc32fast::hash(&h[0..20]) != le_u32(&h[20..24]) {
        return HeaderCheck::Damaged;
    }
    match le_u32(&h[8..12]) {
        FORMAT_VERSION => HeaderCheck::Valid {
            first_lsn: le_u64(&h[12..20]),
        },
        other => HeaderCheck::UnknownVersion(other),
    }
}

/// The fixed part of an entry frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// Payload length in bytes.
    pub len: u32,
    /// crc32 of the 8 LSN bytes (LE) followed by the payload.
    pub crc: u32,
    /// The entry's LSN.
    pub lsn: Lsn,
}

impl FrameHead {
    /// Decodes the 16-byte fixed part of a frame.
    pub fn decode(b: &[u8; FRAME_HEAD_LEN as usize]) -> FrameHead {
        FrameHead {
            len: le_u32(&b[0..4]),
            crc: le_u32(&b[4..8]),
            lsn: le_u64(&b[8..16]),
        }
    }

    /// Total frame length on disk (head plus payload).
    pub fn frame_len(&self) -> u64 {
        FRAME_HEAD_LEN + u64::from(self.len)
    }
}

/// Appends a complete frame for `payload` at `lsn` to `out`.
pub fn encode_frame(out: &mut Vec<u8>, lsn: Lsn, payload: &[u8]) {
    let start = out.len();
    out.resize(start + FRAME_HEAD_LEN as usize, 0);
    out.extend_from_slice(payload);
    seal_frame(&mut out[start..], lsn);
}

/// Fills in the head of a frame buffer laid out as `[16 reserved bytes][payload]`: the
/// length, the LSN and the crc32 over the LSN bytes and the payload. Appenders build such a
/// buffer outside the commit lock; the commit leader seals it once the LSN is fixed.
/// `frame` must be at least `FRAME_HEAD_LEN` bytes and its payload at most `u32::MAX` bytes
/// (the WAL checks both before queueing).
pub fn seal_frame(frame: &mut [u8], lsn: Lsn) {
    let head = FRAME_HEAD_LEN as usize;
    if frame.len() < head {
        debug_assert!(false, "frame buffer shorter than its head");
        return;
    }
    let len = u32::try_from(frame.len() - head).unwrap_or(u32::MAX);
    frame[0..4].copy_from_slice(&len.to_le_bytes());
    frame[8..16].copy_from_slice(&lsn.to_le_bytes());
    let crc = crc32fast::hash(&frame[8..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_sort_by_lsn() {
        assert_eq!(file_name(1), "wal-00000000000000000001.log");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert!(file_name(9) < file_name(10));
        for bad in [
            "wal-1.log",
            "wal-0000000000000000000a.log",
            "wal-00000000000000000001.tmp",
            "x-00000000000000000001.log",
            "wal-99999999999999999999.log", // over u64::MAX
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let h = encode_header(42);
        assert_eq!(check_header(&h), HeaderCheck::Valid { first_lsn: 42 });
        assert_eq!(check_header(&h[..23]), HeaderCheck::Damaged);
        for i in 0..h.len() {
            let mut d = h;
            d[i] ^= 0x10;
            assert_eq!(check_header(&d), HeaderCheck::Damaged, "byte {i}");
        }
        let mut v2 = h;
        v2[8..12].copy_from_slice(&2u32.to_le_bytes());
        let crc = crc32fast::hash(&v2[0..20]);
        v2[20..24].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(check_header(&v2), HeaderCheck::UnknownVersion(2));
    }

    #[test]
    fn frame_crc_covers_lsn_then_payload() {
        let mut out = Vec::new();
        encode_frame(&mut out, 7, b"hello");
        assert_eq!(out.len() as u64, FRAME_HEAD_LEN + 5);
        let mut head = [0u8; 16];
        head.copy_from_slice(&out[..16]);
        let h = FrameHead::decode(&head);
        assert_eq!((h.len, h.lsn), (5, 7));
        // The documented definition, computed independently.
        assert_eq!(h.crc, crc32fast::hash(&out[8..]));
    }
}
