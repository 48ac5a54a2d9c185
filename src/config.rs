//! Settings: the built-in defaults (`config/default.toml`), overlaid by an
//! optional `--config` file, overlaid by `SCANPAY_<SECTION>_<KEY>` variables,
//! then checked. Every error names the setting and says how to fix it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use time::UtcOffset;

use crate::domain::{Fen, TillId, check_body};
use crate::payment::Timings;
use crate::scanner::hid::HidSettings;
use crate::scanner::serial::SerialSettings;
use crate::scanner::wedge::WedgeSettings;
use crate::scanner::{Driver, ScannerSettings};
use crate::simulator;
use crate::wechat::api::Merchant;
use crate::wechat::client::{ClientSettings, extra_roots};
use crate::wechat::messages::Language;
use crate::wechat::{ApiKey, SignType};

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
const SECTIONS: &[&str] = &[
    "till", "gateway", "merchant", "payment", "scanner", "wedge", "hid", "serial", "journal",
    "log", "store",
];

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

fn err<T>(message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(message.into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    till: RawTill,
    gateway: RawGateway,
    merchant: RawMerchant,
    payment: RawPayment,
    journal: RawJournal,
    scanner: RawScanner,
    wedge: WedgeSettings,
    hid: HidSettings,
    serial: SerialSettings,
    log: RawLog,
    store: RawStore,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    database_url: String,
    password_file: String,
    password_env: String,
    batch_events: u32,
    interval_ms: u64,
}

/// `[store]`: where this till's journal is shipped (`crate::store`).
#[derive(Clone)]
pub struct StoreSettings {
    /// A `postgres://` URL without a password, checked by [`crate::store::check_url`].
    pub database_url: String,
    /// From `store.password_file` or the `store.password_env` variable.
    pub password: Option<String>,
    pub batch_events: u32,
    pub interval: Duration,
}

// The password never reaches a log or an error message.
impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("database_url", &self.database_url)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("batch_events", &self.batch_events)
            .field("interval", &self.interval)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScanner {
    driver: Driver,
    duplicate_window_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTill {
    id: String,
    max_amount: String,
    default_body: String,
    language: Language,
    time_zone: String,
    bell: bool,
    presets: Vec<Preset>,
}

/// A preset sale as `[[till.presets]]` writes it: checked into a name and
/// an amount by [`Settings::load`], which the till gets as `Settings::presets`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub name: String,
    pub amount: String,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Auto,
    Simulator,
    Wechat,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    mode: Mode,
    base_url: String,
    sandbox: bool,
    negative_test: String,
    connect_timeout_ms: u64,
    read_timeout_ms: u64,
    spbill_create_ip: String,
    simulator_slow_answer_ms: u64,
    extra_ca_file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMerchant {
    appid: String,
    mch_id: String,
    sub_appid: String,
    sub_mch_id: String,
    sign_type: SignType,
    api_key_file: String,
    api_key_env: String,
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    allow_plaintext_api_key: bool,
    client_cert: String,
    client_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayment {
    query_after_unknown_ms: u64,
    poll_interval_ms: u64,
    deadline_ms: u64,
    reverse_not_before_ms: u64,
    reverse_retry_interval_ms: u64,
    reverse_max_attempts: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJournal {
    path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    dir: PathBuf,
    level: String,
}

/// Which gateway the till talks to.
#[derive(Debug, Clone)]
pub enum Gateway {
    /// The built-in simulator, started in-process on a free loopback port.
    Simulator { slow_answer: Duration },
    /// WeChat Pay (or anything at `client.base_url`).
    Wechat,
}

/// Everything the program needs, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub till: TillId,
    pub max_amount: Fen,
    pub default_body: String,
    pub language: Language,
    pub store_offset: UtcOffset,
    pub gateway: Gateway,
    pub client: ClientSettings,
    pub merchant: Merchant,
    pub spbill_create_ip: String,
    pub timings: Timings,
    pub journal_path: PathBuf,
    pub log_dir: PathBuf,
    pub log_level: String,
    pub scanner: ScannerSettings,
    /// Sales one key away: description and amount.
    pub presets: Vec<(String, Fen)>,
    pub bell: bool,
    /// `None`: `store.database_url` is empty, nothing is shipped.
    pub store: Option<StoreSettings>,
}

impl Settings {
    /// Loads the defaults, then `file` if given, then the environment.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let table = effective_table(file, &env)?;
        // The path says which setting is wrong: "till.language: unknown variant `fr`".
        let raw: Raw = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| ConfigError(in_user_words(&e.path().to_string(), e.inner().message())))?;
        resolve(raw, &env)
    }

    pub fn is_simulated(&self) -> bool {
        matches!(self.gateway, Gateway::Simulator { .. })
    }
}

/// The built-in defaults as a table.
fn defaults() -> toml::Table {
    DEFAULT_TOML
        .parse()
        .expect("config/default.toml is checked by a unit test")
}

/// The defaults, overlaid by `file` and then by the `SCANPAY_*` variables of
/// `env`, not yet checked: what `scanpay config` prints.
pub fn effective_table(
    file: Option<&Path>,
    env: &[(String, String)],
) -> Result<toml::Table, ConfigError> {
    let mut table = defaults();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "cannot read the configuration file {}: {e}",
                path.display()
            ))
        })?;
        let overlay: toml::Table = text
            .parse()
            .map_err(|e| ConfigError(format!("{} is not valid TOML: {e}", path.display())))?;
        merge(&mut table, overlay, path)?;
    }
    apply_env(&mut table, env)?;
    Ok(table)
}

