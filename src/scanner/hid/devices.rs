//! The HID devices there are, which of them look like scanners, and which
//! one `hid.device` names.

use std::fmt;

use hidapi::{DeviceInfo, HidApi};

use super::DeviceSpec;

/// How a HID collection's reports are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Generic Desktop / Keyboard (0x01/0x06): a scanner in keyboard mode.
    BootKeyboard,
    /// Bar Code Scanner page / Bar Code Scanner (0x8C/0x02): HID POS mode.
    HidPos,
}

impl Kind {
    pub fn of(usage_page: u16, usage: u16) -> Option<Kind> {
        match (usage_page, usage) {
            (0x01, 0x06) => Some(Kind::BootKeyboard),
            (0x8C, 0x02) => Some(Kind::HidPos),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::BootKeyboard => "keyboard mode",
            Kind::HidPos => "HID POS",
        })
    }
}

/// One top-level collection of a HID device (a device with a keyboard and a
/// HID POS interface is listed twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HidDeviceInfo {
    pub vid: u16,
    pub pid: u16,
    pub usage_page: u16,
    pub usage: u16,
    pub manufacturer: String,
    pub product: String,
    /// What `hid.device` takes to open exactly this one.
    pub path: String,
    /// The USB interface number; -1 when not USB or unknown.
    pub interface: i32,
    pub kind: Option<Kind>,
    /// A guess from the usage page, the vendor id and the name, for picking
    /// a device when `hid.device` is empty.
    pub likely_scanner: bool,
}

/// Vendors that make mostly scanners: Metrologic and Hand Held Products
/// (both Honeywell), Symbol (Zebra), PSC (Datalogic), Newland. Brands that
/// ship generic USB chips (Netum and most unbranded scanners) have no id of
/// their own; the product name catches many of them.
const SCANNER_VENDORS: [u16; 5] = [0x0c2e, 0x0536, 0x05e0, 0x05f9, 0x1eab];
const SCANNER_WORDS: [&str; 4] = ["scan", "barcode", "bar code", "reader"];

/// A heuristic, not a fact: the bar code scanner usage page, a scanner
/// vendor, or a name that says so.
fn likely_scanner(vid: u16, usage_page: u16, manufacturer: &str, product: &str) -> bool {
    let name = format!("{manufacturer} {product}").to_lowercase();
    usage_page == 0x8C
        || SCANNER_VENDORS.contains(&vid)
        || SCANNER_WORDS.iter().any(|word| name.contains(word))
}

impl HidDeviceInfo {
    fn new(info: &DeviceInfo) -> Self {
        let manufacturer = info.manufacturer_string().unwrap_or("").trim().to_string();
        let product = info.product_string().unwrap_or("").trim().to_string();
        let (vid, usage_page) = (info.vendor_id(), info.usage_page());
        Self {
            vid,
            pid: info.product_id(),
            usage_page,
            usage: info.usage(),
            likely_scanner: likely_scanner(vid, usage_page, &manufacturer, &product),
            manufacturer,
            product,
            path: info.path().to_string_lossy().into_owned(),
            interface: info.interface_number(),
            kind: Kind::of(usage_page, info.usage()),
        }
    }

    /// "Honeywell Xenon 1900 (0c2e:0b61, /dev/hidraw3)".
    pub fn label(&self) -> String {
        let name = format!("{} {}", self.manufacturer, self.product);
        let name = match name.trim() {
            "" => "unnamed device",
            name => name,
        };
        format!("{name} ({:04x}:{:04x}, {})", self.vid, self.pid, self.path)
    }
}

/// One line of `scanpay scan-test --list`.
impl fmt::Display for HidDeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} — ", self.label())?;
        match self.kind {
            Some(kind) => write!(f, "{kind}")?,
            None => write!(
                f,
                "usage {:04x}:{:04x}, not a keyboard or HID POS scanner",
                self.usage_page, self.usage
            )?,
        }
        if self.interface >= 0 {
            write!(f, ", interface {}", self.interface)?;
        }
        if self.likely_scanner {
            f.write_str(", likely a scanner")?;
        }
        Ok(())
    }
}

/// Every HID collection the OS shows. Empty, not an error, where there are
/// none (or hidraw is not there at all, as in a container).
pub fn list_devices() -> Result<Vec<HidDeviceInfo>, String> {
    let api = HidApi::new().map_err(|e| format!("cannot list the HID devices: {e}"))?;
    Ok(devices(&api))
}

