//! What the streaming server (logs, exec, attach, port-forward) needs from
//! the agent: a pod's container by name, now or its previous instance.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;

/// One container instance of a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerRef {
    /// The runtime's container id (without `skiff://`).
    pub container_id: String,
    /// Its CRI-format log file.
    pub log_path: PathBuf,
    /// The pod sandbox's network namespace (port-forward enters it).
    pub netns: PathBuf,
}

/// (container id, log path).
type Instance = (String, PathBuf);

#[derive(Debug, Clone, Default)]
struct PodEntry {
    uid: String,
    netns: PathBuf,
    /// container name → (current, previous)
    containers: HashMap<String, (Option<Instance>, Option<Instance>)>,
}

/// One pod the node runs, for `/stats/summary`.
#[derive(Debug, Clone, PartialEq)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// (container name, current runtime container id), sorted by name.
    pub containers: Vec<(String, String)>,
}

/// Shared by the pod workers (writers) and the streaming server (reader).
#[derive(Clone, Default)]
pub struct PodLookup {
    pods: Arc<RwLock<HashMap<(String, String), PodEntry>>>,
}

impl PodLookup {
    /// The container `container` of pod `namespace/pod`; with `previous`,
    /// the instance before the current one (`kubectl logs --previous`).
    pub fn container(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Option<ContainerRef> {
        let pods = self.pods.read();
        let entry = pods.get(&(namespace.to_string(), pod.to_string()))?;
        let (cur, prev) = entry.containers.get(container)?;
        let (id, log) = if previous {
            prev.clone()?
        } else {
            cur.clone()?
        };
        Some(ContainerRef {
            container_id: id,
            log_path: log,
            netns: entry.netns.clone(),
        })
    }

    /// The pod's network namespace.
    pub fn netns(&self, namespace: &str, pod: &str) -> Option<PathBuf> {
        let pods = self.pods.read();
        pods.get(&(namespace.to_string(), pod.to_string()))
            .map(|e| e.netns.clone())
    }

    /// Every pod with a sandbox and its current containers.
    pub fn pods(&self) -> Vec<PodRef> {
        let pods = self.pods.read();
        let mut out: Vec<PodRef> = pods
            .iter()
            .map(|((namespace, name), e)| {
                let mut containers: Vec<(String, String)> = e
                    .containers
                    .iter()
                    .filter_map(|(c, (cur, _))| cur.as_ref().map(|(id, _)| (c.clone(), id.clone())))
                    .collect();
                containers.sort();
                PodRef {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    uid: e.uid.clone(),
                    containers,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        out
    }

    pub(crate) fn set_netns(&self, namespace: &str, pod: &str, uid: &str, netns: PathBuf) {
        let mut pods = self.pods.write();
        let entry = pods
            .entry((namespace.to_string(), pod.to_string()))
            .or_default();
        entry.netns = netns;
        entry.uid = uid.to_string();
    }

    /// Records a new instance; the current one becomes the previous.
    pub(crate) fn set_container(
        &self,
        namespace: &str,
        pod: &str,
        name: &str,
        id: String,
        log: PathBuf,
    ) {
        let mut pods = self.pods.write();
        let entry = pods
            .entry((namespace.to_string(), pod.to_string()))
            .or_default();
        let slot = entry.containers.entry(name.to_string()).or_default();
        if slot.0.as_ref().is_some_and(|(cur, _)| *cur == id) {
            return;
        }
        slot.1 = slot.0.take();
        slot.0 = Some((id, log));
    }

    /// Records the instance before the current one (after an adoption).
    pub(crate) fn set_previous(
        &self,
        namespace: &str,
        pod: &str,
        name: &str,
        id: String,
        log: PathBuf,
    ) {
        let mut pods = self.pods.write();
        let entry = pods
            .entry((namespace.to_string(), pod.to_string()))
            .or_default();
        entry.containers.entry(name.to_string()).or_default().1 = Some((id, log));
    }

    pub(crate) fn remove_pod(&self, namespace: &str, pod: &str) {
        self.pods
            .write()
            .remove(&(namespace.to_string(), pod.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_and_previous() {
        let l = PodLookup::default();
        l.set_netns("ns", "p", "u1", "/run/ns".into());
        l.set_container("ns", "p", "c", "a".into(), "/l/0.log".into());
        assert_eq!(l.container("ns", "p", "c", true), None);
        l.set_container("ns", "p", "c", "b".into(), "/l/1.log".into());
        let prev = l.container("ns", "p", "c", true).unwrap();
        assert_eq!(prev.container_id, "a");
        assert_eq!(
            l.container("ns", "p", "c", false).unwrap().log_path,
            PathBuf::from("/l/1.log")
        );
        assert_eq!(
            l.pods(),
            vec![PodRef {
                namespace: "ns".into(),
                name: "p".into(),
                uid: "u1".into(),
                containers: vec![("c".into(), "b".into())],
            }]
        );
        l.remove_pod("ns", "p");
        assert!(l.container("ns", "p", "c", false).is_none());
    }
}
