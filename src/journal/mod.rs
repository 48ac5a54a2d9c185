//! The local SQLite journal (being written).
