//! Binary encodings of the engine's data: values, rows, primary keys (order-preserving, for store
//! keys) and WAL records.
//!
//! Hand-written little-endian framing rather than serde: replay decodes every WAL entry, so the
//! decoder must be fast and must never panic or allocate unboundedly on corrupt bytes (every
//! length is checked against the remaining input before allocating).

use crate::catalog::{Key, TableSchema, Value, VectorIndexDef};
use crate::error::{EngineError, Result};

/// Upper bound on one decoded collection's length, independent of the input length check.
const MAX_LEN: usize = 1 << 28;

/// A reader over a byte slice that returns `Corrupt` instead of panicking.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn corrupt(what: &str) -> EngineError {
    EngineError::Corrupt(format!("truncated or invalid {what}"))
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    /// The next byte, not consumed.
    pub(crate) fn peek_u8(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| corrupt("length"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| corrupt("bytes"))?;
        self.pos = end;
        Ok(s)
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// A length prefix, checked against what remains (each element takes at least `unit` bytes).
    pub(crate) fn len(&mut self, unit: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        let remaining = self.buf.len().saturating_sub(self.pos);
        if n > MAX_LEN || n.saturating_mul(unit.max(1)) > remaining {
            return Err(corrupt("length prefix"));
        }
        Ok(n)
    }
    pub(crate) fn str(&mut self) -> Result<String> {
        let n = self.len(1)?;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| corrupt("utf-8 text"))
    }
    pub(crate) fn f32s(&mut self) -> Result<Vec<f32>> {
        let n = self.len(4)?;
        let b = self.bytes(n * 4)?;
        let mut v = Vec::with_capacity(n);
        extend_f32s(&mut v, b);
        Ok(v)
    }
}

/// Appends the little-endian floats in `bytes` (a multiple of 4 bytes; a remainder is
/// ignored) to `out`: sized once, then filled in place, a loop the compiler vectorises
/// (collecting `chunks_exact(4)` one float at a time cost ~9 instructions per float).
pub(crate) fn extend_f32s(out: &mut Vec<f32>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + bytes.len() / 4, 0.0);
    for (x, c) in out[start..].iter_mut().zip(bytes.chunks_exact(4)) {
        *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}
pub(crate) fn put_f32s(out: &mut Vec<u8>, v: &[f32]) {
    put_u32(out, v.len() as u32);
    // Sized once, then filled in place: a loop the compiler vectorises (appending 4 bytes at
    // a time cost ~14 instructions per float, a third of replaying a 128-d row).
    let start = out.len();
    out.resize(start + v.len() * 4, 0);
    for (dst, x) in out[start..].chunks_exact_mut(4).zip(v) {
        dst.copy_from_slice(&x.to_le_bytes());
    }
}

const T_NULL: u8 = 0;
const T_BIGINT: u8 = 1;
const T_DOUBLE: u8 = 2;
const T_TEXT: u8 = 3;
const T_BOOL: u8 = 4;
const T_TS: u8 = 5;
const T_VECTOR: u8 = 6;

