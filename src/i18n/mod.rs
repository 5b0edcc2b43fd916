//! English, and Japanese with `--lang ja` (or a `ja` locale in LC_ALL, LC_MESSAGES or LANG).
//! The code says what it says in English; `assets/i18n/ja.toml` gives each such text its
//! Japanese, `{name}` filled in the same way in both; `ja-assets.toml` translates the titles
//! and explanations of the built-in playbooks and scenarios; `said` puts what dake says of the
//! fleet and a run (journaled in English) in Japanese where it is shown; `help` the command
//! line's help. A text without a translation stays English, and tests keep the catalog complete.

use std::borrow::Cow;
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    #[default]
    En,
    Ja,
}

impl Lang {
    /// `--lang` when given; else the locale's language, the first of LC_ALL, LC_MESSAGES and
    /// LANG that is set and not empty.
    pub fn detect(flag: Option<Lang>, env: impl Fn(&str) -> Option<String>) -> Lang {
        if let Some(l) = flag {
            return l;
        }
        let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .find_map(|k| env(k).filter(|v| !v.is_empty()));
        match locale {
            Some(l) if l.starts_with("ja") => Lang::Ja,
            _ => Lang::En,
        }
    }
}

/// `ja.toml`, parsed once. Checked by a test; a damaged catalog leaves every text in English.
static CATALOG: LazyLock<toml::Table> =
    LazyLock::new(|| toml::from_str(include_str!("../../assets/i18n/ja.toml")).unwrap_or_default());

static UI: LazyLock<toml::Table> = LazyLock::new(|| {
    CATALOG
        .get("ui")
        .and_then(|u| u.as_table())
        .cloned()
        .unwrap_or_default()
});

static ASSETS: LazyLock<toml::Table> = LazyLock::new(|| {
    toml::from_str(include_str!("../../assets/i18n/ja-assets.toml")).unwrap_or_default()
});

/// `en` in `lang`.
pub fn tr(lang: Lang, en: &'static str) -> &'static str {
    if lang == Lang::En {
        return en;
    }
    match UI.get(en).and_then(|v| v.as_str()) {
        Some(ja) => ja,
        None => en,
    }
}

/// `en` in `lang`, each `{name}` replaced by its value.
pub fn trf(lang: Lang, en: &'static str, args: &[(&str, &dyn std::fmt::Display)]) -> String {
    let mut out = tr(lang, en).to_string();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), &value.to_string());
    }
    out
}

/// A help text of the command line in `lang`: its Japanese from the catalog's `[help]` table,
/// else as it is.
pub fn help(lang: Lang, en: &str) -> String {
    let ja = (lang == Lang::Ja)
        .then(|| CATALOG.get("help")?.get(en)?.as_str())
        .flatten();
    ja.unwrap_or(en).to_string()
}

/// A built-in asset's text in `lang`, found at `path` in `ja-assets.toml` (`["playbook",
/// "web-replace", "title"]`); `en` when it has none.
pub fn asset<'a>(lang: Lang, path: &[&str], en: &'a str) -> Cow<'a, str> {
    if lang == Lang::En {
        return Cow::Borrowed(en);
    }
    lookup(path)
        .and_then(|v| v.as_str())
        .map_or(Cow::Borrowed(en), |ja| Cow::Owned(ja.to_string()))
}

/// The `i`th of a list in `ja-assets.toml` (a scenario's hints).
pub fn asset_item<'a>(lang: Lang, path: &[&str], i: usize, en: &'a str) -> Cow<'a, str> {
    if lang == Lang::En {
        return Cow::Borrowed(en);
    }
    lookup(path)
        .and_then(|v| v.as_array())
        .and_then(|a| a.get(i))
        .and_then(|v| v.as_str())
        .map_or(Cow::Borrowed(en), |ja| Cow::Owned(ja.to_string()))
}

fn lookup(path: &[&str]) -> Option<&'static toml::Value> {
    let (last, tables) = path.split_last()?;
    let mut t: &toml::Table = &ASSETS;
    for k in tables {
        t = t.get(*k)?.as_table()?;
    }
    t.get(*last)
}

#[cfg(test)]
mod foreign_tests;
mod said;
#[cfg(test)]
mod tests;

pub use said::{said, said_line};
