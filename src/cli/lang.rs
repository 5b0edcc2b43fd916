//! The command line in the language on screen: clap's help and errors are English; in Japanese
//! each help text comes from the catalog's `[help]` table, clap's own words (headings, the
//! possible values, the defaults, the help subcommand) from `[ui]`, and an error clap reports
//! is said line by line.

use clap::builder::PossibleValue;
use clap::{Arg, ArgAction};

use super::Cli;
use crate::i18n::{Lang, help, said_line, tr};

/// This process's command line, its help and errors in the language asked for: `--lang` is
/// read before clap parses (the help is printed while parsing), else the locale's. Exits, as
/// clap does, after the help, the version or a command line it rejects.
pub fn parse() -> Cli {
    use clap::FromArgMatches;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let flag = args.iter().enumerate().find_map(|(i, a)| {
        let a = a.to_str()?;
        let value = match a.strip_prefix("--lang=") {
            Some(v) => v,
            None if a == "--lang" => args.get(i + 1)?.to_str()?,
            None => return None,
        };
        <Lang as clap::ValueEnum>::from_str(value, true).ok()
    });
    let lang = Lang::detect(flag, |k| std::env::var(k).ok());
    let parsed = command(lang)
        .try_get_matches_from(&args)
        .and_then(|m| Cli::from_arg_matches(&m));
    match parsed {
        Ok(cli) => cli,
        // The help and the version are printed as they are (the help is already in `lang`).
        Err(e) if lang == Lang::En || !e.use_stderr() => e.exit(),
        Err(e) => {
            eprint!("{}", say_error(lang, &e));
            std::process::exit(e.exit_code())
        }
    }
}

/// The command line, its help in `lang`: each about and help text from the catalog's `[help]`
/// table (keyed by the English clap shows), the headings and the help and version flags too.
pub fn command(lang: Lang) -> clap::Command {
    use clap::CommandFactory;
    let cmd = Cli::command();
    if lang == Lang::En {
        return cmd;
    }
    let mut cmd = in_lang(cmd, lang);
    // clap adds its help subcommand when it builds the command; only then can it be said.
    cmd.build();
    cmd.mut_subcommand("help", |h| {
        h.about(tr(
            lang,
            "Print this message or the help of the given subcommand(s)",
        ))
    })
}

fn in_lang(cmd: clap::Command, l: Lang) -> clap::Command {
    let about = cmd.get_about().map(|a| help(l, &a.to_string()));
    let mut cmd = cmd
        .mut_args(|a| {
            let heading = if a.is_positional() {
                tr(l, "Arguments")
            } else {
                tr(l, "Options")
            };
            let a = match a.get_help_heading() {
                Some(_) => a,
                None => a.help_heading(heading),
            };
            with_values(a, l)
        })
        .mut_subcommands(|s| in_lang(s, l))
        .disable_help_flag(true)
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::Help)
                .help(tr(l, "Print help"))
                .help_heading(tr(l, "Options")),
        )
        .help_template(tr(
            l,
            "{before-help}{about-with-newline}\nUsage: {usage}\n\n{all-args}{after-help}",
        ))
        .subcommand_help_heading(tr(l, "Commands"))
        .next_help_heading(tr(l, "Options"));
    if cmd.get_version().is_some() {
        cmd = cmd.disable_version_flag(true).arg(
            Arg::new("version")
                .short('V')
                .long("version")
                .action(ArgAction::Version)
                .help(tr(l, "Print version"))
                .help_heading(tr(l, "Options")),
        );
    }
    if let Some(about) = about {
        cmd = cmd.about(about);
    }
    cmd
}

/// `a` with its help in `l`, and the default and possible values clap would add in English
/// written into it instead: a line after the help with `-h`, a list under it with `--help`.
fn with_values(a: Arg, l: Lang) -> Arg {
    let text = a.get_help().map(|h| help(l, &h.to_string()));
    let takes_values = a.get_action().takes_values();
    let values: Vec<PossibleValue> = if takes_values && !a.is_hide_possible_values_set() {
        a.get_possible_values()
            .into_iter()
            .filter(|v| !v.is_hide_set())
            .collect()
    } else {
        Vec::new()
    };
    let defaults: Vec<String> = if takes_values && !a.is_hide_default_value_set() {
        a.get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect()
    } else {
        Vec::new()
    };
    if values.is_empty() && defaults.is_empty() {
        return match text {
            Some(t) => a.help(t),
            None => a,
        };
    }
    let text = text.unwrap_or_default();
    let default =
        (!defaults.is_empty()).then(|| format!("[{}{}]", tr(l, "default: "), defaults.join(" ")));
    let names: Vec<&str> = values.iter().map(|v| v.get_name()).collect();
    let short_values = (!values.is_empty())
        .then(|| format!("[{}{}]", tr(l, "possible values: "), names.join("、")));
    let short: Vec<String> = [Some(text.clone()), default.clone(), short_values.clone()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
    let mut long = text;
    if values.iter().any(|v| v.get_help().is_some()) {
        long.push_str("\n\n");
        long.push_str(tr(l, "Possible values:"));
        for v in &values {
            long.push_str(&format!("\n- {}", v.get_name()));
            if let Some(h) = v.get_help() {
                long.push_str(&format!("：{}", help(l, &h.to_string())));
            }
        }
    } else if let Some(v) = short_values {
        long.push_str(&format!("\n\n{v}"));
    }
    if let Some(d) = default {
        long.push_str(&format!("\n\n{d}"));
    }
    a.hide_possible_values(true)
        .hide_default_value(true)
        .help(short.join(" "))
        .long_help(long.trim_start().to_string())
}

/// Every about and help text of `cmd` and its subcommands as clap shows them, the possible
/// values' too.
pub fn help_texts(cmd: &clap::Command) -> Vec<String> {
    let mut out: Vec<String> = cmd.get_about().map(|a| a.to_string()).into_iter().collect();
    for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        out.extend(a.get_help().map(|h| h.to_string()));
        if !a.is_hide_possible_values_set() {
            let values = a.get_possible_values();
            out.extend(
                values
                    .iter()
                    .filter_map(|v| v.get_help())
                    .map(|h| h.to_string()),
            );
        }
    }
    for s in cmd.get_subcommands() {
        out.extend(help_texts(s));
    }
    out
}

