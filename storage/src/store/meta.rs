//! The store's own records in the `meta` column family.
//!
//! Keys starting with byte `0x00` are reserved for the store; the engine may keep its own small
//! records in `meta` under any other key. A [`super::StoreBatch`] that touches the reserved
//! range is refused by `write`, so the engine cannot clobber the LSNs by accident.

/// First byte of every reserved `meta` key.
pub(crate) const RESERVED_BYTE: u8 = 0x00;

/// The store's on-disk format version (u32 BE). Bumped when key layouts or blob framing change.
pub(crate) const FORMAT_VERSION_KEY: &[u8] = b"\x00vela.format_version";
/// The LSN passed to the most recent `write` (u64 BE); exact only after a clean close.
pub(crate) const APPLIED_LSN_KEY: &[u8] = b"\x00vela.applied_lsn";
/// The LSN of the last completed `flush` (u64 BE); durable.
pub(crate) const FLUSHED_LSN_KEY: &[u8] = b"\x00vela.flushed_lsn";

/// The format this build writes and reads.
pub const STORE_FORMAT_VERSION: u32 = 1;

/// True if `key` is in the reserved range.
pub(crate) fn is_reserved(key: &[u8]) -> bool {
    key.first() == Some(&RESERVED_BYTE)
}

/// True if the range `[from, to)` contains any reserved key (`to == None`: unbounded).
pub(crate) fn range_touches_reserved(from: &[u8], to: Option<&[u8]>) -> bool {
    // Reserved keys are exactly [0x00] <= k < [0x01].
    let lo: &[u8] = if from < &[RESERVED_BYTE][..] {
        &[RESERVED_BYTE]
    } else {
        from
    };
    lo < &[RESERVED_BYTE + 1][..] && to.is_none_or(|to| lo < to)
}

/// Decodes a u64 BE record; `None` if it has the wrong length.
pub(crate) fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// Decodes a u32 BE record; `None` if it has the wrong length.
pub(crate) fn decode_u32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ranges() {
        assert!(is_reserved(FLUSHED_LSN_KEY));
        assert!(!is_reserved(b"engine.key"));
        assert!(!is_reserved(b""));
        assert!(range_touches_reserved(b"", None));
        assert!(range_touches_reserved(b"", Some(b"\x00\x01")));
        assert!(!range_touches_reserved(b"", Some(b"\x00")));
        assert!(range_touches_reserved(b"\x00zz", Some(b"\x05")));
        assert!(!range_touches_reserved(b"\x01", None));
        assert!(!range_touches_reserved(b"a", Some(b"b")));
    }
}
