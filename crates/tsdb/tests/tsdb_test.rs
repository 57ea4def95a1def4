#![allow(clippy::unwrap_used)]
//! The engine through the storage traits: append, select, reopen, Prometheus's rules for
//! out-of-order and duplicate samples, and a model-based test against a map in memory.

use periscope_model::{
    Exemplar, Labels, MatchOp, Matcher, MetricBatch, MetricMetadata, MetricType, Sample, SeriesSamples, TenantId,
    TimeRange,
};
use periscope_storage::{Appendable, MetricStore, Queryable, RejectReason, SelectHints};
use periscope_tsdb::{TenantLimits, Tsdb, TsdbOptions};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

const NOW: i64 = 1_700_000_000_000;

fn labels(name: &str, job: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("job", job)]).unwrap()
}

fn batch(series: Vec<(Labels, Vec<(i64, f64)>)>) -> MetricBatch {
    MetricBatch {
        series: series
            .into_iter()
            .map(|(labels, s)| SeriesSamples {
                labels,
                samples: s.into_iter().map(|(t, v)| Sample::new(t, v)).collect(),
                histograms: Vec::new(),
                exemplars: vec![],
            })
            .collect(),
        metadata: vec![],
    }
}

fn read_all(db: &Tsdb, tenant: &TenantId, matchers: &[Matcher]) -> Vec<(String, Vec<(i64, u64)>)> {
    let q = db.querier(tenant, TimeRange::all()).unwrap();
    q.select(matchers, &SelectHints::range(TimeRange::all()))
        .unwrap()
        .map(|s| {
            let mut s = s.unwrap();
            let mut v = vec![];
            while let Some(x) = s.samples.next() {
                v.push((x.t, x.v.to_bits()));
            }
            (s.labels.to_string(), v)
        })
        .collect()
}

fn name_is(n: &str) -> Matcher {
    Matcher::equal("__name__", n)
}

#[test]
fn append_select_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    {
        let db = Tsdb::open(dir.path(), TsdbOptions::default()).unwrap();
        let mut b = batch(vec![
            (labels("up", "b"), vec![(NOW, 1.0), (NOW + 15_000, 0.0)]),
            (labels("up", "a"), (0..300).map(|i| (NOW + i * 15_000, i as f64)).collect()),
            (labels("other", "a"), vec![(NOW, periscope_model::STALE_NAN)]),
        ]);
        b.series[1].exemplars.push(Exemplar {
            labels: Labels::from_pairs([("trace_id", "abc")]).unwrap(),
            t: NOW,
            v: 0.0,
        });
        b.metadata.push(MetricMetadata {
            metric_family: "up".into(),
            metric_type: MetricType::Gauge,
            help: "Whether the target is up.".into(),
            unit: String::new(),
        });
        let r = db.append_at(&t, &b, NOW + 7_200_000).unwrap();
        assert_eq!(r.samples_appended, 303);
        assert_eq!(r.series_created, 3);
        assert_eq!(r.exemplars_appended, 1);
        assert!(r.rejected.is_empty());
    }
    let db = Tsdb::open(dir.path(), TsdbOptions::default()).unwrap();
    let got = read_all(&db, &t, &[name_is("up")]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, r#"{__name__="up", job="a"}"#);
    assert_eq!(got[0].1.len(), 300);
    assert_eq!(got[0].1[299], (NOW + 299 * 15_000, 299f64.to_bits()));
    assert_eq!(got[1].1, vec![(NOW, 1f64.to_bits()), (NOW + 15_000, 0f64.to_bits())]);
    let stale = read_all(&db, &t, &[name_is("other")]);
    assert_eq!(stale[0].1, vec![(NOW, periscope_model::STALE_NAN_BITS)]);
    let md = db.metadata(&t, Some("up")).unwrap();
    assert_eq!(md.len(), 1);
    assert_eq!(md[0].metric_type, MetricType::Gauge);

    let q = db.querier(&t, TimeRange::all()).unwrap();
    assert_eq!(q.label_names(&[]).unwrap(), vec!["__name__", "job"]);
    assert_eq!(q.label_values("job", &[name_is("other")]).unwrap(), vec!["a"]);
    assert_eq!(q.label_values("__name__", &[]).unwrap(), vec!["other", "up"]);
    // A range that holds no sample of a series leaves that series out.
    let q = db.querier(&t, TimeRange::new(NOW + 20_000, NOW + 30_000)).unwrap();
    let n = q.select(&[name_is("up")], &SelectHints::range(TimeRange::all())).unwrap().count();
    assert_eq!(n, 1);
    // Selecting everything with only empty-matching matchers is refused.
    let m = Matcher::new(MatchOp::Regex, "job", ".*").unwrap();
    assert!(q.select(&[m], &SelectHints::range(TimeRange::all())).is_err());
    // Tenants are separate.
    let other = TenantId::new("other").unwrap();
    assert!(read_all(&db, &other, &[name_is("up")]).is_empty());
}

