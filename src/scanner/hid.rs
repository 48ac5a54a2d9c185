//! Raw HID scanners (being written).
