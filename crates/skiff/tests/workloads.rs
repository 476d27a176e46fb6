//! The workload controllers (ReplicaSet, ReplicationController,
//! Deployment, Job, CronJob, DaemonSet, StatefulSet) driven through the
//! real kubectl against a real `skiff server`. No kubelet runs pods here:
//! hollow nodes (`support::hollow`) report them Running and Ready through
//! the API, as a kubelet would.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use support::{Backend, Cluster};

const K: u32 = 33;

/// Polls `check` until it holds, failing the test after `secs`.
#[track_caller]
fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting until {what}");
}

fn jsonpath(c: &Cluster, args: &[&str], path: &str) -> String {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    let p = format!("jsonpath={path}");
    all.extend_from_slice(&["-o", &p]);
    let out = c.kubectl(K, &all);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn names(c: &Cluster, args: &[&str]) -> Vec<String> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "name"]);
    c.ok(K, &all)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn pod_ready(p: &Value) -> bool {
    p.pointer("/metadata/deletionTimestamp").is_none()
        && p.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Ready")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            })
}

/// A pod's name when it first appeared, and the pods Ready at that moment.
type Appeared = (String, Vec<String>);

/// Watches pods matching a label selector and records, after every event,
/// how many are Ready (and not being deleted).
struct ReadyWatch {
    counts: Arc<Mutex<Vec<usize>>>,
    /// Pods in the order they first appeared, with the names of the pods
    /// Ready at that moment.
    appeared: Arc<Mutex<Vec<Appeared>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ReadyWatch {
    fn start(c: &Cluster, selector: &str) -> ReadyWatch {
        let counts = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let kubeconfig = c.kubeconfig();
        let selector = selector.to_string();
        let out = counts.clone();
        let appeared = Arc::new(Mutex::new(Vec::new()));
        let first_seen = appeared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let client = support::hollow::client(&kubeconfig).await.expect("client");
                let ar = ApiResource {
                    group: String::new(),
                    version: "v1".into(),
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    plural: "pods".into(),
                };
                let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
                let mut pods: HashMap<String, bool> = HashMap::new();
                let mut synced = false;
                let mut stream = watcher::watcher(api, watcher::Config::default().labels(&selector)).boxed();
                let mut stopped = stopped;
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        ev = stream.next() => {
                            let Some(Ok(ev)) = ev else { continue };
                            match ev {
                                Event::Apply(p) | Event::InitApply(p) => {
                                    let v = serde_json::to_value(&p).unwrap_or_default();
                                    let name = p.metadata.name.clone().unwrap_or_default();
                                    if synced && !pods.contains_key(&name) {
                                        let mut ready: Vec<String> = pods.iter().filter(|(_, r)| **r).map(|(n, _)| n.clone()).collect();
                                        ready.sort();
                                        first_seen.lock().unwrap().push((name.clone(), ready));
                                    }
                                    pods.insert(name, pod_ready(&v));
                                }
                                Event::Delete(p) => {
                                    pods.remove(&p.metadata.name.clone().unwrap_or_default());
                                }
                                Event::Init => pods.clear(),
                                Event::InitDone => {
                                    if !synced {
                                        synced = true;
                                        let _ = ready_tx.send(());
                                    }
                                }
                            }
                            if synced {
                                let n = pods.values().filter(|r| **r).count();
                                out.lock().unwrap().push(n);
                            }
                        }
                    }
                }
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("pod watch synced");
        ReadyWatch {
            counts,
            appeared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops watching; the Ready count after every event seen.
    fn finish(mut self) -> Vec<usize> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.counts.lock().unwrap().clone()
    }
}