#[test]
fn out_of_order_and_duplicates_follow_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let db = Tsdb::open(dir.path(), TsdbOptions::default()).unwrap();
    let l = labels("m", "a");
    db.append_at(&t, &batch(vec![(l.clone(), vec![(NOW, 1.0), (NOW + 10, 2.0)])]), NOW).unwrap();
    let r = db
        .append_at(
            &t,
            &batch(vec![(l.clone(), vec![(NOW + 5, 9.0), (NOW + 10, 2.0), (NOW + 10, 3.0), (NOW + 20, 4.0)])]),
            NOW,
        )
        .unwrap();
    assert_eq!(r.samples_appended, 1);
    assert_eq!(r.duplicates_ignored, 1);
    assert_eq!(r.rejected, vec![(RejectReason::OutOfOrder, 1), (RejectReason::DuplicateTimestamp, 1)]);
    assert!(r.first_rejection.unwrap().contains("out of order sample"));
    // Too far in the future (default grace 10 minutes).
    let r = db.append_at(&t, &batch(vec![(l.clone(), vec![(NOW + 3_600_000, 1.0)])]), NOW).unwrap();
    assert_eq!(r.rejected, vec![(RejectReason::TooFarInFuture, 1)]);
    let got = read_all(&db, &t, &[name_is("m")]);
    assert_eq!(got[0].1.iter().map(|x| x.0).collect::<Vec<_>>(), vec![NOW, NOW + 10, NOW + 20]);
}

#[test]
fn out_of_order_window_accepts_and_merges_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let opts = TsdbOptions { out_of_order_window_ms: 60_000, ..Default::default() };
    let l = labels("m", "a");
    {
        let db = Tsdb::open(dir.path(), opts.clone()).unwrap();
        db.append_at(&t, &batch(vec![(l.clone(), vec![(NOW, 1.0), (NOW + 30_000, 3.0)])]), NOW).unwrap();
        let r = db
            .append_at(&t, &batch(vec![(l.clone(), vec![(NOW + 10_000, 2.0), (NOW - 120_000, 0.0), (NOW, 1.0)])]), NOW)
            .unwrap();
        assert_eq!(r.samples_appended, 1);
        assert_eq!(r.duplicates_ignored, 1);
        assert_eq!(r.rejected, vec![(RejectReason::OutOfOrder, 1)]);
    }
    let db = Tsdb::open(dir.path(), opts).unwrap();
    let got = read_all(&db, &t, &[name_is("m")]);
    assert_eq!(got[0].1.iter().map(|x| x.0).collect::<Vec<_>>(), vec![NOW, NOW + 10_000, NOW + 30_000]);
}

#[test]
fn series_limit_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let small = TenantId::new("small").unwrap();
    let opts = TsdbOptions {
        limits: Arc::new(|t: &TenantId| TenantLimits {
            max_series: if t.as_str() == "small" { 2 } else { 0 },
            ..Default::default()
        }),
        ..Default::default()
    };
    let db = Tsdb::open(dir.path(), opts).unwrap();
    let b = batch((0..5).map(|i| (labels("m", &i.to_string()), vec![(NOW, 1.0)])).collect());
    let r = db.append_at(&small, &b, NOW).unwrap();
    assert_eq!(r.series_created, 2);
    assert_eq!(r.rejected, vec![(RejectReason::SeriesLimit, 3)]);
    let r = db.append_at(&TenantId::default_tenant(), &b, NOW).unwrap();
    assert_eq!(r.series_created, 5);
    // Existing series keep taking samples at the limit.
    let b = batch(vec![(labels("m", "0"), vec![(NOW + 1, 2.0)])]);
    assert_eq!(db.append_at(&small, &b, NOW).unwrap().samples_appended, 1);
}