/// The effective configuration as TOML for `scanpay config`, secrets
/// masked: an API key written in the configuration shows as `***` with its
/// length, and where the key is read from is said in a comment, with its
/// length but never its text. Paths (key file, client certificate and key)
/// are shown; the files' contents never are.
pub fn effective_toml(
    file: Option<&Path>,
    env: &[(String, String)],
) -> Result<String, ConfigError> {
    let mut table = effective_table(file, env)?;
    let mut notes = Vec::new();
    if let Some(toml::Value::Table(merchant)) = table.get_mut("merchant") {
        let text = |name: &str| match merchant.get(name) {
            Some(toml::Value::String(value)) => value.clone(),
            _ => String::new(),
        };
        let (key_file, key_env, plain) =
            (text("api_key_file"), text("api_key_env"), text("api_key"));
        let length = |key: &str| format!("set, {} characters", key.trim().chars().count());
        let source = if !key_file.is_empty() {
            match std::fs::read_to_string(&key_file) {
                Ok(key) => format!("merchant.api_key_file {key_file} ({})", length(&key)),
                Err(e) => format!("merchant.api_key_file {key_file} (cannot read it: {e})"),
            }
        } else if let Some((_, key)) = env.iter().find(|(k, v)| *k == key_env && !v.is_empty()) {
            format!("the {key_env} environment variable ({})", length(key))
        } else if !plain.is_empty() {
            format!("merchant.api_key in the configuration ({})", length(&plain))
        } else {
            format!("not set (neither merchant.api_key_file nor {key_env})")
        };
        notes.push(format!("# API key: {source}"));
        if !plain.is_empty() {
            merchant.insert(
                "api_key".into(),
                toml::Value::String(format!("*** ({})", length(&plain))),
            );
        }
    }
    if let Some(toml::Value::Table(gateway)) = table.get_mut("gateway")
        && let Some(toml::Value::String(url)) = gateway.get_mut("base_url")
    {
        *url = without_user_info(url);
    }
    // Section by section, in the order of the defaults.
    let mut body = String::new();
    for section in SECTIONS {
        if let Some(values) = table.remove(*section) {
            let one: toml::Table = [(section.to_string(), values)].into_iter().collect();
            let text = toml::to_string(&one)
                .map_err(|e| ConfigError(format!("cannot print the configuration: {e}")))?;
            body += &text;
            body += "\n";
        }
    }
    Ok(format!(
        "# scanpay: the configuration in effect (built-in defaults, the --config file, SCANPAY_* variables)\n{}\n\n{body}",
        notes.join("\n")
    ))
}

/// A URL with whatever precedes an `@` in its authority (a user name and
/// password, perhaps a secret) replaced by `***`.
fn without_user_info(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_string(),
    }
}

/// The edit distance between two names (Levenshtein).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(previous + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

/// The known name nearest to `typed`, if it is near enough to be a typo.
fn nearest<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|name| (distance(typed, name), name))
        .filter(|(d, name)| {
            // A typo, or a name said longer or shorter (baudrate for baud).
            let contained = name.len() >= 4
                && typed.len() >= 4
                && (typed.contains(name) || name.contains(typed));
            *d <= 2.max(name.len() / 4) || contained
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// The settings of `section` a file may set.
fn keys_of<'a>(section: &str, target: &'a toml::Table) -> Vec<&'a str> {
    let mut keys: Vec<&str> = target.keys().map(String::as_str).collect();
    if section == "merchant" {
        keys.extend(["api_key", "allow_plaintext_api_key"]);
    }
    keys
}

/// `section.key is not a setting; did you mean section.other?`
fn not_a_setting(section: &str, key: &str, target: &toml::Table) -> String {
    match nearest(key, keys_of(section, target)) {
        Some(near) => format!("{section}.{key} is not a setting; did you mean {section}.{near}?"),
        None => format!(
            "{section}.{key} is not a setting; `scanpay config --defaults` lists the settings of [{section}]"
        ),
    }
}

/// What a setting takes, in the words of someone editing the file:
/// `payment.deadline_ms must be a number of milliseconds, e.g. 30000`.
fn takes(section: &str, key: &str, default: &toml::Value) -> String {
    match default {
        toml::Value::Integer(n) if key.ends_with("_ms") => {
            format!("{section}.{key} must be a number of milliseconds, e.g. {n}")
        }
        toml::Value::Integer(n) => format!("{section}.{key} must be a whole number, e.g. {n}"),
        toml::Value::Boolean(_) => format!("{section}.{key} must be true or false"),
        toml::Value::String(text) if text.is_empty() => {
            format!("{section}.{key} must be text in double quotes, e.g. {key} = \"…\"")
        }
        toml::Value::String(text) => {
            format!("{section}.{key} must be text in double quotes, e.g. {key} = {text:?}")
        }
        toml::Value::Array(_) => format!(
            "{section}.{key} must be a list in brackets, e.g. {key} = [{{ name = \"拿铁\", amount = \"22.00\" }}]"
        ),
        _ => format!("{section}.{key} has the wrong type; see `scanpay config --defaults`"),
    }
}

/// Whether `value` has the type of `default` (any integer for an integer, …).
fn same_type(value: &toml::Value, default: &toml::Value) -> bool {
    std::mem::discriminant(value) == std::mem::discriminant(default)
}

/// A deserialisation error in the user's words where serde's are a
/// programmer's ("invalid type: string \"soon\", expected u64").
fn in_user_words(path: &str, message: &str) -> String {
    let typed = message.starts_with("invalid type") || message.starts_with("invalid value");
    let default = path.split_once('.').and_then(|(section, key)| {
        let toml::Value::Table(values) = defaults().get(section)?.clone() else {
            return None;
        };
        Some((
            section.to_string(),
            key.to_string(),
            values.get(key)?.clone(),
        ))
    });
    match default {
        Some((section, key, default)) if typed => {
            let mut text = takes(&section, &key, &default);
            if let toml::Value::Integer(_) = default
                && message.contains("integer `-")
            {
                text += " (not negative)";
            }
            text
        }
        _ => format!("{path}: {message}"),
    }
}

/// Overlays `overlay` on `base`, refusing keys the defaults do not have (a
/// typo would otherwise be ignored silently).
fn merge(base: &mut toml::Table, overlay: toml::Table, file: &Path) -> Result<(), ConfigError> {
    for (section, value) in overlay {
        let Some(toml::Value::Table(target)) = base.get_mut(&section) else {
            let hint = match nearest(&section, SECTIONS.iter().copied()) {
                Some(near) => format!("did you mean [{near}]?"),
                None => format!("the sections are {}", SECTIONS.join(", ")),
            };
            return err(format!(
                "{}: [{section}] is not a section; {hint}",
                file.display()
            ));
        };
        let toml::Value::Table(values) = value else {
            return err(format!("{}: {section} must be a [section]", file.display()));
        };
        for (key, value) in values {
            let allowed = target.contains_key(&key)
                || (section == "merchant"
                    && matches!(key.as_str(), "api_key" | "allow_plaintext_api_key"));
            if !allowed {
                return err(format!(
                    "{}: {}",
                    file.display(),
                    not_a_setting(&section, &key, target)
                ));
            }
            if let Some(default) = target.get(&key)
                && !same_type(&value, default)
            {
                return err(format!(
                    "{}: {}",
                    file.display(),
                    takes(&section, &key, default)
                ));
            }
            target.insert(key, value);
        }
    }
    Ok(())
}

