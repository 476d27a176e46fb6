//! A write benchmark for any [`Store`], run by `skiff bench store`.
//!
//! `clients` tasks each write as fast as their own acknowledgements come
//! back (a closed loop, like API-server handlers would), alternating
//! creates of new keys and CAS updates of the key just created, with
//! values the size of a small Kubernetes object. Keys live under
//! `/bench/<run>/` and are deleted afterwards (not timed).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::{Result, Store};

/// Bytes per value: about a small Pod or ConfigMap.
const VALUE_SIZE: usize = 1024;

#[derive(Clone, Debug)]
pub struct BenchReport {
    pub clients: usize,
    pub writes: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Acknowledged writes per second.
    pub throughput: f64,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} writes, {} clients: {:.0} writes/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.writes,
            self.clients,
            self.throughput,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.max.as_secs_f64() * 1e3,
        )
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs `total` writes from `clients` concurrent writers.
pub async fn bench_writes(
    store: Arc<dyn Store>,
    clients: usize,
    total: usize,
) -> Result<BenchReport> {
    let clients = clients.max(1);
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let value = Bytes::from(vec![b'x'; VALUE_SIZE]);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let writes = total / clients + usize::from(client < total % clients);
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(writes);
            let mut keys = Vec::new();
            let mut last = None;
            for i in 0..writes {
                let t = Instant::now();
                last = Some(match last.take() {
                    Some(kv) if i % 2 == 1 => {
                        let kv: crate::KeyValue = kv;
                        store
                            .update(&kv.key, value.clone(), kv.mod_revision)
                            .await?
                    }
                    _ => {
                        let key = format!("/bench/{run}/{client}/{i}");
                        let kv = store.create(&key, value.clone()).await?;
                        keys.push(key);
                        kv
                    }
                });
                latencies.push(t.elapsed());
            }
            Ok::<_, crate::Error>((latencies, keys))
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut keys = Vec::new();
    for task in tasks {
        let (l, k) = task
            .await
            .map_err(|e| crate::Error::Backend(format!("bench client failed: {e}")))??;
        latencies.extend(l);
        keys.push(k);
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let report = BenchReport {
        clients,
        writes: latencies.len(),
        elapsed,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        throughput: latencies.len() as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
    };
    // Clean up, in parallel, untimed.
    let cleanups: Vec<_> = keys
        .into_iter()
        .map(|keys| {
            let store = store.clone();
            tokio::spawn(async move {
                for key in keys {
                    store.delete(&key, None).await?;
                }
                Ok::<_, crate::Error>(())
            })
        })
        .collect();
    for cleanup in cleanups {
        cleanup
            .await
            .map_err(|e| crate::Error::Backend(format!("bench cleanup failed: {e}")))??;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{bench_writes, percentile};
    use crate::memory::MemoryStore;
    use crate::{RangeRequest, Store};

    #[test]
    fn percentiles() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&d, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.99), Duration::ZERO);
    }

    #[tokio::test]
    async fn bench_counts_and_cleans_up() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let report = bench_writes(store.clone(), 3, 100).await.unwrap();
        assert_eq!(report.writes, 100);
        assert!(report.p50 <= report.p99 && report.p99 <= report.max);
        let left = store
            .range(RangeRequest {
                prefix: "/bench/".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(left.kvs.is_empty());
    }
}