fn rs_revisions(c: &Cluster) -> Vec<(String, String)> {
    let out = jsonpath(
        c,
        &["rs", "-l", "app=web"],
        r#"{range .items[*]}{.metadata.name}={.metadata.annotations.deployment\.kubernetes\.io/revision}{"\n"}{end}"#,
    );
    let mut v: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn deployment_rolls_out_undoes_pauses_restarts_and_scales() {
    let c = Cluster::start(Backend::Memory);
    let _nodes = c.hollow_nodes(&["hollow-a", "hollow-b"]);
    c.ok(
        K,
        &[
            "create",
            "deployment",
            "web",
            "--image=busybox",
            "--replicas=3",
        ],
    );
    eventually(30, "3 replicas are available", || {
        jsonpath(&c, &["deploy", "web"], "{.status.availableReplicas}") == "3"
    });
    c.ok(K, &["rollout", "status", "deployment/web", "--timeout=60s"]);
    let rs = names(&c, &["rs", "-l", "app=web"]);
    assert_eq!(rs.len(), 1, "{rs:?}");
    let hash = jsonpath(&c, &["deploy", "web"], "{.spec.template.metadata.labels}");
    assert!(
        !hash.contains("pod-template-hash"),
        "the deployment's template is untouched: {hash}"
    );
    let rs_hash = jsonpath(&c, &[&rs[0]], "{.metadata.labels.pod-template-hash}");
    assert_eq!(rs[0], format!("replicaset.apps/web-{rs_hash}"));
    assert_eq!(
        jsonpath(
            &c,
            &[&rs[0]],
            "{.metadata.ownerReferences[0].controller},{.metadata.ownerReferences[0].blockOwnerDeletion}"
        ),
        "true,true"
    );
    let cond = jsonpath(
        &c,
        &["deploy", "web"],
        r#"{.status.conditions[?(@.type=="Progressing")].reason}"#,
    );
    assert_eq!(cond, "NewReplicaSetAvailable");

    // A rolling update never drops below replicas - maxUnavailable (25% of
    // 3 rounds down to 0: all 3 stay Ready throughout).
    let watch = ReadyWatch::start(&c, "app=web");
    c.ok(
        K,
        &[
            "annotate",
            "deployment/web",
            "kubernetes.io/change-cause=to 1.36",
        ],
    );
    c.ok(
        K,
        &["set", "image", "deployment/web", "busybox=busybox:1.36"],
    );
    c.ok(K, &["rollout", "status", "deployment/web", "--timeout=60s"]);
    let counts = watch.finish();
    assert!(counts.len() > 6, "the watch saw the rollout: {counts:?}");
    assert!(
        counts.iter().all(|n| *n >= 3),
        "fewer than 3 ready pods at some point: {counts:?}"
    );
    assert_eq!(
        jsonpath(
            &c,
            &["deploy", "web"],
            "{.status.updatedReplicas}/{.status.replicas}/{.status.availableReplicas}"
        ),
        "3/3/3"
    );
    let revs = rs_revisions(&c);
    assert_eq!(revs.len(), 2, "{revs:?}");
    let history = c.ok(K, &["rollout", "history", "deployment/web"]);
    assert!(history.contains("to 1.36"), "change-cause shown: {history}");
    assert!(
        history.lines().any(|l| l.starts_with('1')) && history.lines().any(|l| l.starts_with('2')),
        "{history}"
    );

    // Undo (kubectl 1.27 once, then 1.33): back to busybox, as revision 3.
    c.ok(27, &["rollout", "undo", "deployment/web"]);
    c.ok(
        27,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    );
    assert_eq!(
        jsonpath(
            &c,
            &["deploy", "web"],
            "{.spec.template.spec.containers[0].image}"
        ),
        "busybox"
    );
    let revs = rs_revisions(&c);
    assert!(revs.iter().any(|(_, r)| r == "3"), "{revs:?}");
    assert!(
        !revs.iter().any(|(_, r)| r == "1"),
        "revision 1 became 3: {revs:?}"
    );
    assert_eq!(
        jsonpath(
            &c,
            &["deploy", "web"],
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
        ),
        "3"
    );

    // Paused: a template change makes no new ReplicaSet until resumed.
    c.ok(K, &["rollout", "pause", "deployment/web"]);
    c.ok(
        K,
        &["set", "image", "deployment/web", "busybox=busybox:1.37"],
    );
    eventually(10, "the paused condition", || {
        jsonpath(
            &c,
            &["deploy", "web"],
            r#"{.status.conditions[?(@.type=="Progressing")].reason}"#,
        ) == "DeploymentPaused"
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(rs_revisions(&c).len(), 2, "no rollout while paused");
    c.ok(K, &["rollout", "resume", "deployment/web"]);
    c.ok(K, &["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert_eq!(rs_revisions(&c).len(), 3);

    // Restart: a new ReplicaSet with the restartedAt annotation.
    c.ok(K, &["rollout", "restart", "deployment/web"]);
    c.ok(K, &["rollout", "status", "deployment/web", "--timeout=60s"]);
    let revs = rs_revisions(&c);
    assert_eq!(revs.len(), 4, "{revs:?}");
    assert!(revs.iter().any(|(_, r)| r == "5"), "{revs:?}");

    // Scaling, and a deleted pod comes back.
    c.ok(K, &["scale", "deployment/web", "--replicas=5"]);
    eventually(30, "5 available", || {
        jsonpath(&c, &["deploy", "web"], "{.status.availableReplicas}") == "5"
    });
    let pods = names(&c, &["pods", "-l", "app=web"]);
    assert_eq!(pods.len(), 5, "{pods:?}");
    c.ok(K, &["delete", &pods[0]]);
    eventually(30, "a replacement pod", || {
        let now = names(&c, &["pods", "-l", "app=web"]);
        now.len() == 5 && !now.contains(&pods[0])
    });
    c.ok(K, &["scale", "deployment/web", "--replicas=2"]);
    eventually(30, "2 pods left", || {
        names(&c, &["pods", "-l", "app=web"]).len() == 2
    });
    assert_eq!(
        jsonpath(
            &c,
            &["deploy", "web"],
            "{.status.replicas}/{.status.availableReplicas}"
        ),
        "2/2"
    );
}

#[test]
fn stalled_rollouts_exceed_their_deadline_and_min_ready_seconds_delays_availability() {
    let c = Cluster::start(Backend::Memory);
    let _nodes = c.hollow_nodes(&["hollow-a"]);
    let deployment = |name: &str, extra: &str, command: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: 1\n{extra}  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: c, image: busybox, command: [sh, -c, \"{command}\"]}}]\n"
        )
    };
    // Its pod crash-loops (hollow nodes run `exit 1` as a failing
    // container), so the rollout never progresses.
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &deployment("stuck", "  progressDeadlineSeconds: 2\n", "exit 1"),
    );
    // Its pod is Ready at once, but counts as available 4 s later.
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &deployment("patient", "  minReadySeconds: 4\n", "sleep 1000"),
    );
    let created = Instant::now();
    eventually(30, "the patient pod is ready", || {
        jsonpath(&c, &["deploy", "patient"], "{.status.readyReplicas}") == "1"
    });
    let available = jsonpath(&c, &["deploy", "patient"], "{.status.availableReplicas}");
    if created.elapsed() < Duration::from_secs(3) {
        assert_ne!(available, "1", "available before minReadySeconds");
    }
    eventually(30, "the patient pod becomes available", || {
        jsonpath(&c, &["deploy", "patient"], "{.status.availableReplicas}") == "1"
    });
    // Ready times have whole seconds (as upstream's), so availability
    // may come up to a second early; without minReadySeconds it comes
    // with readiness, well under a second after the create.
    assert!(
        created.elapsed() >= Duration::from_secs(3),
        "available after {:?}, before minReadySeconds",
        created.elapsed()
    );

    eventually(30, "the stuck rollout exceeds its deadline", || {
        jsonpath(
            &c,
            &["deploy", "stuck"],
            r#"{.status.conditions[?(@.type=="Progressing")].reason}"#,
        ) == "ProgressDeadlineExceeded"
    });
    assert_eq!(
        jsonpath(
            &c,
            &["deploy", "stuck"],
            r#"{.status.conditions[?(@.type=="Progressing")].status}"#,
        ),
        "False"
    );
    let err = c.fails(K, &["rollout", "status", "deploy/stuck", "--timeout=20s"]);
    assert!(
        err.contains("deployment \"stuck\" exceeded its progress deadline"),
        "{err}"
    );
}

#[test]
fn foreground_deletion_of_a_deployment_removes_replicasets_and_pods_first() {
    let c = Cluster::start(Backend::Memory);
    let _nodes = c.hollow_nodes(&["hollow-a"]);
    c.ok(
        K,
        &[
            "create",
            "deployment",
            "web",
            "--image=busybox",
            "--replicas=2",
        ],
    );
    eventually(30, "2 available", || {
        jsonpath(&c, &["deploy", "web"], "{.status.availableReplicas}") == "2"
    });
    // kubectl waits until the Deployment is gone; with foreground
    // propagation, its ReplicaSets and pods went before it.
    c.ok(
        K,
        &[
            "delete",
            "deployment",
            "web",
            "--cascade=foreground",
            "--timeout=60s",
        ],
    );
    assert!(names(&c, &["rs", "-l", "app=web"]).is_empty());
    assert!(names(&c, &["pods", "-l", "app=web"]).is_empty());
}

#[test]
fn replication_controller_adopts_orphans_and_keeps_its_count() {
    let c = Cluster::start(Backend::Memory);
    let _nodes = c.hollow_nodes(&["hollow-a"]);
    // An orphan that matches is adopted rather than a new pod made.
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: stray, labels: {app: rc}}\nspec: {containers: [{name: c, image: busybox}]}\n",
    );
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: rc}\nspec:\n  replicas: 3\n  selector: {app: rc}\n  template:\n    metadata: {labels: {app: rc}}\n    spec: {containers: [{name: c, image: busybox}]}\n",
    );
    eventually(30, "3 ready replicas", || {
        jsonpath(&c, &["rc", "rc"], "{.status.readyReplicas}") == "3"
    });
    assert_eq!(names(&c, &["pods", "-l", "app=rc"]).len(), 3);
    assert_eq!(
        jsonpath(
            &c,
            &["pod", "stray"],
            "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}"
        ),
        "ReplicationController/rc"
    );
    assert_eq!(
        jsonpath(
            &c,
            &["rc", "rc"],
            "{.status.replicas}/{.status.fullyLabeledReplicas}/{.status.availableReplicas}/{.status.observedGeneration}"
        ),
        "3/3/3/1"
    );
    // Relabelled: released, and replaced.
    c.ok(K, &["label", "pod", "stray", "app=other", "--overwrite"]);
    eventually(30, "stray released and replaced", || {
        jsonpath(&c, &["pod", "stray"], "{.metadata.ownerReferences[*].name}").is_empty()
            && names(&c, &["pods", "-l", "app=rc"]).len() == 3
    });
    c.ok(K, &["scale", "rc", "rc", "--replicas=1"]);
    eventually(30, "1 pod left", || {
        names(&c, &["pods", "-l", "app=rc"]).len() == 1
    });
}

