//! Planning EndpointSlice writes with little churn, as upstream's
//! reconciler: an endpoint stays in the slice it is in; new endpoints
//! fill slices with room before new slices are made; a slice left empty
//! is deleted. Pure: the caller performs the plan.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

use super::desired::{MAX_ENDPOINTS_PER_SLICE, PortsKey, ports_key, slice_ports};

#[derive(Debug)]
pub enum SliceOp {
    /// Replace an existing slice (keeps its name and resourceVersion).
    Update(EndpointSlice),
    /// Create a slice (`generateName`).
    Create(EndpointSlice),
    Delete(String),
}

/// What every slice of the Service carries besides endpoints and ports.
pub struct Template {
    pub slice: EndpointSlice,
}

impl Template {
    fn build(
        &self,
        base: Option<&EndpointSlice>,
        key: &PortsKey,
        eps: Vec<Endpoint>,
    ) -> EndpointSlice {
        let mut s = self.slice.clone();
        if let Some(b) = base {
            s.metadata.name = b.metadata.name.clone();
            s.metadata.generate_name = b.metadata.generate_name.clone();
            s.metadata.resource_version = b.metadata.resource_version.clone();
            s.metadata.uid = b.metadata.uid.clone();
            s.metadata.annotations = b.metadata.annotations.clone();
        }
        s.endpoints = eps;
        s.ports = Some(slice_ports(key));
        s
    }
}

fn same(a: &EndpointSlice, b: &EndpointSlice) -> bool {
    a.endpoints == b.endpoints
        && a.ports.clone().unwrap_or_default() == b.ports.clone().unwrap_or_default()
        && a.address_type == b.address_type
        && a.metadata.labels == b.metadata.labels
        && a.metadata.owner_references == b.metadata.owner_references
}

fn address(e: &Endpoint) -> Option<&String> {
    e.addresses.first()
}

