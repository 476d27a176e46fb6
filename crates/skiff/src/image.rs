//! `skiff image ...`: the image store from the command line.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use skiff_images::{Reference, Store};

#[derive(Args)]
pub struct ImageArgs {
    /// Where images (and containers) live.
    #[arg(long, global = true, default_value = "/var/lib/skiff")]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// List images.
    Ls {
        /// Print only digests.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Remove image names (blobs go at the next `prune`).
    Rm {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Give an image another name.
    Tag { source: String, target: String },
    /// Print an image's manifest and config as JSON.
    Inspect { image: String },
    /// Import an OCI archive or a docker-archive (`docker save`) tarball.
    Import {
        /// The archive, or `-` for stdin.
        file: String,
        /// Name for images the archive leaves unnamed.
        #[arg(long)]
        name: Option<String>,
    },
    /// Export images as an OCI archive (also loadable by docker 25+).
    Export {
        #[arg(short, long)]
        output: String,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Delete blobs and snapshots no image name reaches.
    Prune,
    /// Push an image to a registry (as TARGET if given).
    Push {
        image: String,
        target: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Build an image from a Dockerfile.
    Build {
        /// Name (and tag) for the image; repeatable.
        #[arg(short, long)]
        tag: Vec<String>,
        /// The Dockerfile (default: CONTEXT/Dockerfile).
        #[arg(short, long)]
        file: Option<PathBuf>,
        /// `NAME=VALUE` for an ARG.
        #[arg(long)]
        build_arg: Vec<String>,
        #[arg(long)]
        no_cache: bool,
        context: PathBuf,
    },
    /// Pull an image from a registry.
    Pull {
        image: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

#[derive(Args)]
struct RemoteArgs {
    /// Plain HTTP (no TLS): for a registry on loopback or a trusted network.
    #[arg(long)]
    insecure: bool,
    /// `USER:PASSWORD` for basic auth or a token service.
    #[arg(long, env = "SKIFF_REGISTRY_AUTH", hide_env_values = true)]
    creds: Option<String>,
    /// Extra CA certificates (PEM) to trust besides the system's.
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

impl RemoteArgs {
    fn client(&self) -> anyhow::Result<skiff_images::client::Client> {
        let creds = match &self.creds {
            Some(c) => {
                let (u, p) = c.split_once(':').context("--creds must be USER:PASSWORD")?;
                Some(skiff_images::client::Credentials {
                    username: u.to_string(),
                    password: p.to_string(),
                })
            }
            None => None,
        };
        let ca = match &self.ca_file {
            Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            None => Vec::new(),
        };
        Ok(skiff_images::client::Client::with_roots(
            self.insecure,
            creds,
            &ca,
        ))
    }
}

fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(f))
}

pub fn run(args: ImageArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(&args.data_dir)
        .with_context(|| format!("opening the image store in {}", args.data_dir.display()))?;
    let mut out = io::stdout().lock();
    match args.command {
        ImageCommand::Ls { quiet } => {
            if !quiet {
                writeln!(out, "{:<60} {:<15} {:>10}", "NAME", "ID", "SIZE")?;
            }
            for (name, desc) in store.list()? {
                if quiet {
                    writeln!(out, "{}", desc.digest)?;
                    continue;
                }
                let size = store.image_from(desc.clone()).map(|i| {
                    i.manifest.layers.iter().map(|l| l.size).sum::<u64>() + i.manifest.config.size
                });
                let size = size.map_or("?".to_string(), human);
                let familiar = Reference::parse(&name).map_or(name.clone(), |r| r.familiar());
                writeln!(
                    out,
                    "{:<60} {:<15} {:>10}",
                    familiar,
                    &desc.digest.hex()[..12],
                    size
                )?;
            }
        }
        ImageCommand::Rm { images } => {
            let mut failed = false;
            for i in images {
                let r = Reference::parse(&i)?;
                if store.untag(&r)? {
                    writeln!(out, "Untagged: {}", r.familiar())?;
                } else {
                    eprintln!("skiff: image not found: {i}");
                    failed = true;
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        ImageCommand::Tag { source, target } => {
            let desc = store.resolve(&source)?;
            let r = Reference::parse(&target)?;
            if r.digest.is_some() {
                bail!("cannot tag with a digest: {target}");
            }
            store.tag(&r, &desc)?;
        }
        ImageCommand::Inspect { image } => {
            let img = store.image(&image)?;
            let v = serde_json::json!({
                "name": image,
                "digest": img.target.digest,
                "mediaType": img.target.media_type,
                "manifestDigest": img.manifest_digest,
                "manifest": img.manifest,
                "config": img.config,
            });
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
        }
        ImageCommand::Import { file, name } => {
            let name = name.map(|n| Reference::parse(&n)).transpose()?;
            let imported = if file == "-" {
                store.import(&mut io::stdin().lock(), name.as_ref())?
            } else {
                let f = File::open(&file).with_context(|| format!("opening {file}"))?;
                store.import(&mut BufReader::with_capacity(1 << 20, f), name.as_ref())?
            };
            for (name, desc) in imported {
                writeln!(out, "Loaded image: {name} ({})", desc.digest)?;
            }
        }
        ImageCommand::Export { output, images } => {
            if output == "-" {
                store.export(&images, &mut out)?;
            } else {
                let tmp = format!("{output}.tmp-{}", std::process::id());
                let f = File::create(&tmp).with_context(|| format!("creating {tmp}"))?;
                let mut w = BufWriter::with_capacity(1 << 20, f);
                let res = store
                    .export(&images, &mut w)
                    .map_err(anyhow::Error::from)
                    .and_then(|_| {
                        let f = w.into_inner().map_err(|e| e.into_error())?;
                        f.sync_all()?;
                        std::fs::rename(&tmp, &output)?;
                        Ok(())
                    });
                if res.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                res?;
            }
        }
        ImageCommand::Push {
            image,
            target,
            remote,
        } => {
            let r = Reference::parse(target.as_deref().unwrap_or(&image))?;
            let client = remote.client()?;
            let started = std::time::Instant::now();
            let digest = block_on(client.push(&store, &image, &r))??;
            writeln!(out, "Pushed {r} ({digest}) in {:.2?}", started.elapsed())?;
        }
        ImageCommand::Pull { image, remote } => {
            let r = Reference::parse(&image)?;
            let client = remote.client()?;
            let started = std::time::Instant::now();
            let desc = block_on(client.pull(&store, &r))??;
            writeln!(
                out,
                "Pulled {r} ({}) in {:.2?}",
                desc.digest,
                started.elapsed()
            )?;
        }
        ImageCommand::Build {
            tag,
            file,
            build_arg,
            no_cache,
            context,
        } => {
            let file = file.unwrap_or_else(|| context.join("Dockerfile"));
            let dockerfile = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let tags = tag
                .iter()
                .map(|t| Reference::parse(t))
                .collect::<Result<Vec<_>, _>>()?;
            let mut build_args = std::collections::BTreeMap::new();
            for a in build_arg {
                let (k, v) = a
                    .split_once('=')
                    .context("--build-arg must be NAME=VALUE")?;
                build_args.insert(k.to_string(), v.to_string());
            }
            // RUN steps mount overlays: keep them in our own namespace.
            skiff_registry::build::private_mount_namespace()
                .context("entering a private mount namespace (RUN needs root)")?;
            // RUN steps run in containers of the build (see `build_run`).
            let runner = crate::build_run::RuntimeRun::new(&args.data_dir)?;
            let opts = skiff_registry::build::BuildOptions {
                context,
                dockerfile,
                tags,
                build_args,
                no_cache,
                runner: &runner,
            };
            skiff_registry::build::build(&store, &opts, &mut out)?;
        }
        ImageCommand::Prune => {
            let (blobs, snaps) = store.gc()?;
            writeln!(out, "Deleted {blobs} blobs and {snaps} snapshots")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn human(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}