pub(super) fn devices(api: &HidApi) -> Vec<HidDeviceInfo> {
    api.device_list().map(HidDeviceInfo::new).collect()
}

/// The OS lets programs read keyboards through HID (not Windows).
const KEYBOARDS_READABLE: bool = !cfg!(windows);

/// Why no device could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NotChosen {
    pub message: String,
    /// Nothing matching is plugged in: expected while a scanner is unplugged.
    pub missing: bool,
}

/// What to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Choice<'a> {
    Listed(&'a HidDeviceInfo),
    /// A path the OS did not list (no udev view of /sys, say): open it blind.
    Unlisted(&'a str),
}

/// The collection `spec` names, HID POS before keyboard when a device has
/// both.
pub(super) fn choose<'a>(
    devices: &'a [HidDeviceInfo],
    spec: &'a DeviceSpec,
) -> Result<Choice<'a>, NotChosen> {
    let readable = |d: &&HidDeviceInfo| match d.kind {
        Some(Kind::HidPos) => true,
        Some(Kind::BootKeyboard) => KEYBOARDS_READABLE,
        None => false,
    };
    let best = |matching: Vec<&'a HidDeviceInfo>, missing: String| {
        if matching.is_empty() {
            return Err(NotChosen {
                message: missing,
                missing: true,
            });
        }
        // min_by_key keeps the first of equals: the OS's order decides ties.
        match matching
            .iter()
            .copied()
            .filter(readable)
            .min_by_key(|d| d.kind != Some(Kind::HidPos))
        {
            Some(chosen) => Ok(Choice::Listed(chosen)),
            None => Err(NotChosen {
                message: unreadable(matching[0]),
                missing: false,
            }),
        }
    };
    match spec {
        DeviceSpec::Auto => {
            let scanners = devices.iter().filter(|d| d.likely_scanner).collect();
            best(scanners, NO_SCANNER.to_string())
        }
        DeviceSpec::VidPid { vid, pid } => {
            let matching = devices
                .iter()
                .filter(|d| d.vid == *vid && d.pid == *pid)
                .collect();
            best(
                matching,
                format!(
                    "no HID device {vid:04x}:{pid:04x} is connected: plug the scanner in, or run `scanpay scan-test --list` to see what is (and check hid.device)"
                ),
            )
        }
        DeviceSpec::Path(path) => {
            let matching: Vec<_> = devices.iter().filter(|d| &d.path == path).collect();
            if matching.is_empty() {
                return Ok(Choice::Unlisted(path));
            }
            best(matching, String::new())
        }
    }
}

const NO_SCANNER: &str = "no HID barcode scanner found: plug it in, run `scanpay scan-test --list` and set hid.device to the scanner's VID:PID, or switch the scanner to HID POS mode (or to serial mode with scanner.driver = \"serial\")";

