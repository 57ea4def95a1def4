//! `periscope import`: backfill from an OpenMetrics or Prometheus text file with timestamps.
//!
//! The file is parsed as the scraper parses (lenient), samples are grouped by series and by
//! block range, and each range is written straight into a block of the embedded store (the
//! head and the WAL are not involved, as with `promtool tsdb create-blocks-from`). The server
//! must not be running on the same data directory: the directory lock refuses it.

use anyhow::{bail, Context, Result};
use periscope_model::{Labels, Sample, TenantId};
use periscope_textparse::{Format, ParseOptions};
use periscope_tsdb::{Tsdb, TsdbOptions};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

/// Options of one import.
pub(crate) struct ImportArgs {
    pub file: PathBuf,
    pub data_dir: PathBuf,
    pub tenant: String,
    pub format: Option<Format>,
    pub block_range_ms: i64,
}

/// What an import did, printed as the summary.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub samples: u64,
    pub series: usize,
    pub blocks: usize,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
    pub skipped_no_timestamp: u64,
    pub skipped_duplicate_timestamp: u64,
    pub exemplars_ignored: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "imported {} samples of {} series into {} blocks", self.samples, self.series, self.blocks)?;
        if let (Some(a), Some(b)) = (self.min_time, self.max_time) {
            writeln!(f, "time range: {} .. {} (ms since epoch)", a, b)?;
        }
        let skipped = self.skipped_no_timestamp + self.skipped_duplicate_timestamp;
        writeln!(f, "skipped {skipped} samples:")?;
        writeln!(f, "  {} without a timestamp (backfill needs explicit timestamps)", self.skipped_no_timestamp)?;
        writeln!(
            f,
            "  {} repeating an earlier timestamp of their series (the first was kept)",
            self.skipped_duplicate_timestamp
        )?;
        if self.exemplars_ignored > 0 {
            writeln!(f, "ignored {} exemplars (backfill stores samples only)", self.exemplars_ignored)?;
        }
        Ok(())
    }
}

/// Guesses the format: OpenMetrics files end with `# EOF`.
fn detect(input: &[u8]) -> Format {
    let trimmed = input.trim_ascii_end();
    if trimmed.ends_with(b"# EOF") {
        Format::OpenMetrics
    } else {
        Format::PromText
    }
}

/// A progress bar on stderr when it is a terminal, nothing otherwise.
struct Progress {
    on: bool,
    total: usize,
}

impl Progress {
    fn new(total: usize) -> Self {
        Progress { on: std::io::stderr().is_terminal(), total }
    }

    fn show(&self, done: usize, what: &str) {
        if !self.on {
            return;
        }
        let width = 30;
        let filled = (done * width).checked_div(self.total).unwrap_or(width);
        let mut err = std::io::stderr();
        let _ = write!(err, "\r[{}{}] {done}/{} {what}", "#".repeat(filled), "-".repeat(width - filled), self.total);
        if done == self.total {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}

fn read_input(file: &Path) -> Result<Vec<u8>> {
    if file == Path::new("-") {
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v).context("cannot read standard input")?;
        return Ok(v);
    }
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

/// Parses and groups; no I/O besides reading the input.
pub(crate) fn parse_input(input: &[u8], format: Option<Format>) -> Result<(BTreeMap<Labels, Vec<Sample>>, Summary)> {
    let format = format.unwrap_or_else(|| detect(input));
    let parsed = periscope_textparse::parse(input, format, &ParseOptions { strict: false, default_timestamp_ms: None })
        .map_err(|e| anyhow::anyhow!("cannot parse the input as {format:?}: {e}"))?;
    let mut summary = Summary::default();
    let mut series: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    for s in parsed.samples {
        if s.exemplar.is_some() {
            summary.exemplars_ignored += 1;
        }
        let Some(t) = s.timestamp_ms else {
            summary.skipped_no_timestamp += 1;
            continue;
        };
        summary.min_time = Some(summary.min_time.map_or(t, |m| m.min(t)));
        summary.max_time = Some(summary.max_time.map_or(t, |m| m.max(t)));
        series.entry(s.labels).or_default().push(Sample::new(t, s.value));
    }
    Ok((series, summary))
}

/// Runs an import and returns its summary.
pub(crate) fn run(args: ImportArgs) -> Result<Summary> {
    let tenant = TenantId::new(&args.tenant).with_context(|| format!("invalid --tenant {:?}", args.tenant))?;
    let input = read_input(&args.file)?;
    let (series, mut summary) = parse_input(&input, args.format)?;
    drop(input);
    if series.is_empty() {
        bail!("nothing to import: the input has no sample with a timestamp\n{summary}");
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;
    let _lock = super::DirLock::acquire(&args.data_dir)?;
    let opts = TsdbOptions {
        block_range_ms: args.block_range_ms,
        // No background work: this process only writes blocks and exits.
        maintenance_interval: std::time::Duration::ZERO,
        ..TsdbOptions::default()
    };
    let db = Tsdb::open(&args.data_dir.join("metrics"), opts).context("cannot open the metrics store")?;
    // One block range at a time, so the progress bar moves and memory holds one range's output.
    let range = args.block_range_ms;
    let mut by_range: BTreeMap<i64, BTreeMap<Labels, Vec<Sample>>> = BTreeMap::new();
    for (labels, samples) in series {
        for s in samples {
            by_range.entry(s.t.div_euclid(range)).or_default().entry(labels.clone()).or_default().push(s);
        }
    }
    let progress = Progress::new(by_range.len());
    let mut seen_series = std::collections::BTreeSet::new();
    for (i, (_, part)) in by_range.into_iter().enumerate() {
        seen_series.extend(part.keys().cloned());
        let r = db.import(&tenant, part).context("cannot write blocks")?;
        summary.samples += r.samples;
        summary.blocks += r.blocks;
        summary.skipped_duplicate_timestamp += r.duplicate_timestamps;
        progress.show(i + 1, "block ranges written");
    }
    summary.series = seen_series.len();
    periscope_storage::MetricStore::close(&db).map_err(|e| anyhow::anyhow!("closing the store failed: {e}"))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_counts() {
        let input =
            b"# TYPE a counter\na_total{x=\"1\"} 1 1000\na_total{x=\"1\"} 2 2000\na_total{x=\"1\"} 3 2000\nb 5\n";
        let (series, s) = parse_input(input, None).unwrap();
        assert_eq!(series.len(), 1);
        assert_eq!(series.values().next().unwrap().len(), 3);
        assert_eq!(s.skipped_no_timestamp, 1);
        assert_eq!((s.min_time, s.max_time), (Some(1000), Some(2000)));
        let om = b"# TYPE a gauge\na 1 1.5\n# EOF\n";
        let (series, _) = parse_input(om, None).unwrap();
        assert_eq!(series.values().next().unwrap()[0].t, 1500);
        assert!(parse_input(b"a{ 1 1\n", None).is_err());
    }
}
