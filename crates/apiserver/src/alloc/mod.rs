//! Service cluster IP and node port allocation (upstream's
//! `pkg/registry/core/service/ipallocator` and `portallocator`).
//!
//! Which values exist is `range`; who holds one is decided by uniqueness
//! keys in the store (`claims`), so concurrent creates — on one API server
//! or several over etcd — never share a value, and a crash at any point
//! leaves at worst a claim that expires. The Services themselves stay the
//! source of truth: `repair` (at start and every few minutes) writes the
//! keys of Services that lack them and deletes keys nobody holds.

mod claims;
pub mod range;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use skiff_api::validation::FieldError;
use skiff_store::{RangeRequest, Store};

use crate::error::{ApiError, ApiResult};
use claims::{Claim, Kind, Owner};
use range::{IpRange, PortRange, Space};

/// Where Services get their addresses and node ports.
#[derive(Clone, Debug)]
pub struct ServiceNetwork {
    pub service_cidr: IpRange,
    pub node_ports: PortRange,
}

impl Default for ServiceNetwork {
    fn default() -> Self {
        ServiceNetwork {
            service_cidr: IpRange::parse("10.43.0.0/16").unwrap_or_else(|_| unreachable!()),
            node_ports: PortRange {
                first: 30000,
                last: 32767,
            },
        }
    }
}

/// How often the repair pass runs after the first.
const REPAIR_EVERY: Duration = Duration::from_secs(180);
/// Store round trips one random allocation may spend per pass (two
/// passes) before calling the range full.
const MAX_TRIES: usize = 1024;

pub struct Allocator {
    store: Arc<dyn Store>,
    pub net: ServiceNetwork,
    /// Offsets believed taken (a hint that keeps random picks off known
    /// values; the store decides).
    ips_taken: Mutex<HashSet<u64>>,
    ports_taken: Mutex<HashSet<u64>>,
}

/// The claims one write made, to bind after it is stored or abandon if
/// it fails.
#[derive(Debug, Default)]
pub struct Claimed {
    keys: Vec<String>,
    owner: Option<Owner>,
}

