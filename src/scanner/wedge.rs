//! Keyboard-wedge scanners (being written).
