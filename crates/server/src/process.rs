//! `process_*` metrics as client_golang's process collector exports them, read from `/proc`.

use std::fmt::Write as _;

/// Appends `process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds` and
/// `process_start_time_seconds`. Missing `/proc` (not Linux) writes nothing.
pub(crate) fn write_metrics(out: &mut String) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return };
    // Fields after the command name, which is in parentheses and may contain spaces.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { return };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3 of the full line, so index = field - 3.
    let field = |n: usize| f.get(n - 3).and_then(|s| s.parse::<f64>().ok());
    let ticks = 100.0; // sysconf(_SC_CLK_TCK) on every Linux we run on
    let page = 4096.0;
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        metric(
            out,
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            "counter",
            (utime + stime) / ticks,
        );
    }
    if let Some(rss) = field(24) {
        metric(out, "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", rss * page);
    }
    if let Some(vsize) = field(23) {
        metric(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", vsize);
    }
    if let (Some(start), Some(boot)) = (field(22), boot_time()) {
        metric(
            out,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            "gauge",
            boot + start / ticks,
        );
    }
    if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
        metric(out, "process_open_fds", "Number of open file descriptors.", "gauge", rd.count() as f64);
    }
    if let Some(max) = max_fds() {
        metric(out, "process_max_fds", "Maximum number of open file descriptors.", "gauge", max);
    }
}

fn metric(out: &mut String, name: &str, help: &str, ty: &str, v: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}\n{name} {v}");
}

fn boot_time() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    s.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

fn max_fds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = s.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_proc() {
        let mut s = String::new();
        super::write_metrics(&mut s);
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(s.contains("process_resident_memory_bytes "), "{s}");
            assert!(s.contains("process_cpu_seconds_total "));
        }
    }
}
