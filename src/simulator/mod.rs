//! The built-in gateway simulator (being written).