/// `SCANPAY_PAYMENT_DEADLINE_MS=30000` sets `payment.deadline_ms`. The value
/// takes the type of the default (integer, boolean or text).
fn apply_env(table: &mut toml::Table, env: &[(String, String)]) -> Result<(), ConfigError> {
    // The store's password variable (SCANPAY_STORE_PASSWORD) is a secret, not a setting.
    let store_password_env = match table.get("store").and_then(|s| s.get("password_env")) {
        Some(toml::Value::String(name)) => name.clone(),
        _ => String::new(),
    };
    for (name, value) in env {
        if *name == store_password_env {
            continue;
        }
        let Some(rest) = name.strip_prefix("SCANPAY_") else {
            continue;
        };
        let lower = rest.to_ascii_lowercase();
        let Some(section) = SECTIONS
            .iter()
            .find(|s| lower.starts_with(&format!("{s}_")))
        else {
            continue;
        };
        let key = &lower[section.len() + 1..];
        let Some(toml::Value::Table(target)) = table.get_mut(*section) else {
            continue;
        };
        let typed = match target.get(key) {
            Some(default @ toml::Value::Integer(_)) => value
                .trim()
                .parse::<i64>()
                .map(toml::Value::Integer)
                .map_err(|_| {
                    ConfigError(format!(
                        "{name}={value:?}: {}",
                        takes(section, key, default)
                    ))
                })?,
            Some(default @ toml::Value::Boolean(_)) => value
                .trim()
                .parse::<bool>()
                .map(toml::Value::Boolean)
                .map_err(|_| {
                    ConfigError(format!(
                        "{name}={value:?}: {}",
                        takes(section, key, default)
                    ))
                })?,
            Some(_) => toml::Value::String(value.clone()),
            None => {
                let mut message = format!("{name}: {}", not_a_setting(section, key, target));
                if let Some(near) = nearest(key, keys_of(section, target)) {
                    message += &format!(
                        " (SCANPAY_{}_{})",
                        section.to_ascii_uppercase(),
                        near.to_ascii_uppercase()
                    );
                }
                return err(message);
            }
        };
        target.insert(key.to_string(), typed);
    }
    Ok(())
}

fn resolve(raw: Raw, env: &[(String, String)]) -> Result<Settings, ConfigError> {
    let scanner = ScannerSettings {
        driver: raw.scanner.driver,
        duplicate_window: Duration::from_millis(raw.scanner.duplicate_window_ms),
        wedge: raw.wedge,
        hid: raw.hid,
        serial: raw.serial,
    };
    scanner.validate().map_err(ConfigError)?;
    let till = TillId::parse(&raw.till.id).map_err(|e| ConfigError(e.to_string()))?;
    let max_amount = Fen::parse_yuan(&raw.till.max_amount)
        .map_err(|e| ConfigError(format!("till.max_amount = {:?}: {e}", raw.till.max_amount)))?;
    let store_offset = parse_offset(&raw.till.time_zone)?;
    // Refused here, at start: every order would carry it to the journal.
    check_body(&raw.till.default_body)
        .map_err(|e| ConfigError(format!("till.default_body: {e}")))?;
    let presets = presets(&raw.till.presets, max_amount)?;
    let ms = Duration::from_millis;
    let p = &raw.payment;
    let timings = Timings {
        query_after_unknown: ms(p.query_after_unknown_ms),
        poll_interval: ms(p.poll_interval_ms),
        deadline: ms(p.deadline_ms),
        reverse_not_before: ms(p.reverse_not_before_ms),
        reverse_retry_interval: ms(p.reverse_retry_interval_ms),
        reverse_max_attempts: p.reverse_max_attempts,
    };
    timings.validate().map_err(ConfigError)?;
    let g = &raw.gateway;
    if g.read_timeout_ms == 0 || g.connect_timeout_ms == 0 {
        return err(
            "gateway.connect_timeout_ms and gateway.read_timeout_ms must be more than 0: without a timeout the till can hang",
        );
    }
    // Checked whichever the mode, so a bad URL is caught before it is used.
    let base = BaseUrl::parse(&g.base_url)?;
    let has_credentials = !raw.merchant.appid.is_empty() && !raw.merchant.mch_id.is_empty();
    let simulated = match g.mode {
        Mode::Simulator => true,
        Mode::Wechat => false,
        Mode::Auto => !has_credentials,
    };
    let mut client = ClientSettings {
        base_url: g.base_url.clone(),
        sandbox: g.sandbox,
        connect_timeout: ms(g.connect_timeout_ms),
        read_timeout: ms(g.read_timeout_ms),
        client_identity_pem: None,
        extra_root_pem: read_extra_roots(&g.extra_ca_file)?,
        negative_test: Some(g.negative_test.clone()).filter(|t| !t.is_empty()),
    };
    let (gateway, merchant) = if simulated {
        // The simulator started for this till answers as its demo merchant.
        let merchant = simulator::SimulatorConfig::demo().merchant(raw.merchant.sign_type);
        (
            Gateway::Simulator {
                slow_answer: ms(g.simulator_slow_answer_ms),
            },
            merchant,
        )
    } else {
        if !has_credentials {
            return err(
                "gateway.mode is \"wechat\" but merchant.appid or merchant.mch_id is empty: set both (from the WeChat Pay merchant platform), or use gateway.mode = \"simulator\"",
            );
        }
        let loopback = base.loopback;
        if base.scheme != "https" && !loopback {
            return err(format!(
                "gateway.base_url = {:?} must start with https:// (only a loopback address, such as `scanpay simulate`, may use plain http)",
                g.base_url
            ));
        }
        // WeChat's rules bind against WeChat; a loopback gateway may be scaled.
        if !loopback {
            timings.validate_against_wechat().map_err(ConfigError)?;
        }
        // A simulator on loopback checks no certificate; WeChat does, for reverse.
        let certificate_given =
            !raw.merchant.client_cert.is_empty() || !raw.merchant.client_key.is_empty();
        if !loopback || certificate_given {
            client.client_identity_pem = Some(read_identity(&raw.merchant)?);
        }
        let merchant = Merchant {
            appid: raw.merchant.appid.clone(),
            mch_id: raw.merchant.mch_id.clone(),
            sub_appid: Some(raw.merchant.sub_appid.clone()).filter(|s| !s.is_empty()),
            sub_mch_id: Some(raw.merchant.sub_mch_id.clone()).filter(|s| !s.is_empty()),
            key: read_api_key(&raw.merchant, env)?,
            sign_type: raw.merchant.sign_type,
        };
        (Gateway::Wechat, merchant)
    };
    Ok(Settings {
        till,
        max_amount,
        default_body: raw.till.default_body,
        language: raw.till.language,
        store_offset,
        gateway,
        client,
        merchant,
        spbill_create_ip: raw.gateway.spbill_create_ip,
        timings,
        journal_path: raw.journal.path,
        log_dir: raw.log.dir,
        log_level: raw.log.level,
        scanner,
        presets,
        bell: raw.till.bell,
        store: read_store(&raw.store, env)?,
    })
}

