//! The serial ports of this machine, for `scanpay scan-test --list`.

use std::fmt;
use std::path::{Path, PathBuf};

/// A port that could be a scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// The device, e.g. `/dev/ttyACM0`.
    pub name: String,
    /// Its `/dev/serial/by-id/…` link, the name to put in `serial.port`:
    /// it survives replugs and reboots, where `ttyACM0` may become `ttyACM1`.
    pub by_id: Option<String>,
    /// USB vendor and product id, when it is a USB device.
    pub usb_id: Option<(u16, u16)>,
    /// The maker and product as the device names itself.
    pub product: Option<String>,
}

impl fmt::Display for PortInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.by_id.as_deref().unwrap_or(&self.name))?;
        if self.by_id.is_some() {
            write!(f, " → {}", self.name)?;
        }
        if let Some((vid, pid)) = self.usb_id {
            write!(f, "  USB {vid:04x}:{pid:04x}")?;
        }
        if let Some(product) = &self.product {
            write!(f, "  {product}")?;
        }
        Ok(())
    }
}

/// The serial ports the system knows, USB ones with their ids; empty if
/// they cannot be listed (the reason is logged).
pub fn list_ports() -> Vec<PortInfo> {
    let ports = match serialport::available_ports() {
        Ok(ports) => ports,
        Err(e) => {
            tracing::warn!("cannot list the serial ports: {e}");
            return Vec::new();
        }
    };
    let links = by_id_links(Path::new("/dev/serial/by-id"));
    ports
        .into_iter()
        .map(|port| {
            let device = std::fs::canonicalize(&port.port_name).ok();
            let by_id = links
                .iter()
                .find(|(_, target)| Some(target) == device.as_ref())
                .map(|(link, _)| link.display().to_string());
            let (usb_id, product) = match port.port_type {
                serialport::SerialPortType::UsbPort(usb) => {
                    let product = [usb.manufacturer, usb.product]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ");
                    (
                        Some((usb.vid, usb.pid)),
                        (!product.is_empty()).then_some(product),
                    )
                }
                _ => (None, None),
            };
            PortInfo {
                name: port.port_name,
                by_id,
                usb_id,
                product,
            }
        })
        .collect()
}

/// udev's stable links and the devices they point to.
fn by_id_links(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let link = entry.path();
            let target = std::fs::canonicalize(&link).ok()?;
            Some((link, target))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_stable_name_first() {
        let port = PortInfo {
            name: "/dev/ttyACM0".into(),
            by_id: Some("/dev/serial/by-id/usb-Honeywell_1900-if00".into()),
            usb_id: Some((0x0c2e, 0x0b61)),
            product: Some("Honeywell 1900".into()),
        };
        assert_eq!(
            port.to_string(),
            "/dev/serial/by-id/usb-Honeywell_1900-if00 → /dev/ttyACM0  USB 0c2e:0b61  Honeywell 1900"
        );
        let bare = PortInfo {
            name: "/dev/ttyS0".into(),
            by_id: None,
            usb_id: None,
            product: None,
        };
        assert_eq!(bare.to_string(), "/dev/ttyS0");
    }

    #[test]
    fn finds_the_by_id_links() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("ttyACM0");
        std::fs::write(&target, "").unwrap();
        let links = dir.path().join("by-id");
        std::fs::create_dir(&links).unwrap();
        std::os::unix::fs::symlink(&target, links.join("usb-Scanner-if00")).unwrap();
        assert_eq!(
            by_id_links(&links),
            [(
                links.join("usb-Scanner-if00"),
                target.canonicalize().unwrap()
            )]
        );
        assert_eq!(by_id_links(&dir.path().join("none")), []);
    }
}
