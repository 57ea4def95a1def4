//! The head: every active series with its recent samples in compressed chunks, in memory.
//!
//! Invariants:
//! - Series refs are assigned in increasing order and never reused while the head lives; the
//!   WAL names series by ref.
//! - A series' in-order samples live in chunks with strictly increasing timestamps: closed
//!   chunks (immutable, shared with readers by `Arc`) and one open chunk. A chunk never spans
//!   two block ranges, so a block can take whole chunks.
//! - Samples older than the series' newest but within the out-of-order window go to a small
//!   sorted side buffer, merged on read.
//! - Every mutation happens under the database's append lock, after its WAL record was
//!   written; readers take only the per-series mutex, briefly, to snapshot chunks.

use crate::chunkenc::{XorAppender, XorIter};
use crate::postings::MemPostings;
use periscope_model::{Exemplar, FloatHistogram, HistogramSample, Labels, Matcher, MetricMetadata, Sample};
use periscope_storage::{MergeSamples, SampleIterator, VecSamples};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Samples per chunk before it is closed (Prometheus's figure: ~1 KiB chunks at 15 s scrapes).
pub(crate) const SAMPLES_PER_CHUNK: u16 = 120;
const SHARDS: usize = 16;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
pub(crate) fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}
pub(crate) fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

/// An immutable chunk of one series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClosedChunk {
    pub mint: i64,
    pub maxt: i64,
    pub bytes: Arc<[u8]>,
}

#[derive(Debug)]
pub(crate) struct OpenChunk {
    pub app: XorAppender,
    pub mint: i64,
}

#[derive(Debug)]
pub(crate) struct SeriesData {
    pub closed: Vec<ClosedChunk>,
    pub open: Option<OpenChunk>,
    /// Newest in-order timestamp, `i64::MIN` when the series has none.
    pub last_t: i64,
    pub last_v_bits: u64,
    /// Out-of-order samples, sorted by time, unique timestamps.
    pub ooo: Vec<Sample>,
    pub last_exemplar_t: i64,
    /// Native histogram samples, in their own chunks (a series may switch between floats and
    /// histograms; `last_t` covers both).
    pub hist: Option<Box<HistLane>>,
    /// Whether the sample at `last_t` is a histogram.
    pub last_is_hist: bool,
}

/// A series' native histograms: closed chunks (`histenc`) and the newest samples, decoded
/// until their chunk is closed.
#[derive(Debug, Default)]
pub(crate) struct HistLane {
    pub closed: Vec<ClosedChunk>,
    pub open: Vec<HistogramSample>,
}

impl HistLane {
    fn close_open(&mut self) {
        if let (Some(first), Some(last)) = (self.open.first(), self.open.last()) {
            let (mint, maxt) = (first.t, last.t);
            self.closed.push(ClosedChunk { mint, maxt, bytes: Arc::from(crate::histenc::encode(&self.open)) });
            self.open.clear();
        }
    }

    /// Every sample older than `end`, in time order.
    fn before(&self, end: i64) -> Vec<HistogramSample> {
        let mut out: Vec<HistogramSample> = Vec::new();
        for c in self.closed.iter().filter(|c| c.mint < end) {
            out.extend(decode_hist(&c.bytes).into_iter().filter(|s| s.t < end));
        }
        out.extend(self.open.iter().filter(|s| s.t < end).cloned());
        out
    }

    /// Drops every sample older than `end`.
    fn drop_before(&mut self, end: i64) {
        let mut kept = Vec::with_capacity(self.closed.len());
        for c in self.closed.drain(..) {
            if c.maxt < end {
                continue;
            }
            if c.mint < end {
                let rest: Vec<HistogramSample> = decode_hist(&c.bytes).into_iter().filter(|s| s.t >= end).collect();
                if let (Some(first), Some(last)) = (rest.first(), rest.last()) {
                    let (mint, maxt) = (first.t, last.t);
                    kept.push(ClosedChunk { mint, maxt, bytes: Arc::from(crate::histenc::encode(&rest)) });
                }
            } else {
                kept.push(c);
            }
        }
        self.closed = kept;
        self.open.retain(|s| s.t >= end);
    }

