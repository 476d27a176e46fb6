//! Resource amounts as the scheduler counts them: CPU in millicores,
//! everything else in base units, parsed once from quantities so the
//! filter and score loops only add and compare integers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Default CPU request (millicores) of a container without one, used for
/// scoring only, as upstream's `DefaultMilliCPURequest`.
pub const DEFAULT_MILLI_CPU: i64 = 100;
/// Default memory request of a container without one, for scoring only.
pub const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

/// Parses a quantity into an integer in base units, rounding up, scaled by
/// `scale` (1000 for millicores). Invalid quantities count as zero: the API
/// server validated them already.
pub fn parse_quantity(q: &str, scale: i64) -> i64 {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let Ok(n) = num.parse::<f64>() else { return 0 };
    let mult: f64 = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => match s[1..].parse::<i32>() {
            Ok(e) => 10f64.powi(e),
            Err(_) => return 0,
        },
        _ => return 0,
    };
    let v = n * mult * scale as f64;
    // Round up like `Quantity.MilliValue()`/`Value()`, tolerating float noise.
    let r = v.round();
    if (v - r).abs() < 1e-6 {
        r as i64
    } else {
        v.ceil() as i64
    }
}

/// A set of resource amounts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub pods: i64,
    /// Extended and hugepage resources, by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    pub fn from_map(map: Option<&BTreeMap<String, Quantity>>) -> Resource {
        let mut r = Resource::default();
        for (name, q) in map.into_iter().flatten() {
            r.set(name, &q.0);
        }
        r
    }

    fn set(&mut self, name: &str, q: &str) {
        match name {
            "cpu" => self.milli_cpu = parse_quantity(q, 1000),
            "memory" => self.memory = parse_quantity(q, 1),
            "ephemeral-storage" => self.ephemeral_storage = parse_quantity(q, 1),
            "pods" => self.pods = parse_quantity(q, 1),
            other if is_scalar(other) => {
                self.scalar.insert(other.to_string(), parse_quantity(q, 1));
            }
            _ => {}
        }
    }

    pub fn add(&mut self, o: &Resource) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.pods += o.pods;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub fn sub(&mut self, o: &Resource) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.pods -= o.pods;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Element-wise maximum.
    pub fn max_with(&mut self, o: &Resource) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar.get(name).copied().unwrap_or(0)
    }
}

/// Extended resources (`example.com/gpu`), hugepages and attachable volume
/// counts: everything counted that is not one of the four native names.
fn is_scalar(name: &str) -> bool {
    name.contains('/') || name.starts_with("hugepages-")
}

fn container_requests(c: &Container) -> Resource {
    let res = c.resources.as_ref();
    let mut r = Resource::from_map(res.and_then(|r| r.requests.as_ref()));
    // A limit without a request defaults the request (done by the API
    // server's defaulting upstream; repeated here for older objects).
    let limits = Resource::from_map(res.and_then(|r| r.limits.as_ref()));
    let reqs = res.and_then(|r| r.requests.as_ref());
    let has = |n: &str| reqs.is_some_and(|m| m.contains_key(n));
    if !has("cpu") {
        r.milli_cpu = limits.milli_cpu;
    }
    if !has("memory") {
        r.memory = limits.memory;
    }
    if !has("ephemeral-storage") {
        r.ephemeral_storage = limits.ephemeral_storage;
    }
    for (k, v) in &limits.scalar {
        r.scalar.entry(k.clone()).or_insert(*v);
    }
    r
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The pod's effective request, as upstream's `ComputePodResourceRequest`:
/// the larger of the regular containers plus sidecars and each init
/// container (plus the sidecars started before it), then the overhead.
/// With `non_zero`, containers without a CPU or memory request count the
/// scoring defaults instead.
pub fn pod_requests(spec: &PodSpec, non_zero: bool) -> Resource {
    let adjust = |mut r: Resource| {
        if non_zero {
            if r.milli_cpu == 0 {
                r.milli_cpu = DEFAULT_MILLI_CPU;
            }
            if r.memory == 0 {
                r.memory = DEFAULT_MEMORY;
            }
        }
        r
    };
    let mut total = Resource::default();
    for c in &spec.containers {
        total.add(&adjust(container_requests(c)));
    }
    let mut sidecars = Resource::default();
    let mut init_max = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let r = adjust(container_requests(c));
        if is_sidecar(c) {
            sidecars.add(&r);
            init_max.max_with(&sidecars);
        } else {
            let mut with = r;
            with.add(&sidecars);
            init_max.max_with(&with);
        }
    }
    total.add(&sidecars);
    total.max_with(&init_max);
    if let Some(o) = &spec.overhead {
        total.add(&Resource::from_map(Some(o)));
    }
    total.pods = 0;
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("100m", 1000), 100);
        assert_eq!(parse_quantity("2", 1000), 2000);
        assert_eq!(parse_quantity("0.5", 1000), 500);
        assert_eq!(parse_quantity("1Gi", 1), 1 << 30);
        assert_eq!(parse_quantity("128974848", 1), 128974848);
        assert_eq!(parse_quantity("129e6", 1), 129_000_000);
        assert_eq!(parse_quantity("1.5Mi", 1), 1572864);
        assert_eq!(parse_quantity("bogus", 1), 0);
    }

    fn container(cpu: &str, policy: Option<&str>) -> Container {
        Container {
            name: "c".into(),
            resources: Some(k8s_openapi::api::core::v1::ResourceRequirements {
                requests: Some([("cpu".to_string(), Quantity(cpu.into()))].into()),
                ..Default::default()
            }),
            restart_policy: policy.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn effective_request_takes_init_max_and_overhead() {
        let spec = PodSpec {
            containers: vec![container("100m", None), container("200m", None)],
            init_containers: Some(vec![container("500m", None)]),
            overhead: Some([("cpu".to_string(), Quantity("10m".into()))].into()),
            ..Default::default()
        };
        assert_eq!(pod_requests(&spec, false).milli_cpu, 510);
    }

    #[test]
    fn sidecars_add_to_containers() {
        let spec = PodSpec {
            containers: vec![container("100m", None)],
            init_containers: Some(vec![
                container("50m", Some("Always")),
                container("120m", None),
            ]),
            ..Default::default()
        };
        // max(100 + 50, 120 + 50) = 170
        assert_eq!(pod_requests(&spec, false).milli_cpu, 170);
    }

    #[test]
    fn non_zero_defaults_for_scoring() {
        let spec = PodSpec {
            containers: vec![Container::default()],
            ..Default::default()
        };
        let r = pod_requests(&spec, true);
        assert_eq!((r.milli_cpu, r.memory), (100, 200 * 1024 * 1024));
        assert_eq!(pod_requests(&spec, false).milli_cpu, 0);
    }
}
