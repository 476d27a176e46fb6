//! Uniqueness keys in the store: who holds a cluster IP or a node port.
//!
//! A value is held by creating the key
//! `/registry/skiff.io/allocations/<kind>/<value>`
//! (create-if-absent, so of two concurrent claimers exactly one wins, on
//! every backend and across API servers). The key names its owner (the
//! Service's namespace, name and uid) and whether the owner has been
//! written yet (`bound`).
//!
//! Releasing is lazy: the Service stored under the owner's name is the
//! truth. A key is *reclaimable* when its owner Service is gone, has
//! another uid, or no longer carries the value, and the key is bound (or a
//! pending claim older than [`PENDING_TTL`], left by a create that failed
//! or crashed). So deleting a Service or changing its type frees its values
//! at once with no write, a crash between writing the key and writing the
//! Service leaks nothing for long, and the repair pass only tidies up.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use skiff_store::{KeyValue, Store};

/// Under `/registry/` so the watch cache, which follows that prefix, sees
/// every revision (a write elsewhere would leave its revision behind the
/// store's and stall reads that wait for it); no kind is served from here.
pub const PREFIX: &str = "/registry/skiff.io/allocations/";

/// How long a claim whose Service was never written blocks others.
pub const PENDING_TTL_SECS: u64 = 30;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Owner {
    pub fn of(svc: &Value) -> Owner {
        let m = |f: &str| {
            svc.pointer(&format!("/metadata/{f}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Owner {
            namespace: m("namespace"),
            name: m("name"),
            uid: m("uid"),
        }
    }
}

/// What is allocated: a cluster IP or a node port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ClusterIp,
    NodePort,
}

impl Kind {
    pub fn key(self, value: &str) -> String {
        match self {
            Kind::ClusterIp => format!("{PREFIX}serviceips/{value}"),
            Kind::NodePort => format!("{PREFIX}nodeports/{value}"),
        }
    }

    /// Whether the Service carries `value` of this kind.
    pub fn held_by(self, svc: &Value, value: &str) -> bool {
        match self {
            Kind::ClusterIp => {
                svc.pointer("/spec/clusterIPs")
                    .and_then(Value::as_array)
                    .is_some_and(|ips| ips.iter().any(|ip| ip.as_str() == Some(value)))
                    || svc.pointer("/spec/clusterIP").and_then(Value::as_str) == Some(value)
            }
            Kind::NodePort => svc
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .is_some_and(|ports| {
                    ports.iter().any(|p| {
                        p.get("nodePort")
                            .and_then(Value::as_i64)
                            .map(|n| n.to_string())
                            .as_deref()
                            == Some(value)
                    })
                }),
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn record(owner: &Owner, bound: bool) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "namespace": owner.namespace,
        "name": owner.name,
        "uid": owner.uid,
        "bound": bound,
        "at": now_secs(),
    }))
    .unwrap_or_default()
}

fn owner_of(kv: &KeyValue) -> Option<(Owner, bool, u64)> {
    let v: Value = serde_json::from_slice(&kv.value).ok()?;
    let s = |f: &str| {
        v.get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Some((
        Owner {
            namespace: s("namespace"),
            name: s("name"),
            uid: s("uid"),
        },
        v.get("bound").and_then(Value::as_bool).unwrap_or(false),
        v.get("at").and_then(Value::as_u64).unwrap_or(0),
    ))
}

/// Whether the key's holder still holds `value` (its Service, read from
/// the store itself, not a cache that may lag, carries it).
pub async fn still_held(
    store: &dyn Store,
    kind: Kind,
    kv: &KeyValue,
    value: &str,
) -> Result<bool, skiff_store::Error> {
    let Some((owner, bound, at)) = owner_of(kv) else {
        return Ok(false);
    };
    let svc_key = format!("/registry/core/services/{}/{}", owner.namespace, owner.name);
    let svc = store
        .get(&svc_key)
        .await?
        .and_then(|kv| serde_json::from_slice::<Value>(&kv.value).ok());
    let holds = svc
        .as_ref()
        .is_some_and(|svc| Owner::of(svc).uid == owner.uid && kind.held_by(svc, value));
    if holds {
        return Ok(true);
    }
    // Not (or not yet) in its Service: a fresh pending claim is a create
    // in flight; anything else is released.
    let owner_written = svc
        .as_ref()
        .is_some_and(|svc| Owner::of(svc).uid == owner.uid);
    Ok(!bound && !owner_written && now_secs().saturating_sub(at) < PENDING_TTL_SECS)
}

/// Result of one claim.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours now.
    Won,
    /// Someone else holds it.
    Taken,
}

