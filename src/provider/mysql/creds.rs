//! The database password: from an environment variable or a MySQL client option file that
//! only its owner can read. It is held in a type that never prints it.

use std::path::Path;

use super::DbError;
use crate::config::DatabaseConfig;

/// A password: `Debug` and `Display` print `***`, so no log line, journal record, report or
/// error can carry it by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The password `cfg` names: the environment variable when set, else the option file's
/// `[client]` (or `[mysql]`) `password`; `None` when neither is configured.
pub fn password(cfg: &DatabaseConfig) -> Result<Option<Secret>, DbError> {
    if !cfg.password_env.is_empty()
        && let Ok(value) = std::env::var(&cfg.password_env)
        && !value.is_empty()
    {
        return Ok(Some(Secret(value)));
    }
    if cfg.option_file.is_empty() {
        return Ok(None);
    }
    let path = Path::new(&cfg.option_file);
    check_private(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| DbError::Credentials {
        why: format!("{}: cannot read: {e}", path.display()),
    })?;
    Ok(option_file_password(&text).map(Secret))
}

/// Refuses a file its group or others may read: a password there is not the operator's alone.
fn check_private(path: &Path) -> Result<(), DbError> {
    let meta = std::fs::metadata(path).map_err(|e| DbError::Credentials {
        why: format!("{}: cannot read: {e}", path.display()),
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(DbError::Credentials {
                why: format!(
                    "{}: refused: readable by group or others (mode {mode:03o}); \
                     `chmod 600 {}` and try again",
                    path.display(),
                    path.display()
                ),
            });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

/// `password` of the `[client]` or `[mysql]` group of a MySQL option file, unquoted.
fn option_file_password(text: &str) -> Option<String> {
    let mut in_group = false;
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            let group = line.trim_matches(|c| c == '[' || c == ']').trim();
            in_group = matches!(group, "client" | "mysql");
            continue;
        }
        if !in_group || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "password"
        {
            let v = value.trim();
            let unquoted = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            found = Some(unquoted.to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn option_files_give_the_client_password_unquoted() {
        let text = "[mysqld]\npassword = server\n[client]\nuser = dake\npassword = \"p w\"\n";
        assert_eq!(option_file_password(text).as_deref(), Some("p w"));
        assert_eq!(option_file_password("[mysqld]\npassword=x\n"), None);
    }

    #[test]
    fn a_secret_never_prints() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("my.cnf");
        std::fs::write(&path, "[client]\npassword=pw\n").unwrap();
        let mut cfg = Config::builtin().database;
        cfg.password_env = String::new();
        cfg.option_file = path.display().to_string();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = password(&cfg).unwrap_err().to_string();
        assert!(
            err.contains("readable by group or others (mode 644)"),
            "{err}"
        );
        assert!(!err.contains("pw\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(password(&cfg).unwrap().unwrap().expose(), "pw");
    }
}
