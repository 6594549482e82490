//! Small helpers for the byte-string keys the engine builds (see the key conventions in the
//! `store` module docs): big-endian integers so that byte order is numeric order, and the
//! exclusive upper bound of a prefix scan.

/// Appends `v` big-endian, so keys sort by `v` numerically.
pub fn push_u64(key: &mut Vec<u8>, v: u64) {
    key.extend_from_slice(&v.to_be_bytes());
}

/// Appends `v` big-endian, so keys sort by `v` numerically.
pub fn push_u32(key: &mut Vec<u8>, v: u32) {
    key.extend_from_slice(&v.to_be_bytes());
}

/// Reads a big-endian `u64` at `offset`, or `None` if the key is too short.
pub fn read_u64(key: &[u8], offset: usize) -> Option<u64> {
    let end = offset.checked_add(8)?;
    let bytes: [u8; 8] = key.get(offset..end)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Reads a big-endian `u32` at `offset`, or `None` if the key is too short.
pub fn read_u32(key: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    let bytes: [u8; 4] = key.get(offset..end)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// The smallest key greater than every key that starts with `prefix`: the exclusive upper bound
/// of a prefix scan. `None` when there is none (empty prefix, or all `0xFF`): scan to the end.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_cases() {
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0, 0xFF, 0xFF]), Some(vec![1]));
    }

    #[test]
    fn ints_round_trip_and_sort() {
        let mut a = Vec::new();
        push_u64(&mut a, 255);
        push_u32(&mut a, 7);
        let mut b = Vec::new();
        push_u64(&mut b, 256);
        assert!(a < b);
        assert_eq!(read_u64(&a, 0), Some(255));
        assert_eq!(read_u32(&a, 8), Some(7));
        assert_eq!(read_u32(&a, 9), None);
        assert_eq!(read_u64(&a, usize::MAX), None);
    }
}
