//! A background thread that runs a pass at a fixed interval until stopped: the maintenance
//! loop of the metric, trace and log engines.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The thread, and the flag that stops it.
pub struct Periodic {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Periodic {
    /// Starts a thread named `name` that calls `pass` every `every` (first after one
    /// interval); with a zero interval, no thread.
    pub fn start(name: &str, every: Duration, mut pass: impl FnMut() + Send + 'static) -> std::io::Result<Periodic> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let handle = if every.is_zero() {
            None
        } else {
            let stop = stop.clone();
            let h = std::thread::Builder::new().name(name.into()).spawn(move || loop {
                {
                    let stopped = lock(&stop.0);
                    if *stopped {
                        return;
                    }
                    let (stopped, _) = stop.1.wait_timeout(stopped, every).unwrap_or_else(|p| p.into_inner());
                    if *stopped {
                        return;
                    }
                }
                pass();
            })?;
            Some(h)
        };
        Ok(Periodic { stop, handle: Mutex::new(handle) })
    }

    /// Stops the thread (after the pass it is in, if any) and waits for it. Idempotent.
    pub fn stop(&self) {
        *lock(&self.stop.0) = true;
        self.stop.1.notify_all();
        if let Some(h) = lock(&self.handle).take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn runs_until_stopped() {
        let n = Arc::new(AtomicU32::new(0));
        let m = n.clone();
        let p = Periodic::start("test-periodic", Duration::from_millis(5), move || {
            m.fetch_add(1, Ordering::Relaxed);
        })
        .expect("start");
        while n.load(Ordering::Relaxed) < 3 {
            std::thread::sleep(Duration::from_millis(2));
        }
        p.stop();
        let after = n.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(n.load(Ordering::Relaxed), after, "no pass after stop");
        p.stop();
        let idle = Periodic::start("test-idle", Duration::ZERO, || {}).expect("start");
        assert!(lock(&idle.handle).is_none());
        idle.stop();
    }
}
