//! The `[serial]` section of the configuration.

/// How to open and frame a serial scanner. The defaults are those of the
/// `[serial]` section of `config/default.toml`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialSettings {
    /// The scanner's port; prefer a `/dev/serial/by-id/…` link, which keeps
    /// its name across replugs and reboots where `/dev/ttyACM0` may not.
    pub port: String,
    pub baud: u32,
    /// 5 to 8.
    pub data_bits: u8,
    pub parity: Parity,
    /// 1 or 2.
    pub stop_bits: u8,
    pub flow_control: FlowControl,
    /// What the scanner sends after a code. CR and LF end a read at once
    /// whatever this says, and a CRLF is one read. With "idle" a read ends
    /// after `idle_gap_ms` of silence. With the others a pause does not end
    /// a read: it waits for its line end up to `terminator_timeout_ms`, and
    /// a read without one by then is refused and scanpay logs why.
    pub terminator: Terminator,
    /// With "idle", the silence that ends a read. Keep it above the longest
    /// pause inside one read: USB adapters deliver in 1–16 ms bursts, and a
    /// busy host may hold a packet back for longer.
    pub idle_gap_ms: u64,
    /// With "cr", "lf" or "crlf", how long a read may take from its first
    /// byte to its line end. A scanner sends a whole code within a few tens
    /// of milliseconds; this only bounds how long a partial read is held.
    pub terminator_timeout_ms: u64,
    /// Removed from the start of a read when present, e.g. "\u0002" (STX).
    pub strip_prefix: String,
    /// Removed from the end of a read when present, e.g. "\u0003" (ETX).
    pub strip_suffix: String,
    /// Drop a leading AIM symbology identifier (`]` + letter + letter or
    /// digit, such as `]Q1` for QR), which many scanners are set to send.
    pub strip_aim_id: bool,
    /// How often to try to reopen a port that went away or cannot be opened.
    pub reopen_interval_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    None,
    Odd,
    Even,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowControl {
    None,
    /// XON/XOFF.
    Software,
    /// RTS/CTS.
    Hardware,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Terminator {
    Cr,
    Lf,
    Crlf,
    Idle,
}

impl Default for SerialSettings {
    fn default() -> Self {
        Self {
            port: String::new(),
            baud: 9600,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
            flow_control: FlowControl::None,
            terminator: Terminator::Cr,
            idle_gap_ms: 50,
            terminator_timeout_ms: 1000,
            strip_prefix: String::new(),
            strip_suffix: String::new(),
            strip_aim_id: true,
            reopen_interval_ms: 1000,
        }
    }
}

impl SerialSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.port.trim().is_empty() {
            return Err("serial.port is empty: set it to the scanner's port, e.g. /dev/ttyACM0 or /dev/serial/by-id/…; `scanpay scan-test --list` shows the ports".into());
        }
        if self.baud == 0 {
            return Err(
                "serial.baud must be more than 0: set the scanner's baud rate, e.g. 9600 or 115200"
                    .into(),
            );
        }
        if !(5..=8).contains(&self.data_bits) {
            return Err("serial.data_bits must be 5 to 8 (scanners use 8)".into());
        }
        if !matches!(self.stop_bits, 1 | 2) {
            return Err("serial.stop_bits must be 1 or 2 (scanners use 1)".into());
        }
        if !(10..=2000).contains(&self.idle_gap_ms) {
            return Err("serial.idle_gap_ms must be 10 to 2000: the silence that ends a read; 50 suits most scanners".into());
        }
        if !(100..=10_000).contains(&self.terminator_timeout_ms) {
            return Err(format!(
                "serial.terminator_timeout_ms = {} must be 100 to 10000: how long a read may wait for its CR or LF when serial.terminator is \"cr\", \"lf\" or \"crlf\"; 1000 suits most scanners",
                self.terminator_timeout_ms
            ));
        }
        if !(10..=60_000).contains(&self.reopen_interval_ms) {
            return Err("serial.reopen_interval_ms must be 10 to 60000 (1000 is usual)".into());
        }
        // CR and LF end a read before stripping, so they could never match.
        for (name, value) in [
            ("strip_prefix", &self.strip_prefix),
            ("strip_suffix", &self.strip_suffix),
        ] {
            if value.contains(['\r', '\n']) {
                return Err(format!(
                    "serial.{name} contains CR or LF: those end a read and are never part of one; leave them out"
                ));
            }
        }
        Ok(())
    }

    /// The line format the usual way, e.g. "9600 8N1".
    pub fn line(&self) -> String {
        let parity = match self.parity {
            Parity::None => 'N',
            Parity::Odd => 'O',
            Parity::Even => 'E',
        };
        let flow = match self.flow_control {
            FlowControl::None => "",
            FlowControl::Software => " XON/XOFF",
            FlowControl::Hardware => " RTS/CTS",
        };
        format!(
            "{} {}{parity}{}{flow}",
            self.baud, self.data_bits, self.stop_bits
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECTION: &str = r#"
        port = "/dev/serial/by-id/usb-Honeywell_Imaging___Mobility_1900-if00"
        baud = 115200
        data_bits = 7
        parity = "even"
        stop_bits = 2
        flow_control = "hardware"
        terminator = "crlf"
        idle_gap_ms = 80
        terminator_timeout_ms = 1500
        strip_prefix = "\u0002"
        strip_suffix = "\u0003"
        strip_aim_id = false
        reopen_interval_ms = 500
    "#;

    #[test]
    fn reads_the_config_section() {
        let settings: SerialSettings = toml::from_str(SECTION).unwrap();
        assert_eq!(settings.line(), "115200 7E2 RTS/CTS");
        assert_eq!(settings.terminator, Terminator::Crlf);
        assert_eq!(settings.strip_prefix, "\u{2}");
        assert_eq!(settings.validate(), Ok(()));
        let typo = SECTION.replace("strip_aim_id", "strip_aim");
        let error = toml::from_str::<SerialSettings>(&typo).unwrap_err();
        assert!(error.to_string().contains("strip_aim"), "{error}");
        assert!(
            toml::from_str::<SerialSettings>(&SECTION.replace("\"even\"", "\"mark\"")).is_err()
        );
    }

    #[test]
    fn the_defaults_are_those_shipped_in_default_toml() {
        let config: toml::Table = toml::from_str(crate::config::DEFAULT_TOML).unwrap();
        let shipped: SerialSettings = config["serial"].clone().try_into().unwrap();
        assert_eq!(shipped, SerialSettings::default());
        assert_eq!(shipped.line(), "9600 8N1");
    }

    #[test]
    fn validation_names_the_setting_and_the_fix() {
        let good = SerialSettings {
            port: "/dev/ttyACM0".into(),
            ..SerialSettings::default()
        };
        assert_eq!(good.validate(), Ok(()));
        let cases: [(SerialSettings, &str); 9] = [
            (SerialSettings::default(), "scan-test --list"),
            (
                SerialSettings {
                    baud: 0,
                    ..good.clone()
                },
                "serial.baud",
            ),
            (
                SerialSettings {
                    data_bits: 9,
                    ..good.clone()
                },
                "serial.data_bits must be 5 to 8",
            ),
            (
                SerialSettings {
                    stop_bits: 3,
                    ..good.clone()
                },
                "serial.stop_bits",
            ),
            (
                SerialSettings {
                    idle_gap_ms: 0,
                    ..good.clone()
                },
                "serial.idle_gap_ms",
            ),
            (
                SerialSettings {
                    terminator_timeout_ms: 50,
                    ..good.clone()
                },
                "serial.terminator_timeout_ms = 50 must be 100 to 10000",
            ),
            (
                SerialSettings {
                    terminator_timeout_ms: 60_000,
                    ..good.clone()
                },
                "how long a read may wait for its CR or LF",
            ),
            (
                SerialSettings {
                    reopen_interval_ms: 0,
                    ..good.clone()
                },
                "serial.reopen_interval_ms",
            ),
            (
                SerialSettings {
                    strip_suffix: "\u{3}\r".into(),
                    ..good.clone()
                },
                "serial.strip_suffix contains CR",
            ),
        ];
        for (settings, expected) in cases {
            let error = settings.validate().unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }
}