fn job_yaml(name: &str, extra_spec: &str, command: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n{extra_spec}  template:\n    spec:\n      restartPolicy: Never\n      containers: [{{name: main, image: busybox, command: [sh, -c, \"{command}\"]}}]\n"
    )
}

#[test]
fn jobs_complete_fail_at_the_backoff_limit_and_index_their_pods() {
    let c = Cluster::start(Backend::Memory);
    let _nodes = c.hollow_nodes(&["hollow-a"]);
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &job_yaml("five", "  completions: 5\n  parallelism: 2\n", "exit 0"),
    );
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &job_yaml("bad", "  backoffLimit: 1\n", "exit 1"),
    );
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &job_yaml(
            "idx",
            "  completions: 3\n  parallelism: 3\n  completionMode: Indexed\n",
            "exit 0",
        ),
    );
    // Deleted (with its pods) once finished, by the TTL-after-finished
    // controller.
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &job_yaml("brief", "  ttlSecondsAfterFinished: 1\n", "exit 0"),
    );
    assert!(names(&c, &["jobs"]).contains(&"job.batch/brief".to_string()));

    c.ok(
        K,
        &[
            "wait",
            "--for=condition=complete",
            "job/five",
            "--timeout=60s",
        ],
    );
    assert_eq!(
        jsonpath(
            &c,
            &["job", "five"],
            "{.status.succeeded}/{.status.failed}/{.status.active}"
        ),
        "5/0/0"
    );
    let phases = jsonpath(
        &c,
        &["pods", "-l", "job-name=five"],
        "{.items[*].status.phase}",
    );
    assert_eq!(
        phases
            .split_whitespace()
            .filter(|p| *p == "Succeeded")
            .count(),
        5,
        "{phases}"
    );
    assert_eq!(
        phases.split_whitespace().count(),
        5,
        "exactly 5 pods: {phases}"
    );
    let fins = jsonpath(
        &c,
        &["pods", "-l", "job-name=five"],
        "{.items[*].metadata.finalizers}",
    );
    assert!(fins.is_empty(), "tracking finalizers removed: {fins}");
    let conds = jsonpath(
        &c,
        &["job", "five"],
        r#"{.status.conditions[?(@.status=="True")].type}"#,
    );
    assert_eq!(conds, "SuccessCriteriaMet Complete");

    c.ok(
        K,
        &["wait", "--for=condition=failed", "job/bad", "--timeout=60s"],
    );
    assert_eq!(
        jsonpath(
            &c,
            &["job", "bad"],
            r#"{.status.conditions[?(@.type=="Failed")].reason}/{.status.failed}"#
        ),
        "BackoffLimitExceeded/2"
    );
    assert_eq!(names(&c, &["pods", "-l", "job-name=bad"]).len(), 2);

    c.ok(
        K,
        &[
            "wait",
            "--for=condition=complete",
            "job/idx",
            "--timeout=60s",
        ],
    );
    assert_eq!(
        jsonpath(&c, &["job", "idx"], "{.status.completedIndexes}"),
        "0-2"
    );
    let idx = jsonpath(
        &c,
        &["pods", "-l", "job-name=idx"],
        r#"{range .items[*]}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}:{.spec.hostname}{" "}{end}"#,
    );
    let mut idx: Vec<&str> = idx.split_whitespace().collect();
    idx.sort();
    assert_eq!(idx, ["0:idx-0", "1:idx-1", "2:idx-2"]);

    eventually(
        30,
        "the finished Job with ttlSecondsAfterFinished is deleted",
        || !names(&c, &["jobs"]).contains(&"job.batch/brief".to_string()),
    );
    eventually(30, "its pods are collected", || {
        names(&c, &["pods", "-l", "job-name=brief"]).is_empty()
    });
}