#[test]
fn chunks_are_cut_at_block_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let opts = TsdbOptions { block_range_ms: 1000, ..Default::default() };
    let db = Tsdb::open(dir.path(), opts).unwrap();
    let samples: Vec<(i64, f64)> = (0..50).map(|i| (i * 100, i as f64)).collect();
    db.append_at(&t, &batch(vec![(labels("m", "a"), samples.clone())]), NOW).unwrap();
    let got = read_all(&db, &t, &[name_is("m")]);
    assert_eq!(got[0].1, samples.iter().map(|(t, v)| (*t, v.to_bits())).collect::<Vec<_>>());
    let mut text = String::new();
    db.write_metrics(&mut text);
    assert!(text.contains("periscope_tsdb_samples_appended_total 50"), "{text}");
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<(u8, i64, u8)>),
    Reopen,
    Maintain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => proptest::collection::vec((0u8..6, 0i64..400, any::<u8>()), 1..30).prop_map(Op::Append),
        1 => Just(Op::Reopen),
        2 => Just(Op::Maintain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Random appends, cuts and restarts against a model: the store must hold exactly what the
    /// model accepted (Prometheus's in-order rule with an out-of-order window of 50 ms, which
    /// reaches ranges already in blocks).
    #[test]
    fn model_appends_and_restarts(ops in proptest::collection::vec(op(), 1..25)) {
        let dir = tempfile::tempdir().unwrap();
        let t = TenantId::default_tenant();
        let opts = TsdbOptions {
            out_of_order_window_ms: 50,
            block_range_ms: 64,
            retention_ms: 0,
            maintenance_interval: std::time::Duration::ZERO,
            ..Default::default()
        };
        let mut db = Tsdb::open(dir.path(), opts.clone()).unwrap();
        let mut model: BTreeMap<u8, BTreeMap<i64, u64>> = BTreeMap::new();
        let mut head_max = i64::MIN;
        for op in ops {
            match op {
                Op::Reopen => {
                    drop(db);
                    db = Tsdb::open(dir.path(), opts.clone()).unwrap();
                }
                Op::Maintain => {
                    db.maintain().unwrap();
                }
                Op::Append(samples) => {
                    // One series entry per sample keeps the order of the op list.
                    let b = batch(samples.iter().map(|(s, ts, v)| (labels("m", &s.to_string()), vec![(*ts, *v as f64)])).collect());
                    let r = db.append_at(&t, &b, 1_000).unwrap();
                    let mut accepted = 0;
                    let start_max = head_max;
                    let min_valid = db.min_valid_time(&t).unwrap_or(i64::MIN);
                    let mut batch_max = i64::MIN;
                    for (s, ts, v) in samples {
                        // Below the head's bound only the out-of-order window reaches.
                        if ts < min_valid && (start_max == i64::MIN || ts < start_max - 50) {
                            continue;
                        }
                        let series = model.entry(s).or_default();
                        let last = series.keys().next_back().copied().unwrap_or(i64::MIN);
                        let bits = (v as f64).to_bits();
                        if ts > last {
                            series.insert(ts, bits);
                            accepted += 1;
                            batch_max = batch_max.max(ts);
                        } else if let Some(existing) = series.get(&ts) {
                            let _ = existing;
                        } else if start_max != i64::MIN && ts >= start_max - 50 {
                            series.insert(ts, bits);
                            accepted += 1;
                        }
                    }
                    head_max = head_max.max(batch_max);
                    prop_assert_eq!(r.samples_appended, accepted);
                }
            }
        }
        let got = read_all(&db, &t, &[name_is("m")]);
        let want: Vec<(String, Vec<(i64, u64)>)> = model
            .iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(s, m)| (labels("m", &s.to_string()).to_string(), m.iter().map(|(t, v)| (*t, *v)).collect()))
            .collect();
        let mut want = want;
        want.sort();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn appendable_trait_uses_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), TsdbOptions::default()).unwrap();
    let r = Appendable::append(&db, &TenantId::default_tenant(), &batch(vec![(labels("m", "a"), vec![(NOW, 1.0)])]))
        .unwrap();
    assert_eq!(r.samples_appended, 1);
    db.close().unwrap();
    assert!(Appendable::append(&db, &TenantId::default_tenant(), &batch(vec![])).is_err());
}

fn opts_small_blocks() -> TsdbOptions {
    TsdbOptions {
        block_range_ms: 1000,
        maintenance_interval: std::time::Duration::ZERO,
        retention_ms: 0,
        ..Default::default()
    }
}

