//! A pod's container spec mapped onto the runtime's [`ContainerConfig`]:
//! command and args against the image's ENTRYPOINT/CMD with `$(VAR)`
//! expansion, security context, resources, mounts (volumes, `/etc/hosts`,
//! `/etc/resolv.conf`, `/etc/hostname`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod, SecurityContext};
use skiff_runtime::{ContainerConfig, Mount, MountKind, Propagation, Resources};

use crate::env::expand;
use crate::images::Resolved;

/// CPU shares for a request in millicores, as upstream's `MilliCPUToShares`.
pub fn cpu_shares(milli: i128) -> u64 {
    if milli <= 0 {
        return 2;
    }
    ((milli * 1024) / 1000).clamp(2, 262_144) as u64
}

/// CFS quota for a limit in millicores at the default 100 ms period.
pub fn cpu_quota(milli: i128) -> i64 {
    ((milli * 100_000) / 1000).max(1000) as i64
}

fn quantity(
    map: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
    name: &str,
) -> Option<i128> {
    map.as_ref()?
        .get(name)
        .and_then(|q| crate::quantity::parse_milli(&q.0))
}

/// The container's cgroup limits.
pub fn resources(c: &Container) -> Resources {
    let r = c.resources.clone().unwrap_or_default();
    let request_cpu = quantity(&r.requests, "cpu").or(quantity(&r.limits, "cpu"));
    Resources {
        memory_limit: quantity(&r.limits, "memory").map(|m| (m / 1000) as i64),
        cpu_shares: Some(cpu_shares(request_cpu.unwrap_or(0))),
        cpu_quota: quantity(&r.limits, "cpu").map(cpu_quota),
        cpu_period: quantity(&r.limits, "cpu").map(|_| 100_000),
        ..Default::default()
    }
}

/// `Guaranteed`, `Burstable` or `BestEffort`, as upstream's `GetPodQOS`.
pub fn qos_class(pod: &Pod) -> &'static str {
    let spec = pod.spec.clone().unwrap_or_default();
    let all: Vec<&Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &all {
        let r = c.resources.clone().unwrap_or_default();
        for name in ["cpu", "memory"] {
            let req = quantity(&r.requests, name).or(quantity(&r.limits, name));
            let lim = quantity(&r.limits, name);
            if req.is_some_and(|v| v != 0) || lim.is_some_and(|v| v != 0) {
                any = true;
            }
            if lim.is_none() || req != lim {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Effective security settings: the container's over the pod's.
fn effective_user(
    pod: &Pod,
    sc: &Option<SecurityContext>,
) -> (Option<i64>, Option<i64>, Option<bool>) {
    let psc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let sc = sc.clone().unwrap_or_default();
    (
        sc.run_as_user.or(psc.run_as_user),
        sc.run_as_group.or(psc.run_as_group),
        sc.run_as_non_root.or(psc.run_as_non_root),
    )
}

/// Everything the worker knows that goes into a container.
pub struct Inputs<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub image: &'a Resolved,
    pub env: Vec<(String, String)>,
    pub rootfs: PathBuf,
    pub log_path: PathBuf,
    /// Volume name → host path.
    pub volumes: &'a HashMap<String, PathBuf>,
    /// The pod's `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`.
    pub etc: &'a Path,
    pub hostname: String,
    pub runtime_name: String,
}

/// Whether the pod's volume is a claim mounted read-only
/// (`persistentVolumeClaim.readOnly` forces every mount of it read-only).
fn claim_read_only(pod: &Pod, volume: &str) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter(|v| v.name == volume)
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .any(|c| c.read_only == Some(true))
}

/// Builds the runtime config, or a `CreateContainerConfigError` message.
pub fn config(i: Inputs<'_>) -> Result<ContainerConfig, String> {
    let c = i.container;
    let lookup_env = i.env.clone();
    let lookup = move |n: &str| {
        lookup_env
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    let command: Vec<String> = c
        .command
        .iter()
        .flatten()
        .map(|a| expand(a, &lookup))
        .collect();
    let args: Vec<String> = c
        .args
        .iter()
        .flatten()
        .map(|a| expand(a, &lookup))
        .collect();
    let (uid, gid, non_root) = effective_user(i.pod, &c.security_context);
    let user = match (uid, gid) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        (None, Some(g)) => Some(format!(
            "{}:{g}",
            i.image
                .process
                .user
                .clone()
                .unwrap_or_else(|| "0".into())
                .split(':')
                .next()
                .unwrap_or("0")
        )),
        (None, None) => None,
    };
    if non_root == Some(true) {
        match uid {
            Some(0) => {
                return Err(
                    "container's runAsUser breaks non-root policy (pod: \"".to_string()
                        + &pod_desc(i.pod)
                        + "\", container: "
                        + &c.name
                        + ")",
                );
            }
            Some(_) => {}
            None => {
                let image_user = i.image.process.user.clone().unwrap_or_default();
                let name = image_user.split(':').next().unwrap_or("");
                match name.parse::<u32>() {
                    Ok(0) => {
                        return Err(
                            "container has runAsNonRoot and image will run as root (pod: \""
                                .to_string()
                                + &pod_desc(i.pod)
                                + "\", container: "
                                + &c.name
                                + ")",
                        );
                    }
                    Ok(_) => {}
                    Err(_) if name.is_empty() || name == "root" => {
                        return Err(
                            "container has runAsNonRoot and image will run as root (pod: \""
                                .to_string()
                                + &pod_desc(i.pod)
                                + "\", container: "
                                + &c.name
                                + ")",
                        );
                    }
                    Err(_) => {
                        return Err(format!(
                            "container has runAsNonRoot and image has non-numeric user ({name}), cannot verify user is non-root (pod: \"{}\", container: {})",
                            pod_desc(i.pod),
                            c.name
                        ));
                    }
                }
            }
        }
    }
    let sc = c.security_context.clone().unwrap_or_default();
    let privileged = sc.privileged.unwrap_or(false);
    let caps = sc.capabilities.clone().unwrap_or_default();
    let mut cap_add: Vec<String> = caps.add.unwrap_or_default();
    let cap_drop: Vec<String> = if privileged {
        vec![]
    } else {
        caps.drop.unwrap_or_default()
    };
    if privileged {
        cap_add = vec!["ALL".into()];
    }
    let sys_admin = cap_add
        .iter()
        .any(|c| c.trim_start_matches("CAP_") == "SYS_ADMIN" || c == "ALL");
    let no_new_privs = sc.allow_privilege_escalation == Some(false) && !privileged && !sys_admin;
    let supplemental: Vec<u32> = i
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .map(|p| {
            p.supplemental_groups
                .iter()
                .flatten()
                .map(|g| *g as u32)
                .chain(p.fs_group.map(|g| g as u32))
                .collect()
        })
        .unwrap_or_default();
    let mut mounts = Vec::new();
    let host_network = i
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    for (file, dest) in [
        ("hosts", "/etc/hosts"),
        ("resolv.conf", "/etc/resolv.conf"),
        ("hostname", "/etc/hostname"),
    ] {
        let user_mounted = c
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path == dest);
        if !user_mounted {
            mounts.push(Mount {
                kind: MountKind::Bind,
                source: i.etc.join(file),
                destination: dest.into(),
                readonly: false,
                propagation: Propagation::Private,
            });
        }
    }
    for vm in c.volume_mounts.iter().flatten() {
        let Some(src) = i.volumes.get(&vm.name) else {
            return Err(format!(
                "cannot find volume \"{}\" to mount into container \"{}\"",
                vm.name, c.name
            ));
        };
        let mut source = src.clone();
        let sub = vm
            .sub_path
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| vm.sub_path_expr.as_ref().map(|e| expand(e, &lookup)));
        if let Some(sub) = sub.filter(|s| !s.is_empty()) {
            if sub.split('/').any(|p| p == "..") || sub.starts_with('/') {
                return Err(format!("invalid subpath {sub:?}"));
            }
            source = source.join(&sub);
            if !source.exists() {
                std::fs::create_dir_all(&source)
                    .map_err(|e| format!("subPath {}: {e}", source.display()))?;
            }
        }
        let propagation = match vm.mount_propagation.as_deref() {
            Some("HostToContainer") => Propagation::HostToContainer,
            Some("Bidirectional") => Propagation::Bidirectional,
            _ => Propagation::Private,
        };
        mounts.push(Mount {
            kind: MountKind::Bind,
            source,
            destination: vm.mount_path.clone().into(),
            readonly: vm.read_only.unwrap_or(false) || claim_read_only(i.pod, &vm.name),
            propagation,
        });
    }
    let _ = host_network;
    Ok(ContainerConfig {
        name: i.runtime_name,
        rootfs: i.rootfs,
        image: i.image.process.clone(),
        command,
        args,
        env: i.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
        user,
        additional_gids: supplemental,
        hostname: Some(i.hostname),
        mounts,
        resources: resources(c),
        cap_add,
        cap_drop,
        no_new_privs,
        readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
        log_path: Some(i.log_path),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        ..Default::default()
    })
}