/// Claims `value` for `owner`: creates its key, or takes over a key whose
/// holder released it (compare-and-swap on the key's revision, so racing
/// claimers cannot both win). Claiming again what we hold wins.
pub async fn claim(
    store: &dyn Store,
    kind: Kind,
    value: &str,
    owner: &Owner,
) -> Result<Claim, skiff_store::Error> {
    let key = kind.key(value);
    for _ in 0..3 {
        match store.create(&key, record(owner, false).into()).await {
            Ok(_) => return Ok(Claim::Won),
            Err(skiff_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        let Some(kv) = store.get(&key).await? else {
            continue; // released meanwhile: try creating again
        };
        let ours = owner_of(&kv).is_some_and(|(o, _, _)| o.uid == owner.uid);
        if !ours && still_held(store, kind, &kv, value).await? {
            return Ok(Claim::Taken);
        }
        match store
            .update(&key, record(owner, false).into(), kv.mod_revision)
            .await
        {
            Ok(_) => return Ok(Claim::Won),
            Err(skiff_store::Error::Conflict { .. } | skiff_store::Error::NotFound { .. }) => {
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Claim::Taken)
}

/// Marks our claims bound once the Service carrying them is stored.
/// Best effort: an unmarked claim is still protected by its Service.
pub async fn bind(store: &dyn Store, keys: &[String], owner: &Owner) {
    for key in keys {
        let Ok(Some(kv)) = store.get(key).await else {
            continue;
        };
        if owner_of(&kv).is_some_and(|(o, bound, _)| o.uid == owner.uid && !bound) {
            let _ = store
                .update(key, record(owner, true).into(), kv.mod_revision)
                .await;
        }
    }
}

/// Drops pending claims of a write that failed.
pub async fn abandon(store: &dyn Store, keys: &[String], owner: &Owner) {
    for key in keys {
        let Ok(Some(kv)) = store.get(key).await else {
            continue;
        };
        if owner_of(&kv).is_some_and(|(o, bound, _)| o.uid == owner.uid && !bound) {
            let _ = store.delete(key, Some(kv.mod_revision)).await;
        }
    }
}

/// Splits a key back into its kind and value.
pub fn parse_key(key: &str) -> Option<(Kind, &str)> {
    let rest = key.strip_prefix(PREFIX)?;
    let (kind, value) = rest.split_once('/')?;
    match kind {
        "serviceips" => Some((Kind::ClusterIp, value)),
        "nodeports" => Some((Kind::NodePort, value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn svc(uid: &str, ip: &str, node_port: i64) -> Value {
        json!({"metadata": {"namespace": "default", "name": "web", "uid": uid},
               "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"port": 80, "nodePort": node_port}]}})
    }

    #[tokio::test]
    async fn claims_are_exclusive_until_released() {
        let store: Arc<dyn Store> = Arc::new(skiff_store::MemoryStore::new());
        let a = Owner::of(&svc("a", "10.43.0.5", 30001));
        let b = Owner {
            uid: "b".into(),
            name: "other".into(),
            ..a.clone()
        };
        assert_eq!(
            claim(store.as_ref(), Kind::ClusterIp, "10.43.0.5", &a)
                .await
                .expect("claim"),
            Claim::Won
        );
        assert_eq!(
            claim(store.as_ref(), Kind::ClusterIp, "10.43.0.5", &a)
                .await
                .expect("again"),
            Claim::Won,
            "idempotent"
        );
        // Pending and fresh: a create in flight.
        assert_eq!(
            claim(store.as_ref(), Kind::ClusterIp, "10.43.0.5", &b)
                .await
                .expect("claim"),
            Claim::Taken
        );
        // Stored and bound: held.
        let key = "/registry/core/services/default/web";
        store
            .create(
                key,
                serde_json::to_vec(&svc("a", "10.43.0.5", 30001))
                    .expect("json")
                    .into(),
            )
            .await
            .expect("store");
        bind(store.as_ref(), &[Kind::ClusterIp.key("10.43.0.5")], &a).await;
        assert_eq!(
            claim(store.as_ref(), Kind::ClusterIp, "10.43.0.5", &b)
                .await
                .expect("claim"),
            Claim::Taken
        );
        // The Service is deleted: released without touching the key.
        store.delete(key, None).await.expect("delete");
        assert_eq!(
            claim(store.as_ref(), Kind::ClusterIp, "10.43.0.5", &b)
                .await
                .expect("claim"),
            Claim::Won
        );
    }

    #[tokio::test]
    async fn a_service_dropping_its_node_port_releases_it() {
        let store: Arc<dyn Store> = Arc::new(skiff_store::MemoryStore::new());
        let a = Owner::of(&svc("a", "10.43.0.5", 30001));
        let b = Owner {
            uid: "b".into(),
            ..a.clone()
        };
        claim(store.as_ref(), Kind::NodePort, "30001", &a)
            .await
            .expect("claim");
        let key = "/registry/core/services/default/web";
        store
            .create(
                key,
                serde_json::to_vec(&svc("a", "10.43.0.5", 30001))
                    .expect("json")
                    .into(),
            )
            .await
            .expect("store");
        bind(store.as_ref(), &[Kind::NodePort.key("30001")], &a).await;
        assert_eq!(
            claim(store.as_ref(), Kind::NodePort, "30001", &b)
                .await
                .expect("claim"),
            Claim::Taken
        );
        let kv = store.get(key).await.expect("get").expect("there");
        store
            .update(
                key,
                serde_json::to_vec(&svc("a", "10.43.0.5", 30002))
                    .expect("json")
                    .into(),
                kv.mod_revision,
            )
            .await
            .expect("update");
        assert_eq!(
            claim(store.as_ref(), Kind::NodePort, "30001", &b)
                .await
                .expect("claim"),
            Claim::Won
        );
    }

    #[test]
    fn keys_round_trip() {
        let k = Kind::NodePort.key("30080");
        assert_eq!(parse_key(&k), Some((Kind::NodePort, "30080")));
        assert_eq!(
            parse_key(&Kind::ClusterIp.key("10.43.0.1")),
            Some((Kind::ClusterIp, "10.43.0.1"))
        );
        assert_eq!(parse_key("/registry/x"), None);
    }
}