    fn is_empty(&self) -> bool {
        self.closed.is_empty() && self.open.is_empty()
    }

    fn min_t(&self) -> Option<i64> {
        self.closed.first().map(|c| c.mint).or(self.open.first().map(|s| s.t))
    }
}

/// The samples of a histogram chunk; a damaged chunk (which the engine never writes) reads
/// as empty.
pub(crate) fn decode_hist(bytes: &[u8]) -> Vec<HistogramSample> {
    crate::histenc::decode(bytes).unwrap_or_default()
}

/// Splits histogram samples sorted by time into encoded chunks of at most
/// [`SAMPLES_PER_CHUNK`] samples that never cross a multiple of `block_range`.
pub(crate) fn encode_hist_chunks(samples: &[HistogramSample], block_range: i64) -> Vec<ClosedChunk> {
    split_runs(samples, |s| s.t, block_range, SAMPLES_PER_CHUNK as usize)
        .into_iter()
        .filter_map(|part| {
            let (first, last) = (part.first()?, part.last()?);
            Some(ClosedChunk { mint: first.t, maxt: last.t, bytes: Arc::from(crate::histenc::encode(part)) })
        })
        .collect()
}

/// Splits items sorted by time into runs of at most `max` that never cross a multiple of
/// `block_range`.
pub(crate) fn split_runs<T>(items: &[T], time: impl Fn(&T) -> i64, block_range: i64, max: usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=items.len() {
        let cut = i == items.len()
            || i - start >= max
            || time(&items[i]).div_euclid(block_range) != time(&items[start]).div_euclid(block_range);
        if cut {
            out.push(&items[start..i]);
            start = i;
        }
    }
    out
}

impl SeriesData {
    fn new() -> Self {
        SeriesData {
            closed: Vec::new(),
            open: None,
            last_t: i64::MIN,
            last_v_bits: 0,
            ooo: Vec::new(),
            last_exemplar_t: i64::MIN,
            hist: None,
            last_is_hist: false,
        }
    }

    /// Appends an in-order histogram sample (`t > last_t`); closes the open histogram chunk
    /// when full or when `t` enters a new block range.
    pub(crate) fn append_histogram(&mut self, t: i64, h: Arc<FloatHistogram>, block_range: i64) {
        let lane = self.hist.get_or_insert_with(Default::default);
        let cut = lane.open.first().is_some_and(|f| {
            lane.open.len() >= SAMPLES_PER_CHUNK as usize || t.div_euclid(block_range) != f.t.div_euclid(block_range)
        });
        if cut {
            lane.close_open();
        }
        lane.open.push(HistogramSample { t, h });
        self.last_t = t;
        self.last_is_hist = true;
    }

    /// The newest histogram when it is the series' newest sample.
    pub(crate) fn last_histogram(&self) -> Option<&FloatHistogram> {
        if !self.last_is_hist {
            return None;
        }
        self.hist.as_ref()?.open.last().map(|s| &*s.h)
    }

    /// Histogram samples older than `end`, in time order.
    pub(crate) fn histograms_before(&self, end: i64) -> Vec<HistogramSample> {
        self.hist.as_ref().map(|l| l.before(end)).unwrap_or_default()
    }

    /// Replaces the series' histograms by `chunks` (oldest first), the last one decoded for
    /// appending when it has room. Used when restoring from a checkpoint.
    pub(crate) fn restore_histograms(&mut self, mut chunks: Vec<ClosedChunk>) {
        let mut lane = HistLane::default();
        if let Some(last) = chunks.last() {
            let samples = decode_hist(&last.bytes);
            if samples.len() < SAMPLES_PER_CHUNK as usize {
                chunks.pop();
                lane.open = samples;
            }
        }
        lane.closed = chunks;
        let newest = lane.open.last().map(|s| s.t).or(lane.closed.last().map(|c| c.maxt));
        if let Some(t) = newest {
            if t > self.last_t {
                self.last_t = t;
                // The newest histogram must be decoded for duplicate checks.
                if lane.open.is_empty() {
                    if let Some(c) = lane.closed.pop() {
                        lane.open = decode_hist(&c.bytes);
                    }
                }
                self.last_is_hist = true;
            }
        }
        self.hist = (!lane.is_empty()).then(|| Box::new(lane));
    }

