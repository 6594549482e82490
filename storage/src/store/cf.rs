//! The segment store's column families: one per kind of data, each with its own RocksDB name.

/// A column family of the segment store. See the module docs of `store` for what each holds
/// and its key conventions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cf {
    /// Table definitions and other schema objects.
    Catalog,
    /// Rows: primary key -> encoded row (the engine keeps its catalog and markers here too).
    Rows,
    /// Vectors: row -> raw vector bytes.
    Vectors,
    /// Sealed segments' HNSW graphs and other large objects, as chunked blobs.
    Index,
    /// Deleted rows of sealed segments.
    Tombstones,
    /// Store bookkeeping (applied and flushed LSN, format version) and small engine metadata.
    Meta,
}

impl Cf {
    /// Every column family, in a fixed order (`Meta` last: `flush` flushes in this order).
    pub const ALL: [Cf; 6] = [
        Cf::Catalog,
        Cf::Rows,
        Cf::Vectors,
        Cf::Index,
        Cf::Tombstones,
        Cf::Meta,
    ];

    /// The RocksDB column family name (stable: it is stored on disk).
    pub const fn name(self) -> &'static str {
        match self {
            Cf::Catalog => "catalog",
            Cf::Rows => "rows",
            Cf::Vectors => "vectors",
            Cf::Index => "index",
            Cf::Tombstones => "tombstones",
            Cf::Meta => "meta",
        }
    }
}

impl std::fmt::Display for Cf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_meta_is_last() {
        let names: std::collections::BTreeSet<_> = Cf::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Cf::ALL.len());
        assert_eq!(Cf::ALL.last(), Some(&Cf::Meta));
    }
}
