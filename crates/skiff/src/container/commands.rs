//! `skiff ps`, `logs`, `exec`, `stop`, `rm`: each adopts the containers
//! recorded under the data dir and acts on one of them.

use super::{Common, LABEL_COMMAND, LABEL_IMAGE, LABEL_PORTS, LABEL_RM, find, remove_all, short};
use anyhow::bail;
use clap::Args;
use skiff_runtime::{ContainerState, ContainerStatus, ExecIo, RuntimeService};
use std::io::{BufRead, Seek, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

#[derive(Args)]
pub struct PsArgs {
    #[command(flatten)]
    common: Common,
    /// Show all containers (default: running ones).
    #[arg(short, long)]
    all: bool,
    /// Print only ids.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
pub struct LogsArgs {
    #[command(flatten)]
    common: Common,
    /// Keep printing output until the container exits.
    #[arg(short, long)]
    follow: bool,
    container: String,
}

#[derive(Args)]
pub struct ExecArgs {
    #[command(flatten)]
    common: Common,
    /// Pass stdin to the process.
    #[arg(short, long)]
    interactive: bool,
    /// Give the process a terminal.
    #[arg(short, long)]
    tty: bool,
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args)]
pub struct StopArgs {
    #[command(flatten)]
    common: Common,
    /// Seconds between SIGTERM and SIGKILL.
    #[arg(short, long, default_value_t = 10)]
    time: u64,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    #[command(flatten)]
    common: Common,
    /// Kill and remove running containers too.
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

/// "3 seconds", "2 minutes", as Docker words durations.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        0 => return "Less than a second".into(),
        1..=59 => (s, "second"),
        60..=3599 => (s / 60, "minute"),
        3600..=86399 => (s / 3600, "hour"),
        _ => (s / 86400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn since(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

fn status_text(c: &ContainerStatus) -> String {
    match c.state {
        ContainerState::Running => {
            format!("Up {}", human(since(c.started_at.unwrap_or(c.created_at))))
        }
        ContainerState::Exited if c.started_at.is_none() => "Created".into(),
        ContainerState::Exited => {
            let oom = if c.reason.as_deref() == Some("OOMKilled") {
                " (OOMKilled)"
            } else {
                ""
            };
            format!(
                "Exited ({}){oom} {} ago",
                c.exit_code.unwrap_or(255),
                human(since(c.finished_at.unwrap_or(c.created_at)))
            )
        }
        ContainerState::Created => "Created".into(),
        ContainerState::Unknown => "Unknown".into(),
    }
}

pub async fn ps(args: PsArgs) -> anyhow::Result<ExitCode> {
    let rt = args.common.runtime()?;
    let mut all = rt.list_containers().await?;
    all.retain(|c| args.all || c.state == ContainerState::Running);
    all.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for c in &all {
            writeln!(out, "{}", short(&c.id))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let label = |c: &ContainerStatus, k: &str| c.labels.get(k).cloned().unwrap_or_default();
    let mut rows = vec![[
        "CONTAINER ID".to_string(),
        "IMAGE".into(),
        "COMMAND".into(),
        "CREATED".into(),
        "STATUS".into(),
        "PORTS".into(),
        "NAMES".into(),
    ]];
    for c in &all {
        let mut cmd = label(c, LABEL_COMMAND);
        if cmd.chars().count() > 20 {
            cmd = format!("{}…", cmd.chars().take(19).collect::<String>());
        }
        rows.push([
            short(&c.id).to_string(),
            label(c, LABEL_IMAGE),
            format!("\"{cmd}\""),
            format!("{} ago", human(since(c.created_at))),
            status_text(c),
            label(c, LABEL_PORTS),
            c.name.clone(),
        ]);
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in r.iter().zip(widths).enumerate() {
            if i == 6 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   "));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the CRI log entries from `reader`, joining partial lines, and
/// returns whether it printed anything.
fn print_entries<R: BufRead + Seek>(reader: &mut R, pending: &mut String) -> anyhow::Result<bool> {
    let mut any = false;
    loop {
        pending.clear();
        let n = reader.read_line(pending)?;
        if n == 0 {
            return Ok(any);
        }
        if !pending.ends_with('\n') {
            // A half-written entry: read it again when it is whole.
            reader.seek(std::io::SeekFrom::Current(-(n as i64)))?;
            return Ok(any);
        }
        any = true;
        let line = pending.trim_end_matches('\n');
        let Some(e) = skiff_runtime::logs::parse_entry(line) else {
            continue;
        };
        let mut text = e.content.as_bytes().to_vec();
        if !e.partial {
            text.push(b'\n');
        }
        if e.stream == "stderr" {
            std::io::stderr().write_all(&text)?;
        } else {
            let mut o = std::io::stdout().lock();
            o.write_all(&text)?;
            o.flush()?;
        }
    }
}

pub async fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let rt = args.common.runtime()?;
    let c = find(&rt, &args.container).await?;
    let Some(path) = c.log_path.clone() else {
        bail!("container {} keeps no log", c.name);
    };
    // Rotated files first (oldest first), then the live one.
    let mut rotated: Vec<std::path::PathBuf> = (1..=16)
        .map(|i| std::path::PathBuf::from(format!("{}.{i}", path.display())))
        .filter(|p| p.exists())
        .collect();
    rotated.reverse();
    let mut pending = String::new();
    for p in rotated {
        let mut r = std::io::BufReader::new(std::fs::File::open(&p)?);
        print_entries(&mut r, &mut pending)?;
    }
    let open = |p: &std::path::Path| -> anyhow::Result<Option<std::io::BufReader<std::fs::File>>> {
        match std::fs::File::open(p) {
            Ok(f) => Ok(Some(std::io::BufReader::new(f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    };
    let mut reader = open(&path)?;
    loop {
        if let Some(r) = reader.as_mut() {
            print_entries(r, &mut pending)?;
        }
        if !args.follow {
            break;
        }
        let exited = rt.container_status(&c.id).await?.state == ContainerState::Exited;
        if exited {
            // The monitor wrote everything before recording the exit.
            if let Some(r) = reader.as_mut() {
                print_entries(r, &mut pending)?;
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Rotation replaced the file: continue with the new one.
        let rotated = match (reader.as_ref(), std::fs::metadata(&path)) {
            (Some(r), Ok(m)) => {
                use std::os::unix::fs::MetadataExt;
                r.get_ref().metadata().map(|o| o.ino()).ok() != Some(m.ino())
            }
            (None, Ok(_)) => true,
            _ => false,
        };
        if rotated {
            if let Some(r) = reader.as_mut() {
                print_entries(r, &mut pending)?;
            }
            reader = open(&path)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn exec(args: ExecArgs) -> anyhow::Result<ExitCode> {
    use tokio::io::AsyncWriteExt;
    let rt = args.common.runtime()?;
    let c = find(&rt, &args.container).await?;
    if c.state != ContainerState::Running {
        bail!("container {} is not running", c.name);
    }
    let mut session = rt.exec(&c.id, args.command.clone(), args.tty).await?;
    let io = session.io.take();
    let mut tasks = Vec::new();
    let mut input = None;
    let copy_out = |mut from: tokio::process::ChildStdout| {
        tokio::spawn(async move {
            let mut out = tokio::io::stdout();
            let _ = tokio::io::copy(&mut from, &mut out).await;
            let _ = out.flush().await;
        })
    };
    match io {
        Some(ExecIo::Pipes {
            stdin,
            stdout,
            stderr,
        }) => {
            tasks.push(copy_out(stdout));
            tasks.push(tokio::spawn(async move {
                let mut from = stderr;
                let mut err = tokio::io::stderr();
                let _ = tokio::io::copy(&mut from, &mut err).await;
            }));
            input = Some(stdin);
        }
        Some(ExecIo::Pty { stdin, output }) => {
            tasks.push(copy_out(output));
            input = Some(stdin);
        }
        None => {}
    }
    let feeder = match input {
        Some(mut stdin) if args.interactive => Some(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut stdin).await;
            let _ = stdin.shutdown().await;
        })),
        // Without -i the process sees stdin closed at once.
        _ => None,
    };
    let code = session.wait().await?;
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    if let Some(f) = feeder {
        f.abort();
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}

pub async fn stop(args: StopArgs) -> anyhow::Result<ExitCode> {
    let rt = args.common.runtime()?;
    let mut failed = false;
    for key in &args.containers {
        let r = async {
            let c = find(&rt, key).await?;
            rt.stop_container(&c.id, Duration::from_secs(args.time))
                .await?;
            if c.labels.contains_key(LABEL_RM) {
                remove_all(&rt, &c).await?;
            }
            anyhow::Ok(())
        }
        .await;
        match r {
            Ok(()) => println!("{key}"),
            Err(e) => {
                eprintln!("skiff: stop {key}: {e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn rm(args: RmArgs) -> anyhow::Result<ExitCode> {
    let rt = args.common.runtime()?;
    let mut failed = false;
    for key in &args.containers {
        let r = async {
            let c = find(&rt, key).await?;
            if c.state == ContainerState::Running && !args.force {
                bail!(
                    "container {} is running: stop it first or use rm -f",
                    c.name
                );
            }
            remove_all(&rt, &c).await
        }
        .await;
        match r {
            Ok(()) => println!("{key}"),
            Err(e) => {
                eprintln!("skiff: rm {key}: {e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human(Duration::from_secs(1)), "1 second");
        assert_eq!(human(Duration::from_secs(125)), "2 minutes");
        assert_eq!(human(Duration::from_secs(7200)), "2 hours");
    }

    #[test]
    fn partial_entries_join_and_half_lines_wait() {
        let whole = "2024-01-01T00:00:00.000000000Z stdout P ab\n2024-01-01T00:00:00.000000000Z stdout F c\n";
        let data = format!("{whole}2024-01-01T00:00:00.0");
        let mut r = std::io::Cursor::new(data.into_bytes());
        let mut pending = String::new();
        assert!(print_entries(&mut r, &mut pending).unwrap());
        // The half-written last entry is left for the next read.
        assert_eq!(r.position() as usize, whole.len());
    }
}