pub(crate) fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(T_NULL),
        Value::BigInt(x) => {
            out.push(T_BIGINT);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::Double(x) => {
            out.push(T_DOUBLE);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::Text(s) => {
            out.push(T_TEXT);
            put_str(out, s);
        }
        Value::Boolean(b) => {
            out.push(T_BOOL);
            out.push(u8::from(*b));
        }
        Value::Timestamp(x) => {
            out.push(T_TS);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::Vector(v) => {
            out.push(T_VECTOR);
            put_f32s(out, v);
        }
    }
}

pub(crate) fn get_value(r: &mut Reader<'_>) -> Result<Value> {
    Ok(match r.u8()? {
        T_NULL => Value::Null,
        T_BIGINT => Value::BigInt(r.u64()? as i64),
        T_DOUBLE => Value::Double(f64::from_bits(r.u64()?)),
        T_TEXT => Value::Text(r.str()?),
        T_BOOL => Value::Boolean(r.u8()? != 0),
        T_TS => Value::Timestamp(r.u64()? as i64),
        T_VECTOR => Value::Vector(r.f32s()?),
        _ => return Err(corrupt("value tag")),
    })
}

pub(crate) fn put_row(out: &mut Vec<u8>, row: &[Value]) {
    put_u32(out, row.len() as u32);
    for v in row {
        put_value(out, v);
    }
}

pub(crate) fn get_row(r: &mut Reader<'_>) -> Result<Vec<Value>> {
    let n = r.len(1)?;
    let mut row = Vec::with_capacity(n);
    for _ in 0..n {
        row.push(get_value(r)?);
    }
    Ok(row)
}

/// [`get_row`], except that the vectors of the columns at positions `aside` (sorted; at most
/// 64 of them count) are appended to `arena` instead, left as NULL in the row. Returns the row
/// and the bitmask of the `aside` entries whose vectors went to the arena (in `aside` order,
/// contiguous): a load reads a row's vector once here, then keeps it only if no graph has it.
pub(crate) fn get_row_aside(
    r: &mut Reader<'_>,
    aside: &[usize],
    arena: &mut Vec<f32>,
) -> Result<(Vec<Value>, u64)> {
    let n = r.len(1)?;
    let mut row = Vec::with_capacity(n);
    let mut mask = 0u64;
    for col in 0..n {
        let slot = aside.iter().position(|&c| c == col).filter(|&i| i < 64);
        match slot {
            Some(i) if r.peek_u8() == Some(T_VECTOR) => {
                r.u8()?;
                let len = r.len(4)?;
                extend_f32s(arena, r.bytes(len * 4)?);
                mask |= 1 << i;
                row.push(Value::Null);
            }
            _ => row.push(get_value(r)?),
        }
    }
    Ok((row, mask))
}

const KEY_BIGINT: u8 = 1;
const KEY_TEXT: u8 = 2;

/// A BIGINT key's encoding: its tag, then the value with the sign bit flipped, big-endian
/// (so byte order is numeric order).
fn bigint_key(v: i64) -> [u8; 9] {
    let mut b = [KEY_BIGINT; 9];
    b[1..].copy_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
    b
}

/// Order-preserving encoding of a primary key (used inside store keys).
pub(crate) fn put_key(out: &mut Vec<u8>, key: &Key) {
    match key {
        Key::BigInt(v) => out.extend_from_slice(&bigint_key(*v)),
        Key::Text(s) => {
            out.push(KEY_TEXT);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// Calls `f` with [`put_key`]'s encoding of `key`, built on the stack for a BIGINT key (no
/// allocation: routing a key to its shard does this for every row written or replayed).
pub(crate) fn with_encoded_key<R>(key: &Key, f: impl FnOnce(&[u8]) -> R) -> R {
    match key {
        Key::BigInt(v) => f(&bigint_key(*v)),
        Key::Text(_) => {
            let mut out = Vec::new();
            put_key(&mut out, key);
            f(&out)
        }
    }
}

/// Appends the store key of a row (`rows` column family): `table_id BE | encoded pk`.
pub(crate) fn put_row_key(out: &mut Vec<u8>, table_id: u64, key: &Key) {
    out.extend_from_slice(&table_id.to_be_bytes());
    put_key(out, key);
}

/// Appends the store value of a row version: `row_id LE | row`.
pub(crate) fn put_row_value(out: &mut Vec<u8>, row_id: u64, values: &[Value]) {
    // Room for the whole value first (a 128-d row would otherwise regrow the buffer several
    // times: a tenth of replay's instructions).
    let size: usize = values
        .iter()
        .map(|x| match x {
            Value::Vector(f) => 5 + 4 * f.len(),
            Value::Text(t) => 5 + t.len(),
            _ => 9,
        })
        .sum();
    out.reserve(12 + size);
    put_u64(out, row_id);
    put_row(out, values);
}

pub(crate) fn get_key(b: &[u8]) -> Result<Key> {
    match b.split_first() {
        Some((&KEY_BIGINT, rest)) if rest.len() == 8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(rest);
            Ok(Key::BigInt((u64::from_be_bytes(a) ^ (1 << 63)) as i64))
        }
        Some((&KEY_TEXT, rest)) => Ok(Key::Text(
            String::from_utf8(rest.to_vec()).map_err(|_| corrupt("text key"))?,
        )),
        _ => Err(corrupt("primary key")),
    }
}

/// One row operation of a write batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Insert a full row; a key already present rejects the whole batch (SQLSTATE 23505).
    Insert(Vec<Value>),
    /// Insert or replace a full row.
    Upsert(Vec<Value>),
    /// Replace a full row if its key is present; no-op otherwise.
    Update(Vec<Value>),
    /// Delete by primary key; no-op if absent.
    Delete(Key),
}

/// One WAL entry's payload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LogRecord {
    CreateTable(TableSchema),
    DropTable {
        table_id: u64,
    },
    CreateIndex {
        table_id: u64,
        def: VectorIndexDef,
    },
    DropIndex {
        table_id: u64,
        name: String,
    },
    Write {
        table_id: u64,
        ops: Vec<Op>,
    },
    /// One transaction over several tables (distinct ids), applied all or nothing.
    WriteMany {
        tables: Vec<(u64, Vec<Op>)>,
    },
}

const R_CREATE: u8 = 1;
const R_DROP: u8 = 2;
const R_CREATE_INDEX: u8 = 3;
const R_DROP_INDEX: u8 = 4;
const R_WRITE: u8 = 5;
const R_WRITE_MANY: u8 = 6;
/// Version byte leading every record, so the format can evolve.
const RECORD_VERSION: u8 = 1;

pub(crate) fn encode_record(rec: &LogRecord) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    out.push(RECORD_VERSION);
    let json = |v: &dyn erased::Json| v.to_json();
    match rec {
        LogRecord::CreateTable(schema) => {
            out.push(R_CREATE);
            put_str(&mut out, &json(schema)?);
        }
        LogRecord::DropTable { table_id } => {
            out.push(R_DROP);
            put_u64(&mut out, *table_id);
        }
        LogRecord::CreateIndex { table_id, def } => {
            out.push(R_CREATE_INDEX);
            put_u64(&mut out, *table_id);
            put_str(&mut out, &json(def)?);
        }
        LogRecord::DropIndex { table_id, name } => {
            out.push(R_DROP_INDEX);
            put_u64(&mut out, *table_id);
            put_str(&mut out, name);
        }
        LogRecord::Write { table_id, ops } => {
            out.push(R_WRITE);
            put_u64(&mut out, *table_id);
            put_ops(&mut out, ops);
        }
        LogRecord::WriteMany { tables } => {
            out.push(R_WRITE_MANY);
            put_u32(&mut out, tables.len() as u32);
            for (table_id, ops) in tables {
                put_u64(&mut out, *table_id);
                put_ops(&mut out, ops);
            }
        }
    }
    Ok(out)
}