/// `[store]`, checked: a URL the shipper can use, and its password from a
/// private file or the environment, never from the URL.
fn read_store(
    s: &RawStore,
    env: &[(String, String)],
) -> Result<Option<StoreSettings>, ConfigError> {
    if s.database_url.trim().is_empty() {
        return Ok(None);
    }
    crate::store::check_url(&s.database_url).map_err(ConfigError)?;
    if s.batch_events == 0 || s.interval_ms == 0 {
        return err("store.batch_events and store.interval_ms must be more than 0");
    }
    // Only the line end a text editor adds: a password may end in spaces.
    let password = read_secret(
        &s.password_file,
        "store.password_file",
        &s.password_env,
        env,
    )?
    .map(|password| password.trim_end_matches(['\r', '\n']).to_string());
    Ok(Some(StoreSettings {
        database_url: s.database_url.trim().to_string(),
        password,
        batch_events: s.batch_events,
        interval: Duration::from_millis(s.interval_ms),
    }))
}

/// `gateway.base_url`, parsed as the client will read it: deciding what is
/// loopback from the text (a prefix) would take `http://127.0.0.1@host` or
/// `http://127.0.0.1.example.com` for this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BaseUrl {
    scheme: String,
    /// The host is an IP in 127.0.0.0/8, `::1`, or exactly `localhost`.
    loopback: bool,
}

impl BaseUrl {
    fn parse(text: &str) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(text).map_err(|e| {
            ConfigError(format!(
                "gateway.base_url = {text:?} is not a URL ({e}); write it like https://api.mch.weixin.qq.com"
            ))
        })?;
        if !matches!(url.scheme(), "https" | "http") {
            return err(format!(
                "gateway.base_url must be an https:// URL, its scheme is {:?}",
                url.scheme()
            ));
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
            ConfigError(
                "gateway.base_url has no host; write it like https://api.mch.weixin.qq.com".into(),
            )
        })?;
        // The text before `@` is a user name (and password) sent to the host
        // after it; it is never printed, it may be a secret.
        let authority = text.split_once("://").map_or("", |(_, rest)| {
            rest.split(['/', '?', '#']).next().unwrap_or("")
        });
        if !url.username().is_empty() || url.password().is_some() || authority.contains('@') {
            return err(format!(
                "gateway.base_url holds a user name or password before an `@`, which WeChat never takes (the request would go to {host}, not to what precedes the `@`); write only the scheme, host and port"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return err(
                "gateway.base_url must not hold a query (`?`) or fragment (`#`): the API paths are appended to it",
            );
        }
        let loopback = crate::wechat::client::is_loopback(&url);
        Ok(Self {
            scheme: url.scheme().to_string(),
            loopback,
        })
    }
}

/// At most nine (F1–F9), each with a name and an amount this till may charge.
fn presets(presets: &[Preset], max: Fen) -> Result<Vec<(String, Fen)>, ConfigError> {
    if presets.len() > 9 {
        return err(format!(
            "till.presets has {} entries; F1–F9 hold nine",
            presets.len()
        ));
    }
    presets
        .iter()
        .enumerate()
        .map(|(i, preset)| {
            if preset.name.trim().is_empty() {
                return err(format!(
                    "till.presets[{i}].name is empty: name the sale, e.g. \"拿铁\""
                ));
            }
            // The name is the order's description.
            check_body(&preset.name)
                .map_err(|e| ConfigError(format!("till.presets[{i}].name: {e}")))?;
            Fen::parse_yuan_within(&preset.amount, max)
                .map(|amount| (preset.name.clone(), amount))
                .map_err(|e| {
                    ConfigError(format!(
                        "till.presets[{i}].amount = {:?}: {e}",
                        preset.amount
                    ))
                })
        })
        .collect()
}

fn parse_offset(text: &str) -> Result<UtcOffset, ConfigError> {
    let format = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    UtcOffset::parse(text, &format).map_err(|_| {
        ConfigError(format!(
            "till.time_zone = {text:?} must be an offset like \"+08:00\""
        ))
    })
}

/// The API key: from a private file, else the named environment variable,
/// else (only when explicitly allowed) the configuration itself.
/// A secret from `file`, which must be private (`setting` names it in
/// messages), else from the environment variable `var`, as written; `None`
/// when neither has one.
fn read_secret(
    file: &str,
    setting: &str,
    var: &str,
    env: &[(String, String)],
) -> Result<Option<String>, ConfigError> {
    if file.is_empty() {
        return Ok(env
            .iter()
            .find(|(k, v)| *k == var && !v.is_empty())
            .map(|(_, v)| v.clone()));
    }
    let path = Path::new(file);
    check_private(path, setting)?;
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|e| ConfigError(format!("{setting}: cannot read {}: {e}", path.display())))
}

fn read_api_key(m: &RawMerchant, env: &[(String, String)]) -> Result<ApiKey, ConfigError> {
    let key = match read_secret(
        &m.api_key_file,
        "merchant.api_key_file",
        &m.api_key_env,
        env,
    )? {
        Some(key) => key.trim().to_string(),
        None if !m.api_key.is_empty() => {
            if !m.allow_plaintext_api_key {
                return err(
                    "merchant.api_key is written in the configuration in plain text: put it in a file only you can read (merchant.api_key_file, chmod 600) or in the SCANPAY_API_KEY environment variable; to keep it in the configuration anyway, set merchant.allow_plaintext_api_key = true",
                );
            }
            m.api_key.trim().to_string()
        }
        None => {
            return err(format!(
                "no API key: set merchant.api_key_file to a file holding the key (chmod 600), or the {} environment variable",
                m.api_key_env
            ));
        }
    };
    if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return err(format!(
            "the merchant API key must be the 32 letters and digits set on the merchant platform (this one has {} characters)",
            key.chars().count()
        ));
    }
    Ok(ApiKey::new(key))
}

