use super::scenario::{self, Penalties, Scenario};
use super::*;
use crate::config::{Config, ConfigError};

#[test]
fn every_built_in_scenario_loads_and_names_playbooks_that_exist() {
    let all = load_all(None).unwrap();
    let playbooks = crate::runbook::model::load_all(None).unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "slow-web",
            "master-down",
            "master-down-lagging",
            "master-comes-back",
            "errant-replica",
            "noisy-neighbour",
            "double-fault"
        ]
    );
    for s in &all {
        for p in &s.expect.playbooks {
            assert!(
                crate::runbook::model::find(&playbooks, p).is_some(),
                "{}: {p}",
                s.id
            );
        }
        for step in s.par.step.keys() {
            assert!(
                playbooks
                    .iter()
                    .filter(|p| s.expect.playbooks.contains(&p.id))
                    .any(|p| p.step_index(step).is_some()),
                "{}: par for a step none of its playbooks has: {step}",
                s.id
            );
        }
        assert!(!s.hints.is_empty(), "{}", s.id);
        // The fleet it makes is a valid one, and its timeline is the simulator's.
        let c = s.apply(&Config::builtin());
        assert_eq!(c.sim.seed, s.seed);
        assert_eq!(c.sim.incidents.len() + c.sim.faults.len(), s.timeline.len());
    }
}

#[test]
fn the_default_penalties_are_all_there() {
    let p: Penalties = toml::from_str(include_str!("../../assets/scenarios/score.toml")).unwrap();
    assert!(p.healthy_removed > 0 && p.two_masters > 0 && p.hint > 0 && p.over_par > 0);
    let s = &load_all(None).unwrap()[0];
    assert_eq!(s.penalties(), p);
    let mut changed = s.clone();
    changed.score.hint = Some(0);
    assert_eq!(changed.penalties().hint, 0);
}

fn invalid(text: &str) -> (usize, String, String) {
    match Scenario::parse(text, "mine.toml") {
        Err(ConfigError::Invalid {
            file,
            line,
            key,
            message,
        }) => {
            assert_eq!(file, "mine.toml");
            (line, key, message)
        }
        other => panic!("not an invalid-key error: {other:?}"),
    }
}

const MINIMAL: &str = "id = \"mine\"\ntitle = \"t\"\nbrief = \"b\"\nlesson = \"l\"\n\
                       [expect]\nplaybooks = []\n";

#[test]
fn a_bad_scenario_is_one_error_naming_file_line_and_key() {
    let text = format!("{MINIMAL}[[timeline]]\nat_secs = 5\nkind = \"disk-full\"\n");
    let (line, key, message) = invalid(&text);
    assert_eq!((line, key.as_str()), (9, "kind"));
    assert!(
        message.contains("no incident or fault `disk-full`"),
        "{message}"
    );

    let text =
        format!("{MINIMAL}[[timeline]]\nat_secs = 5\nkind = \"slow-web\"\ntarget = \"web-9\"\n");
    let (line, key, message) = invalid(&text);
    assert_eq!((line, key.as_str()), (10, "target"));
    assert!(message.contains("no web server named `web-9`"), "{message}");

    let text = format!("{MINIMAL}[[timeline]]\nat_secs = 5\nkind = \"api-error\"\n");
    let (_, key, _) = invalid(&text);
    assert_eq!(key, "operation");

    let text =
        format!("{MINIMAL}colour = \"red\"\n[[timeline]]\nat_secs = 5\nkind = \"master-down\"\n");
    let (_, key, _) = invalid(&text.replace("colour = \"red\"\n", "").replacen(
        "title",
        "colour = 1\ntitle",
        1,
    ));
    assert_eq!(key, "colour");

    let (_, key, _) = invalid(MINIMAL);
    assert_eq!(key, "timeline");
}

#[test]
fn a_user_file_replaces_the_built_in_scenario_of_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let mine = format!(
        "{}[[timeline]]\nat_secs = 5\nkind = \"master-down\"\n",
        MINIMAL.replace("\"mine\"", "\"slow-web\"")
    );
    std::fs::write(dir.path().join("slow-web.toml"), mine).unwrap();
    let all = load_all(Some(dir.path())).unwrap();
    let s = scenario::find(&all, "slow-web").unwrap();
    assert_eq!(s.title, "t");
    assert_eq!(all.len(), 7);
    std::fs::write(dir.path().join("broken.toml"), "id = ").unwrap();
    let err = load_all(Some(dir.path())).unwrap_err().to_string();
    assert!(err.contains("broken.toml:1"), "{err}");
}

#[test]
fn the_banner_says_what_is_coming_without_naming_it() {
    let sim = Config::builtin().sim;
    assert_eq!(
        brief::upcoming(crate::i18n::Lang::En, &sim, 5),
        "DRILL: a web server will slow down in ~25s · scored drills: dake drill"
    );
    assert!(
        brief::upcoming(crate::i18n::Lang::En, &sim, 60)
            .starts_with("DRILL: the master database will go down in ~2m00s")
    );
    assert!(
        brief::upcoming(crate::i18n::Lang::En, &sim, 999)
            .starts_with("DRILL: nothing more is scheduled")
    );
    let s = load_all(None).unwrap().remove(0);
    let start = chrono::DateTime::UNIX_EPOCH;
    let mut d = DrillState::new(s, start, "op@host", 30.0);
    let at = |secs| start + chrono::Duration::seconds(secs);
    assert_eq!(
        brief::drill_line(crate::i18n::Lang::En, &d, at(10)),
        "DRILL slow-web: the web tier will misbehave in ~20s · h hint (3 left)"
    );
    assert!(d.next_hint(at(40)).is_some());
    assert_eq!(
        brief::drill_line(crate::i18n::Lang::En, &d, at(75)),
        "DRILL slow-web · 1m15s in · h hint (2 left)"
    );
    d.finish(at(80), "ended by the operator".into());
    assert_eq!(
        brief::drill_line(crate::i18n::Lang::En, &d, at(90)),
        "DRILL slow-web over: 95/100, ended by the operator"
    );
}