/// What clap reports of a command line it rejects, in `lang`: its plain text said line by line,
/// each line's indent kept.
pub fn say_error(lang: Lang, error: &clap::Error) -> String {
    let text = error.render().to_string();
    if lang == Lang::En {
        return text;
    }
    text.split_inclusive('\n')
        .map(|line| {
            let body = line.trim_end_matches('\n');
            said_line(lang, body) + &line[body.len()..]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(args: &[&str]) -> String {
        let e = command(Lang::Ja)
            .try_get_matches_from(std::iter::once("dake").chain(args.iter().copied()))
            .unwrap_err();
        say_error(Lang::Ja, &e)
    }

    #[test]
    fn a_rejected_command_line_is_reported_in_japanese() {
        assert_eq!(
            rejected(&["statsu"]),
            "エラー：不明なサブコマンド 'statsu'\n\n  ヒント：似たサブコマンドがある：'status'\n\n\
             使い方：dake [OPTIONS] [COMMAND]\n\n詳しくは '--help'\n"
        );
        assert_eq!(
            rejected(&["run", "web-replace"]),
            "エラー：次の引数が必要：\n  --target <TARGET>\n\n\
             使い方：dake run --target <TARGET> <PLAYBOOK>\n\n詳しくは '--help'\n"
        );
        let value = rejected(&["sql-grants", "--flavour", "mysq"]);
        assert!(
            value.starts_with(
                "エラー：'--flavour <FLAVOUR>' に無効な値 'mysq'\n  [取りうる値：mariadb, mysql]\n\n  \
                 ヒント：似た値がある：'mysql'\n"
            ),
            "{value}"
        );
        // The reason a value parser gives is said too, ours and Rust's.
        let ours = rejected(&["run", "web-replace", "--target", "a", "--override", "x"]);
        assert!(
            ours.starts_with(
                "エラー：'--override <NAME>' に無効な値 'x'：オーバーライド `x` はない：\
                 anti-flapping, master-answers, lagging-replica, not-an-outlier のいずれか\n"
            ),
            "{ours}"
        );
        let rust = rejected(&["--speed", "abc", "status"]);
        assert!(
            rust.starts_with("エラー：'--speed <SPEED>' に無効な値 'abc'：数として読めない\n"),
            "{rust}"
        );
        assert!(
            rejected(&["drill", "--report", "--report"])
                .starts_with("エラー：引数 '--report' は一度しか使えない\n")
        );
    }

    #[test]
    fn english_is_clap_own() {
        let e = command(Lang::En)
            .try_get_matches_from(["dake", "statsu"])
            .unwrap_err();
        assert_eq!(say_error(Lang::En, &e), e.render().to_string());
        assert!(say_error(Lang::En, &e).starts_with("error: unrecognized subcommand 'statsu'"));
    }

    #[test]
    fn the_help_says_the_values_and_the_default_in_japanese() {
        let mut cmd = command(Lang::Ja);
        let long = cmd.render_long_help().to_string();
        assert!(
            long.contains(
                "取りうる値：\n          - sim：組み込みのシミュレーションのフリート（訓練：本物には何も触れない）"
            ),
            "{long}"
        );
        assert!(long.contains("[既定：sim]"), "{long}");
        let short = cmd.render_help().to_string();
        assert!(
            short.contains("フリートのデータの取得元 [既定：sim] [取りうる値：sim、aws]"),
            "{short}"
        );
        assert!(
            short.contains("このヘルプ、または指定したサブコマンドのヘルプを表示"),
            "{short}"
        );
        for english in [
            "Possible values",
            "possible values",
            "default:",
            "Print this message",
        ] {
            assert!(
                !long.contains(english) && !short.contains(english),
                "{english}"
            );
        }
    }
}