fn read_identity(m: &RawMerchant) -> Result<Vec<u8>, ConfigError> {
    if m.client_cert.is_empty() || m.client_key.is_empty() {
        return err(
            "merchant.client_cert and merchant.client_key must be set: reversing an order (/secapi/pay/reverse) needs the merchant certificate, apiclient_cert.pem and apiclient_key.pem from the merchant platform",
        );
    }
    let key_path = Path::new(&m.client_key);
    check_private(key_path, "merchant.client_key")?;
    let read = |setting: &str, path: &str| {
        std::fs::read(path).map_err(|e| ConfigError(format!("{setting}: cannot read {path}: {e}")))
    };
    let mut pem = read("merchant.client_cert", &m.client_cert)?;
    pem.push(b'\n');
    pem.extend(read("merchant.client_key", &m.client_key)?);
    Ok(pem)
}

/// `gateway.extra_ca_file`, checked now rather than at the first payment.
fn read_extra_roots(path: &str) -> Result<Option<Vec<u8>>, ConfigError> {
    if path.is_empty() {
        return Ok(None);
    }
    let pem = std::fs::read(path).map_err(|e| {
        ConfigError(format!(
            "gateway.extra_ca_file: cannot read {path}: {e}; give the path of a PEM bundle of the CA certificates to trust, or leave it empty"
        ))
    })?;
    extra_roots(&pem).map_err(|e| ConfigError(format!("{path}: {e}")))?;
    Ok(Some(pem))
}

