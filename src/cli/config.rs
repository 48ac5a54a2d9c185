//! `scanpay config`: the configuration in effect, secrets masked, or with
//! `--defaults` the built-in defaults (the embedded `config/default.toml`),
//! so an installed machine has them without the source. Reads, never writes:
//! no log, no data folder.

use std::path::Path;

use super::{Exit, err, out};
use crate::config::{DEFAULT_TOML, Settings, effective_toml};

/// Prints the configuration; exit 0 when it is valid, 3 when a setting is
/// wrong (the configuration is still printed when it could be read).
pub fn run(defaults: bool, file: Option<&Path>) -> Exit {
    if defaults {
        // Byte for byte what is built in, so `> till.toml` starts a file to edit.
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        return match stdout
            .write_all(DEFAULT_TOML.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Ok(()) => Exit::OK,
            Err(e) => {
                err(format_args!("scanpay config: cannot write to stdout: {e}"));
                Exit::Internal
            }
        };
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    match effective_toml(file, &env) {
        Ok(text) => out(text.trim_end()),
        Err(e) => {
            err(format_args!("scanpay config: configuration error: {e}"));
            return Exit::Config;
        }
    }
    match Settings::load(file, env) {
        Ok(settings) => {
            if settings.is_simulated() {
                err(
                    "scanpay config: valid; no merchant is set, so the till uses its built-in simulator",
                );
            } else {
                err("scanpay config: valid");
            }
            Exit::OK
        }
        Err(e) => {
            err(format_args!("scanpay config: configuration error: {e}"));
            Exit::Config
        }
    }
}