    /// Histogram chunks overlapping `[mint, maxt]` and the open samples there, for a reader.
    pub(crate) fn histogram_snapshot(&self, mint: i64, maxt: i64) -> (Vec<Arc<[u8]>>, Vec<HistogramSample>) {
        let Some(lane) = &self.hist else { return (Vec::new(), Vec::new()) };
        let chunks = lane.closed.iter().filter(|c| c.mint <= maxt && mint <= c.maxt).map(|c| c.bytes.clone()).collect();
        let open = lane.open.iter().filter(|s| mint <= s.t && s.t <= maxt).cloned().collect();
        (chunks, open)
    }

    /// Whether the series holds no sample of either kind.
    pub(crate) fn is_empty(&self) -> bool {
        self.closed.is_empty() && self.open.is_none() && self.ooo.is_empty() && self.hist.is_none()
    }

    /// The oldest timestamp held, of either kind.
    pub(crate) fn min_t(&self) -> Option<i64> {
        let a = self.closed.first().map(|c| c.mint).or(self.open.as_ref().map(|o| o.mint));
        let b = self.ooo.first().map(|s| s.t);
        let c = self.hist.as_ref().and_then(|l| l.min_t());
        a.into_iter().chain(b).chain(c).min()
    }

    /// Appends an in-order sample (`t > last_t`); cuts the open chunk when full or when `t`
    /// enters a new block range.
    pub(crate) fn append_in_order(&mut self, t: i64, v: f64, block_range: i64) {
        let cut = match &self.open {
            Some(o) => {
                o.app.count() >= SAMPLES_PER_CHUNK || t.div_euclid(block_range) != o.mint.div_euclid(block_range)
            }
            None => false,
        };
        if cut {
            self.close_open();
        }
        let open = self.open.get_or_insert_with(|| OpenChunk { app: XorAppender::new(), mint: t });
        open.app.append(t, v);
        self.last_t = t;
        self.last_v_bits = v.to_bits();
        self.last_is_hist = false;
    }

    pub(crate) fn close_open(&mut self) {
        if let Some(o) = self.open.take() {
            if o.app.count() > 0 {
                self.closed.push(ClosedChunk { mint: o.mint, maxt: o.app.last_t(), bytes: Arc::from(o.app.bytes()) });
            }
        }
    }

    /// The value stored at exactly `t` among in-order and out-of-order samples.
    pub(crate) fn value_at(&self, t: i64) -> Option<u64> {
        if let Ok(i) = self.ooo.binary_search_by_key(&t, |s| s.t) {
            return Some(self.ooo[i].v.to_bits());
        }
        let scan = |bytes: &[u8]| XorIter::new(bytes).find(|(st, _)| *st >= t).filter(|(st, _)| *st == t);
        if let Some(o) = &self.open {
            if o.mint <= t && t <= o.app.last_t() {
                return scan(o.app.bytes()).map(|(_, v)| v.to_bits());
            }
        }
        let i = self.closed.partition_point(|c| c.maxt < t);
        let c = self.closed.get(i)?;
        if c.mint <= t {
            return scan(&c.bytes).map(|(_, v)| v.to_bits());
        }
        None
    }

    /// Replaces the series' in-order data by `chunks` (oldest first), the last one reopened for
    /// appending when it has room. Used when restoring from a checkpoint.
    pub(crate) fn restore(&mut self, chunks: Vec<ClosedChunk>) {
        self.closed = chunks;
        self.open = None;
        if let Some(last) = self.closed.last() {
            if let Some(app) = XorAppender::from_bytes(&last.bytes) {
                self.last_t = app.last_t();
                self.last_v_bits = app.last_v().to_bits();
                if app.count() < SAMPLES_PER_CHUNK {
                    let mint = last.mint;
                    self.closed.pop();
                    self.open = Some(OpenChunk { app, mint });
                }
            }
        }
    }