#[test]
fn head_is_cut_into_blocks_checkpointed_and_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let opts = opts_small_blocks();
    let db = Tsdb::open(dir.path(), opts.clone()).unwrap();
    // 10 series, one sample every 100 ms for 10 s: ten block ranges.
    let mut want: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    for step in 0..100i64 {
        let b = batch((0..10).map(|i| (labels("m", &i.to_string()), vec![(step * 100, (step * i) as f64)])).collect());
        db.append_at(&t, &b, 0).unwrap();
        for i in 0..10 {
            want.entry(labels("m", &i.to_string()).to_string())
                .or_default()
                .push((step * 100, ((step * i) as f64).to_bits()));
        }
    }
    let written = db.maintain().unwrap();
    assert!(written >= 8, "{written} blocks written");
    let blocks = db.blocks(&t);
    assert!(blocks.iter().any(|b| b.2 >= 2), "no compacted block: {blocks:?}");
    let check = |db: &Tsdb| {
        let got: BTreeMap<String, Vec<(i64, u64)>> = read_all(db, &t, &[name_is("m")]).into_iter().collect();
        assert_eq!(got, want);
    };
    check(&db);
    // A sample older than the newest block is refused as too old.
    let min_valid = db.min_valid_time(&t).unwrap();
    let r = db.append_at(&t, &batch(vec![(labels("m", "0"), vec![(min_valid - 1, 1.0)])]), 0).unwrap();
    assert_eq!(r.rejected, vec![(RejectReason::TooOld, 1)]);
    // The WAL was truncated behind a checkpoint.
    let wal = dir.path().join("default").join("wal");
    let entries: Vec<String> =
        std::fs::read_dir(&wal).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert!(entries.iter().any(|e| e.starts_with("checkpoint.")), "{entries:?}");
    drop(db);
    let db = Tsdb::open(dir.path(), opts.clone()).unwrap();
    check(&db);
    // Label queries see the blocks.
    let q = db.querier(&t, TimeRange::new(0, 500)).unwrap();
    assert_eq!(q.label_values("job", &[]).unwrap().len(), 10);
    let mut text = String::new();
    db.write_metrics(&mut text);
    assert!(text.contains("periscope_tsdb_compactions_total "), "{text}");
}

#[test]
fn retention_by_time_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let opts = TsdbOptions { retention_ms: 3000, ..opts_small_blocks() };
    let db = Tsdb::open(dir.path(), opts).unwrap();
    for step in 0..100i64 {
        let b = batch(vec![(labels("m", "a"), vec![(step * 100, 1.0)])]);
        db.append_at(&t, &b, 0).unwrap();
    }
    db.maintain().unwrap();
    let got = read_all(&db, &t, &[name_is("m")]);
    let oldest = got[0].1[0].0;
    // Newest sample 9900; blocks ending before 6900 are gone.
    assert!(oldest >= 5000, "oldest sample {oldest}");
    assert!(db.blocks(&t).iter().all(|b| b.1 >= 6900));
    drop(db);

    let dir = tempfile::tempdir().unwrap();
    let opts = TsdbOptions { retention_bytes: 1, ..opts_small_blocks() };
    let db = Tsdb::open(dir.path(), opts).unwrap();
    for step in 0..100i64 {
        db.append_at(&t, &batch(vec![(labels("m", "a"), vec![(step * 100, 1.0)])]), 0).unwrap();
    }
    db.maintain().unwrap();
    assert!(db.blocks(&t).is_empty(), "{:?}", db.blocks(&t));
    // The head still answers.
    assert!(!read_all(&db, &t, &[name_is("m")]).is_empty());
}

#[test]
fn background_maintenance_runs() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let opts = TsdbOptions { maintenance_interval: std::time::Duration::from_millis(20), ..opts_small_blocks() };
    let db = Tsdb::open(dir.path(), opts).unwrap();
    for step in 0..40i64 {
        db.append_at(&t, &batch(vec![(labels("m", "a"), vec![(step * 100, 1.0)])]), 0).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db.blocks(&t).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no block was cut in the background");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    db.close().unwrap();
}