fn unreadable(device: &HidDeviceInfo) -> String {
    match device.kind {
        Some(Kind::BootKeyboard) => format!(
            "{} is in keyboard mode, and Windows does not let programs read keyboards through HID: switch the scanner to HID POS mode, or to virtual COM mode with scanner.driver = \"serial\"",
            device.label()
        ),
        _ => format!(
            "{} is neither a keyboard nor a HID POS scanner (usage {:04x}:{:04x}): pick its keyboard or HID POS entry from `scanpay scan-test --list`, or switch the scanner to HID POS mode",
            device.label(),
            device.usage_page,
            device.usage
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(
        vid: u16,
        pid: u16,
        page: u16,
        usage: u16,
        product: &str,
        path: &str,
    ) -> HidDeviceInfo {
        HidDeviceInfo {
            vid,
            pid,
            usage_page: page,
            usage,
            manufacturer: String::new(),
            product: product.into(),
            path: path.into(),
            interface: 0,
            kind: Kind::of(page, usage),
            likely_scanner: likely_scanner(vid, page, "", product),
        }
    }

    fn path(choice: Result<Choice<'_>, NotChosen>) -> &str {
        match choice {
            Ok(Choice::Listed(device)) => &device.path,
            other => panic!("{other:?}"),
        }
    }

    fn till() -> Vec<HidDeviceInfo> {
        vec![
            device(0x046d, 0xc31c, 0x01, 0x06, "USB Keyboard", "/dev/hidraw0"),
            device(
                0x1a86,
                0xe026,
                0x01,
                0x06,
                "Barcode Scanner",
                "/dev/hidraw1",
            ),
            device(0x0c2e, 0x0b61, 0xff00, 0x01, "Xenon 1900", "/dev/hidraw2"),
            device(0x0c2e, 0x0b61, 0x8c, 0x02, "Xenon 1900", "/dev/hidraw3"),
        ]
    }

    #[test]
    fn the_kind_follows_the_usage() {
        assert_eq!(Kind::of(0x01, 0x06), Some(Kind::BootKeyboard));
        assert_eq!(Kind::of(0x8C, 0x02), Some(Kind::HidPos));
        assert_eq!(Kind::of(0x01, 0x02), None, "a mouse");
    }

    #[test]
    fn scanners_are_guessed_by_page_vendor_or_name() {
        let devices = till();
        let guessed: Vec<bool> = devices.iter().map(|d| d.likely_scanner).collect();
        assert_eq!(guessed, [false, true, true, true]);
        assert!(likely_scanner(0x05e0, 0x01, "Symbol Technologies", ""));
        assert!(!likely_scanner(0x046d, 0x01, "Logitech", "USB Receiver"));
    }

    #[test]
    fn auto_prefers_hid_pos_and_skips_plain_keyboards_and_vendor_pages() {
        let devices = till();
        assert_eq!(path(choose(&devices, &DeviceSpec::Auto)), "/dev/hidraw3");
        let keyboards_only = &devices[..3];
        let chosen = choose(keyboards_only, &DeviceSpec::Auto);
        if KEYBOARDS_READABLE {
            assert_eq!(path(chosen), "/dev/hidraw1");
        } else {
            assert!(chosen.unwrap_err().message.contains("Windows"));
        }
        let none = choose(&devices[..1], &DeviceSpec::Auto).unwrap_err();
        assert!(none.missing);
        assert!(
            none.message.contains("scanpay scan-test --list"),
            "{}",
            none.message
        );
        assert!(none.message.contains("HID POS"), "{}", none.message);
    }

    #[test]
    fn vid_pid_takes_that_scanners_readable_interface() {
        let devices = till();
        let spec = DeviceSpec::parse("0c2e:0b61").unwrap();
        assert_eq!(path(choose(&devices, &spec)), "/dev/hidraw3");
        let vendor_page_only = choose(&devices[2..3], &spec).unwrap_err();
        assert!(!vendor_page_only.missing);
        assert!(
            vendor_page_only
                .message
                .contains("neither a keyboard nor a HID POS scanner (usage ff00:0001)"),
            "{}",
            vendor_page_only.message
        );
        let absent = choose(&devices, &DeviceSpec::parse("05e0:1200").unwrap()).unwrap_err();
        assert!(absent.missing);
        assert!(
            absent
                .message
                .starts_with("no HID device 05e0:1200 is connected")
        );
    }

    #[test]
    fn a_path_is_taken_as_listed_or_opened_blind() {
        let devices = till();
        let spec = DeviceSpec::Path("/dev/hidraw3".into());
        assert!(
            matches!(choose(&devices, &spec), Ok(Choice::Listed(d)) if d.kind == Some(Kind::HidPos))
        );
        let unlisted = DeviceSpec::Path("/dev/hidraw9".into());
        assert_eq!(
            choose(&devices, &unlisted),
            Ok(Choice::Unlisted("/dev/hidraw9"))
        );
    }

    #[test]
    fn a_list_line_says_what_the_device_is() {
        let line = till()[3].to_string();
        assert_eq!(
            line,
            "Xenon 1900 (0c2e:0b61, /dev/hidraw3) — HID POS, interface 0, likely a scanner"
        );
        assert!(
            till()[2]
                .to_string()
                .contains("usage ff00:0001, not a keyboard or HID POS scanner")
        );
    }

    #[test]
    fn listing_works_without_any_hid_device() {
        // No hidraw here (a container): an empty list or a message, never a panic.
        match list_devices() {
            Ok(devices) => {
                for device in devices {
                    assert!(!device.path.is_empty());
                }
            }
            Err(e) => assert!(e.starts_with("cannot list the HID devices"), "{e}"),
        }
    }
}
