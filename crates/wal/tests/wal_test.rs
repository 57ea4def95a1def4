#![allow(clippy::unwrap_used)]
//! Write, crash (by cutting files), replay: the log must give back exactly the whole records
//! written before the cut, in order.

use periscope_wal::{list_segments, replay, FsyncMode, Wal, WalOptions};
use proptest::prelude::*;
use std::path::Path;
use std::time::Duration;

fn read_all(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    replay(dir, 0, |_, p| {
        out.push(p.to_vec());
        Ok::<(), ()>(())
    })
    .unwrap()
    .unwrap();
    out
}

fn opts(segment_size: u64) -> WalOptions {
    WalOptions { segment_size, fsync: FsyncMode::Interval(Duration::from_millis(5)) }
}

#[test]
fn round_trip_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Vec<u8>> = (0..200u32).map(|i| vec![i as u8; 1 + (i as usize * 7) % 300]).collect();
    {
        let wal = Wal::open(dir.path(), opts(1024)).unwrap();
        for r in &records[..100] {
            wal.log(|b| b.extend_from_slice(r)).unwrap();
        }
    }
    assert!(list_segments(dir.path()).unwrap().len() > 5);
    {
        let wal = Wal::open(dir.path(), opts(1024)).unwrap();
        for r in &records[100..] {
            wal.log(|b| b.extend_from_slice(r)).unwrap();
        }
        // An empty payload writes nothing.
        wal.log(|_| ()).unwrap();
    }
    assert_eq!(read_all(dir.path()), records);
}

#[test]
fn torn_tail_is_cut_and_later_records_append_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), opts(1 << 20)).unwrap();
        for i in 0..10u8 {
            wal.log(|b| b.extend_from_slice(&[i; 100])).unwrap();
        }
    }
    let (_, last) = list_segments(dir.path()).unwrap().pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    // Tear the last record in the middle, as a write cut short by a crash would.
    std::fs::OpenOptions::new().write(true).open(&last).unwrap().set_len(len - 50).unwrap();
    let got = read_all(dir.path());
    assert_eq!(got.len(), 9);
    let wal = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    wal.log(|b| b.extend_from_slice(b"after")).unwrap();
    drop(wal);
    let got = read_all(dir.path());
    assert_eq!(got.len(), 10);
    assert_eq!(got[9], b"after");
}

#[test]
fn corrupt_byte_stops_that_segment_only() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), opts(1 << 20)).unwrap();
        for i in 0..4u8 {
            wal.log(|b| b.extend_from_slice(&[i; 10])).unwrap();
        }
        wal.cut().unwrap();
        wal.log(|b| b.extend_from_slice(b"next segment")).unwrap();
    }
    let segs = list_segments(dir.path()).unwrap();
    let mut data = std::fs::read(&segs[0].1).unwrap();
    data[8 + 18 + 8 + 3] ^= 0xff; // payload of the second record
    std::fs::write(&segs[0].1, &data).unwrap();
    let got = read_all(dir.path());
    assert_eq!(got, vec![vec![0u8; 10], b"next segment".to_vec()]);
}

#[test]
fn remove_segments_before_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    wal.log(|b| b.extend_from_slice(b"old")).unwrap();
    let next = wal.cut().unwrap();
    wal.log(|b| b.extend_from_slice(b"new")).unwrap();
    assert_eq!(wal.remove_segments_before(next).unwrap(), 1);
    drop(wal);
    assert_eq!(read_all(dir.path()), vec![b"new".to_vec()]);
}

#[test]
fn always_mode_group_commit_from_many_threads() {
    let dir = tempfile::tempdir().unwrap();
    let wal = std::sync::Arc::new(
        Wal::open(dir.path(), WalOptions { segment_size: 4096, fsync: FsyncMode::Always }).unwrap(),
    );
    let handles: Vec<_> = (0..4u8)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                for i in 0..50u8 {
                    wal.log(|b| b.extend_from_slice(&[t, i])).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let fsyncs = wal.stats().fsyncs.load(std::sync::atomic::Ordering::Relaxed);
    assert!(fsyncs >= 1);
    drop(wal);
    let got = read_all(dir.path());
    assert_eq!(got.len(), 200);
    // Each thread's records stay in its own order.
    for t in 0..4u8 {
        let mine: Vec<u8> = got.iter().filter(|r| r[0] == t).map(|r| r[1]).collect();
        assert_eq!(mine, (0..50).collect::<Vec<_>>());
    }
}

#[test]
fn closed_log_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    wal.close().unwrap();
    assert!(wal.log(|b| b.push(1)).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Model test: append random records, cut the files at a random byte (a crash), replay:
    /// the result is exactly the records that lie wholly before the cut, in order.
    #[test]
    fn crash_at_any_byte_replays_a_prefix(
        records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..200), 1..40),
        segment_size in 64u64..2048,
        cut_frac in 0.0f64..1.0,
    ) {
        let dir = tempfile::tempdir().unwrap();
        {
            let wal = Wal::open(dir.path(), opts(segment_size)).unwrap();
            for r in &records {
                wal.log(|b| b.extend_from_slice(r)).unwrap();
            }
        }
        // Concatenate the segments, pick a global cut point, truncate there and delete later segments.
        let segs = list_segments(dir.path()).unwrap();
        let sizes: Vec<u64> = segs.iter().map(|(_, p)| std::fs::metadata(p).unwrap().len()).collect();
        let total: u64 = sizes.iter().sum();
        let cut = (total as f64 * cut_frac) as u64;
        let mut acc = 0;
        let mut whole_records = 0usize;
        let mut ends = Vec::new();
        // Record end offsets, in global bytes, to know which records survive.
        for (i, (_, p)) in segs.iter().enumerate() {
            let data = std::fs::read(p).unwrap();
            let mut pos = 8usize;
            while pos + 8 <= data.len() {
                let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
                pos += 8 + len;
                ends.push(acc + pos as u64);
            }
            acc += sizes[i];
        }
        let mut acc = 0;
        for (i, (_, p)) in segs.iter().enumerate() {
            if acc + sizes[i] <= cut {
                acc += sizes[i];
                continue;
            }
            if acc >= cut {
                std::fs::remove_file(p).unwrap();
            } else {
                std::fs::OpenOptions::new().write(true).open(p).unwrap().set_len(cut - acc).unwrap();
            }
            acc += sizes[i];
        }
        for e in &ends {
            if *e <= cut { whole_records += 1; }
        }
        let got = read_all(dir.path());
        prop_assert_eq!(&got[..], &records[..whole_records]);
        // And the log accepts appends after the repair.
        let wal = Wal::open(dir.path(), opts(segment_size)).unwrap();
        wal.log(|b| b.extend_from_slice(b"x")).unwrap();
        drop(wal);
        prop_assert_eq!(read_all(dir.path()).len(), whole_records + 1);
    }
}
