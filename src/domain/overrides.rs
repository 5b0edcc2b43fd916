//! What only the operator can decide: a guard that refuses for a reason the operator may know
//! better names its override, and each one lifts that refusal alone. Here because a provider
//! refuses with one too (a tier failed over moments ago, read from the record every console
//! shares).

use serde::{Deserialize, Serialize};

/// A refusal the operator may lift, one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Override {
    /// A second failover of the same tier inside the anti-flapping window.
    AntiFlapping,
    /// The master still answers (over MySQL, or by its checks and heartbeat).
    MasterAnswers,
    /// Every replica is behind the limit, or the chosen one lacks what another received.
    LaggingReplica,
    /// The web server to replace is not slower than its peers.
    NotAnOutlier,
}

impl Override {
    pub const ALL: [Override; 4] = [
        Override::AntiFlapping,
        Override::MasterAnswers,
        Override::LaggingReplica,
        Override::NotAnOutlier,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Override::AntiFlapping => "anti-flapping",
            Override::MasterAnswers => "master-answers",
            Override::LaggingReplica => "lagging-replica",
            Override::NotAnOutlier => "not-an-outlier",
        }
    }

    pub fn parse(name: &str) -> Option<Override> {
        Override::ALL.into_iter().find(|o| o.name() == name)
    }

    /// What the operator types in the console: the name, in capitals.
    pub fn word(self) -> String {
        self.name().to_ascii_uppercase()
    }

    /// What going on anyway means.
    pub fn consequence(self) -> &'static str {
        match self {
            Override::AntiFlapping => {
                said!(
                    "a second failover of this tier so soon: if the first did not hold, this one may \
                     flap back"
                )
            }
            Override::MasterAnswers => {
                said!(
                    "the master still answers: it is failed over anyway, fenced first, and the writes \
                     it takes stop"
                )
            }
            Override::LaggingReplica => {
                said!(
                    "the replica promoted lacks what the master or another replica had: those \
                     transactions are lost"
                )
            }
            Override::NotAnOutlier => {
                said!("the server is no slower than its peers: a healthy server is replaced")
            }
        }
    }

    /// `why` refused, with this override offered: the engine and the console read the name
    /// back from the text ([`Override::named_in`]).
    pub fn refusal(self, why: impl std::fmt::Display) -> String {
        say!(
            "{why}. Going on anyway means {}: override `{}` (--override {}; in the console O, \
             then type {})",
            self.consequence(),
            self.name(),
            self.name(),
            self.word()
        )
    }

    /// The override a refusal offers, if it offers one.
    pub fn named_in(refusal: &str) -> Option<Override> {
        let (_, rest) = refusal.rsplit_once("override `")?;
        Override::parse(rest.split('`').next()?)
    }

    /// Where a run keeps an override given after it started, so a replayed run has it too.
    pub fn var(self) -> String {
        format!("override.{}", self.name())
    }
}
