//! The `[hid]` settings and what `hid.device` names.

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HidSettings {
    /// "" = the first device that looks like a scanner; "VID:PID" in hex,
    /// e.g. "0c2e:0b61"; or a device path such as "/dev/hidraw3".
    pub device: String,
    /// Silence (ms) that completes a keyboard-mode read with no Enter, and
    /// abandons a HID POS read whose continuation never came.
    pub idle_gap_ms: u64,
    /// How often (ms) to try again while the scanner is missing or unplugged.
    pub reopen_interval_ms: u64,
}

/// Below this a keyboard-mode scanner with an inter-key delay would have its
/// reads cut in two; the reader also only looks at the clock every 20 ms.
const IDLE_GAP_MS: std::ops::RangeInclusive<u64> = 20..=2000;
const REOPEN_INTERVAL_MS: std::ops::RangeInclusive<u64> = 100..=60_000;

impl HidSettings {
    pub fn validate(&self) -> Result<(), String> {
        DeviceSpec::parse(&self.device)?;
        if !IDLE_GAP_MS.contains(&self.idle_gap_ms) {
            return Err(format!(
                "hid.idle_gap_ms = {} must be {} to {}: the silence that ends a keyboard-mode read without Enter (100 suits most scanners)",
                self.idle_gap_ms,
                IDLE_GAP_MS.start(),
                IDLE_GAP_MS.end()
            ));
        }
        if !REOPEN_INTERVAL_MS.contains(&self.reopen_interval_ms) {
            return Err(format!(
                "hid.reopen_interval_ms = {} must be {} to {}: how often to look for the scanner again while it is unplugged (1000 suits most tills)",
                self.reopen_interval_ms,
                REOPEN_INTERVAL_MS.start(),
                REOPEN_INTERVAL_MS.end()
            ));
        }
        Ok(())
    }

    pub fn spec(&self) -> Result<DeviceSpec, String> {
        DeviceSpec::parse(&self.device)
    }
}

/// Which device `hid.device` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The first device that looks like a scanner.
    Auto,
    VidPid {
        vid: u16,
        pid: u16,
    },
    /// As `scanpay scan-test --list` shows it: `/dev/hidraw3` on Linux, and
    /// the paths hidapi gives on Windows (`\\?\HID#…`) and macOS
    /// (`DevSrvsID:…`), so a listed path can always be pasted back.
    Path(String),
}

impl DeviceSpec {
    pub fn parse(device: &str) -> Result<Self, String> {
        let device = device.trim();
        if device.is_empty() {
            return Ok(DeviceSpec::Auto);
        }
        if device.starts_with('/') || device.starts_with(r"\\") || device.starts_with("DevSrvsID:")
        {
            return Ok(DeviceSpec::Path(device.to_string()));
        }
        // Digits only: from_str_radix alone would also take "+c2e".
        let hex = |s: &str| {
            ((1..=4).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u16::from_str_radix(s, 16).ok())
                .flatten()
        };
        match device
            .split_once(':')
            .and_then(|(vid, pid)| Some((hex(vid)?, hex(pid)?)))
        {
            Some((vid, pid)) => Ok(DeviceSpec::VidPid { vid, pid }),
            None => Err(format!(
                "hid.device {device:?} must be VID:PID in hex, e.g. 0c2e:0b61, or a /dev/hidraw path; leave it empty to pick the first scanner (`scanpay scan-test --list` shows them)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(device: &str) -> HidSettings {
        HidSettings {
            device: device.into(),
            idle_gap_ms: 100,
            reopen_interval_ms: 1000,
        }
    }

    #[test]
    fn device_is_auto_vid_pid_or_a_path() {
        assert_eq!(DeviceSpec::parse(""), Ok(DeviceSpec::Auto));
        assert_eq!(
            DeviceSpec::parse("0c2e:0B61"),
            Ok(DeviceSpec::VidPid {
                vid: 0x0c2e,
                pid: 0x0b61
            })
        );
        assert_eq!(
            DeviceSpec::parse(" /dev/hidraw3 "),
            Ok(DeviceSpec::Path("/dev/hidraw3".into()))
        );
        assert_eq!(
            DeviceSpec::parse(r"\\?\HID#VID_0C2E&PID_0B61#7&1"),
            Ok(DeviceSpec::Path(r"\\?\HID#VID_0C2E&PID_0B61#7&1".into()))
        );
    }

    #[test]
    fn a_bad_device_names_the_setting_and_the_forms() {
        for bad in [
            "0c2e",
            "0c2e:",
            "0c2e:0b61x",
            "12345:1",
            "zebra",
            "0x0c2e:0x0b61",
            "+c2e:0b61",
        ] {
            let e = settings(bad).validate().unwrap_err();
            assert!(e.starts_with(&format!("hid.device {bad:?} must be VID:PID in hex, e.g. 0c2e:0b61, or a /dev/hidraw path")), "{e}");
        }
    }

    #[test]
    fn timings_are_bounded_and_named() {
        assert_eq!(settings("").validate(), Ok(()));
        let mut s = settings("");
        s.idle_gap_ms = 5;
        assert!(
            s.validate()
                .unwrap_err()
                .starts_with("hid.idle_gap_ms = 5 must be 20 to 2000")
        );
        let mut s = settings("");
        s.reopen_interval_ms = 0;
        assert!(
            s.validate()
                .unwrap_err()
                .starts_with("hid.reopen_interval_ms = 0 must be 100 to 60000")
        );
    }

    #[test]
    fn the_config_section_has_exactly_these_keys() {
        let s: HidSettings =
            toml::from_str("device = \"\"\nidle_gap_ms = 100\nreopen_interval_ms = 1000").unwrap();
        assert_eq!(s.idle_gap_ms, 100);
        let e = toml::from_str::<HidSettings>(
            "device = \"\"\nidle_gap_ms = 100\nreopen_interval_ms = 1000\nexclusive = true",
        )
        .unwrap_err();
        assert!(e.to_string().contains("exclusive"), "{e}");
    }
}