    /// A copy of the data older than `end`, as [`SeriesData::take_before`] would return it,
    /// leaving the series unchanged: whole chunks when they end before `end`; samples decoded,
    /// merged with the out-of-order ones and re-encoded when a chunk straddles `end` or there
    /// are out-of-order samples.
    pub(crate) fn peek_before(&self, end: i64, block_range: i64) -> Vec<ClosedChunk> {
        self.peek_between(i64::MIN, end, block_range)
    }

    /// [`SeriesData::peek_before`] leaving out the out-of-order samples older than `floor`
    /// (a checkpoint logs those on their own, see `compact.rs`).
    pub(crate) fn peek_between(&self, floor: i64, end: i64, block_range: i64) -> Vec<ClosedChunk> {
        let open = self.open.as_ref().filter(|o| o.app.count() > 0).map(|o| ClosedChunk {
            mint: o.mint,
            maxt: o.app.last_t(),
            bytes: Arc::from(o.app.bytes()),
        });
        let all: Vec<&ClosedChunk> = self.closed.iter().chain(open.as_ref()).collect();
        let whole: Vec<ClosedChunk> = all.iter().filter(|c| c.maxt < end).map(|c| (*c).clone()).collect();
        let straddling: Vec<&&ClosedChunk> = all.iter().filter(|c| c.mint < end && end <= c.maxt).collect();
        let ooo: Vec<Sample> = self.ooo.iter().take_while(|s| s.t < end).filter(|s| s.t >= floor).copied().collect();
        if straddling.is_empty() && ooo.is_empty() {
            return whole;
        }
        let mut samples: Vec<Sample> = whole.iter().flat_map(|c| decode(&c.bytes)).collect();
        samples.extend(straddling.iter().flat_map(|c| decode(&c.bytes)).filter(|s| s.t < end));
        samples.extend(ooo);
        samples.sort_by_key(|s| s.t);
        samples.dedup_by_key(|s| s.t);
        encode_chunks(&samples, block_range)
    }

    /// Takes the data older than `end` out of the series for a block; returns it as
    /// [`SeriesData::peek_before`] does. Chunks straddling `end` keep their samples from `end`
    /// on.
    pub(crate) fn take_before(&mut self, end: i64, block_range: i64) -> Vec<ClosedChunk> {
        let taken = self.peek_before(end, block_range);
        let mut kept = Vec::with_capacity(self.closed.len());
        for c in self.closed.drain(..) {
            if c.maxt < end {
                continue;
            }
            if c.mint < end {
                let rest: Vec<Sample> = decode(&c.bytes).filter(|s| s.t >= end).collect();
                kept.extend(encode_chunks(&rest, block_range));
            } else {
                kept.push(c);
            }
        }
        self.closed = kept;
        if let Some(o) = self.open.take() {
            if o.app.count() > 0 && o.app.last_t() >= end {
                if o.mint < end {
                    let mut app = XorAppender::new();
                    let mut mint = None;
                    for s in decode(o.app.bytes()).filter(|s| s.t >= end) {
                        mint.get_or_insert(s.t);
                        app.append(s.t, s.v);
                    }
                    self.open = mint.map(|mint| OpenChunk { app, mint });
                } else {
                    self.open = Some(o);
                }
            }
        }
        let n = self.ooo.partition_point(|s| s.t < end);
        self.ooo.drain(..n);
        if let Some(lane) = &mut self.hist {
            lane.drop_before(end);
            if lane.is_empty() {
                self.hist = None;
                self.last_is_hist = false;
            }
        }
        taken
    }

