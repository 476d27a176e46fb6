//! Picks the store backend from `--datastore-endpoint`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use skiff_store::Store;

/// `""` = embedded SQLite in the data dir; `memory://` = in memory (for
/// tests: nothing survives a restart); `http://host:port[,...]` = an etcd
/// v3 cluster.
pub async fn open(endpoint: &str, data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    match endpoint {
        "" => {
            let dir = data_dir.join("db");
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let path = dir.join("state.db");
            let store =
                tokio::task::spawn_blocking(move || skiff_store::sqlite::SqliteStore::open(&path))
                    .await?
                    .context("cannot open the SQLite store")?;
            Ok(Arc::new(store))
        }
        "memory://" => Ok(Arc::new(skiff_store::memory::MemoryStore::new())),
        e if e.starts_with("http://") || e.starts_with("https://") => {
            let store: Arc<dyn Store> = Arc::new(
                skiff_store::etcd::EtcdStore::connect(e)
                    .await
                    .with_context(|| format!("cannot connect to etcd at {e}"))?,
            );
            tokio::spawn(compact_periodically(store.clone()));
            Ok(store)
        }
        other => anyhow::bail!(
            "unsupported --datastore-endpoint {other:?}: expected \"\" (embedded SQLite), memory:// or http://HOST:PORT[,...] (etcd)"
        ),
    }
}

/// etcd keeps every revision until someone compacts it; like upstream's
/// API server, compact every five minutes to the revision seen at the
/// previous tick, so watchers have at least five minutes of history.
/// (The SQLite store compacts itself.)
async fn compact_periodically(store: Arc<dyn Store>) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(300);
    let mut previous = None;
    loop {
        tokio::time::sleep(EVERY).await;
        if let Some(rev) = previous
            && let Err(e) = store.compact(rev).await
        {
            tracing::warn!(error = %e, revision = rev, "etcd compaction failed");
        }
        previous = store.current_revision().await.ok();
    }
}
