//! Service environment variables, as upstream's kubelet injects them:
//! `{NAME}_SERVICE_HOST` / `{NAME}_SERVICE_PORT[_{PORT}]` and the Docker
//! link variables (`{NAME}_PORT`, `{NAME}_PORT_{port}_{PROTO}[_PROTO|_PORT|_ADDR]`)
//! for every Service with a cluster IP in the pod's namespace (when
//! `enableServiceLinks` is not false) plus the API server's `kubernetes`
//! Service from `default`, always. They rank below the container's own
//! `env`/`envFrom` and are visible to `$(VAR)` expansion.

use k8s_openapi::api::core::v1::Service;

/// `my-svc` → `MY_SVC`.
fn env_name(s: &str) -> String {
    s.to_ascii_uppercase().replace('-', "_")
}

/// The variables for `services`, in upstream's order per Service.
pub fn vars(services: &[Service]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for svc in services {
        let Some(spec) = svc.spec.as_ref() else {
            continue;
        };
        let ip = spec.cluster_ip.as_deref().unwrap_or("");
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let ports = spec.ports.as_deref().unwrap_or(&[]);
        let Some(first) = ports.first() else {
            continue;
        };
        let name = env_name(svc.metadata.name.as_deref().unwrap_or(""));
        out.push((format!("{name}_SERVICE_HOST"), ip.to_string()));
        out.push((format!("{name}_SERVICE_PORT"), first.port.to_string()));
        for p in ports {
            if let Some(pn) = p.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((
                    format!("{name}_SERVICE_PORT_{}", env_name(pn)),
                    p.port.to_string(),
                ));
            }
        }
        let proto = |p: &k8s_openapi::api::core::v1::ServicePort| {
            p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase()
        };
        // IPv6 addresses are bracketed in URLs.
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        out.push((
            format!("{name}_PORT"),
            format!("{}://{host}:{}", proto(first), first.port),
        ));
        for p in ports {
            let pr = proto(p);
            let prefix = format!("{name}_PORT_{}_{}", p.port, pr.to_ascii_uppercase());
            out.push((prefix.clone(), format!("{pr}://{host}:{}", p.port)));
            out.push((format!("{prefix}_PROTO"), pr.clone()));
            out.push((format!("{prefix}_PORT"), p.port.to_string()));
            out.push((format!("{prefix}_ADDR"), ip.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_shapes() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "my-web"},
            "spec": {"clusterIP": "10.43.0.7", "ports": [
                {"name": "http", "port": 80, "protocol": "TCP"},
                {"name": "dns-udp", "port": 53, "protocol": "UDP"}]}
        }))
        .unwrap();
        let headless: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 1}]}
        }))
        .unwrap();
        let v = vars(&[svc, headless]);
        let get = |k: &str| v.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("MY_WEB_SERVICE_HOST"), Some("10.43.0.7"));
        assert_eq!(get("MY_WEB_SERVICE_PORT"), Some("80"));
        assert_eq!(get("MY_WEB_SERVICE_PORT_HTTP"), Some("80"));
        assert_eq!(get("MY_WEB_SERVICE_PORT_DNS_UDP"), Some("53"));
        assert_eq!(get("MY_WEB_PORT"), Some("tcp://10.43.0.7:80"));
        assert_eq!(get("MY_WEB_PORT_53_UDP"), Some("udp://10.43.0.7:53"));
        assert_eq!(get("MY_WEB_PORT_53_UDP_PROTO"), Some("udp"));
        assert_eq!(get("MY_WEB_PORT_80_TCP_ADDR"), Some("10.43.0.7"));
        assert_eq!(get("MY_WEB_PORT_80_TCP_PORT"), Some("80"));
        assert!(get("H_SERVICE_HOST").is_none(), "headless skipped");
    }
}
