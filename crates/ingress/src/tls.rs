//! TLS: certificates from the Ingresses' `spec.tls` Secrets, chosen per
//! connection by SNI.
//!
//! The resolver reads the current snapshot's map on every handshake, so a
//! changed Secret is served from the next connection on without restarting
//! the listener. Without a matching host (or without SNI) a self-signed
//! fallback certificate is served, as ingress-nginx does with its "fake"
//! certificate, rather than failing the handshake.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use parking_lot::RwLock;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// Host → certificate; `*.example.com` keyed by `example.com`.
#[derive(Default, Debug)]
pub struct CertMap {
    pub exact: HashMap<String, Arc<CertifiedKey>>,
    pub wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl CertMap {
    pub fn get(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        let host = host.to_ascii_lowercase();
        if let Some(c) = self.exact.get(&host) {
            return Some(c.clone());
        }
        let (_, rest) = host.split_once('.')?;
        self.wildcard.get(rest).cloned()
    }
}

/// A `kubernetes.io/tls`-shaped Secret's `tls.crt` / `tls.key` as a signing key.
pub fn certified_key(secret: &Secret) -> Result<CertifiedKey, String> {
    let data = secret.data.as_ref().ok_or("no data")?;
    let crt = data.get("tls.crt").ok_or("no tls.crt")?;
    let key = data.get("tls.key").ok_or("no tls.key")?;
    let certs = CertificateDer::pem_slice_iter(&crt.0)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.crt: {e}"))?;
    if certs.is_empty() {
        return Err("tls.crt holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(&key.0).map_err(|e| format!("tls.key: {e}"))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("tls.key: {e}"))?;
    Ok(CertifiedKey::new(certs, signer))
}

/// Builds the map from the Ingresses' `spec.tls`; `key` gives the
/// certificate of a Secret by (namespace, name). The oldest Ingress wins a
/// host.
pub fn build<'a>(
    ingresses: impl IntoIterator<Item = &'a Ingress>,
    mut key: impl FnMut(&str, &str) -> Option<Arc<CertifiedKey>>,
) -> CertMap {
    let mut map = CertMap::default();
    for ing in crate::routes::ordered(ingresses) {
        let ns = ing.metadata.namespace.clone().unwrap_or_default();
        for t in ing.spec.iter().flat_map(|s| s.tls.iter().flatten()) {
            let Some(name) = t.secret_name.as_deref() else {
                continue;
            };
            let Some(key) = key(&ns, name) else { continue };
            for h in t.hosts.iter().flatten() {
                let h = h.to_ascii_lowercase();
                match h.strip_prefix("*.") {
                    Some(rest) => {
                        map.wildcard.entry(rest.to_string()).or_insert(key.clone());
                    }
                    None => {
                        map.exact.entry(h).or_insert(key.clone());
                    }
                }
            }
        }
    }
    map
}

type Cached = (String, Option<Arc<CertifiedKey>>);

/// Parsed Secrets by (namespace, name, resourceVersion), so a rebuild
/// caused by an endpoint change parses no key again, and a changed Secret
/// (new resourceVersion) is parsed once.
#[derive(Default)]
pub struct KeyCache {
    /// (namespace, name) → (resourceVersion, parsed key or None if unusable).
    keys: HashMap<(String, String), Cached>,
    used: std::collections::HashSet<(String, String)>,
}

impl KeyCache {
    pub fn get(&mut self, secret: Option<Arc<Secret>>) -> Option<Arc<CertifiedKey>> {
        let s = secret?;
        let ns = s.metadata.namespace.clone().unwrap_or_default();
        let name = s.metadata.name.clone().unwrap_or_default();
        let rv = s.metadata.resource_version.clone().unwrap_or_default();
        let k = (ns, name);
        self.used.insert(k.clone());
        if let Some((cached_rv, key)) = self.keys.get(&k)
            && *cached_rv == rv
        {
            return key.clone();
        }
        let key = match certified_key(&s) {
            Ok(key) => Some(Arc::new(key)),
            Err(e) => {
                tracing::warn!(secret = %format!("{}/{}", k.0, k.1), "unusable TLS Secret: {e}");
                None
            }
        };
        self.keys.insert(k, (rv, key.clone()));
        key
    }

    /// Forgets Secrets no `get` asked for since the last sweep.
    pub fn sweep(&mut self) {
        let used = std::mem::take(&mut self.used);
        self.keys.retain(|k, _| used.contains(k));
    }
}

/// Picks the certificate by SNI from the live map.
#[derive(Debug)]
pub struct SniResolver {
    pub certs: Arc<RwLock<Arc<CertMap>>>,
    pub fallback: Arc<CertifiedKey>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let map = self.certs.read().clone();
        hello
            .server_name()
            .and_then(|n| map.get(n))
            .or_else(|| Some(self.fallback.clone()))
    }
}

/// A self-signed certificate for connections no Secret covers.
pub fn fallback_cert() -> Result<CertifiedKey, String> {
    let ck = rcgen::generate_simple_self_signed(vec!["ingress.local".to_string()])
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_slice(ck.signing_key.serialize_pem().as_bytes())
        .map_err(|e| e.to_string())?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| e.to_string())?;
    Ok(CertifiedKey::new(vec![ck.cert.der().clone()], signer))
}

/// The server config: SNI resolver, ALPN h2 and http/1.1.
pub fn server_config(resolver: SniResolver) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}