/// The writes that turn `existing` (this Service's managed slices of the
/// template's address type) into slices holding `desired`.
pub fn plan(
    existing: &[EndpointSlice],
    desired: &BTreeMap<PortsKey, Vec<Endpoint>>,
    t: &Template,
) -> Vec<SliceOp> {
    let mut ops = Vec::new();
    let mut existing: Vec<&EndpointSlice> = existing.iter().collect();
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let total: usize = desired.values().map(Vec::len).sum();
    if total == 0 {
        // Upstream keeps one placeholder slice with no endpoints.
        let key: PortsKey = Vec::new();
        let want = t.build(existing.first().copied(), &key, Vec::new());
        match existing.first() {
            Some(first) => {
                if !same(first, &want) {
                    ops.push(SliceOp::Update(want));
                }
            }
            None => ops.push(SliceOp::Create(want)),
        }
        for s in existing.iter().skip(1) {
            ops.push(SliceOp::Delete(s.metadata.name.clone().unwrap_or_default()));
        }
        return ops;
    }
    for (key, eps) in desired {
        let by_ip: BTreeMap<&String, &Endpoint> =
            eps.iter().filter_map(|e| Some((address(e)?, e))).collect();
        let mut placed: HashSet<&String> = HashSet::new();
        // Slices of this port group keep the endpoints they have.
        let mut kept: Vec<(&EndpointSlice, Vec<Endpoint>)> = Vec::new();
        existing.retain(|s| {
            if ports_key(s.ports.as_deref().unwrap_or_default()) != *key {
                return true;
            }
            let mut eps_here = Vec::new();
            for e in &s.endpoints {
                if let Some(ip) = address(e)
                    && let Some(want) = by_ip.get(ip)
                    && placed.insert(ip)
                {
                    eps_here.push((*want).clone());
                }
            }
            kept.push((s, eps_here));
            false
        });
        let mut fresh = eps
            .iter()
            .filter(|e| address(e).is_none_or(|ip| !placed.contains(ip)));
        for (_, eps_here) in kept.iter_mut() {
            while eps_here.len() < MAX_ENDPOINTS_PER_SLICE {
                match fresh.next() {
                    Some(e) => eps_here.push(e.clone()),
                    None => break,
                }
            }
        }
        for (s, eps_here) in kept {
            if eps_here.is_empty() {
                ops.push(SliceOp::Delete(s.metadata.name.clone().unwrap_or_default()));
                continue;
            }
            let want = t.build(Some(s), key, eps_here);
            if !same(s, &want) {
                ops.push(SliceOp::Update(want));
            }
        }
        let rest: Vec<Endpoint> = fresh.cloned().collect();
        for chunk in rest.chunks(MAX_ENDPOINTS_PER_SLICE) {
            ops.push(SliceOp::Create(t.build(None, key, chunk.to_vec())));
        }
    }
    // Slices of port groups that no longer exist.
    for s in existing {
        ops.push(SliceOp::Delete(s.metadata.name.clone().unwrap_or_default()));
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::EndpointConditions;

    fn ep(ip: &str, ready: bool) -> Endpoint {
        Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(ready),
                terminating: Some(false),
            }),
            ..Endpoint::default()
        }
    }

    fn template() -> Template {
        let mut slice = EndpointSlice {
            address_type: "IPv4".into(),
            ..EndpointSlice::default()
        };
        slice.metadata.generate_name = Some("web-".into());
        Template { slice }
    }

    fn key() -> PortsKey {
        vec![("".into(), 80, "TCP".into(), None)]
    }

    fn apply(existing: &mut Vec<EndpointSlice>, ops: Vec<SliceOp>, n: &mut u32) {
        for op in ops {
            match op {
                SliceOp::Create(mut s) => {
                    *n += 1;
                    s.metadata.name = Some(format!("web-{n}"));
                    existing.push(s);
                }
                SliceOp::Update(s) => {
                    let pos = existing
                        .iter()
                        .position(|e| e.metadata.name == s.metadata.name)
                        .expect("exists");
                    existing[pos] = s;
                }
                SliceOp::Delete(name) => {
                    existing.retain(|e| e.metadata.name.as_deref() != Some(&name))
                }
            }
        }
    }

    #[test]
    fn splits_at_one_hundred_and_keeps_endpoints_in_place() {
        let t = template();
        let mut desired = BTreeMap::new();
        let eps: Vec<Endpoint> = (0..250)
            .map(|i| ep(&format!("10.42.{}.{}", i / 200, i % 200), true))
            .collect();
        desired.insert(key(), eps.clone());
        let mut existing = Vec::new();
        let mut n = 0;
        let ops = plan(&existing, &desired, &t);
        apply(&mut existing, ops, &mut n);
        let mut sizes: Vec<usize> = existing.iter().map(|s| s.endpoints.len()).collect();
        sizes.sort();
        assert_eq!(sizes, [50, 100, 100]);
        assert!(
            plan(&existing, &desired, &t).is_empty(),
            "converged: nothing to write"
        );

        // One endpoint turns not ready: exactly one slice is rewritten.
        let mut changed = eps.clone();
        changed[7] = ep(&changed[7].addresses[0].clone(), false);
        desired.insert(key(), changed);
        let ops = plan(&existing, &desired, &t);
        assert_eq!(ops.len(), 1);
        assert!(matches!(ops[0], SliceOp::Update(_)));

        // A new endpoint goes to the slice with room.
        let mut more = eps.clone();
        more.push(ep("10.42.9.9", true));
        desired.insert(key(), more);
        let ops = plan(&existing, &desired, &t);
        assert_eq!(ops.len(), 1);
        match &ops[0] {
            SliceOp::Update(s) => assert_eq!(s.endpoints.len(), 51),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn empty_service_keeps_one_placeholder() {
        let t = template();
        let mut desired = BTreeMap::new();
        desired.insert(key(), vec![ep("10.42.0.1", true)]);
        let mut existing = Vec::new();
        let mut n = 0;
        let ops = plan(&existing, &desired, &t);
        apply(&mut existing, ops, &mut n);
        let ops = plan(&existing, &BTreeMap::new(), &t);
        apply(&mut existing, ops, &mut n);
        assert_eq!(existing.len(), 1);
        assert!(existing[0].endpoints.is_empty());
        assert!(plan(&existing, &BTreeMap::new(), &t).is_empty());
    }

    #[test]
    fn port_change_replaces_slices() {
        let t = template();
        let mut desired = BTreeMap::new();
        desired.insert(key(), vec![ep("10.42.0.1", true)]);
        let mut existing = Vec::new();
        let mut n = 0;
        let ops = plan(&existing, &desired, &t);
        apply(&mut existing, ops, &mut n);
        let mut other = BTreeMap::new();
        other.insert(
            vec![("".into(), 81, "TCP".into(), None)],
            vec![ep("10.42.0.1", true)],
        );
        let ops = plan(&existing, &other, &t);
        apply(&mut existing, ops, &mut n);
        assert_eq!(existing.len(), 1);
        assert_eq!(existing[0].ports.as_ref().and_then(|p| p[0].port), Some(81));
    }
}
