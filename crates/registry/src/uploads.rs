//! Blob uploads in progress: a temp file in the store's ingest directory
//! plus a running sha256, keyed by upload id. Kept in memory: a restart
//! drops unfinished uploads (clients restart them; GC removes the files).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use sha2::{Digest as _, Sha256};
use skiff_images::{Digest, Store};

use crate::{Code, RegistryError};

pub struct Upload {
    pub name: String,
    pub path: PathBuf,
    file: File,
    hasher: Sha256,
    pub size: u64,
}

#[derive(Default)]
pub struct Uploads {
    /// Never held across an await; each upload has its own async lock.
    map: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Upload>>>>,
}

impl Uploads {
    pub fn start(&self, store: &Store, name: &str) -> Result<String, RegistryError> {
        let id = uuid::Uuid::new_v4().to_string();
        let path = store.temp_path("upload");
        let file = File::create(&path)?;
        let up = Upload {
            name: name.to_string(),
            path,
            file,
            hasher: Sha256::new(),
            size: 0,
        };
        self.lock()
            .insert(id.clone(), Arc::new(tokio::sync::Mutex::new(up)));
        Ok(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<Upload>>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(
        &self,
        name: &str,
        id: &str,
    ) -> Result<Arc<tokio::sync::Mutex<Upload>>, RegistryError> {
        let up = self.lock().get(id).cloned();
        match up {
            Some(u) if u.try_lock().map_or(true, |g| g.name == name) => Ok(u),
            _ => Err(RegistryError::new(
                Code::BlobUploadUnknown,
                format!("upload {id} unknown in {name}"),
            )),
        }
    }

    /// Forgets an upload and deletes its file.
    pub fn remove(&self, id: &str) {
        if let Some(up) = self.lock().remove(id)
            && let Ok(up) = up.try_lock()
        {
            let _ = std::fs::remove_file(&up.path);
        }
    }
}

impl Upload {
    /// Appends a request body. A body that ends early (the client went
    /// away mid-upload) is an error: the caller drops the upload.
    pub async fn append(&mut self, mut body: Incoming) -> Result<(), RegistryError> {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                RegistryError::new(Code::BlobUploadInvalid, format!("upload body: {e}"))
            })?;
            if let Ok(data) = frame.into_data() {
                self.file.write_all(&data)?;
                self.hasher.update(&data);
                self.size += data.len() as u64;
            }
        }
        Ok(())
    }

    /// Checks the digest and moves the file into the blob store.
    pub fn commit(&mut self, store: &Store, expected: &Digest) -> Result<(), RegistryError> {
        let actual = Digest::parse(&format!(
            "sha256:{}",
            hex::encode(self.hasher.clone().finalize())
        ))?;
        if actual != *expected {
            return Err(RegistryError::new(
                Code::DigestInvalid,
                format!(
                    "upload of {} bytes has digest {actual}, not {expected}",
                    self.size
                ),
            ));
        }
        self.file.sync_all()?;
        if store.has_blob(expected) {
            let _ = std::fs::remove_file(&self.path);
            return Ok(());
        }
        store.commit_temp(&self.path, expected)?;
        Ok(())
    }
}
