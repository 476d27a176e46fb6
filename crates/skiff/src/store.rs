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
            let store = skiff_store::etcd::EtcdStore::connect(e)
                .await
                .with_context(|| format!("cannot connect to etcd at {e}"))?;
            Ok(Arc::new(store))
        }
        other => anyhow::bail!(
            "unsupported --datastore-endpoint {other:?}: expected \"\" (embedded SQLite), memory:// or http://HOST:PORT[,...] (etcd)"
        ),
    }
}
