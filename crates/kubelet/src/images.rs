//! Images for containers: the node's image store (what `skiff image build`
//! and `import` wrote), pulled from a registry when the policy says so.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use skiff_images::client::Credentials;
use skiff_images::{Reference, Store};
use skiff_runtime::ImageProcess;

use crate::Result;

#[derive(Clone)]
pub struct Images {
    store: Store,
    client: Arc<skiff_images::client::Client>,
    /// For registries on loopback: plain HTTP, as containerd and k3s
    /// treat `localhost` registries.
    plain: Arc<skiff_images::client::Client>,
    /// One pull at a time per reference (a burst of pods shares it).
    pulls: Arc<tokio::sync::Mutex<()>>,
}

/// An image ready to run.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The normalized reference (`docker.io/library/busybox:latest`).
    pub image: String,
    /// `repository@sha256:...` (the manifest digest), as `imageID`.
    pub image_id: String,
    pub process: ImageProcess,
}

/// Why an image is not there.
#[derive(Debug, Clone)]
pub enum ImageError {
    /// `ErrImageNeverPull`: policy Never and not present.
    NeverPull(String),
    /// `ErrImagePull`: the pull failed.
    Pull(String),
    /// `InvalidImageName`.
    InvalidName(String),
}

impl Images {
    pub fn open(data_dir: &Path) -> Result<Images> {
        Ok(Images {
            store: Store::open(data_dir)?,
            client: Arc::new(skiff_images::client::Client::new(false, None)),
            plain: Arc::new(skiff_images::client::Client::new(true, None)),
            pulls: Arc::default(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn local(&self, image: &str) -> Option<Resolved> {
        let img = self.store.image(image).ok()?;
        let r = Reference::parse(image).ok()?;
        let cfg = img.config.config.clone().unwrap_or_default();
        Some(Resolved {
            image: r.to_string(),
            image_id: format!("{}@{}", r.repository(), img.manifest_digest.as_str()),
            process: ImageProcess {
                entrypoint: cfg.entrypoint.unwrap_or_default(),
                cmd: cfg.cmd.unwrap_or_default(),
                env: cfg.env.unwrap_or_default(),
                working_dir: cfg.working_dir,
                user: cfg.user.filter(|u| !u.is_empty()),
            },
        })
    }

    /// Is the image present (no pull needed for IfNotPresent)?
    pub fn present(&self, image: &str) -> bool {
        self.store.resolve(image).is_ok()
    }

    /// Resolves `image` per `policy` (`Always`, `IfNotPresent`, `Never`);
    /// `on_pull` is called before a pull starts (the `Pulling` event).
    /// A pull tries each of `creds` in turn (the pod's `imagePullSecrets`
    /// for this registry), or none when there are none.
    pub async fn ensure(
        &self,
        image: &str,
        policy: &str,
        creds: &[Credentials],
        on_pull: impl FnOnce(),
    ) -> std::result::Result<(Resolved, bool), ImageError> {
        let reference =
            Reference::parse(image).map_err(|e| ImageError::InvalidName(e.to_string()))?;
        if policy != "Always"
            && let Some(r) = self.local(image)
        {
            return Ok((r, false));
        }
        if policy == "Never" {
            return Err(ImageError::NeverPull(format!(
                "Container image \"{image}\" is not present with pull policy of Never"
            )));
        }
        on_pull();
        let _guard = self.pulls.lock().await;
        if policy != "Always"
            && let Some(r) = self.local(image)
        {
            return Ok((r, false));
        }
        let plain = is_loopback(reference.registry_host());
        let mut result = Ok(());
        if creds.is_empty() {
            let client = if plain { &self.plain } else { &self.client };
            result = client.pull(&self.store, &reference).await.map(|_| ());
        } else {
            for c in creds {
                let client = skiff_images::client::Client::new(plain, Some(c.clone()));
                result = client.pull(&self.store, &reference).await.map(|_| ());
                if result.is_ok() {
                    break;
                }
            }
        }
        if let Err(e) = result {
            return Err(ImageError::Pull(format!(
                "failed to pull and unpack image \"{reference}\": {e}"
            )));
        }
        self.local(image)
            .map(|r| (r, true))
            .ok_or_else(|| ImageError::Pull(format!("image \"{reference}\" not found after pull")))
    }

    /// Unpacks (once) and mounts the image's root filesystem under `dir`.
    pub async fn mount_rootfs(&self, image: &str, dir: PathBuf) -> Result<PathBuf> {
        let store = self.store.clone();
        let image = image.to_string();
        let m = tokio::task::spawn_blocking(move || store.prepare_rootfs(&image, &dir))
            .await
            .map_err(|e| crate::Error::Other(format!("rootfs task: {e}")))??;
        Ok(m.rootfs)
    }
}

/// `localhost[:port]`, `127.x.x.x[:port]`, `[::1][:port]`.
fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Unmounts and removes a container directory made by [`Images::mount_rootfs`].
pub async fn remove_rootfs(dir: PathBuf) {
    let _ = tokio::task::spawn_blocking(move || {
        let _ = skiff_images::rootfs::unmount(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_registries() {
        for h in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.0.0.1",
            "[::1]:5000",
            "LOCALHOST",
        ] {
            assert!(super::is_loopback(h), "{h}");
        }
        for h in ["registry-1.docker.io", "10.0.0.1:5000", "quay.io"] {
            assert!(!super::is_loopback(h), "{h}");
        }
    }
}
