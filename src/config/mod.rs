//! Configuration: built-in defaults embedded from assets/, overridden by a user TOML file.
//! Parsing is strict: an unknown or malformed key is one error naming the file, line and key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod database;
mod sim;
pub use database::{DatabaseConfig, DbSource, DbTls, host_port};
pub use sim::{
    FaultKind, IncidentKind, SimConfig, SimFault, SimIncident, sim_replica_names, sim_web_names,
};

pub const DEFAULT_CONFIG: &str = include_str!("../../assets/fleet.default.toml");
const DEFAULT_SOURCE: &str = "<built-in assets/fleet.default.toml>";
/// The most one-minute datapoints a series on AWS keeps: every metric refresh reads them all.
const MAX_AWS_HISTORY: usize = 1440;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}", say!("{file}:{line}: key `{key}`: {message}"))]
    Invalid {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
    #[error("{}", say!("{file}: cannot read: {error}"))]
    Read { file: String, error: std::io::Error },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub fleet: FleetConfig,
    pub detect: DetectConfig,
    pub runbook: RunbookConfig,
    pub sim: SimConfig,
    pub aws: AwsConfig,
    pub database: DatabaseConfig,
    pub journal: JournalConfig,
}

/// Where run journals are copied besides this machine's disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mirror {
    #[default]
    None,
    /// Every record also goes to CloudWatch Logs: a log group per fleet, a stream per run.
    CloudwatchLogs,
}

/// `[journal]`: run journals, and their mirror for `dake follow` from another machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    #[serde(default)]
    pub mirror: Mirror,
    /// The log group of a fleet's runs is this prefix and the fleet's name.
    #[serde(default = "log_group_prefix")]
    pub log_group_prefix: String,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            mirror: Mirror::None,
            log_group_prefix: log_group_prefix(),
        }
    }
}

fn log_group_prefix() -> String {
    "/dake/".into()
}

impl Config {
    /// The CloudWatch Logs group the fleet's runs are mirrored to.
    pub fn log_group(&self) -> String {
        format!("{}{}", self.journal.log_group_prefix, self.fleet.name)
    }
}

/// How the application finds its database on AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointKind {
    /// A Route53 record (`[fleet] db_endpoint`) in `hosted_zone_id`: CNAME to the master's
    /// private DNS name, or A to its private address.
    Route53,
    /// An SSM parameter named `[fleet] db_endpoint` holding the master's private address.
    Ssm,
}

/// What the AWS provider reads and runs beyond EC2. Names, not secrets: credentials come from
/// the standard chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    pub db_endpoint_kind: EndpointKind,
    pub hosted_zone_id: String,
    pub metrics_namespace: String,
    pub latency_p99_metric: String,
    pub latency_p50_metric: String,
    pub heartbeat_metric: String,
    pub read_only_metric: String,
    pub ssm_document: String,
    /// How long a host command may run on the host: SSM stops it there after that, and dake
    /// cancels one it stops waiting for.
    #[serde(default = "host_command_secs")]
    pub host_command_timeout_secs: u64,
    pub restart_app_command: String,
    pub start_db_command: String,
    pub promote_command: String,
    pub repoint_command: String,
    pub replicas_parameter: String,
    /// Where the leases of the fleet's tiers live (SSM parameters `<prefix>/<fleet>/<tier>`).
    #[serde(default = "lease_prefix")]
    pub lease_prefix: String,
    pub attempt_timeout_secs: u64,
    pub call_timeout_secs: u64,
    pub refresh_secs: u64,
    pub metrics_refresh_secs: u64,
    /// One-minute datapoints each series keeps (the sparklines, the lag history).
    pub history: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunbookConfig {
    /// A second failover of the same tier within this many seconds is refused unless
    /// overridden.
    pub anti_flap_secs: u64,
    /// A tier's lease not renewed for this long is stale: taken over only by naming its run.
    #[serde(default = "lease_stale_secs")]
    pub lease_stale_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    pub name: String,
    pub region: String,
    pub target_group: String,
    pub db_endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectConfig {
    pub slow_web_factor: f32,
    pub slow_web_clear_factor: f32,
    pub slow_web_window_secs: u32,
    pub master_heartbeat_secs: f32,
    pub master_clear_secs: f32,
    pub replica_max_lag_secs: f32,
}

fn lease_stale_secs() -> u64 {
    120
}

fn lease_prefix() -> String {
    "/dake/lease".into()
}

fn host_command_secs() -> u64 {
    600
}

/// SSM's longest execution timeout for a Run Command (48 hours).
const MAX_HOST_COMMAND_SECS: u64 = 172_800;

/// `[aws]` keys an older dake read, with what replaced them: a config written for it gets the
/// way forward, not "unknown field".
const RETIRED_AWS_KEYS: &[(&str, &str)] = &[(
    "replica_lag_metric",
    said!(
        "replaced by `heartbeat_metric`: database hosts now publish the epoch time of the newest \
     heartbeat they hold, not a lag (README, \"Publishing the metrics\", has the new cron line)"
    ),
)];

/// The user file mirrors `Config` with every key optional; present keys replace the defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Overlay {
    fleet: Option<toml::Table>,
    detect: Option<toml::Table>,
    runbook: Option<toml::Table>,
    sim: Option<toml::Table>,
    aws: Option<toml::Table>,
    database: Option<toml::Table>,
    journal: Option<toml::Table>,
}