    /// Inserts an out-of-order sample; the caller checked that `t` is free.
    pub(crate) fn insert_ooo(&mut self, t: i64, v: f64) {
        let i = self.ooo.partition_point(|s| s.t < t);
        self.ooo.insert(i, Sample::new(t, v));
    }

    /// Chunks and out-of-order samples overlapping `[mint, maxt]`, copied for a reader.
    fn snapshot(&self, mint: i64, maxt: i64) -> (Vec<Arc<[u8]>>, Vec<Sample>) {
        let mut chunks: Vec<Arc<[u8]>> =
            self.closed.iter().filter(|c| c.mint <= maxt && mint <= c.maxt).map(|c| c.bytes.clone()).collect();
        if let Some(o) = &self.open {
            if o.app.count() > 0 && o.mint <= maxt && mint <= o.app.last_t() {
                chunks.push(Arc::from(o.app.bytes()));
            }
        }
        let ooo = self.ooo.iter().filter(|s| mint <= s.t && s.t <= maxt).copied().collect();
        (chunks, ooo)
    }

    /// Approximate bytes held by the chunks.
    pub(crate) fn chunk_bytes(&self) -> usize {
        self.closed.iter().map(|c| c.bytes.len()).sum::<usize>()
            + self.open.as_ref().map_or(0, |o| o.app.bytes().len())
            + self.ooo.len() * std::mem::size_of::<Sample>()
            + self.hist.as_ref().map_or(0, |l| {
                l.closed.iter().map(|c| c.bytes.len()).sum::<usize>()
                    + l.open.iter().map(|s| histogram_bytes(&s.h)).sum::<usize>()
            })
    }
}

/// Approximate bytes of a decoded histogram.
fn histogram_bytes(h: &FloatHistogram) -> usize {
    std::mem::size_of::<FloatHistogram>()
        + 8 * (h.positive_buckets.len() + h.negative_buckets.len() + h.custom_values.len())
        + 8 * (h.positive_spans.len() + h.negative_spans.len())
}

/// The samples of an encoded chunk.
pub(crate) fn decode(bytes: &[u8]) -> impl Iterator<Item = Sample> + '_ {
    XorIter::new(bytes).map(|(t, v)| Sample::new(t, v))
}

/// Splits samples sorted by time, without repeated timestamps, into runs of at most
/// [`SAMPLES_PER_CHUNK`] samples that never cross a multiple of `block_range`.
pub(crate) fn split_chunks(samples: &[Sample], block_range: i64) -> Vec<&[Sample]> {
    split_runs(samples, |s| s.t, block_range, SAMPLES_PER_CHUNK as usize)
}

/// Encodes samples sorted by time, without repeated timestamps, into closed chunks that never
/// cross a multiple of `block_range` (see [`split_chunks`]).
pub(crate) fn encode_chunks(samples: &[Sample], block_range: i64) -> Vec<ClosedChunk> {
    split_chunks(samples, block_range)
        .into_iter()
        .filter_map(|part| {
            let (first, last) = (part.first()?, part.last()?);
            let mut app = XorAppender::new();
            for s in part {
                app.append(s.t, s.v);
            }
            Some(ClosedChunk { mint: first.t, maxt: last.t, bytes: Arc::from(app.bytes()) })
        })
        .collect()
}

/// One series of the head.
#[derive(Debug)]
pub(crate) struct MemSeries {
    pub sref: u64,
    pub labels: Labels,
    /// Whether the series' WAL record was written; a series created by an append whose WAL
    /// write failed is logged again by the next append that uses it.
    pub logged: AtomicBool,
    /// Set when head garbage collection dropped the series; an append that resolved it before
    /// must resolve again.
    pub removed: AtomicBool,
    pub data: Mutex<SeriesData>,
}

/// A bounded ring of the newest exemplars of a tenant, as Prometheus's circular exemplar
/// storage.
#[derive(Debug, Default)]
pub(crate) struct ExemplarRing {
    pub items: Vec<(u64, Exemplar)>,
    pub next: usize,
    pub capacity: usize,
}