fn invalid(svc: &Value, err: FieldError) -> ApiError {
    let name = svc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    ApiError::invalid("Service", "", name, &[err])
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

impl Allocator {
    pub fn new(store: Arc<dyn Store>, net: ServiceNetwork) -> Allocator {
        Allocator {
            store,
            net,
            ips_taken: Mutex::new(HashSet::new()),
            ports_taken: Mutex::new(HashSet::new()),
        }
    }

    /// Fills in and claims the cluster IP and node ports `svc` needs (on
    /// update, `old` is the stored Service: what it already has is kept
    /// and needs no claim). With `dry_run` nothing is claimed: requested
    /// values are checked and missing ones filled with free-looking ones.
    pub async fn allocate(
        &self,
        old: Option<&Value>,
        svc: &mut Value,
        dry_run: bool,
    ) -> ApiResult<Claimed> {
        let owner = Owner::of(svc);
        let mut claimed = Claimed {
            keys: Vec::new(),
            owner: Some(owner.clone()),
        };
        let result = self
            .allocate_into(old, svc, dry_run, &owner, &mut claimed)
            .await;
        if let Err(e) = result {
            self.abandon(&claimed).await;
            return Err(e);
        }
        Ok(claimed)
    }

    async fn allocate_into(
        &self,
        old: Option<&Value>,
        svc: &mut Value,
        dry_run: bool,
        owner: &Owner,
        claimed: &mut Claimed,
    ) -> ApiResult<()> {
        let ty = str_at(svc, "/spec/type").to_string();
        let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        if ty == "ExternalName" {
            // Upstream drops what the type no longer uses on update; on
            // create validation reports it.
            if old.is_some() {
                for f in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                    spec.remove(f);
                }
            }
        }
        if !matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
            for p in spec
                .get_mut("ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(p) = p.as_object_mut() {
                    p.remove("nodePort");
                }
            }
            return Ok(());
        }
        if ty == "ClusterIP" {
            for p in spec
                .get_mut("ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(p) = p.as_object_mut() {
                    p.remove("nodePort");
                }
            }
        }
        let old_ip = old
            .map(|o| str_at(o, "/spec/clusterIP").to_string())
            .unwrap_or_default();
        let requested = spec
            .get("clusterIPs")
            .and_then(|v| v.get(0))
            .or_else(|| spec.get("clusterIP"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let ip = if requested == "None" {
            "None".to_string()
        } else if !requested.is_empty() && requested == old_ip {
            requested
        } else if requested.is_empty() {
            self.allocate_ip(owner, dry_run, claimed).await?
        } else {
            self.claim_ip(owner, &requested, dry_run, claimed)
                .await
                .map_err(|msg| {
                    FieldError::invalid(
                        "spec.clusterIPs",
                        json!([requested]),
                        format!("failed to allocate IP {requested}: {msg}"),
                    )
                })
                .map_err(|e| invalid(&json!({"metadata": {"name": owner.name}}), e))?;
            requested
        };
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));

        let wants_ports = ty == "NodePort"
            || (ty == "LoadBalancer"
                && spec
                    .get("allocateLoadBalancerNodePorts")
                    .and_then(Value::as_bool)
                    != Some(false));
        let old_ports: HashSet<i64> = old
            .and_then(|o| o.pointer("/spec/ports"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
            .collect();
        let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) else {
            return Ok(());
        };
        // Ports this Service already names: a random pick must not land on
        // them (our own claims are ours to take again).
        let mut exclude: HashSet<u64> = ports
            .iter()
            .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
            .filter_map(|n| self.net.node_ports.offset(n))
            .collect();
        let mut mine: HashSet<i64> = HashSet::new();
        for (i, p) in ports.iter_mut().enumerate() {
            let Some(p) = p.as_object_mut() else { continue };
            match p
                .get("nodePort")
                .and_then(Value::as_i64)
                .filter(|n| *n != 0)
            {
                Some(n) => {
                    if old_ports.contains(&n) || !mine.insert(n) {
                        continue;
                    }
                    if let Err(msg) = self.claim_port(owner, n, dry_run, claimed).await {
                        let err =
                            FieldError::invalid(format!("spec.ports[{i}].nodePort"), json!(n), msg);
                        return Err(invalid(&json!({"metadata": {"name": owner.name}}), err));
                    }
                }
                None if wants_ports => {
                    let n = self
                        .allocate_port(owner, dry_run, claimed, &exclude)
                        .await?;
                    mine.insert(n);
                    exclude.extend(self.net.node_ports.offset(n));
                    p.insert("nodePort".into(), json!(n));
                }
                None => {}
            }
        }
        Ok(())
    }

    async fn claim_ip(
        &self,
        owner: &Owner,
        ip: &str,
        dry_run: bool,
        claimed: &mut Claimed,
    ) -> Result<(), String> {
        let range = &self.net.service_cidr;
        let Some(offset) = ip.parse::<Ipv4Addr>().ok().and_then(|a| range.offset(a)) else {
            return Err(format!(
                "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                range.cidr()
            ));
        };
        self.claim(Kind::ClusterIp, ip, owner, dry_run, claimed)
            .await
            .map_err(|e| e.message)?
            .then(|| {
                self.ips_taken.lock().insert(offset);
            })
            .ok_or_else(|| "provided IP is already allocated".to_string())
    }

    async fn claim_port(
        &self,
        owner: &Owner,
        port: i64,
        dry_run: bool,
        claimed: &mut Claimed,
    ) -> Result<(), String> {
        let range = &self.net.node_ports;
        let Some(offset) = range.offset(port) else {
            return Err(format!(
                "provided port is not in the valid range. The range of valid ports is {range}"
            ));
        };
        self.claim(Kind::NodePort, &port.to_string(), owner, dry_run, claimed)
            .await
            .map_err(|e| e.message)?
            .then(|| {
                self.ports_taken.lock().insert(offset);
            })
            .ok_or_else(|| "provided port is already allocated".to_string())
    }

    /// Claims one value; `Ok(false)` when someone holds it.
    async fn claim(
        &self,
        kind: Kind,
        value: &str,
        owner: &Owner,
        dry_run: bool,
        claimed: &mut Claimed,
    ) -> ApiResult<bool> {
        if dry_run {
            let Some(kv) = self.store.get(&kind.key(value)).await? else {
                return Ok(true);
            };
            return Ok(!claims::still_held(self.store.as_ref(), kind, &kv, value).await?);
        }
        match claims::claim(self.store.as_ref(), kind, value, owner).await? {
            Claim::Won => {
                claimed.keys.push(kind.key(value));
                Ok(true)
            }
            Claim::Taken => Ok(false),
        }
    }

    async fn allocate_ip(
        &self,
        owner: &Owner,
        dry_run: bool,
        claimed: &mut Claimed,
    ) -> ApiResult<String> {
        let range = self.net.service_cidr.clone();
        let n = self
            .allocate_random(
                &range,
                &self.ips_taken,
                &HashSet::new(),
                |o| range.at(o).to_string(),
                Kind::ClusterIp,
                owner,
                dry_run,
                claimed,
            )
            .await?;
        n.ok_or_else(|| ApiError::internal("failed to allocate a serviceIP: range is full"))
    }

    async fn allocate_port(
        &self,
        owner: &Owner,
        dry_run: bool,
        claimed: &mut Claimed,
        exclude: &HashSet<u64>,
    ) -> ApiResult<i64> {
        let range = self.net.node_ports.clone();
        let n = self
            .allocate_random(
                &range,
                &self.ports_taken,
                exclude,
                |o| range.at(o).to_string(),
                Kind::NodePort,
                owner,
                dry_run,
                claimed,
            )
            .await?;
        n.and_then(|s| s.parse().ok())
            .ok_or_else(|| ApiError::internal("failed to allocate a nodePort: range is full"))
    }

    #[allow(clippy::too_many_arguments)]
    async fn allocate_random(
        &self,
        space: &impl Space,
        taken: &Mutex<HashSet<u64>>,
        exclude: &HashSet<u64>,
        render: impl Fn(u64) -> String,
        kind: Kind,
        owner: &Owner,
        dry_run: bool,
        claimed: &mut Claimed,
    ) -> ApiResult<Option<String>> {
        // First the values not known to be taken, then the known ones (the
        // hint may be stale: values are released without telling us).
        for round in 0..2 {
            let start: u64 = rand::random();
            let picks: Vec<u64> = {
                let known = taken.lock();
                let none = HashSet::new();
                range::candidates(space, start, if round == 0 { &known } else { &none })
                    .filter(|o| !exclude.contains(o))
                    .filter(|o| round == 0 || known.contains(o))
                    .take(MAX_TRIES)
                    .collect()
            };
            for offset in picks {
                let value = render(offset);
                if self.claim(kind, &value, owner, dry_run, claimed).await? {
                    if !dry_run {
                        taken.lock().insert(offset);
                    }
                    return Ok(Some(value));
                }
                taken.lock().insert(offset);
            }
        }
        Ok(None)
    }

    /// Marks a stored write's claims bound.
    pub async fn bind(&self, claimed: &Claimed) {
        if let Some(owner) = &claimed.owner {
            claims::bind(self.store.as_ref(), &claimed.keys, owner).await;
        }
    }

    /// Drops the claims of a write that was not stored.
    pub async fn abandon(&self, claimed: &Claimed) {
        if let Some(owner) = &claimed.owner {
            claims::abandon(self.store.as_ref(), &claimed.keys, owner).await;
        }
    }

    /// Reconciles the keys with the stored Services: every value a Service
    /// carries gets its key (a Service written before allocation existed,
    /// such as the bootstrap `kubernetes` Service), and keys whose holder
    /// released them are deleted.
    pub async fn repair(&self) -> Result<(), skiff_store::Error> {
        let services = self
            .store
            .range(RangeRequest {
                prefix: "/registry/core/services/".into(),
                ..RangeRequest::default()
            })
            .await?;
        let mut ips = HashSet::new();
        let mut ports = HashSet::new();
        for kv in &services.kvs {
            let Ok(svc) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            let owner = Owner::of(&svc);
            let mut keys = Vec::new();
            let ip = str_at(&svc, "/spec/clusterIP");
            if let Some(offset) = ip
                .parse::<Ipv4Addr>()
                .ok()
                .and_then(|a| self.net.service_cidr.offset(a))
            {
                ips.insert(offset);
                self.ensure(Kind::ClusterIp, ip, &owner, &mut keys).await?;
            }
            for p in svc
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(n) = p.get("nodePort").and_then(Value::as_i64)
                    && let Some(offset) = self.net.node_ports.offset(n)
                {
                    ports.insert(offset);
                    self.ensure(Kind::NodePort, &n.to_string(), &owner, &mut keys)
                        .await?;
                }
            }
            claims::bind(self.store.as_ref(), &keys, &owner).await;
        }
        let keys = self
            .store
            .range(RangeRequest {
                prefix: claims::PREFIX.into(),
                ..RangeRequest::default()
            })
            .await?;
        for kv in keys.kvs {
            let Some((kind, value)) = claims::parse_key(&kv.key) else {
                continue;
            };
            if !claims::still_held(self.store.as_ref(), kind, &kv, value).await? {
                let _ = self.store.delete(&kv.key, Some(kv.mod_revision)).await;
            }
        }
        *self.ips_taken.lock() = ips;
        *self.ports_taken.lock() = ports;
        Ok(())
    }

    async fn ensure(
        &self,
        kind: Kind,
        value: &str,
        owner: &Owner,
        keys: &mut Vec<String>,
    ) -> Result<(), skiff_store::Error> {
        match claims::claim(self.store.as_ref(), kind, value, owner).await? {
            Claim::Won => keys.push(kind.key(value)),
            Claim::Taken => tracing::warn!(
                value,
                service = %format!("{}/{}", owner.namespace, owner.name),
                "a stored Service carries a value another Service holds"
            ),
        }
        Ok(())
    }

    /// Repairs now and then every few minutes.
    pub fn spawn_repair(self: &Arc<Self>) {
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REPAIR_EVERY).await;
                let Some(alloc) = this.upgrade() else { return };
                if let Err(e) = alloc.repair().await {
                    tracing::warn!(error = %e, "service allocation repair");
                }
            }
        });
    }
}
