//! Acknowledged writes survive `kill -9`.
//!
//! The test re-executes its own binary, running only `crash_child`, which
//! writes keys from several tasks and prints `ack <revision> <key>` after
//! each acknowledgement. The parent kills it with SIGKILL mid-stream,
//! reopens the file and checks every acknowledged write. The child compacts
//! every few milliseconds, so the kill can also land in a compaction or a
//! WAL checkpoint.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use bytes::Bytes;
use skiff_store::{SqliteOptions, SqliteStore, Store};

const CHILD_ENV: &str = "SKIFF_CRASH_CHILD_DB";
const KILL_AFTER: usize = 600;

/// Only does something when run by `acknowledged_writes_survive_kill_9`.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let options = SqliteOptions {
            compact_interval: Some(std::time::Duration::from_millis(20)),
            retain_revisions: 50,
            ..Default::default()
        };
        let store = SqliteStore::open_with(&path, options).unwrap();
        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("/crash/{t}/{i}");
                    let kv = store.create(&key, Bytes::from(key.clone())).await.unwrap();
                    // Churn that compaction can drop.
                    let tmp = format!("/tmp/{t}");
                    store.create(&tmp, Bytes::new()).await.unwrap();
                    store.delete(&tmp, None).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {} {key}", kv.mod_revision).unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let Some(rest) = line.strip_prefix("ack ") else {
            continue;
        };
        let (rev, key) = rest.split_once(' ').unwrap();
        acked.push((rev.parse::<i64>().unwrap(), key.to_owned()));
        if acked.len() == KILL_AFTER && !killed {
            child.kill().unwrap(); // SIGKILL
            killed = true;
        }
    }
    child.wait().unwrap();
    assert!(killed, "child ended before it was killed");

    let store = SqliteStore::open(&path).unwrap();
    assert!(
        store.compacted_revision().await.unwrap() > 0,
        "the child compacted before the kill"
    );
    for (rev, key) in &acked {
        let kv = store.get(key).await.unwrap();
        let kv = kv.unwrap_or_else(|| panic!("acknowledged write {key} at {rev} lost"));
        assert_eq!(kv.mod_revision, *rev);
        assert_eq!(kv.value, Bytes::from(key.clone()));
    }
    let max = acked.iter().map(|(rev, _)| *rev).max().unwrap();
    let current = store.current_revision().await.unwrap();
    assert!(current >= max);
    let next = store.create("/after-crash", Bytes::new()).await.unwrap();
    assert_eq!(
        next.mod_revision,
        current + 1,
        "revisions continue after the crash"
    );
}