#[test]
fn indexed_jobs_fail_per_index_and_succeed_by_policy() {
    let c = Cluster::start(Backend::Memory);
    let _nodes = c.hollow_nodes(&["hollow-a"]);
    // Every index fails; each may fail twice (limit 1) before it is
    // failed for good, so the Job ends with all three failed indexes.
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &job_yaml(
            "perindex",
            "  completions: 3\n  parallelism: 3\n  completionMode: Indexed\n  backoffLimitPerIndex: 1\n",
            "exit 1",
        ),
    );
    // Any failed index ends this one at once.
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &job_yaml(
            "maxfailed",
            "  completions: 2\n  parallelism: 2\n  completionMode: Indexed\n  backoffLimitPerIndex: 0\n  maxFailedIndexes: 0\n",
            "exit 1",
        ),
    );
    // Index 0 alone is enough.
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &job_yaml(
            "leader",
            "  completions: 3\n  parallelism: 1\n  completionMode: Indexed\n  successPolicy:\n    rules: [{succeededIndexes: \"0\"}]\n",
            "exit 0",
        ),
    );

    c.ok(
        K,
        &[
            "wait",
            "--for=condition=failed",
            "job/maxfailed",
            "--timeout=60s",
        ],
    );
    assert_eq!(
        jsonpath(
            &c,
            &["job", "maxfailed"],
            r#"{.status.conditions[?(@.type=="Failed")].reason}"#
        ),
        "MaxFailedIndexesExceeded"
    );

    c.ok(
        K,
        &[
            "wait",
            "--for=condition=complete",
            "job/leader",
            "--timeout=60s",
        ],
    );
    assert_eq!(
        jsonpath(
            &c,
            &["job", "leader"],
            r#"{.status.conditions[?(@.type=="Complete")].reason}/{.status.completedIndexes}"#
        ),
        "SuccessPolicy/0"
    );

    c.ok(
        K,
        &[
            "wait",
            "--for=condition=failed",
            "job/perindex",
            "--timeout=90s",
        ],
    );
    assert_eq!(
        jsonpath(
            &c,
            &["job", "perindex"],
            r#"{.status.conditions[?(@.type=="Failed")].reason}/{.status.failedIndexes}/{.status.failed}"#
        ),
        "FailedIndexes/0-2/6"
    );
    // The second pod of each index says how often the index failed before.
    let counts = jsonpath(
        &c,
        &["pods", "-l", "job-name=perindex"],
        r#"{range .items[*]}{.metadata.annotations.batch\.kubernetes\.io/job-index-failure-count}{" "}{end}"#,
    );
    let mut counts: Vec<&str> = counts.split_whitespace().collect();
    counts.sort();
    assert_eq!(counts, ["0", "0", "0", "1", "1", "1"]);
}

