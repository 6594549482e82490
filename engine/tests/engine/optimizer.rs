//! The optimizer keeps recall after deletes.
