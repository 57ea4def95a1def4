//! Running log queries over a [`LogStore`]: select the streams, run the pipeline on every
//! entry, group the results by their final label set (stream labels, structured metadata and
//! extracted labels, as Loki 3 returns them without `categorize-labels`), order them in the
//! query's direction and keep the first `limit`.

use crate::ast::LogExpr;
use crate::pipeline::{CompileError, Pipeline, Row};
use periscope_model::{Labels, LogEntry, TenantId};
use periscope_storage::{Direction, LineFilter, LogQuery, LogStore, StoreError, StreamEntries};
use std::collections::BTreeMap;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Compile(#[from] CompileError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The range, direction and limit of a log query (`[start_ns, end_ns)`).
#[derive(Debug, Clone, Copy)]
pub struct LogParams {
    pub start_ns: i64,
    pub end_ns: i64,
    pub direction: Direction,
    pub limit: usize,
}

/// Runs a log query.
pub fn select_logs(
    store: &dyn LogStore,
    tenant: &TenantId,
    expr: &LogExpr,
    p: LogParams,
) -> Result<Vec<StreamEntries>, QueryError> {
    let pipeline = Pipeline::new(&expr.stages)?;
    // Line filters that come before every other stage go down to the store; a pipeline of
    // line filters alone can also push the limit down.
    let mut pushed = Vec::new();
    for s in &expr.stages {
        match s {
            crate::ast::Stage::LineFilter { op: crate::ast::LineFilterOp::Contains, values } if values.len() == 1 => {
                pushed.push(LineFilter::Contains(values[0].clone()))
            }
            crate::ast::Stage::LineFilter { op: crate::ast::LineFilterOp::NotContains, values } => {
                pushed.extend(values.iter().map(|v| LineFilter::NotContains(v.clone())))
            }
            crate::ast::Stage::LineFilter { .. } => {}
            _ => break,
        }
    }
    let only_filters = pipeline.line_filters_only();
    let q = LogQuery {
        matchers: expr.selector.clone(),
        start_ns: p.start_ns,
        end_ns: p.end_ns,
        direction: p.direction,
        limit: if only_filters && pushed.len() == expr.stages.len() { p.limit } else { 0 },
        line_filters: pushed,
        trace_id: None,
    };
    let selected = store.select_logs(tenant, &q)?;
    // (ts, label set, line) of every entry that passes, then ordered and limited.
    let mut rows: Vec<(i64, BTreeMap<String, String>, String)> = Vec::new();
    for s in selected {
        let base: BTreeMap<String, String> = s.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
        for e in s.entries {
            let mut labels = base.clone();
            for (k, v) in &e.metadata {
                labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
            if let Some(r) = pipeline.process(Row { ts_ns: e.ts_ns, line: e.line, labels }) {
                rows.push((e.ts_ns, r.labels, r.line));
            }
        }
    }
    match p.direction {
        Direction::Forward => rows.sort_by_key(|r| r.0),
        Direction::Backward => rows.sort_by_key(|r| std::cmp::Reverse(r.0)),
    }
    if p.limit > 0 {
        rows.truncate(p.limit);
    }
    let mut out: Vec<StreamEntries> = Vec::new();
    let mut index: BTreeMap<BTreeMap<String, String>, usize> = BTreeMap::new();
    for (ts, labels, line) in rows {
        let i = match index.get(&labels) {
            Some(i) => *i,
            None => {
                let l = Labels::from_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .unwrap_or_else(|_| Labels::empty());
                out.push(StreamEntries { labels: l, entries: Vec::new() });
                index.insert(labels, out.len() - 1);
                out.len() - 1
            }
        };
        out[i].entries.push(LogEntry { ts_ns: ts, line, metadata: Vec::new() });
    }
    Ok(out)
}
