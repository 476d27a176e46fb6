//! Pod status as upstream shapes it: phase from the containers' states,
//! the five conditions with stable transition times, container statuses.
//! Pure functions over a [`View`] the worker fills in.

use serde_json::{Value, json};

/// One container's reported status.
#[derive(Debug, Clone)]
pub struct CStatus {
    pub name: String,
    pub image: String,
    pub image_id: String,
    /// `skiff://ID`.
    pub container_id: Option<String>,
    /// `{"running": {...}}`, `{"waiting": {...}}` or `{"terminated": {...}}`.
    pub state: Value,
    pub last_state: Value,
    pub ready: bool,
    pub started: Option<bool>,
    pub restart_count: i32,
}

impl CStatus {
    fn is(&self, s: &str) -> bool {
        self.state.get(s).is_some()
    }

    fn exit_code(&self) -> Option<i64> {
        self.state
            .get("terminated")
            .and_then(|t| t["exitCode"].as_i64())
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "state": self.state,
            "lastState": self.last_state,
            "ready": self.ready,
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": self.image_id,
        });
        if let Some(id) = &self.container_id {
            v["containerID"] = json!(id);
        }
        if let Some(s) = self.started {
            v["started"] = json!(s);
        }
        v
    }
}

#[derive(Debug, Clone, Default)]
pub struct View {
    pub init: Vec<CStatus>,
    pub containers: Vec<CStatus>,
    pub restart_policy: String,
    pub sandbox_ready: bool,
    pub pod_ip: Option<String>,
    pub host_ip: String,
    pub start_time: Option<String>,
    pub qos: String,
    /// The pod failed for good (an init container failed with Never).
    pub init_failed: bool,
}