#[test]
fn cronjob_catches_up_with_a_missed_minute() {
    let c = Cluster::start(Backend::Memory);
    let _nodes = c.hollow_nodes(&["hollow-a"]);
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: tick}\nspec:\n  schedule: \"* * * * *\"\n  suspend: true\n  startingDeadlineSeconds: 300\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{name: main, image: busybox, command: [sh, -c, \"exit 0\"]}]\n",
    );
    // Pretend the last run was three minutes ago: the controller runs the
    // most recent missed minute at once instead of waiting for the next.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let three_ago = now - 180 - now % 60;
    let stamp = String::from_utf8(
        std::process::Command::new("date")
            .args(["-u", "-d", &format!("@{three_ago}"), "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let patch = format!(r#"{{"status":{{"lastScheduleTime":"{}"}}}}"#, stamp.trim());
    c.ok(
        K,
        &[
            "patch",
            "cronjob",
            "tick",
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ],
    );
    c.ok(
        K,
        &[
            "patch",
            "cronjob",
            "tick",
            "--type=merge",
            "-p",
            r#"{"spec":{"suspend":false}}"#,
        ],
    );
    let mut job = String::new();
    eventually(20, "a job for a missed minute", || {
        job = names(&c, &["jobs"]).into_iter().next().unwrap_or_default();
        !job.is_empty()
    });
    let minutes: u64 = job
        .trim_start_matches("job.batch/tick-")
        .parse()
        .unwrap_or_else(|_| panic!("job name {job}"));
    let now_min = now / 60;
    assert!(
        (now_min - 1..=now_min + 1).contains(&minutes),
        "{job} for minute {now_min}"
    );
    assert_eq!(
        jsonpath(
            &c,
            &[&job],
            "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}"
        ),
        "CronJob/tick"
    );
    c.ok(
        K,
        &["wait", "--for=condition=complete", &job, "--timeout=30s"],
    );
    eventually(20, "lastSuccessfulTime", || {
        !jsonpath(&c, &["cronjob", "tick"], "{.status.lastSuccessfulTime}").is_empty()
    });
    let last = jsonpath(&c, &["cronjob", "tick"], "{.status.lastScheduleTime}");
    assert_ne!(last, stamp.trim(), "lastScheduleTime moved on");
}

#[test]
fn daemonset_runs_one_pod_per_node_and_rolls() {
    let c = Cluster::start(Backend::Memory);
    let _nodes = c.hollow_nodes(&["hollow-a", "hollow-b"]);
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec: {containers: [{name: c, image: busybox}]}\n",
    );
    eventually(30, "a ready pod on both nodes", || {
        jsonpath(
            &c,
            &["ds", "agent"],
            "{.status.desiredNumberScheduled}/{.status.currentNumberScheduled}/{.status.numberReady}/{.status.updatedNumberScheduled}/{.status.numberAvailable}",
        ) == "2/2/2/2/2"
    });
    let pinned = jsonpath(
        &c,
        &["pods", "-l", "app=agent"],
        "{.items[*].spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].values[0]}",
    );
    let mut pinned: Vec<&str> = pinned.split_whitespace().collect();
    pinned.sort();
    assert_eq!(pinned, ["hollow-a", "hollow-b"]);
    let tolerations = jsonpath(
        &c,
        &["pods", "-l", "app=agent"],
        "{.items[0].spec.tolerations[*].key}",
    );
    assert!(
        tolerations.contains("node.kubernetes.io/unreachable"),
        "{tolerations}"
    );
    c.ok(K, &["set", "image", "ds/agent", "c=busybox:1.36"]);
    c.ok(K, &["rollout", "status", "ds/agent", "--timeout=60s"]);
    let images = jsonpath(
        &c,
        &["pods", "-l", "app=agent"],
        "{.items[*].spec.containers[0].image}",
    );
    assert_eq!(images, "busybox:1.36 busybox:1.36");
    assert_eq!(
        names(&c, &["controllerrevisions", "-l", "app=agent"]).len(),
        2
    );
    let history = c.ok(K, &["rollout", "history", "ds/agent"]);
    assert!(history.contains('2'), "{history}");
    // History is trimmed to revisionHistoryLimit, sparing the live one.
    c.ok(
        K,
        &[
            "patch",
            "ds/agent",
            "-p",
            r#"{"spec":{"revisionHistoryLimit":1}}"#,
        ],
    );
    c.ok(K, &["set", "image", "ds/agent", "c=busybox:1.37"]);
    c.ok(K, &["rollout", "status", "ds/agent", "--timeout=60s"]);
    c.ok(K, &["set", "image", "ds/agent", "c=busybox:1.38"]);
    c.ok(K, &["rollout", "status", "ds/agent", "--timeout=60s"]);
    eventually(30, "two revisions left: the live one and one more", || {
        names(&c, &["controllerrevisions", "-l", "app=agent"]).len() == 2
    });
    let newest = jsonpath(
        &c,
        &["controllerrevisions", "-l", "app=agent"],
        "{.items[*].revision}",
    );
    let mut newest: Vec<&str> = newest.split_whitespace().collect();
    newest.sort();
    assert_eq!(newest, ["3", "4"]);
}

#[test]
fn statefulset_starts_pods_in_order_with_their_own_claims() {
    let c = Cluster::start(Backend::Memory);
    let _nodes = c.hollow_nodes(&["hollow-a"]);
    let watch = ReadyWatch::start(&c, "app=db");
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\nspec:\n  replicas: 3\n  serviceName: web\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec: {containers: [{name: c, image: busybox}]}\n  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n",
    );
    eventually(30, "3 ready replicas", || {
        jsonpath(&c, &["sts", "web"], "{.status.readyReplicas}") == "3"
    });
    let order = watch.appeared.lock().unwrap().clone();
    let _ = watch.finish();
    let names_in_order: Vec<&str> = order.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names_in_order, ["web-0", "web-1", "web-2"]);
    // OrderedReady: each pod appeared only once its predecessors were Ready.
    assert_eq!(order[1].1, ["web-0"]);
    assert_eq!(order[2].1, ["web-0", "web-1"]);
    assert_eq!(
        jsonpath(
            &c,
            &["pod", "web-1"],
            "{.spec.hostname}/{.spec.subdomain}/{.metadata.labels.statefulset\\.kubernetes\\.io/pod-name}/{.metadata.labels.apps\\.kubernetes\\.io/pod-index}/{.spec.volumes[?(@.name==\"data\")].persistentVolumeClaim.claimName}"
        ),
        "web-1/web/web-1/1/data-web-1"
    );
    let mut claims = names(&c, &["pvc"]);
    claims.sort();
    assert_eq!(
        claims,
        [
            "persistentvolumeclaim/data-web-0",
            "persistentvolumeclaim/data-web-1",
            "persistentvolumeclaim/data-web-2"
        ]
    );
    let uid = jsonpath(&c, &["pvc", "data-web-1"], "{.metadata.uid}");
    // A deleted pod comes back under the same name, with the same claim.
    // `--wait=false`: a hollow node finishes the deletion and the
    // controller recreates web-1 within milliseconds, and kubectl's own
    // wait (GET, then a LIST+watch on the name) would then find the *new*
    // web-1 and wait for a DELETED event that never comes: a race in
    // kubectl's wait, not in the cluster. The test checks the new uid.
    let pod_uid = jsonpath(&c, &["pod", "web-1"], "{.metadata.uid}");
    c.ok(K, &["delete", "pod", "web-1", "--wait=false"]);
    eventually(30, "web-1 back and ready", || {
        let now = jsonpath(&c, &["pod", "web-1"], "{.metadata.uid}");
        jsonpath(&c, &["sts", "web"], "{.status.readyReplicas}") == "3"
            && !now.is_empty()
            && now != pod_uid
    });
    assert_eq!(
        jsonpath(&c, &["pvc", "data-web-1"], "{.metadata.uid}"),
        uid,
        "the claim was kept"
    );
    let revs = jsonpath(
        &c,
        &["sts", "web"],
        "{.status.currentRevision}/{.status.updateRevision}",
    );
    let (cur, upd) = revs.split_once('/').unwrap();
    assert!(!cur.is_empty() && cur == upd, "{revs}");
    // Scale down: the highest ordinal goes, its claim stays (Retain).
    c.ok(K, &["scale", "sts", "web", "--replicas=2"]);
    eventually(30, "web-2 gone", || {
        names(&c, &["pods", "-l", "app=db"]).len() == 2
    });
    assert!(
        names(&c, &["pods", "-l", "app=db"])
            .iter()
            .all(|n| n != "pod/web-2")
    );
    assert_eq!(names(&c, &["pvc"]).len(), 3);
}