/// A secret file must belong to the user running scanpay and not be readable
/// by group or others (as OpenSSH requires of a private key): a file another
/// user owns can be read, or swapped for another key, by that user.
fn check_private(path: &Path, setting: &str) -> Result<(), ConfigError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ConfigError(format!("{setting}: cannot read {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return err(format!(
                "{setting}: {} belongs to another user (uid {}), not to the user running scanpay (uid {me}); run: chown {me} {}",
                path.display(),
                meta.uid(),
                path.display()
            ));
        }
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return err(format!(
                "{setting}: {} can be read by other users (mode {:o}); run: chmod 600 {}",
                path.display(),
                mode & 0o777,
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(dir: &tempfile::TempDir, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.path().join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        path
    }

    #[test]
    fn the_defaults_are_the_documented_demo() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert!(s.is_simulated());
        assert_eq!(s.till.as_str(), "T01");
        assert_eq!(s.max_amount, Fen(500_000));
        assert_eq!(s.timings, Timings::default());
        assert_eq!(s.store_offset, UtcOffset::from_hms(8, 0, 0).unwrap());
        assert_eq!(s.journal_path, PathBuf::from("./data/journal.sqlite3"));
    }

    #[test]
    fn environment_overrides_with_the_default_type() {
        let s = Settings::load(
            None,
            env(&[
                ("SCANPAY_PAYMENT_DEADLINE_MS", "45000"),
                ("SCANPAY_TILL_ID", "T02"),
                ("SCANPAY_GATEWAY_SANDBOX", "true"),
                ("SCANPAY_API_KEY", "ignored: not a setting"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(s.timings.deadline, Duration::from_millis(45000));
        assert_eq!(s.till.as_str(), "T02");
        assert!(s.client.sandbox);
        let bad =
            Settings::load(None, env(&[("SCANPAY_PAYMENT_DEADLINE_MS", "soon")])).unwrap_err();
        assert!(
            bad.to_string()
                .contains("payment.deadline_ms must be a number of milliseconds, e.g. 30000"),
            "{bad}"
        );
        let typo = Settings::load(None, env(&[("SCANPAY_PAYMENT_DEADLNE_MS", "1")])).unwrap_err();
        assert!(
            typo.to_string().contains(
                "payment.deadlne_ms is not a setting; did you mean payment.deadline_ms? (SCANPAY_PAYMENT_DEADLINE_MS)"
            ),
            "{typo}"
        );
    }

    #[test]
    fn a_file_overlays_the_defaults_and_typos_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = file(
            &dir,
            "a.toml",
            "[till]\nid = \"K9\"\n[payment]\nreverse_max_attempts = 2\n",
            0o644,
        );
        let s = Settings::load(Some(&good), env(&[])).unwrap();
        assert_eq!(s.till.as_str(), "K9");
        assert_eq!(s.timings.reverse_max_attempts, 2);
        assert_eq!(s.timings.deadline, Duration::from_secs(30));

        let presets = file(
            &dir,
            "p.toml",
            "[till]\npresets = [{ name = \"拿铁\", amount = \"22.00\" }]\n",
            0o644,
        );
        assert_eq!(
            Settings::load(Some(&presets), env(&[])).unwrap().presets,
            [("拿铁".to_string(), Fen(2200))]
        );
        let dear = file(
            &dir,
            "q.toml",
            "[till]\npresets = [{ name = \"金条\", amount = \"9999.00\" }]\n",
            0o644,
        );
        let e = Settings::load(Some(&dear), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("till.presets[0].amount") && e.contains("maximum"),
            "{e}"
        );

        let presets = file(
            &dir,
            "p.toml",
            "[till]\npresets = [{ name = \"拿铁\", amount = \"22.00\" }]\n",
            0o644,
        );
        let loaded = Settings::load(Some(&presets), env(&[])).unwrap();
        assert_eq!(loaded.presets, [("拿铁".to_string(), Fen(2200))]);
        let dear = file(
            &dir,
            "q.toml",
            "[till]\npresets = [{ name = \"金条\", amount = \"9999.00\" }]\n",
            0o644,
        );
        let e = Settings::load(Some(&dear), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("till.presets[0].amount") && e.contains("maximum"),
            "{e}"
        );

        let typo = file(&dir, "b.toml", "[till]\nidd = \"K9\"\n", 0o644);
        assert!(
            Settings::load(Some(&typo), env(&[]))
                .unwrap_err()
                .to_string()
                .contains("till.idd is not a setting; did you mean till.id?")
        );
        let section = file(&dir, "c.toml", "[tills]\nid = \"K9\"\n", 0o644);
        assert!(
            Settings::load(Some(&section), env(&[]))
                .unwrap_err()
                .to_string()
                .contains("[tills] is not a section; did you mean [till]?")
        );
        let broken = file(&dir, "d.toml", "[till\n", 0o644);
        assert!(
            Settings::load(Some(&broken), env(&[]))
                .unwrap_err()
                .to_string()
                .contains("not valid TOML")
        );
        let missing = Settings::load(Some(&dir.path().join("none.toml")), env(&[])).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("cannot read the configuration file"),
            "{missing}"
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases = [
            ("SCANPAY_TILL_ID", "T-01", "till.id"),
            ("SCANPAY_TILL_MAX_AMOUNT", "lots", "till.max_amount"),
            ("SCANPAY_TILL_TIME_ZONE", "Asia/Shanghai", "till.time_zone"),
            ("SCANPAY_TILL_LANGUAGE", "fr", "language"),
            ("SCANPAY_MERCHANT_SIGN_TYPE", "SHA1", "sign_type"),
            ("SCANPAY_GATEWAY_MODE", "live", "mode"),
            (
                "SCANPAY_PAYMENT_REVERSE_NOT_BEFORE_MS",
                "40000",
                "payment.reverse_not_before_ms",
            ),
            (
                "SCANPAY_PAYMENT_REVERSE_MAX_ATTEMPTS",
                "0",
                "payment.reverse_max_attempts",
            ),
            ("SCANPAY_SCANNER_DRIVER", "bluetooth", "scanner.driver"),
            (
                "SCANPAY_WEDGE_MAX_KEY_GAP_MS",
                "150",
                "wedge.max_key_gap_ms",
            ),
            (
                "SCANPAY_GATEWAY_READ_TIMEOUT_MS",
                "0",
                "gateway.read_timeout_ms",
            ),
        ];
        for (name, value, setting) in cases {
            let e = Settings::load(None, env(&[(name, value)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(setting), "{name}={value}: {e}");
        }
    }

    #[test]
    fn a_description_that_cannot_go_on_the_wire_is_refused_at_start() {
        let long = "咖".repeat(500);
        let cases = [
            ("\u{7}\u{7}", "U+0007 at character 1"),
            ("   ", "empty"),
            ("咖啡 134539517967686076", "payment code"),
            (long.as_str(), "would be cut after"),
        ];
        for (body, reason) in cases {
            let e = Settings::load(None, env(&[("SCANPAY_TILL_DEFAULT_BODY", body)]))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("till.default_body") && e.contains(reason),
                "{body:?}: {e}"
            );
            assert!(!e.contains("1345395"), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let config = file(
            &dir,
            "presets.toml",
            "[till]\npresets = [{ name = \"拿铁\\n\", amount = \"22\" }]\n",
            0o600,
        );
        let e = Settings::load(Some(&config), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("till.presets[0].name") && e.contains("U+000A"),
            "{e}"
        );
    }

    #[test]
    fn an_extra_ca_file_must_be_a_readable_pem_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let load = |path: &Path| {
            Settings::load(
                None,
                env(&[("SCANPAY_GATEWAY_EXTRA_CA_FILE", path.to_str().unwrap())]),
            )
        };
        let missing = load(&dir.path().join("none.pem")).unwrap_err().to_string();
        assert!(
            missing.contains("gateway.extra_ca_file: cannot read") && missing.contains("none.pem"),
            "{missing}"
        );
        let der = file(&dir, "ca.cer", "0\u{82}\u{3}not PEM", 0o644);
        let e = load(&der).unwrap_err().to_string();
        assert!(
            e.contains("gateway.extra_ca_file is not a PEM bundle") && e.contains("openssl x509"),
            "{e}"
        );
        let ca = rcgen::generate_simple_self_signed(["proxy.example".to_string()]).unwrap();
        let pem = file(&dir, "ca.pem", &ca.cert.pem(), 0o644);
        assert_eq!(
            load(&pem).unwrap().client.extra_root_pem,
            Some(ca.cert.pem().into_bytes())
        );
        assert_eq!(
            Settings::load(None, env(&[]))
                .unwrap()
                .client
                .extra_root_pem,
            None
        );
    }

    fn wechat_env<'a>(
        dir: &tempfile::TempDir,
        extra: &[(&'a str, &'a str)],
    ) -> Vec<(String, String)> {
        let cert = file(dir, "cert.pem", "CERT", 0o644);
        let key = file(dir, "key.pem", "KEY", 0o600);
        let mut pairs = env(&[
            ("SCANPAY_GATEWAY_MODE", "wechat"),
            ("SCANPAY_MERCHANT_APPID", "wx2421b1c4370ec43b"),
            ("SCANPAY_MERCHANT_MCH_ID", "10000100"),
            ("SCANPAY_MERCHANT_CLIENT_CERT", cert.to_str().unwrap()),
            ("SCANPAY_MERCHANT_CLIENT_KEY", key.to_str().unwrap()),
        ]);
        pairs.extend(env(extra));
        pairs
    }

    #[test]
    fn a_real_merchant_reads_its_key_from_the_environment_or_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = "0123456789abcdef0123456789ABCDEF";
        let s = Settings::load(None, wechat_env(&dir, &[("SCANPAY_API_KEY", key)])).unwrap();
        assert!(!s.is_simulated());
        assert_eq!(s.merchant.key, ApiKey::new(key));
        assert_eq!(
            s.client.client_identity_pem.as_deref(),
            Some(&b"CERT\nKEY"[..])
        );
        assert!(!format!("{s:?}").contains(key), "the key must not print");

        let private = file(&dir, "api.key", &format!("{key}\n"), 0o600);
        let s = Settings::load(
            None,
            wechat_env(
                &dir,
                &[("SCANPAY_MERCHANT_API_KEY_FILE", private.to_str().unwrap())],
            ),
        )
        .unwrap();
        assert_eq!(s.merchant.key, ApiKey::new(key));

        let shared = file(&dir, "shared.key", key, 0o644);
        let e = Settings::load(
            None,
            wechat_env(
                &dir,
                &[("SCANPAY_MERCHANT_API_KEY_FILE", shared.to_str().unwrap())],
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("chmod 600"), "{e}");
        assert!(!e.contains(key), "the key must not appear in an error");
    }

    /// A merchant on `base_url` with an API key and no client certificate.
    fn merchant_at(base_url: &str, extra: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut pairs = env(&[
            ("SCANPAY_GATEWAY_MODE", "wechat"),
            ("SCANPAY_GATEWAY_BASE_URL", base_url),
            ("SCANPAY_MERCHANT_APPID", "wxd930ea5d5a258f4f"),
            ("SCANPAY_MERCHANT_MCH_ID", "10000100"),
            ("SCANPAY_API_KEY", "192006250b4c09247ec02edce69f6a2d"),
        ]);
        pairs.extend(env(extra));
        Settings::load(None, pairs)
    }

    #[test]
    fn loopback_is_parsed_not_matched_as_a_prefix() {
        for url in [
            "http://127.0.0.1:8765",
            "http://127.0.0.1:8765/",
            "http://127.8.9.10",
            "http://127.1:8765",
            "http://localhost:8765",
            "http://LOCALHOST:8765",
            "http://[::1]:8765",
        ] {
            let s = merchant_at(url, &[]).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(s.client.client_identity_pem.is_none(), "{url}");
        }
        // Each would pass a prefix test; none is this machine.
        for url in [
            "http://127.0.0.1.example.com",
            "http://localhost.example.com",
            "http://localhost.",
            "http://[::ffff:192.0.2.1]",
            "http://[::ffff:127.0.0.1]",
            "http://128.0.0.1",
            "http://0.0.0.0:8765",
        ] {
            let e = merchant_at(url, &[]).unwrap_err().to_string();
            assert!(
                e.contains("gateway.base_url") && e.contains("must start with https://"),
                "{url}: {e}"
            );
        }
        // Over https they are WeChat-like gateways: the certificate is required.
        let e = merchant_at("https://127.0.0.1.example.com", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("merchant.client_cert"), "{e}");
    }

    #[test]
    fn a_user_name_in_any_base_url_is_refused_without_printing_it() {
        for url in [
            "http://127.0.0.1@192.0.2.1",
            "http://localhost:8765@192.0.2.1:80",
            "https://user:s3cret@api.mch.weixin.qq.com",
            "https://@api.mch.weixin.qq.com",
        ] {
            let e = merchant_at(url, &[]).unwrap_err().to_string();
            assert!(
                e.contains("gateway.base_url") && e.contains("user name or password"),
                "{url}: {e}"
            );
            assert!(!e.contains("s3cret"), "{e}");
        }
        let e = merchant_at("http://127.0.0.1@192.0.2.1", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("would go to 192.0.2.1"), "{e}");
        // Even when the simulator is used, a broken base_url is named at start.
        let simulated = Settings::load(
            None,
            env(&[(
                "SCANPAY_GATEWAY_BASE_URL",
                "https://a@api.mch.weixin.qq.com",
            )]),
        )
        .unwrap_err()
        .to_string();
        assert!(simulated.contains("gateway.base_url"), "{simulated}");
        for (url, expected) in [
            ("api.mch.weixin.qq.com", "is not a URL"),
            ("ftp://api.mch.weixin.qq.com", "scheme is \"ftp\""),
            ("https://api.mch.weixin.qq.com/?x=1", "query"),
        ] {
            let e = merchant_at(url, &[]).unwrap_err().to_string();
            assert!(
                e.contains("gateway.base_url") && e.contains(expected),
                "{url}: {e}"
            );
        }
    }

    #[test]
    fn timings_that_break_wechats_rules_are_refused_against_wechat_only() {
        let dir = tempfile::tempdir().unwrap();
        let key = ("SCANPAY_API_KEY", "0123456789abcdef0123456789ABCDEF");
        let e = Settings::load(
            None,
            wechat_env(
                &dir,
                &[key, ("SCANPAY_PAYMENT_REVERSE_NOT_BEFORE_MS", "1000")],
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("payment.reverse_not_before_ms must be at least 15000 against WeChat")
                && e.ends_with("it is 1000; shorter timings are only for a gateway on loopback"),
            "{e}"
        );
        let e = Settings::load(
            None,
            wechat_env(
                &dir,
                &[key, ("SCANPAY_PAYMENT_DEADLINE_MS", "99999999999999")],
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("payment.deadline_ms must be at most 600000"),
            "{e}"
        );
        let scaled = [
            ("SCANPAY_PAYMENT_QUERY_AFTER_UNKNOWN_MS", "50"),
            ("SCANPAY_PAYMENT_POLL_INTERVAL_MS", "100"),
            ("SCANPAY_PAYMENT_DEADLINE_MS", "300"),
            ("SCANPAY_PAYMENT_REVERSE_NOT_BEFORE_MS", "150"),
            ("SCANPAY_PAYMENT_REVERSE_RETRY_INTERVAL_MS", "50"),
        ];
        let e = Settings::load(None, wechat_env(&dir, &[&scaled[..], &[key]].concat()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("payment.query_after_unknown_ms must be at least 5000"),
            "{e}"
        );
        // A look-alike of loopback is WeChat as far as the rules go.
        let e = merchant_at("https://127.0.0.1.example.com", &scaled)
            .unwrap_err()
            .to_string();
        assert!(e.contains("against WeChat"), "{e}");
        // Loopback and the built-in simulator may be scaled down.
        let s = merchant_at("http://127.0.0.1:8765", &scaled).unwrap();
        assert_eq!(s.timings.deadline, Duration::from_millis(300));
        assert!(Settings::load(None, env(&scaled)).unwrap().is_simulated());
        // Absurd values are refused everywhere.
        let e = merchant_at(
            "http://127.0.0.1:8765",
            &[("SCANPAY_PAYMENT_REVERSE_MAX_ATTEMPTS", "1000")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("payment.reverse_max_attempts must be at most 20"),
            "{e}"
        );
    }

    #[test]
    fn a_real_merchant_without_key_certificate_or_https_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = Settings::load(None, wechat_env(&dir, &[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no API key") && e.contains("SCANPAY_API_KEY"),
            "{e}"
        );

        let short = Settings::load(
            None,
            wechat_env(&dir, &[("SCANPAY_API_KEY", "secret-but-short")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            short.contains("32 letters and digits") && !short.contains("secret-but-short"),
            "{short}"
        );

        let plaintext = wechat_env(&dir, &[]);
        let conf = file(
            &dir,
            "plain.toml",
            "[merchant]\napi_key = \"0123456789abcdef0123456789ABCDEF\"\n",
            0o600,
        );
        let e = Settings::load(Some(&conf), plaintext.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains("allow_plaintext_api_key"), "{e}");
        let insist = file(
            &dir,
            "insist.toml",
            "[merchant]\napi_key = \"0123456789abcdef0123456789ABCDEF\"\nallow_plaintext_api_key = true\n",
            0o600,
        );
        assert!(Settings::load(Some(&insist), plaintext).is_ok());

        let mut no_cert = wechat_env(
            &dir,
            &[("SCANPAY_API_KEY", "0123456789abcdef0123456789ABCDEF")],
        );
        no_cert.retain(|(k, _)| k != "SCANPAY_MERCHANT_CLIENT_CERT");
        let e = Settings::load(None, no_cert).unwrap_err().to_string();
        assert!(
            e.contains("merchant.client_cert") && e.contains("apiclient_cert.pem"),
            "{e}"
        );

        let http = Settings::load(
            None,
            wechat_env(
                &dir,
                &[
                    ("SCANPAY_API_KEY", "0123456789abcdef0123456789ABCDEF"),
                    ("SCANPAY_GATEWAY_BASE_URL", "http://api.mch.weixin.qq.com"),
                ],
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(http.contains("https://"), "{http}");

        let simulator = Settings::load(
            None,
            env(&[
                ("SCANPAY_GATEWAY_MODE", "wechat"),
                ("SCANPAY_GATEWAY_BASE_URL", "http://127.0.0.1:8765"),
                ("SCANPAY_MERCHANT_APPID", "wxd930ea5d5a258f4f"),
                ("SCANPAY_MERCHANT_MCH_ID", "10000100"),
                ("SCANPAY_API_KEY", "192006250b4c09247ec02edce69f6a2d"),
            ]),
        )
        .unwrap();
        assert!(!simulator.is_simulated() && simulator.client.client_identity_pem.is_none());

        let no_ids = Settings::load(None, env(&[("SCANPAY_GATEWAY_MODE", "wechat")]))
            .unwrap_err()
            .to_string();
        assert!(no_ids.contains("merchant.appid"), "{no_ids}");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_told_in_the_users_words() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "[payment]\ndeadline_ms = \"30s\"\n",
                "payment.deadline_ms must be a number of milliseconds, e.g. 30000",
            ),
            (
                "[payment]\ndeadline_ms = -5\n",
                "payment.deadline_ms must be a number of milliseconds, e.g. 30000 (not negative)",
            ),
            (
                "[payment]\nreverse_max_attempts = \"five\"\n",
                "payment.reverse_max_attempts must be a whole number, e.g. 5",
            ),
            (
                "[till]\nbell = \"yes\"\n",
                "till.bell must be true or false",
            ),
            (
                "[till]\nid = 7\n",
                "till.id must be text in double quotes, e.g. id = \"T01\"",
            ),
            (
                "[serial]\nbaud = 96.00\n",
                "serial.baud must be a whole number, e.g. 9600",
            ),
        ];
        for (i, (text, expected)) in cases.into_iter().enumerate() {
            let path = file(&dir, &format!("{i}.toml"), text, 0o644);
            let e = Settings::load(Some(&path), env(&[]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{text:?}: {e}");
            assert!(
                !e.contains("invalid type") && !e.contains("expected u"),
                "{e}"
            );
        }
        let e = Settings::load(None, env(&[("SCANPAY_TILL_BELL", "maybe")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "SCANPAY_TILL_BELL=\"maybe\": till.bell must be true or false"
        );
        // What serde says of a value the type check lets through is put the same way.
        assert_eq!(
            in_user_words(
                "payment.deadline_ms",
                "invalid value: integer `-5`, expected u64"
            ),
            "payment.deadline_ms must be a number of milliseconds, e.g. 30000 (not negative)"
        );
        assert_eq!(
            in_user_words(
                "till.language",
                "unknown variant `fr`, expected `zh` or `en`"
            ),
            "till.language: unknown variant `fr`, expected `zh` or `en`"
        );
    }

    #[test]
    fn an_unknown_key_suggests_the_nearest_setting() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "[payment]\ndedline_ms = 1\n",
                "payment.dedline_ms is not a setting; did you mean payment.deadline_ms?",
            ),
            (
                "[merchant]\napi_kye = \"x\"\n",
                "merchant.api_kye is not a setting; did you mean merchant.api_key?",
            ),
            (
                "[serial]\nbaudrate = 1\n",
                "serial.baudrate is not a setting; did you mean serial.baud?",
            ),
            (
                "[paymnet]\ndeadline_ms = 1\n",
                "[paymnet] is not a section; did you mean [payment]?",
            ),
            (
                "[till]\ncolour = 1\n",
                "till.colour is not a setting; `scanpay config --defaults` lists the settings of [till]",
            ),
        ];
        for (i, (text, expected)) in cases.into_iter().enumerate() {
            let path = file(&dir, &format!("{i}.toml"), text, 0o644);
            let e = Settings::load(Some(&path), env(&[]))
                .unwrap_err()
                .to_string();
            assert!(e.ends_with(expected), "{text:?}: {e}");
        }
        assert_eq!(distance("dedline_ms", "deadline_ms"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn no_message_points_at_a_file_an_installed_machine_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let typo = file(&dir, "t.toml", "[till]\ncolour = 1\n", 0o644);
        for e in [
            Settings::load(Some(&typo), env(&[])).unwrap_err(),
            Settings::load(None, env(&[("SCANPAY_TILL_COLOUR", "red")])).unwrap_err(),
        ] {
            let e = e.to_string();
            assert!(
                !e.contains("default.toml") && e.contains("scanpay config --defaults"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_effective_configuration_masks_every_secret() {
        let dir = tempfile::tempdir().unwrap();
        let key = "0123456789abcdef0123456789ABCDEF";
        let conf = file(
            &dir,
            "m.toml",
            &format!(
                "[till]\nid = \"K9\"\npresets = [{{ name = \"拿铁\", amount = \"22.00\" }}]\n[merchant]\napi_key = \"{key}\"\n[gateway]\nbase_url = \"https://user:s3cret@api.mch.weixin.qq.com\"\n"
            ),
            0o600,
        );
        let text = effective_toml(
            Some(&conf),
            &env(&[("SCANPAY_PAYMENT_DEADLINE_MS", "45000")]),
        )
        .unwrap();
        assert!(!text.contains(key) && !text.contains("s3cret"), "{text}");
        assert!(
            text.contains("api_key = \"*** (set, 32 characters)\""),
            "{text}"
        );
        assert!(text.contains("https://***@api.mch.weixin.qq.com"), "{text}");
        assert!(
            text.contains("deadline_ms = 45000") && text.contains("id = \"K9\""),
            "{text}"
        );
        // It is TOML, sections in the order of the defaults.
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(table["till"]["presets"][0]["name"].as_str(), Some("拿铁"));
        assert!(text.find("[till]").unwrap() < text.find("[gateway]").unwrap());

        let from_env = effective_toml(None, &env(&[("SCANPAY_API_KEY", key)])).unwrap();
        assert!(!from_env.contains(key), "{from_env}");
        assert!(
            from_env.contains(
                "# API key: the SCANPAY_API_KEY environment variable (set, 32 characters)"
            ),
            "{from_env}"
        );
        let private = file(&dir, "api.key", key, 0o600);
        let from_file = effective_toml(
            None,
            &env(&[("SCANPAY_MERCHANT_API_KEY_FILE", private.to_str().unwrap())]),
        )
        .unwrap();
        assert!(
            !from_file.contains(key) && from_file.contains("api.key (set, 32 characters)"),
            "{from_file}"
        );
    }
}
