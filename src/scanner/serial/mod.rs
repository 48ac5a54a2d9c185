//! Serial scanners (being written).
