//! Which instances the fleet table shows and in what order. Computed in `update` when data,
//! sort or filter change, so `view` only slices the visible rows.

use std::cmp::Ordering;

use crate::domain::Instance;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Role,
    Name,
    Id,
    Zone,
    State,
    Checks,
    Cpu,
    P99,
}

impl SortColumn {
    pub const ALL: [SortColumn; 8] = [
        SortColumn::Role,
        SortColumn::Name,
        SortColumn::Id,
        SortColumn::Zone,
        SortColumn::State,
        SortColumn::Checks,
        SortColumn::Cpu,
        SortColumn::P99,
    ];

    pub fn next(self) -> SortColumn {
        let i = SortColumn::ALL.iter().position(|c| *c == self).unwrap_or(0);
        SortColumn::ALL[(i + 1) % SortColumn::ALL.len()]
    }

    /// (the word in "sort role ↑", the column's heading in the table).
    fn names(self) -> (&'static str, &'static str) {
        match self {
            SortColumn::Role => ("role", "ROLE"),
            SortColumn::Name => ("name", "NAME"),
            SortColumn::Id => ("id", "ID"),
            SortColumn::Zone => ("zone", "AZ"),
            SortColumn::State => ("state", "STATE"),
            SortColumn::Checks => ("checks", "CHK"),
            SortColumn::Cpu => ("cpu", "CPU"),
            SortColumn::P99 => ("p99", "P99"),
        }
    }

    pub fn label(self) -> &'static str {
        self.names().0
    }

    /// The column's heading in the fleet table, whose columns follow [`SortColumn::ALL`].
    pub fn heading(self) -> &'static str {
        self.names().1
    }
}

/// Missing datapoints (NaN) sort after every real value, whichever the direction.
fn metric(v: Option<f32>) -> f32 {
    v.filter(|v| !v.is_nan()).unwrap_or(f32::NEG_INFINITY)
}

fn compare(a: &Instance, b: &Instance, col: SortColumn) -> Ordering {
    let by_name = || a.name.cmp(&b.name);
    match col {
        SortColumn::Role => a.role.cmp(&b.role).then_with(by_name),
        SortColumn::Name => by_name(),
        SortColumn::Id => a.id.cmp(&b.id),
        SortColumn::Zone => a.az.cmp(&b.az).then_with(by_name),
        SortColumn::State => a.state.cmp(&b.state).then_with(by_name),
        SortColumn::Checks => a
            .health
            .checks
            .passed()
            .cmp(&b.health.checks.passed())
            .then_with(by_name),
        // Busiest and slowest first: that is what an operator sorts by these columns to find.
        SortColumn::Cpu => metric(b.latest_cpu())
            .total_cmp(&metric(a.latest_cpu()))
            .then_with(by_name),
        SortColumn::P99 => metric(b.latest_p99())
            .total_cmp(&metric(a.latest_p99()))
            .then_with(by_name),
    }
}

fn matches(inst: &Instance, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let needle = needle.to_lowercase();
    [
        inst.name.as_str(),
        inst.id.as_str(),
        inst.role.as_str(),
        inst.az.as_str(),
        inst.state.as_str(),
    ]
    .iter()
    .any(|field| field.to_lowercase().contains(&needle))
}

/// Indices into `instances`, filtered and sorted.
pub fn visible_order(
    instances: &[Instance],
    filter: &str,
    col: SortColumn,
    reverse: bool,
) -> Vec<usize> {
    let mut idx: Vec<usize> = instances
        .iter()
        .enumerate()
        .filter(|(_, i)| matches(i, filter))
        .map(|(n, _)| n)
        .collect();
    idx.sort_by(|&a, &b| {
        let o = compare(&instances[a], &instances[b], col);
        if reverse { o.reverse() } else { o }
    });
    idx
}