fn put_ops(out: &mut Vec<u8>, ops: &[Op]) {
    put_u32(out, ops.len() as u32);
    for op in ops {
        match op {
            Op::Insert(row) => {
                out.push(1);
                put_row(out, row);
            }
            Op::Upsert(row) => {
                out.push(2);
                put_row(out, row);
            }
            Op::Update(row) => {
                out.push(3);
                put_row(out, row);
            }
            Op::Delete(key) => {
                out.push(4);
                let mut k = Vec::new();
                put_key(&mut k, key);
                put_u32(out, k.len() as u32);
                out.extend_from_slice(&k);
            }
        }
    }
}

fn get_ops(r: &mut Reader<'_>) -> Result<Vec<Op>> {
    let n = r.len(2)?;
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        ops.push(match r.u8()? {
            1 => Op::Insert(get_row(r)?),
            2 => Op::Upsert(get_row(r)?),
            3 => Op::Update(get_row(r)?),
            4 => {
                let len = r.len(1)?;
                Op::Delete(get_key(r.bytes(len)?)?)
            }
            _ => return Err(corrupt("op tag")),
        });
    }
    Ok(ops)
}

pub(crate) fn decode_record(buf: &[u8]) -> Result<LogRecord> {
    let mut r = Reader::new(buf);
    if r.u8()? != RECORD_VERSION {
        return Err(EngineError::Corrupt("unknown WAL record version".into()));
    }
    let rec = match r.u8()? {
        R_CREATE => LogRecord::CreateTable(from_json(&r.str()?)?),
        R_DROP => LogRecord::DropTable { table_id: r.u64()? },
        R_CREATE_INDEX => LogRecord::CreateIndex {
            table_id: r.u64()?,
            def: from_json(&r.str()?)?,
        },
        R_DROP_INDEX => LogRecord::DropIndex {
            table_id: r.u64()?,
            name: r.str()?,
        },
        R_WRITE => LogRecord::Write {
            table_id: r.u64()?,
            ops: get_ops(&mut r)?,
        },
        R_WRITE_MANY => {
            // Each table takes at least 12 bytes (id + op count).
            let n = r.len(12)?;
            let mut tables = Vec::with_capacity(n);
            for _ in 0..n {
                let table_id = r.u64()?;
                tables.push((table_id, get_ops(&mut r)?));
            }
            LogRecord::WriteMany { tables }
        }
        _ => return Err(corrupt("record tag")),
    };
    if !r.is_empty() {
        return Err(corrupt("record (trailing bytes)"));
    }
    Ok(rec)
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| EngineError::Corrupt(format!("catalog JSON: {e}")))
}

