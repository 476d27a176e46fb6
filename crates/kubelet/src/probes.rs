//! Liveness, readiness and startup probes (exec, httpGet, tcpSocket, grpc
//! health) with upstream's timing: `initialDelaySeconds`, `periodSeconds`,
//! `timeoutSeconds`, `successThreshold`, `failureThreshold`. One task per
//! running container instance; results land in [`ProbeState`] and wake
//! the pod worker when something flips.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use skiff_runtime::RuntimeService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// What the probes of one container instance found so far.
#[derive(Debug, Default)]
pub struct ProbeState {
    pub ready: AtomicBool,
    pub started: AtomicBool,
    /// Liveness (or startup) failed past its threshold: restart it.
    pub failed: AtomicBool,
    /// The message of the failure, for the event.
    pub failure: parking_lot::Mutex<Option<(String, String)>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success,
    Failure(String),
}

/// Where probes connect (the pod's IP; the node's for hostNetwork).
#[derive(Clone)]
pub struct Target {
    pub host: String,
    pub container_id: String,
    pub runtime: Arc<dyn RuntimeService>,
}

fn port_of(c: &Container, p: &IntOrString) -> Option<u16> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.name.as_deref() == Some(name.as_str()))
            .and_then(|cp| u16::try_from(cp.container_port).ok()),
    }
}

/// Runs one probe once.
pub async fn run_once(c: &Container, probe: &Probe, t: &Target) -> Outcome {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(e) = &probe.exec {
        let argv = e.command.clone().unwrap_or_default();
        return match t
            .runtime
            .exec_sync(&t.container_id, argv.clone(), timeout)
            .await
        {
            Ok(r) if r.exit_code == 0 => Outcome::Success,
            Ok(r) => {
                let out = String::from_utf8_lossy(&r.stdout).to_string()
                    + &String::from_utf8_lossy(&r.stderr);
                Outcome::Failure(out.trim().to_string())
            }
            Err(e) => Outcome::Failure(format!("command {argv:?} failed: {e}")),
        };
    }
    if let Some(h) = &probe.http_get {
        let Some(port) = port_of(c, &h.port) else {
            return Outcome::Failure(format!("invalid port {:?}", h.port));
        };
        let host = h
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| t.host.clone());
        let path = h
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        let headers: Vec<(String, String)> = h
            .http_headers
            .iter()
            .flatten()
            .map(|hd| (hd.name.clone(), hd.value.clone()))
            .collect();
        return match tokio::time::timeout(timeout, http_get(&host, port, &path, &headers)).await {
            Ok(Ok(code)) if (200..400).contains(&code) => Outcome::Success,
            Ok(Ok(code)) => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
            Ok(Err(e)) => Outcome::Failure(format!("Get \"http://{host}:{port}{path}\": {e}")),
            Err(_) => Outcome::Failure(format!(
                "Get \"http://{host}:{port}{path}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            )),
        };
    }
    if let Some(s) = &probe.tcp_socket {
        let Some(port) = port_of(c, &s.port) else {
            return Outcome::Failure(format!("invalid port {:?}", s.port));
        };
        let host = s
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| t.host.clone());
        return match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => Outcome::Success,
            Ok(Err(e)) => Outcome::Failure(format!("dial tcp {host}:{port}: {e}")),
            Err(_) => Outcome::Failure(format!("dial tcp {host}:{port}: i/o timeout")),
        };
    }
    if let Some(g) = &probe.grpc {
        let Ok(port) = u16::try_from(g.port) else {
            return Outcome::Failure(format!("invalid port {}", g.port));
        };
        let service = g.service.as_deref().unwrap_or("");
        return crate::grpc_probe::check(&t.host, port, service, timeout).await;
    }
    Outcome::Failure("probe has no handler".into())
}

/// A plain HTTP/1.1 GET; returns the status code.
pub async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> std::io::Result<u16> {
    let mut s = tokio::net::TcpStream::connect((host, port)).await?;
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = vec![0u8; 1024];
    let mut n = 0;
    while n < 12 {
        let r = s.read(&mut buf[n..]).await?;
        if r == 0 {
            break;
        }
        n += r;
    }
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed HTTP response")
        })
}

/// Runs the container's probes until the task is aborted.
pub async fn run(c: Container, t: Target, state: Arc<ProbeState>, wake: Arc<Notify>) {
    let readiness = c.readiness_probe.clone();
    let liveness = c.liveness_probe.clone();
    let startup = c.startup_probe.clone();
    if readiness.is_none() {
        state.ready.store(true, Ordering::SeqCst);
    }
    if startup.is_none() {
        state.started.store(true, Ordering::SeqCst);
    }
    wake.notify_one();
    if let Some(p) = startup {
        match watch(
            &c,
            &p,
            &t,
            |ok, msg| {
                if ok {
                    state.started.store(true, Ordering::SeqCst);
                    true
                } else {
                    *state.failure.lock() = Some(("Startup".into(), msg));
                    state.failed.store(true, Ordering::SeqCst);
                    true
                }
            },
            &wake,
            true,
        )
        .await
        {
            true if state.failed.load(Ordering::SeqCst) => return,
            _ => {}
        }
    }
    let live = liveness.map(|p| {
        let (c, t, state, wake) = (c.clone(), t.clone(), state.clone(), wake.clone());
        tokio::spawn(async move {
            watch(
                &c,
                &p,
                &t,
                |ok, msg| {
                    if !ok {
                        *state.failure.lock() = Some(("Liveness".into(), msg));
                        state.failed.store(true, Ordering::SeqCst);
                        return true;
                    }
                    false
                },
                &wake,
                false,
            )
            .await;
        })
    });
    if let Some(p) = readiness {
        watch(
            &c,
            &p,
            &t,
            |ok, _| {
                state.ready.store(ok, Ordering::SeqCst);
                false
            },
            &wake,
            false,
        )
        .await;
    }
    if let Some(l) = live {
        let _ = l.await;
    }
}

/// Probes periodically; `on_change(result, message)` is called when the
/// thresholded result flips (and once at the first decision); returning
/// true stops. With `once`, stops after the first success.
async fn watch(
    c: &Container,
    p: &Probe,
    t: &Target,
    mut on_change: impl FnMut(bool, String) -> bool,
    wake: &Notify,
    once: bool,
) -> bool {
    let period = Duration::from_secs(p.period_seconds.unwrap_or(10).max(1) as u64);
    let success_threshold = p.success_threshold.unwrap_or(1).max(1);
    let failure_threshold = p.failure_threshold.unwrap_or(3).max(1);
    tokio::time::sleep(Duration::from_secs(
        p.initial_delay_seconds.unwrap_or(0).max(0) as u64,
    ))
    .await;
    let (mut ok_run, mut fail_run) = (0, 0);
    let mut last: Option<bool> = None;
    loop {
        let outcome = run_once(c, p, t).await;
        let (decided, msg) = match outcome {
            Outcome::Success => {
                ok_run += 1;
                fail_run = 0;
                (
                    if ok_run >= success_threshold {
                        Some(true)
                    } else {
                        None
                    },
                    String::new(),
                )
            }
            Outcome::Failure(m) => {
                fail_run += 1;
                ok_run = 0;
                (
                    if fail_run >= failure_threshold {
                        Some(false)
                    } else {
                        None
                    },
                    m,
                )
            }
        };
        if let Some(d) = decided
            && last != Some(d)
        {
            last = Some(d);
            let stop = on_change(d, msg);
            wake.notify_one();
            if stop || (once && d) {
                return true;
            }
        }
        tokio::time::sleep(period).await;
    }
}
