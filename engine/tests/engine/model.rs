//! Model-based test against a BTreeMap.