impl ExemplarRing {
    pub(crate) fn push(&mut self, sref: u64, e: Exemplar) {
        if self.capacity == 0 {
            return;
        }
        if self.items.len() < self.capacity {
            self.items.push((sref, e));
        } else {
            self.items[self.next] = (sref, e);
        }
        self.next = (self.next + 1) % self.capacity;
    }
}

/// The head of one tenant.
#[derive(Debug)]
pub(crate) struct Head {
    shards: Vec<RwLock<HashMap<u64, Vec<Arc<MemSeries>>>>>,
    refs: RwLock<HashMap<u64, Arc<MemSeries>>>,
    pub postings: RwLock<MemPostings>,
    next_ref: AtomicU64,
    pub num_series: AtomicU64,
    /// Oldest and newest timestamps appended, for the head's range.
    pub min_t: AtomicI64,
    pub max_t: AtomicI64,
    /// Samples older than this are refused: their range was persisted into a block (the
    /// out-of-order window may still reach below it).
    pub min_valid_t: AtomicI64,
    /// While a block is being cut, out-of-order samples older than its end are refused: the
    /// cut copied the head's data before and drops it after.
    pub cut_end: AtomicI64,
    pub metadata: RwLock<HashMap<String, MetricMetadata>>,
    pub exemplars: Mutex<ExemplarRing>,
}

impl Head {
    pub(crate) fn new(max_exemplars: usize) -> Self {
        Head {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            refs: RwLock::new(HashMap::new()),
            postings: RwLock::new(MemPostings::default()),
            next_ref: AtomicU64::new(1),
            num_series: AtomicU64::new(0),
            min_t: AtomicI64::new(i64::MAX),
            max_t: AtomicI64::new(i64::MIN),
            min_valid_t: AtomicI64::new(i64::MIN),
            cut_end: AtomicI64::new(i64::MIN),
            metadata: RwLock::new(HashMap::new()),
            exemplars: Mutex::new(ExemplarRing { capacity: max_exemplars, ..Default::default() }),
        }
    }

    fn shard(&self, hash: u64) -> &RwLock<HashMap<u64, Vec<Arc<MemSeries>>>> {
        &self.shards[(hash as usize) % SHARDS]
    }

    /// The series with exactly these labels.
    pub(crate) fn get(&self, labels: &Labels, hash: u64) -> Option<Arc<MemSeries>> {
        read(self.shard(hash)).get(&hash)?.iter().find(|s| &s.labels == labels).cloned()
    }

    /// The series with this ref.
    pub(crate) fn by_ref(&self, sref: u64) -> Option<Arc<MemSeries>> {
        read(&self.refs).get(&sref).cloned()
    }

    /// Creates a series; `sref` is given on replay, assigned otherwise. Returns the existing
    /// series if one with these labels exists.
    pub(crate) fn create(&self, labels: Labels, hash: u64, sref: Option<u64>) -> (Arc<MemSeries>, bool) {
        let mut shard = write(self.shard(hash));
        let list = shard.entry(hash).or_default();
        if let Some(s) = list.iter().find(|s| s.labels == labels) {
            return (s.clone(), false);
        }
        let sref = match sref {
            Some(r) => {
                self.next_ref.fetch_max(r + 1, Ordering::Relaxed);
                r
            }
            None => self.next_ref.fetch_add(1, Ordering::Relaxed),
        };
        let s = Arc::new(MemSeries {
            sref,
            labels,
            logged: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            data: Mutex::new(SeriesData::new()),
        });
        list.push(s.clone());
        drop(shard);
        write(&self.postings).add(sref, &s.labels);
        write(&self.refs).insert(sref, s.clone());
        self.num_series.fetch_add(1, Ordering::Relaxed);
        (s, true)
    }

    pub(crate) fn note_time(&self, t: i64) {
        self.min_t.fetch_min(t, Ordering::Relaxed);
        self.max_t.fetch_max(t, Ordering::Relaxed);
    }