impl Config {
    pub fn builtin() -> Config {
        // The embedded default is validated by a unit test, so failing here means a broken build.
        parse_full(DEFAULT_CONFIG, DEFAULT_SOURCE)
            .expect("built-in assets/fleet.default.toml is valid")
    }

    /// Loads `explicit` if given (it must exist), else the XDG file if present, else defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => default_path().filter(|p| p.exists()),
        };
        match path {
            None => Ok(Config::builtin()),
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|error| ConfigError::Read {
                    file: path.display().to_string(),
                    error,
                })?;
                Config::from_user_toml(&text, &path.display().to_string())
            }
        }
    }

    /// Applies a user file over the built-in defaults.
    pub fn from_user_toml(text: &str, file: &str) -> Result<Config, ConfigError> {
        let overlay: Overlay = toml::from_str(text).map_err(|e| toml_error(&e, text, file))?;
        if let Some((key, message)) = RETIRED_AWS_KEYS
            .iter()
            .find(|(key, _)| overlay.aws.as_ref().is_some_and(|t| t.contains_key(*key)))
        {
            return Err(ConfigError::Invalid {
                file: file.to_string(),
                line: find_key_line(text, key).unwrap_or(1),
                key: key.to_string(),
                message: message.to_string(),
            });
        }
        let mut merged: toml::Table = toml::from_str(DEFAULT_CONFIG)
            .expect("built-in assets/fleet.default.toml is valid TOML");
        for (name, table) in [
            ("fleet", overlay.fleet),
            ("detect", overlay.detect),
            ("runbook", overlay.runbook),
            ("sim", overlay.sim),
            ("aws", overlay.aws),
            ("database", overlay.database),
            ("journal", overlay.journal),
        ] {
            let Some(table) = table else { continue };
            let slot = merged
                .get_mut(name)
                .and_then(|v| v.as_table_mut())
                .expect("built-in config has every table of `Config`");
            for (k, v) in table {
                slot.insert(k, v);
            }
        }
        // Re-serialise so type errors can be reported against the user's own text below.
        let merged_text = toml::to_string(&merged).expect("a toml::Table always serialises");
        let config: Config = match toml::from_str(&merged_text) {
            Ok(c) => c,
            Err(e) => {
                let key = error_key(&e, &merged_text);
                let line = find_key_line(text, &key).unwrap_or(1);
                return Err(ConfigError::Invalid {
                    file: file.to_string(),
                    line,
                    key,
                    message: e.message().to_string(),
                });
            }
        };
        config.validate(text, file)?;
        Ok(config)
    }

    fn validate(&self, text: &str, file: &str) -> Result<(), ConfigError> {
        let fail = invalid_key(text, file);
        let d = &self.detect;
        if d.slow_web_factor <= 1.0 {
            return Err(fail(
                "slow_web_factor",
                said!("must be greater than 1.0").into(),
            ));
        }
        if !(1.0..=d.slow_web_factor).contains(&d.slow_web_clear_factor) {
            return Err(fail(
                "slow_web_clear_factor",
                say!(
                    "must be between 1.0 and slow_web_factor ({})",
                    d.slow_web_factor
                ),
            ));
        }
        if d.master_clear_secs >= d.master_heartbeat_secs {
            return Err(fail(
                "master_clear_secs",
                said!("must be below master_heartbeat_secs").into(),
            ));
        }
        self.sim.validate(&fail)?;
        let a = &self.aws;
        if a.refresh_secs == 0 {
            return Err(fail("refresh_secs", said!("must be at least 1").into()));
        }
        if a.metrics_refresh_secs == 0 {
            return Err(fail(
                "metrics_refresh_secs",
                said!("must be at least 1").into(),
            ));
        }
        if !(2..=MAX_AWS_HISTORY).contains(&a.history) {
            return Err(fail(
                "history",
                say!("must be between 2 and {MAX_AWS_HISTORY} (a day of minutes)"),
            ));
        }
        if !(10..=MAX_HOST_COMMAND_SECS).contains(&a.host_command_timeout_secs) {
            return Err(fail(
                "host_command_timeout_secs",
                say!("must be between 10 and {MAX_HOST_COMMAND_SECS} (SSM's own limit)"),
            ));
        }
        if a.call_timeout_secs == 0 {
            return Err(fail(
                "call_timeout_secs",
                said!("must be at least 1").into(),
            ));
        }
        if !(1..=a.call_timeout_secs).contains(&a.attempt_timeout_secs) {
            return Err(fail(
                "attempt_timeout_secs",
                say!(
                    "must be between 1 and call_timeout_secs ({})",
                    a.call_timeout_secs
                ),
            ));
        }
        if !self.aws.repoint_command.contains("{master}") {
            return Err(fail(
                "repoint_command",
                said!("must contain {master} (the new master's private address)").into(),
            ));
        }
        self.database.validate(&fail)?;
        Ok(())
    }
}

pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("dake").join("config.toml"))
}

fn parse_full(text: &str, file: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| toml_error(&e, text, file))?;
    config.validate(text, file)?;
    Ok(config)
}

pub(crate) fn toml_error(e: &toml::de::Error, text: &str, file: &str) -> ConfigError {
    let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
    let key = error_key(e, text);
    ConfigError::Invalid {
        file: file.to_string(),
        line,
        key,
        message: e.message().to_string(),
    }
}

/// The key an error is about: named in the message for unknown fields, else the key on the
/// line its span points at.
fn error_key(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message();
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| msg.strip_prefix(prefix))
        .and_then(|rest| rest.find('`').map(|end| rest[..end].to_string()));
    if let Some(key) = named {
        return key;
    }
    let Some(span) = e.span() else {
        return "?".into();
    };
    let line_start = text[..span.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line_text = text[line_start..].lines().next().unwrap_or("");
    key_on_line(line_text)
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "?".into())
}

fn key_on_line(line: &str) -> Option<String> {
    let t = line.trim();
    if let Some(h) = t.strip_prefix('[') {
        return Some(h.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    }
    t.split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The `.toml` files of a user's directory (none when it does not exist), by name, each with
/// its text: the user's own playbooks or scenarios.
pub(crate) fn user_files(
    dir: Option<&std::path::Path>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(dir) = dir.filter(|d| d.is_dir()) else {
        return Ok(Vec::new());
    };
    let read = |file: String, error| ConfigError::Read { file, error };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| read(dir.display().to_string(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| read(file.clone(), e))?;
            Ok((file, text))
        })
        .collect()
}

/// The error for `key` of `file` (whose text is `text`): found on its line.
pub(crate) fn invalid_key<'a>(
    text: &'a str,
    file: &'a str,
) -> impl Fn(&str, String) -> ConfigError + 'a {
    move |key: &str, message: String| ConfigError::Invalid {
        file: file.to_string(),
        line: find_key_line(text, key).unwrap_or(1),
        key: key.to_string(),
        message,
    }
}

pub(crate) fn find_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| key_on_line(l).is_some_and(|k| k == key) && l.contains('='))
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests;