/// `skiff agent --hollow N` joins with the token and serves N simulated
/// nodes; the scheduler spreads a Deployment over them.
#[test]
fn agent_runs_hollow_nodes() {
    let c = Cluster::start(Backend::Memory);
    let token = std::fs::read_to_string(c.data_dir().join("token")).expect("token");
    let agent_dir = c.data_dir().join("hollow-agent");
    let mut agent = std::process::Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(["agent", "--server", &c.url, "--token", token.trim()])
        .args(["--node-name", "sim", "--hollow", "3", "--data-dir"])
        .arg(&agent_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("agent");
    struct Stop<'a>(&'a mut std::process::Child);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _stop = Stop(&mut agent);
    eventually(30, "three Ready hollow nodes", || {
        jsonpath(
            &c,
            &["nodes", "-l", "skiff.dev/hollow=true"],
            r#"{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}"#,
        )
        .trim()
            == "sim-0=True sim-1=True sim-2=True"
    });
    c.ok(
        K,
        &[
            "create",
            "deployment",
            "spread",
            "--image=busybox",
            "--replicas=3",
        ],
    );
    c.ok(
        K,
        &["rollout", "status", "deployment/spread", "--timeout=60s"],
    );
    let nodes = jsonpath(
        &c,
        &["pods", "-l", "app=spread"],
        "{.items[*].spec.nodeName}",
    );
    let mut nodes: Vec<&str> = nodes.split_whitespace().collect();
    nodes.sort();
    assert_eq!(
        nodes,
        ["sim-0", "sim-1", "sim-2"],
        "spread by the scheduler"
    );
}
