//! The kubelet's `/stats/summary` (the subset `kubectl top` and the
//! metrics API read): per node and per pod container, CPU as cumulative
//! `usageCoreNanoSeconds` plus `usageNanoCores` (the rate since the
//! previous sample, as cAdvisor reports it) and memory `workingSetBytes`.
//! Containers come from `RuntimeService::container_stats`; the node from
//! `/proc/stat` and `/proc/meminfo`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One pod the node runs, with its containers' runtime ids.
#[derive(Debug, Clone)]
pub struct PodStatsRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// (container name, runtime container id)
    pub containers: Vec<(String, String)>,
}

/// What the agent tells the stats endpoint.
#[derive(Debug, Clone)]
pub struct SummaryInput {
    pub node_name: String,
    pub pods: Vec<PodStatsRef>,
}

/// How often the node samples CPU counters on its own (cAdvisor's
/// housekeeping interval), so a rate is ready before anyone asks.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);

/// A request takes a new sample only when the last one is at least this
/// old; closer samples would give a noisy rate over a tiny window.
const MIN_WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    cumulative_ns: u64,
    /// nanocores between the sample before and this one.
    rate: Option<u64>,
}

/// The last CPU sample of each cgroup (the node, and each container by
/// runtime id): `usageNanoCores` is the rate between the last two
/// samples, as cAdvisor reports it. Keys not seen in a full pass are
/// dropped, so the map is as large as what runs.
#[derive(Default)]
pub struct CpuSampler {
    samples: Mutex<HashMap<String, Sample>>,
}

impl CpuSampler {
    /// Records `cumulative_ns` for `key` at `now` (unless the last sample
    /// is younger than [`MIN_WINDOW`]) and returns the latest rate; 0
    /// until there are two samples.
    pub fn rate(&self, key: &str, now: Instant, cumulative_ns: u64) -> u64 {
        let mut map = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let next = match map.get(key) {
            Some(prev) if now.saturating_duration_since(prev.at) < MIN_WINDOW => {
                return prev.rate.unwrap_or(0);
            }
            Some(prev) if cumulative_ns >= prev.cumulative_ns => {
                let secs = (now - prev.at).as_secs_f64();
                Sample {
                    at: now,
                    cumulative_ns,
                    rate: Some(((cumulative_ns - prev.cumulative_ns) as f64 / secs) as u64),
                }
            }
            // First sample, or a counter that went back (a new cgroup
            // under an old key): start over.
            _ => Sample {
                at: now,
                cumulative_ns,
                rate: None,
            },
        };
        map.insert(key.to_string(), next);
        next.rate.unwrap_or(0)
    }

    /// Forgets every key not in `live`.
    pub fn retain(&self, live: &HashSet<String>) {
        let mut map = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|k, _| live.contains(k));
    }

    /// How many keys are kept (for tests).
    pub fn len(&self) -> usize {
        self.samples.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Node CPU time (all but idle and iowait), nanoseconds, from `/proc/stat`.
pub fn node_cpu_ns(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    let busy: u64 = v.iter().sum::<u64>() - v[3] - v[4];
    // USER_HZ is 100 on every Linux ABI Skiff runs on.
    Some(busy * 10_000_000)
}

/// (total, working set) bytes from `/proc/meminfo`.
pub fn node_memory(meminfo: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    let total = field("MemTotal:")?;
    let available = field("MemAvailable:")?;
    Some((total, total.saturating_sub(available)))
}

/// The node's own key in the sampler (container ids are hex).
const NODE_KEY: &str = "node";

fn now_rfc3339() -> String {
    crate::logs::rfc3339_nano(jiff::Timestamp::now())
}

/// Builds the summary document, sampling CPU counters through `sampler`.
pub async fn summary(
    runtime: &dyn skiff_runtime::RuntimeService,
    sampler: &CpuSampler,
    input: SummaryInput,
) -> Value {
    let now = Instant::now();
    let time = now_rfc3339();
    let cpu_ns = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| node_cpu_ns(&s))
        .unwrap_or(0);
    let (mem_total, mem_ws) = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| node_memory(&s))
        .unwrap_or((0, 0));
    let node_rate = sampler.rate(NODE_KEY, now, cpu_ns);
    let mut live: HashSet<String> = HashSet::from([NODE_KEY.to_string()]);
    let mut pods = Vec::new();
    for p in &input.pods {
        let mut containers = Vec::new();
        let (mut pod_cpu, mut pod_rate, mut pod_mem) = (0u64, 0u64, 0u64);
        for (name, id) in &p.containers {
            let Ok(s) = runtime.container_stats(id).await else {
                continue;
            };
            let r = sampler.rate(id, now, s.cpu_usage_ns);
            live.insert(id.clone());
            pod_cpu += s.cpu_usage_ns;
            pod_rate += r;
            pod_mem += s.memory_working_set_bytes;
            containers.push(json!({
                "name": name,
                "cpu": {"time": time, "usageNanoCores": r, "usageCoreNanoSeconds": s.cpu_usage_ns},
                "memory": {
                    "time": time,
                    "usageBytes": s.memory_usage_bytes,
                    "workingSetBytes": s.memory_working_set_bytes,
                },
            }));
        }
        pods.push(json!({
            "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
            "startTime": time,
            "containers": containers,
            "cpu": {"time": time, "usageNanoCores": pod_rate, "usageCoreNanoSeconds": pod_cpu},
            "memory": {"time": time, "workingSetBytes": pod_mem},
        }));
    }
    sampler.retain(&live);
    json!({
        "node": {
            "nodeName": input.node_name,
            "startTime": time,
            "cpu": {"time": time, "usageNanoCores": node_rate, "usageCoreNanoSeconds": cpu_ns},
            "memory": {
                "time": time,
                "availableBytes": mem_total.saturating_sub(mem_ws),
                "workingSetBytes": mem_ws,
            },
        },
        "pods": pods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsing() {
        let stat = "cpu  100 0 50 1000 20 0 5 0 0 0\ncpu0 1 2 3 4 5\n";
        assert_eq!(node_cpu_ns(stat), Some(155 * 10_000_000));
        let mem = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    400 kB\n";
        assert_eq!(node_memory(mem), Some((1_024_000, 614_400)));
    }

    #[test]
    fn rates_need_two_samples() {
        let s = CpuSampler::default();
        let t = Instant::now();
        assert_eq!(s.rate("k", t, 1_000), 0);
        let r = s.rate("k", t + Duration::from_secs(2), 2_000_000_001);
        assert_eq!(r, (2_000_000_001 - 1_000) / 2);
        // Too soon for a new sample: the last rate again.
        assert_eq!(
            s.rate("k", t + Duration::from_millis(2100), 9_000_000_000),
            r
        );
        // A counter that went back starts over.
        assert_eq!(s.rate("k", t + Duration::from_secs(4), 5), 0);
        s.rate("gone", t, 1);
        s.retain(&HashSet::from(["k".to_string()]));
        assert_eq!(s.len(), 1);
    }
}