    /// Series matching `matchers`, sorted by labels if `sorted`, else in creation order.
    pub(crate) fn select(&self, matchers: &[Matcher], sorted: bool) -> Vec<Arc<MemSeries>> {
        let refs = crate::postings::select(&*read(&self.postings), matchers);
        let map = read(&self.refs);
        let mut out: Vec<Arc<MemSeries>> = refs.iter().filter_map(|r| map.get(r).cloned()).collect();
        drop(map);
        if sorted {
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
        out
    }

    /// Every series (for compaction and statistics).
    pub(crate) fn all_series(&self) -> Vec<Arc<MemSeries>> {
        read(&self.refs).values().cloned().collect()
    }

    /// Drops series that hold no sample any more (everything went into blocks). Called under
    /// the database's append lock, so no append uses a series while it is dropped.
    pub(crate) fn gc(&self) -> usize {
        let empty: Vec<Arc<MemSeries>> = self.all_series().into_iter().filter(|s| lock(&s.data).is_empty()).collect();
        for s in &empty {
            s.removed.store(true, Ordering::Release);
            let hash = s.labels.stable_hash();
            let mut shard = write(self.shard(hash));
            if let Some(list) = shard.get_mut(&hash) {
                list.retain(|x| x.sref != s.sref);
                if list.is_empty() {
                    shard.remove(&hash);
                }
            }
            drop(shard);
            write(&self.postings).remove(s.sref, &s.labels);
            write(&self.refs).remove(&s.sref);
            self.num_series.fetch_sub(1, Ordering::Relaxed);
        }
        empty.len()
    }

    /// Approximate bytes of sample data in memory.
    pub(crate) fn chunk_bytes(&self) -> usize {
        self.all_series().iter().map(|s| lock(&s.data).chunk_bytes()).sum()
    }
}

/// Iterates a series' head samples in `[mint, maxt]`, decoding a chunk at a time.
pub(crate) struct HeadSamples {
    chunks: Vec<Arc<[u8]>>,
    next_chunk: usize,
    buf: Vec<Sample>,
    pos: usize,
    mint: i64,
    maxt: i64,
}

impl HeadSamples {
    fn fill(&mut self) -> bool {
        while self.next_chunk < self.chunks.len() {
            let c = &self.chunks[self.next_chunk];
            self.next_chunk += 1;
            self.buf.clear();
            self.pos = 0;
            let (mint, maxt) = (self.mint, self.maxt);
            self.buf.extend(XorIter::new(c).filter(|(t, _)| mint <= *t && *t <= maxt).map(|(t, v)| Sample::new(t, v)));
            if !self.buf.is_empty() {
                return true;
            }
        }
        false
    }
}

impl SampleIterator for HeadSamples {
    fn next(&mut self) -> Option<Sample> {
        if self.pos >= self.buf.len() && !self.fill() {
            return None;
        }
        let s = self.buf[self.pos];
        self.pos += 1;
        Some(s)
    }