#[test]
fn import_writes_blocks_that_queries_and_compaction_see() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let db = Tsdb::open(dir.path(), opts_small_blocks()).unwrap();
    // Live data in the head for one series, history for it and another imported.
    db.append_at(&t, &batch(vec![(labels("m", "a"), vec![(5000, 50.0)])]), 0).unwrap();
    let mut hist = BTreeMap::new();
    hist.insert(
        labels("m", "a"),
        (0..30).rev().map(|i| Sample::new(i * 100, i as f64)).chain([Sample::new(500, 9.0)]).collect::<Vec<_>>(),
    );
    hist.insert(labels("m", "b"), vec![Sample::new(100, 1.0)]);
    let r = db.import(&t, hist).unwrap();
    assert_eq!((r.blocks, r.series, r.samples, r.duplicate_timestamps), (3, 2, 31, 1));
    let got = read_all(&db, &t, &[name_is("m")]);
    assert_eq!(got[0].1.len(), 31);
    assert_eq!(got[0].1[30], (5000, 50f64.to_bits()));
    assert_eq!(got[1].1, vec![(100, 1f64.to_bits())]);
    drop(db);
    let db = Tsdb::open(dir.path(), opts_small_blocks()).unwrap();
    assert_eq!(read_all(&db, &t, &[name_is("m")])[0].1.len(), 31);
}

fn histogram(i: i64) -> periscope_model::FloatHistogram {
    use periscope_model::{BucketSpan, FloatHistogram};
    // The layout grows every 37 samples, as a real histogram's buckets fill in.
    let n = 2 + (i / 37) as u32;
    let positive_buckets: Vec<f64> = (0..n).map(|b| (i * (b as i64 + 1)) as f64).collect();
    FloatHistogram {
        schema: 2,
        zero_threshold: 1e-128,
        zero_count: 1.0,
        count: positive_buckets.iter().sum::<f64>() + 1.0,
        sum: i as f64 * 0.25,
        positive_spans: vec![BucketSpan { offset: -1, length: n }],
        positive_buckets,
        ..Default::default()
    }
}

fn read_histograms(db: &Tsdb, tenant: &TenantId, matchers: &[Matcher]) -> BTreeMap<String, Vec<(i64, f64, f64)>> {
    let q = db.querier(tenant, TimeRange::all()).unwrap();
    q.select(matchers, &SelectHints::range(TimeRange::all()))
        .unwrap()
        .map(|s| {
            let s = s.unwrap();
            let v = s.histograms.map(|h| (h.t, h.h.count, h.h.sum)).collect();
            (s.labels.to_string(), v)
        })
        .collect()
}

/// Native histograms go through every stage floats go through: the head, the WAL, blocks,
/// checkpoints, merged blocks and restarts; duplicates and older samples follow the float
/// rules, and a series may switch between floats and histograms.
#[test]
fn native_histograms_survive_blocks_checkpoints_compaction_and_restarts() {
    use periscope_model::HistogramSample;
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let opts = opts_small_blocks();
    let db = Tsdb::open(dir.path(), opts.clone()).unwrap();
    let mut want: BTreeMap<String, Vec<(i64, f64, f64)>> = BTreeMap::new();
    let append_step = |db: &Tsdb, step: i64, want: &mut BTreeMap<String, Vec<(i64, f64, f64)>>| {
        let mut b = batch(vec![]);
        for i in 0..3 {
            let l = labels("h", &i.to_string());
            let h = histogram(step * (i + 1));
            want.entry(l.to_string()).or_default().push((step * 100, h.count, h.sum));
            b.series.push(SeriesSamples {
                labels: l,
                histograms: vec![HistogramSample { t: step * 100, h: Arc::new(h) }],
                ..Default::default()
            });
        }
        let r = db.append_at(&t, &b, 0).unwrap();
        assert_eq!(r.samples_appended, 3);
    };
    for step in 0..=50 {
        append_step(&db, step, &mut want);
    }
    // Mid-way, before any maintenance: replay from the WAL alone.
    drop(db);
    let db = Tsdb::open(dir.path(), opts.clone()).unwrap();
    assert_eq!(read_histograms(&db, &t, &[name_is("h")]), want);
    for step in 51..100 {
        append_step(&db, step, &mut want);
    }
    // The same sample again is a duplicate and ignored; another histogram at the newest
    // timestamp is refused, as is an older one and a float at the newest timestamp.
    let last = HistogramSample { t: 9900, h: Arc::new(histogram(99)) };
    let other = HistogramSample { t: 9900, h: Arc::new(histogram(5)) };
    let older = HistogramSample { t: 9800, h: Arc::new(histogram(5)) };
    let mut b = batch(vec![(labels("h", "0"), vec![(9900, 1.0)])]);
    b.series[0].histograms = vec![last, other, older];
    let r = db.append_at(&t, &b, 0).unwrap();
    assert_eq!(r.duplicates_ignored, 1);
    assert_eq!(r.rejected, vec![(RejectReason::OutOfOrder, 1), (RejectReason::DuplicateTimestamp, 2)]);

    let written = db.maintain().unwrap();
    assert!(written >= 8, "{written} blocks written");
    assert!(db.blocks(&t).iter().any(|b| b.2 >= 2), "no compacted block");
    assert_eq!(read_histograms(&db, &t, &[name_is("h")]), want);
    // The series switches to floats; both kinds are read back.
    db.append_at(&t, &batch(vec![(labels("h", "0"), vec![(10_000, 7.0)])]), 0).unwrap();
    drop(db);
    let db = Tsdb::open(dir.path(), opts).unwrap();
    assert_eq!(read_histograms(&db, &t, &[name_is("h")]), want);
    let floats: Vec<_> = read_all(&db, &t, &[name_is("h")]).into_iter().filter(|(_, v)| !v.is_empty()).collect();
    assert_eq!(floats, vec![(labels("h", "0").to_string(), vec![(10_000, 7f64.to_bits())])]);
}