mod erased {
    use crate::error::{EngineError, Result};
    pub(crate) trait Json {
        fn to_json(&self) -> Result<String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Result<String> {
            serde_json::to_string(self).map_err(|e| EngineError::Corrupt(format!("JSON: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys encode in numeric / byte order, decode back, and `with_encoded_key` (the stack
    /// path for BIGINT) sees exactly `put_key`'s bytes.
    #[test]
    fn key_encodings_agree_and_keep_order() {
        let keys = [
            Key::BigInt(i64::MIN),
            Key::BigInt(-1),
            Key::BigInt(0),
            Key::BigInt(1),
            Key::BigInt(i64::MAX),
            Key::Text(String::new()),
            Key::Text("a".into()),
            Key::Text("ключ".into()),
        ];
        let mut last: Option<Vec<u8>> = None;
        for key in &keys {
            let mut put = Vec::new();
            put_key(&mut put, key);
            assert_eq!(with_encoded_key(key, <[u8]>::to_vec), put);
            assert_eq!(&get_key(&put).unwrap(), key);
            if let Some(last) = last {
                assert!(last < put, "{key:?}");
            }
            last = Some(put);
        }
    }

    #[test]
    fn write_record_round_trips_and_truncations_fail_cleanly() {
        let rec = LogRecord::Write {
            table_id: 7,
            ops: vec![
                Op::Insert(vec![
                    Value::BigInt(-3),
                    Value::Text("héllo".into()),
                    Value::Vector(vec![1.0, -2.5]),
                    Value::Null,
                ]),
                Op::Upsert(vec![
                    Value::Double(1.5),
                    Value::Boolean(true),
                    Value::Timestamp(9),
                ]),
                Op::Delete(Key::Text("k".into())),
                Op::Delete(Key::BigInt(i64::MIN)),
            ],
        };
        let bytes = encode_record(&rec).unwrap();
        assert_eq!(decode_record(&bytes).unwrap(), rec);
        for cut in 0..bytes.len() {
            assert!(decode_record(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn write_many_round_trips_and_corruption_fails_cleanly() {
        let rec = LogRecord::WriteMany {
            tables: vec![
                (
                    3,
                    vec![
                        Op::Insert(vec![Value::BigInt(1), Value::Vector(vec![0.5])]),
                        Op::Delete(Key::BigInt(2)),
                    ],
                ),
                (9, vec![Op::Update(vec![Value::Text("x".into())])]),
                (11, vec![]),
            ],
        };
        let bytes = encode_record(&rec).unwrap();
        assert_eq!(decode_record(&bytes).unwrap(), rec);
        for cut in 0..bytes.len() {
            assert!(decode_record(&bytes[..cut]).is_err());
        }
        // Flipped bytes: an error or some record, never a panic.
        for i in 0..bytes.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= x;
                let _ = decode_record(&b);
            }
        }
        // A huge table count is rejected before allocating.
        let mut b = bytes[..2].to_vec();
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_record(&b).is_err());
    }

    #[test]
    fn key_encoding_preserves_order() {
        let keys = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        let enc: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| {
                let mut v = Vec::new();
                put_key(&mut v, &Key::BigInt(*k));
                v
            })
            .collect();
        assert!(enc.windows(2).all(|w| w[0] < w[1]));
        for (k, e) in keys.iter().zip(&enc) {
            assert_eq!(get_key(e).unwrap(), Key::BigInt(*k));
        }
    }
}
