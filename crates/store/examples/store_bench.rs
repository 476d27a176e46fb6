//! Write benchmark of the sqlite and etcd backends (etcd started locally).
//!
//! `cargo run --release -p skiff-store --example store_bench [clients] [writes]`

use std::sync::Arc;

use skiff_store::bench::bench_writes;
use skiff_store::testutil::EtcdServer;
use skiff_store::{EtcdStore, MemoryStore, SqliteStore, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let clients: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(16);
    let writes: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);

    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    println!("memory: {}", bench_writes(memory, clients, writes).await?);

    let dir = tempfile::tempdir()?;
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("bench.db"))?);
    println!("sqlite: {}", bench_writes(sqlite, clients, writes).await?);

    if let Some(server) = EtcdServer::start() {
        let etcd: Arc<dyn Store> = Arc::new(EtcdStore::connect(&server.endpoint).await?);
        println!("etcd:   {}", bench_writes(etcd, clients, writes).await?);
    }
    Ok(())
}
