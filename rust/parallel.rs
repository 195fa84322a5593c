//! Data parallelism for the batch hot paths, with an off switch and fork safety.
//!
//! * `EMPG_PARALLELISM=0|false|off` runs every batch on one thread (like `TOKENIZERS_PARALLELISM`).
//! * `EMPG_NUM_THREADS=N` sizes the pool (default: the number of CPUs).
//! * Fork safety: vLLM and data loaders fork. A rayon pool built before a fork has no threads in the
//!   child, so the pool is keyed by process id and a child builds its own on first use (the
//!   parent's pool is leaked in the child, never joined).

use std::sync::{Arc, Mutex};

use rayon::{ThreadPool, ThreadPoolBuilder};

struct Pool {
    pid: u32,
    threads: usize,
    pool: Arc<ThreadPool>,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

/// Whether batches may run on several threads (`EMPG_PARALLELISM`, default on).
pub fn enabled() -> bool {
    match std::env::var("EMPG_PARALLELISM") {
        Ok(v) => !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "0" | "false" | "off" | "no"
        ),
        Err(_) => true,
    }
}

/// The number of worker threads a batch runs on now.
pub fn num_threads() -> usize {
    if !enabled() {
        return 1;
    }
    std::env::var("EMPG_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn pool() -> Arc<ThreadPool> {
    let pid = std::process::id();
    let threads = num_threads();
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = guard.as_ref() {
        if p.pid == pid && p.threads == threads {
            return p.pool.clone();
        }
    }
    let built = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("empg-{i}"))
            .build()
            .expect("could not start the empg thread pool"),
    );
    if let Some(old) = guard.replace(Pool {
        pid,
        threads,
        pool: built.clone(),
    }) {
        if old.pid != pid {
            // Inherited across fork: its threads do not exist here, so never join them.
            std::mem::forget(old);
        }
    }
    built
}

/// Run `f` inside empg's pool: rayon iterators in `f` use it (never rayon's global pool). With
/// parallelism off the pool has a single worker, so the batch runs sequentially.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool().install(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn install_runs_parallel_work_and_returns_its_result() {
        let total: u64 = install(|| (1..=1000u64).into_par_iter().sum());
        assert_eq!(total, 500_500);
    }
}