    fn collect_until(&mut self, max_t: i64, out: &mut Vec<Sample>) {
        let limit = max_t.min(self.maxt);
        for s in &self.buf[self.pos.min(self.buf.len())..] {
            if s.t > limit {
                self.pos = self.buf.len();
                self.next_chunk = self.chunks.len();
                return;
            }
            out.push(*s);
        }
        self.pos = self.buf.len();
        let mint = self.mint;
        while self.next_chunk < self.chunks.len() {
            let c = &self.chunks[self.next_chunk];
            self.next_chunk += 1;
            for (t, v) in XorIter::new(c) {
                if t < mint {
                    continue;
                }
                if t > limit {
                    self.next_chunk = self.chunks.len();
                    return;
                }
                out.push(Sample::new(t, v));
            }
        }
    }
}

/// The histogram samples of `series` in `[mint, maxt]`, decoded a chunk at a time.
pub(crate) fn series_histograms(series: &MemSeries, mint: i64, maxt: i64) -> periscope_storage::HistogramIter {
    let (chunks, open) = lock(&series.data).histogram_snapshot(mint, maxt);
    if chunks.is_empty() && open.is_empty() {
        return periscope_storage::no_histograms();
    }
    Box::new(
        chunks
            .into_iter()
            .flat_map(move |c| decode_hist(&c).into_iter().filter(move |s| mint <= s.t && s.t <= maxt))
            .chain(open),
    )
}

/// The samples of `series` in `[mint, maxt]`.
pub(crate) fn series_samples(series: &MemSeries, mint: i64, maxt: i64) -> Box<dyn SampleIterator> {
    let (chunks, ooo) = lock(&series.data).snapshot(mint, maxt);
    let in_order = HeadSamples { chunks, next_chunk: 0, buf: Vec::new(), pos: 0, mint, maxt };
    if ooo.is_empty() {
        Box::new(in_order)
    } else {
        Box::new(MergeSamples::new(vec![Box::new(in_order), Box::new(VecSamples::new(ooo))]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a chunk spanning a block boundary (restored from a checkpoint that merged
    /// out-of-order samples) must be split by `take_before`, or head compaction never advances.
    #[test]
    fn straddling_chunks_are_split() {
        let mut d = SeriesData::new();
        let samples: Vec<Sample> = (0..50).map(|i| Sample::new(i * 10, i as f64)).collect();
        // One chunk over [0, 490], crossing the boundary at 250 (as no live append would make).
        let mut app = XorAppender::new();
        for s in &samples {
            app.append(s.t, s.v);
        }
        d.restore(vec![ClosedChunk { mint: 0, maxt: 490, bytes: Arc::from(app.bytes()) }]);
        let taken = d.take_before(250, 250);
        let got: Vec<i64> = taken.iter().flat_map(|c| decode(&c.bytes)).map(|s| s.t).collect();
        assert_eq!(got, (0..25).map(|i| i * 10).collect::<Vec<_>>());
        assert!(d.peek_before(250, 250).is_empty());
        let rest: Vec<i64> = d.peek_before(i64::MAX, 250).iter().flat_map(|c| decode(&c.bytes)).map(|s| s.t).collect();
        assert_eq!(rest, (25..50).map(|i| i * 10).collect::<Vec<_>>());
        // Appending goes on after the split.
        d.append_in_order(500, 1.0, 250);
        assert_eq!(d.last_t, 500);
    }

    #[test]
    fn collect_until_matches_one_by_one_iteration() {
        let samples: Vec<Sample> = (0..300).map(|i| Sample::new(i * 10, i as f64)).collect();
        let chunks: Vec<Arc<[u8]>> = samples
            .chunks(120)
            .map(|part| {
                let mut app = XorAppender::new();
                for s in part {
                    app.append(s.t, s.v);
                }
                Arc::from(app.bytes())
            })
            .collect();
        for (mint, maxt, until, skip) in
            [(0, 2990, 2990, 0), (55, 2500, 1234, 3), (1200, 1300, 5000, 1), (0, 100, 50, 0)]
        {
            let mk = || HeadSamples { chunks: chunks.clone(), next_chunk: 0, buf: Vec::new(), pos: 0, mint, maxt };
            let mut a = mk();
            let mut expected = Vec::new();
            for _ in 0..skip {
                a.next();
            }
            while let Some(s) = a.next() {
                if s.t > until {
                    break;
                }
                expected.push(s);
            }
            let mut b = mk();
            for _ in 0..skip {
                b.next();
            }
            let mut got = Vec::new();
            b.collect_until(until, &mut got);
            assert_eq!(got, expected, "mint {mint} maxt {maxt} until {until} skip {skip}");
        }
    }

    #[test]
    fn encode_chunks_respects_block_ranges() {
        let samples: Vec<Sample> = (0..300).map(|i| Sample::new(i, 0.0)).collect();
        let chunks = encode_chunks(&samples, 100);
        assert!(chunks.iter().all(|c| c.mint.div_euclid(100) == c.maxt.div_euclid(100)));
        assert_eq!(chunks.iter().map(|c| XorIter::new(&c.bytes).len() as usize).sum::<usize>(), 300);
    }
}