fn pod_desc(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.clone().unwrap_or_default(),
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.uid.clone().unwrap_or_default()
    )
}

/// Writes the pod's `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`.
pub fn write_etc(
    dir: &Path,
    pod: &Pod,
    hostname: &str,
    ip: &str,
    config: &crate::Config,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let spec = pod.spec.clone().unwrap_or_default();
    let mut hosts = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    if !ip.is_empty() {
        let fqdn = spec.subdomain.as_ref().map(|s| {
            format!(
                "{hostname}.{s}.{}.svc.{}\t",
                pod.metadata.namespace.clone().unwrap_or_default(),
                config.cluster_domain
            )
        });
        hosts.push_str(&format!("{ip}\t{}{hostname}\n", fqdn.unwrap_or_default()));
    }
    for a in spec.host_aliases.iter().flatten() {
        hosts.push_str(&format!(
            "\n# Entries added by HostAliases.\n{}\t{}\n",
            a.ip,
            a.hostnames.clone().unwrap_or_default().join("\t")
        ));
    }
    std::fs::write(dir.join("hosts"), hosts)?;
    let host = crate::dns::Resolver::parse(
        &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    );
    let resolv = crate::dns::resolv_conf(pod, &config.cluster_dns, &config.cluster_domain, &host);
    std::fs::write(dir.join("resolv.conf"), resolv)?;
    std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn qos_classes() {
        let be = pod(serde_json::json!({"spec": {"containers": [{"name": "a"}]}}));
        assert_eq!(qos_class(&be), "BestEffort");
        let g = pod(
            serde_json::json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}),
        );
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = pod(
            serde_json::json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]}}),
        );
        assert_eq!(qos_class(&b), "Burstable");
    }

    #[test]
    fn cpu_conversion() {
        assert_eq!(cpu_shares(100), 102);
        assert_eq!(cpu_shares(0), 2);
        assert_eq!(cpu_quota(250), 25_000);
    }
}
