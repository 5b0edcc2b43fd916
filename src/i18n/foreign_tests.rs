//! What the libraries dake uses say (the catalog's `[foreign]` table), made by the libraries.

use super::said;
use super::*;

/// What the libraries say, made by the libraries: a config file's mistakes (toml and serde),
/// a number Rust cannot read, a command line clap rejects.
fn foreign_examples() -> Vec<String> {
    use crate::config::Config;
    let configs = [
        "[fleet]\nnmae = \"x\"\n",
        "[sim]\nspeed = \"fast\"\n",
        "[journal]\nmirror = \"s3\"\n",
        "[fleet\nname = 1\n",
        "[fleet]\nname = \"a\"\nname = \"b\"\n",
        "[sim]\nseed = -1\n",
        "[sim]\nweb_servers = 1.5\n",
        "[fleet]\nname = \n",
        "[runbook]\nanti_flap_secs = true\n",
        "[sim]\nzones = \"a\"\n",
        "[detect]\nslow_web_factor = [1]\n",
        "[sim]\nzones = [\"a\"\n",
        "[fleet]\nname = \"a\" \"b\"\n",
        "[fleet.]\n",
    ];
    let mut out: Vec<String> = configs
        .iter()
        .map(|t| Config::from_user_toml(t, "c.toml").unwrap_err().to_string())
        .collect();
    for t in ["id = \"x\"\n", "id = \"x\"\ntitle = 3\n"] {
        let e = crate::drill::scenario::Scenario::parse(t, "s.toml").unwrap_err();
        out.push(e.to_string());
    }
    out.push("abc".parse::<f64>().unwrap_err().to_string());
    out.push("".parse::<f64>().unwrap_err().to_string());
    out.push("".parse::<u64>().unwrap_err().to_string());
    out.push("1x".parse::<u64>().unwrap_err().to_string());
    out.push(
        "99999999999999999999"
            .parse::<u64>()
            .unwrap_err()
            .to_string(),
    );
    let command_lines: [&[&str]; 11] = [
        &["--frobnicate"],
        &["--presnt"],
        &["report", "-x"],
        &["drill", "-x"],
        &["--provider"],
        &["statsu"],
        &["run", "web-replace"],
        &["drill", "--report", "--report"],
        &["sql-grants", "--flavour", "mysq"],
        &["status", "--", "--json"],
        &["status", "--json=yes"],
    ];
    for args in command_lines {
        let e = crate::cli::command(Lang::En)
            .try_get_matches_from(std::iter::once("dake").chain(args.iter().copied()))
            .unwrap_err();
        let text = e.render().to_string();
        out.extend(
            text.lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()),
        );
    }
    out
}

#[test]
fn what_the_libraries_say_reads_in_japanese() {
    let examples = foreign_examples();
    let said_all: Vec<String> = examples
        .iter()
        .map(|e| said(Lang::Ja, e).into_owned())
        .collect();
    let catalog: toml::Table = toml::from_str(include_str!("../../assets/i18n/ja.toml")).unwrap();
    let mut unsaid = Vec::new();
    for (en, ja) in catalog["foreign"].as_table().unwrap() {
        let mark = said::parts(ja.as_str().unwrap())
            .into_iter()
            .filter_map(|p| match p {
                said::Part::Text(t) => Some(t),
                said::Part::Slot(_) => None,
            })
            .max_by_key(|t| t.len())
            .unwrap_or_default();
        if !said_all.iter().any(|s| s.contains(&mark)) {
            unsaid.push(en);
        }
    }
    assert!(
        unsaid.is_empty(),
        "no library here says {unsaid:#?}: {said_all:#?}"
    );
    let pairs = [
        (
            "c.toml:2: key `mirror`: unknown variant `s3`, expected `none` or `cloudwatch-logs`",
            "c.toml:2：キー `mirror`：不明な値 `s3`：`none` か `cloudwatch-logs`",
        ),
        (
            "c.toml:2: key `speed`: invalid type: string \"fast\", expected f64",
            "c.toml:2：キー `speed`：型が違う：文字列 \"fast\"、f64 であるべき",
        ),
        (
            "s.toml:1: key `title`: missing field `title`",
            "s.toml:1：キー `title`：キー `title` がない",
        ),
    ];
    for (en, ja) in pairs {
        assert!(
            examples.iter().any(|e| e == en),
            "{en} is not what the library says"
        );
        assert_eq!(said(Lang::Ja, en), ja);
    }
}
