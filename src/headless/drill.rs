//! `dake drill --list` and `dake drill --report`: the scenarios, and the last scorecard as
//! Markdown with the attempts before it.

use std::path::Path;

use crate::drill::Scenario;
use crate::drill::scorecard::{earlier, load};
use crate::i18n::{Lang, asset};

/// One line per scenario: id, title, what the trainee is told.
pub fn list_text(scenarios: &[Scenario], l: Lang) -> String {
    scenarios
        .iter()
        .map(|s| {
            let title = asset(l, &["scenario", &s.id, "title"], &s.title);
            let brief = asset(l, &["scenario", &s.id, "brief"], &s.brief);
            format!("{:<21} {title}\n{:<21} {brief}\n", s.id, "")
        })
        .collect()
}

/// The last attempt at `scenario` (or at any scenario) saved at `results`, as Markdown.
pub fn report(results: &Path, scenario: Option<&str>, l: Lang) -> anyhow::Result<String> {
    let all = load(results);
    let last = all
        .iter()
        .rev()
        .find(|c| scenario.is_none_or(|s| c.scenario == s))
        .ok_or_else(|| match scenario {
            Some(s) => anyhow::anyhow!(say!("no attempt at `{s}` in {}", results.display())),
            None => anyhow::anyhow!(say!("no drill attempt in {}", results.display())),
        })?;
    Ok(last.markdown(l, &earlier(&all, &last.scenario, 3)))
}

/// The scenario named `id`, or an error listing them.
pub fn find(scenarios: &[Scenario], id: &str) -> anyhow::Result<Scenario> {
    crate::drill::scenario::find(scenarios, id)
        .cloned()
        .ok_or_else(|| {
            let ids: Vec<&str> = scenarios.iter().map(|s| s.id.as_str()).collect();
            anyhow::anyhow!(say!("no scenario `{id}`: one of {}", ids.join(", ")))
        })
}
