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