/// Upstream's `getPhase`.
pub fn phase(v: &View) -> &'static str {
    if v.init_failed {
        return "Failed";
    }
    let init_done = v.init.iter().all(|c| c.exit_code() == Some(0));
    if !init_done {
        return "Pending";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in &v.containers {
        if c.is("running") {
            running += 1;
        } else if c.is("terminated") {
            stopped += 1;
            if c.exit_code() == Some(0) {
                succeeded += 1;
            }
        } else if c.last_state.get("terminated").is_some() {
            // Waiting to restart after a run.
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    let n = v.containers.len();
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped == n && n > 0 {
        return match v.restart_policy.as_str() {
            "Always" => "Running",
            "OnFailure" if succeeded == n => "Succeeded",
            "OnFailure" => "Running",
            _ if succeeded == n => "Succeeded",
            _ => "Failed",
        };
    }
    "Pending"
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or(jiff::Timestamp::now())
        .to_string()
}

/// The whole `status`, keeping `previous` conditions' transition times and
/// conditions other components own (PodScheduled and readiness gates).
pub fn pod_status(v: &View, previous: Option<&Value>) -> Value {
    let phase = phase(v);
    let ts = now();
    let prev_conds: Vec<Value> = previous
        .and_then(|p| p.get("conditions"))
        .and_then(|c| c.as_array())
        .cloned()
        .unwrap_or_default();
    let cond = |kind: &str, ok: bool, reason: Option<String>, message: Option<String>| {
        let status = if ok { "True" } else { "False" };
        let transition = prev_conds
            .iter()
            .find(|c| c["type"] == kind && c["status"] == status)
            .map(|c| c["lastTransitionTime"].clone())
            .unwrap_or_else(|| json!(ts));
        let mut c = json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": transition});
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        if let Some(m) = message {
            c["message"] = json!(m);
        }
        c
    };
    let terminal = phase == "Succeeded" || phase == "Failed";
    let pending_init: Vec<&str> = v
        .init
        .iter()
        .filter(|c| c.exit_code() != Some(0))
        .map(|c| c.name.as_str())
        .collect();
    let initialized = pending_init.is_empty() || (terminal && !v.init_failed);
    let unready: Vec<&str> = v
        .containers
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let containers_ready = unready.is_empty();
    let (ready_reason, ready_msg) = if containers_ready {
        (None, None)
    } else if terminal {
        (Some("PodCompleted".to_string()), None)
    } else {
        (
            Some("ContainersNotReady".to_string()),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let init_cond = if initialized {
        cond(
            "Initialized",
            true,
            terminal
                .then(|| "PodCompleted".into())
                .filter(|_| !v.init.is_empty()),
            None,
        )
    } else {
        cond(
            "Initialized",
            false,
            Some("ContainersNotInitialized".into()),
            Some(format!(
                "containers with incomplete status: [{}]",
                pending_init.join(" ")
            )),
        )
    };
    let mut conditions = vec![
        cond(
            "PodReadyToStartContainers",
            v.sandbox_ready && !terminal,
            None,
            None,
        ),
        init_cond,
        cond(
            "Ready",
            containers_ready,
            ready_reason.clone(),
            ready_msg.clone(),
        ),
        cond("ContainersReady", containers_ready, ready_reason, ready_msg),
    ];
    let ours = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
    ];
    let mut others: Vec<Value> = prev_conds
        .iter()
        .filter(|c| !ours.iter().any(|o| c["type"] == *o))
        .cloned()
        .collect();
    if !others.iter().any(|c| c["type"] == "PodScheduled") {
        others.insert(0, json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": ts}));
    }
    others.append(&mut conditions);
    let mut s = json!({
        "phase": phase,
        "conditions": others,
        "hostIP": v.host_ip,
        "hostIPs": [{"ip": v.host_ip}],
        "qosClass": v.qos,
        "containerStatuses": v.containers.iter().map(CStatus::to_json).collect::<Vec<_>>(),
    });
    if !v.init.is_empty() {
        s["initContainerStatuses"] = json!(v.init.iter().map(CStatus::to_json).collect::<Vec<_>>());
    }
    if let Some(ip) = &v.pod_ip {
        s["podIP"] = json!(ip);
        s["podIPs"] = json!([{"ip": ip}]);
    }
    if let Some(t) = &v.start_time {
        s["startTime"] = json!(t);
    }
    s
}

/// The status without times that change on every computation, to decide
/// whether a write is needed.
pub fn comparable(s: &Value) -> Value {
    let mut s = s.clone();
    if let Some(cs) = s.get_mut("conditions").and_then(|c| c.as_array_mut()) {
        for c in cs {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastTransitionTime");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(state: Value, last: Value) -> CStatus {
        CStatus {
            name: "c".into(),
            image: "i".into(),
            image_id: String::new(),
            container_id: None,
            state,
            last_state: last,
            ready: false,
            started: None,
            restart_count: 0,
        }
    }

    #[test]
    fn phases() {
        let mut v = View {
            restart_policy: "Always".into(),
            ..Default::default()
        };
        v.containers = vec![c(
            json!({"waiting": {"reason": "ContainerCreating"}}),
            json!({}),
        )];
        assert_eq!(phase(&v), "Pending");
        v.containers = vec![c(json!({"running": {}}), json!({}))];
        assert_eq!(phase(&v), "Running");
        v.containers = vec![c(
            json!({"waiting": {"reason": "CrashLoopBackOff"}}),
            json!({"terminated": {"exitCode": 1}}),
        )];
        assert_eq!(phase(&v), "Running");
        v.restart_policy = "Never".into();
        v.containers = vec![c(json!({"terminated": {"exitCode": 1}}), json!({}))];
        assert_eq!(phase(&v), "Failed");
        v.containers = vec![c(json!({"terminated": {"exitCode": 0}}), json!({}))];
        assert_eq!(phase(&v), "Succeeded");
        v.init = vec![c(json!({"running": {}}), json!({}))];
        assert_eq!(phase(&v), "Pending");
    }

    #[test]
    fn conditions_keep_transition_times() {
        let v = View {
            restart_policy: "Always".into(),
            sandbox_ready: true,
            host_ip: "1.2.3.4".into(),
            containers: vec![c(json!({"running": {}}), json!({}))],
            ..Default::default()
        };
        let mut first = pod_status(&v, None);
        for cnd in first["conditions"].as_array_mut().unwrap() {
            cnd["lastTransitionTime"] = json!("2000-01-01T00:00:00Z");
        }
        let second = pod_status(&v, Some(&first));
        let ready = second["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["lastTransitionTime"], "2000-01-01T00:00:00Z");
        assert_eq!(ready["reason"], "ContainersNotReady");
        assert_eq!(ready["message"], "containers with unready status: [c]");
        assert!(
            second["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == "PodScheduled")
        );
    }
}
