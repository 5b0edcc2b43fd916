//! GTID positions in both flavours, as text the servers print: MariaDB's `domain-server-seq`
//! lists and MySQL's `uuid:interval` sets. Pure: how far a replica has got, and which of its
//! transactions came from no server of the lineage (errant).

use std::collections::{BTreeMap, BTreeSet};

use super::Flavour;

/// One originating server's share of a position: a MariaDB server id or a MySQL source uuid.
pub type Origin = String;

/// A position: per replication stream (a MariaDB domain, a MySQL source uuid) and originating
/// server, how many transactions, and for MySQL the exact intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// MariaDB: (domain, server id) → last sequence number. MySQL: ("", uuid) → transactions.
    entries: BTreeMap<(String, Origin), u64>,
    /// MySQL only: uuid → closed intervals, for exact subtraction.
    intervals: BTreeMap<Origin, Vec<(u64, u64)>>,
}

impl Position {
    pub fn parse(flavour: Flavour, text: &str) -> Position {
        let mut p = Position::default();
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        for item in text.split(',').filter(|s| !s.is_empty()) {
            match flavour {
                Flavour::MariaDb => {
                    let parts: Vec<&str> = item.split('-').collect();
                    if let [domain, server, seq] = parts[..]
                        && let Ok(seq) = seq.parse::<u64>()
                    {
                        let slot = p
                            .entries
                            .entry((domain.to_string(), server.to_string()))
                            .or_default();
                        *slot = (*slot).max(seq);
                    }
                }
                Flavour::MySql => {
                    let mut parts = item.split(':');
                    let Some(uuid) = parts.next() else { continue };
                    let uuid = uuid.to_ascii_lowercase();
                    let list = p.intervals.entry(uuid.clone()).or_default();
                    for range in parts {
                        let (a, b) = range.split_once('-').unwrap_or((range, range));
                        if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
                            list.push((a, b));
                        }
                    }
                    let count = list.iter().map(|(a, b)| b.saturating_sub(*a) + 1).sum();
                    p.entries.insert((String::new(), uuid), count);
                }
            }
        }
        p
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every server that originated a transaction of this position.
    pub fn origins(&self) -> BTreeSet<Origin> {
        self.entries.keys().map(|(_, o)| o.clone()).collect()
    }

    /// Per stream, how far it has got: MariaDB's newest sequence number in each domain, MySQL's
    /// transaction count per source.
    fn progress(&self) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for ((domain, origin), &n) in &self.entries {
            let stream = if domain.is_empty() { origin } else { domain };
            let slot = out.entry(stream.clone()).or_default();
            *slot = (*slot).max(n);
        }
        out
    }

    /// Transactions ahead of `other` summed over the streams where this one is ahead: how much
    /// a replica positioned at `other` would lack.
    pub fn ahead_of(&self, other: &Position) -> u64 {
        let theirs = other.progress();
        self.progress()
            .iter()
            .map(|(s, &n)| n.saturating_sub(theirs.get(s).copied().unwrap_or(0)))
            .sum()
    }

    /// A single figure to order replicas by: transactions over every stream.
    pub fn total(&self) -> u64 {
        self.progress().values().sum()
    }

    /// The newer of two positions, stream by stream (what a replica holds once it has applied
    /// what it received).
    pub fn union(&self, other: &Position) -> Position {
        let mut out = self.clone();
        for (k, &n) in &other.entries {
            let slot = out.entries.entry(k.clone()).or_default();
            *slot = (*slot).max(n);
        }
        for (k, list) in &other.intervals {
            out.intervals.entry(k.clone()).or_default().extend(list);
        }
        out
    }

    /// This position without what `origins` originated (an errant server's transactions).
    pub fn without(&self, origins: &BTreeSet<Origin>) -> Position {
        Position {
            entries: self
                .entries
                .iter()
                .filter(|((_, o), _)| !origins.contains(o))
                .map(|(k, &n)| (k.clone(), n))
                .collect(),
            intervals: self
                .intervals
                .iter()
                .filter(|(o, _)| !origins.contains(*o))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// The part of this position whose originating server is not in `lineage`, as the server
    /// would print it.
    pub fn outside(&self, lineage: &BTreeSet<Origin>) -> String {
        self.entries
            .iter()
            .filter(|((_, origin), _)| !lineage.contains(origin))
            .map(|((domain, origin), n)| {
                if domain.is_empty() {
                    let ranges: Vec<String> = self.intervals[origin]
                        .iter()
                        .map(|(a, b)| {
                            if a == b {
                                a.to_string()
                            } else {
                                format!("{a}-{b}")
                            }
                        })
                        .collect();
                    format!("{origin}:{}", ranges.join(":"))
                } else {
                    format!("{domain}-{origin}-{n}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_positions_compare_by_domain() {
        let a = Position::parse(Flavour::MariaDb, "0-1-105");
        let b = Position::parse(Flavour::MariaDb, "0-1-98");
        assert_eq!(a.ahead_of(&b), 7);
        assert_eq!(b.ahead_of(&a), 0);
        let two = Position::parse(Flavour::MariaDb, "0-1-100, 1-3-7");
        assert_eq!(two.total(), 107);
        assert_eq!(two.ahead_of(&a), 7);
        assert_eq!(a.union(&two).total(), 112);
    }

    #[test]
    fn an_errant_servers_share_can_be_left_out() {
        let state = Position::parse(Flavour::MariaDb, "0-1-100,0-12-101");
        let errant = Position::parse(Flavour::MariaDb, "0-12-101").origins();
        assert_eq!(state.total(), 101);
        assert_eq!(state.without(&errant).total(), 100);
    }

    #[test]
    fn mariadb_errant_is_a_server_outside_the_lineage() {
        let state = Position::parse(Flavour::MariaDb, "0-1-100,0-12-101");
        let lineage = BTreeSet::from(["1".to_string()]);
        assert_eq!(state.outside(&lineage), "0-12-101");
        let lineage = BTreeSet::from(["1".to_string(), "12".to_string()]);
        assert_eq!(state.outside(&lineage), "");
    }

    #[test]
    fn mysql_sets_count_transactions_per_source() {
        let m = "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:11-18,\n\
                 aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee:1-2";
        let p = Position::parse(Flavour::MySql, m);
        assert_eq!(p.total(), 5 + 8 + 2);
        let behind = Position::parse(Flavour::MySql, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10");
        assert_eq!(p.ahead_of(&behind), 3 + 2);
        let lineage = BTreeSet::from(["3e11fa47-71ca-11e1-9e33-c80aa9429562".to_string()]);
        assert_eq!(
            p.outside(&lineage),
            "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee:1-2"
        );
    }

    #[test]
    fn empty_and_malformed_text_is_an_empty_position() {
        assert!(Position::parse(Flavour::MariaDb, "").is_empty());
        assert!(Position::parse(Flavour::MariaDb, "garbage").is_empty());
        assert_eq!(Position::parse(Flavour::MySql, "").total(), 0);
    }
}