/// An out-of-order window longer than what the head keeps reaches ranges already in blocks,
/// as Prometheus's does: the samples are accepted, read back at once, survive a restart (WAL
/// and checkpoint), go to blocks of their own ranges at the next cut and are merged with the
/// blocks already there; samples older than the window are still refused.
#[test]
fn out_of_order_window_reaches_ranges_already_in_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    // 1 s blocks, a 5 s window.
    let opts = TsdbOptions { out_of_order_window_ms: 5_000, ..opts_small_blocks() };
    let l = labels("m", "a");
    let mut want: BTreeMap<i64, u64> = BTreeMap::new();
    let db = Tsdb::open(dir.path(), opts.clone()).unwrap();
    // In order every 100 ms for 6 s, cut into blocks as it goes.
    for k in 0..60i64 {
        db.append_at(&t, &batch(vec![(l.clone(), vec![(k * 100, k as f64)])]), 0).unwrap();
        want.insert(k * 100, (k as f64).to_bits());
        if k % 10 == 9 {
            db.maintain().unwrap();
        }
    }
    let min_valid = db.min_valid_time(&t).unwrap();
    assert!(min_valid >= 4_000, "head bound {min_valid}");
    // Into persisted ranges, inside the window (newest 5_900 → window back to 900).
    let old: Vec<(i64, f64)> = vec![(950, -1.0), (2_050, -2.0), (3_010, -3.0)];
    let r = db.append_at(&t, &batch(vec![(l.clone(), old.clone())]), 0).unwrap();
    assert_eq!((r.samples_appended, r.rejected_total()), (3, 0), "{r:?}");
    for (ts, v) in &old {
        want.insert(*ts, v.to_bits());
    }
    // Outside the window: refused as too old; an equal sample is a duplicate.
    let r = db.append_at(&t, &batch(vec![(l.clone(), vec![(850, 9.0), (950, -1.0)])]), 0).unwrap();
    assert_eq!((r.rejected.clone(), r.duplicates_ignored), (vec![(RejectReason::TooOld, 1)], 1));
    let check = |db: &Tsdb, want: &BTreeMap<i64, u64>, what: &str| {
        let got: BTreeMap<i64, u64> = read_all(db, &t, &[name_is("m")])[0].1.iter().copied().collect();
        assert_eq!(&got, want, "{what}");
    };
    check(&db, &want, "from the head");
    // A restart replays them from the WAL.
    drop(db);
    let db = Tsdb::open(dir.path(), opts.clone()).unwrap();
    check(&db, &want, "after replay");
    // More in-order data, cuts and merges: the old samples go to blocks and stay.
    for k in 60..90i64 {
        db.append_at(&t, &batch(vec![(l.clone(), vec![(k * 100, k as f64)])]), 0).unwrap();
        want.insert(k * 100, (k as f64).to_bits());
    }
    db.maintain().unwrap();
    check(&db, &want, "after the cut");
    // The old samples left the head: a block of their own range holds each of them.
    let blocks = db.blocks(&t);
    for (ts, _) in &old {
        let covering = blocks.iter().filter(|b| b.0 <= *ts && *ts <= b.1).count();
        assert!(covering >= 1, "{ts} in no block: {blocks:?}");
    }
    drop(db);
    let db = Tsdb::open(dir.path(), opts).unwrap();
    check(&db, &want, "after the checkpoint and a restart");
    db.maintain().unwrap();
    check(&db, &want, "after more merging");
    // Merging left no two blocks of the same range behind.
    let blocks = db.blocks(&t);
    assert!(blocks.windows(2).all(|w| w[0].1 < w[1].0), "overlapping blocks left: {blocks:?}");
}
