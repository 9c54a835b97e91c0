//! Idle keep-alive connections: a holder process (`load-bench idle-hold ADDR N PATH`,
//! pinned to CPU 0, its soft nofile limit raised) opens N connections, sends one HTTP/1.1
//! keep-alive GET on each, reads each answer, prints a JSON line and keeps them all open
//! until its stdin gives a line (or closes). The parent reads the proxy's memory meanwhile.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::{self, Parsed};
use crate::procs::{Proc, Spec};

/// Connections being opened at once.
const OPENING: usize = 256;
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the parent waits for the holder's report.
const OPEN_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the connections stay open before the proxy's memory is read.
pub const SETTLE: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Tally {
    ok: u64,
    non_200: u64,
    errors: u64,
    samples: Vec<String>,
}

/// One connection: connect, one GET, its whole answer; the open stream and its status.
async fn open_one(addr: SocketAddr, request: Arc<Vec<u8>>) -> Result<(TcpStream, u16), String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(&request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("read: {e}"))?;
            buf.extend_from_slice(&chunk[..n]);
            match http::parse(&buf, n == 0)? {
                Parsed::Done(answer) if n > 0 => return Ok((stream, answer.status)),
                Parsed::Done(_) => return Err("the proxy closed the connection".into()),
                Parsed::Incomplete if n == 0 => return Err("closed mid-answer".into()),
                Parsed::Incomplete => {}
            }
        }
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {EXCHANGE_TIMEOUT:?}"))?
}

async fn open_all(addr: SocketAddr, n: usize, path: &str) -> (Vec<TcpStream>, Tally) {
    let request = Arc::new(http::request("GET", addr, path, &[], &[]));
    let permits = Arc::new(tokio::sync::Semaphore::new(OPENING));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (request, permits) = (request.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            open_one(addr, request).await
        });
    }
    let mut streams = Vec::with_capacity(n);
    let mut tally = Tally::default();
    while let Some(done) = tasks.join_next().await {
        let error = match done {
            Ok(Ok((stream, status))) => {
                if status == 200 {
                    tally.ok += 1;
                } else {
                    tally.non_200 += 1;
                }
                streams.push(stream);
                continue;
            }
            Ok(Err(e)) => e,
            Err(e) => format!("task: {e}"),
        };
        tally.errors += 1;
        if tally.samples.len() < 3 {
            tally.samples.push(error);
        }
    }
    (streams, tally)
}

/// The `idle-hold` subcommand.
pub fn hold_main(args: &[String]) -> ExitCode {
    let (Some(addr), Some(n), Some(path)) = (
        args.first().and_then(|a| a.parse::<SocketAddr>().ok()),
        args.get(1).and_then(|n| n.parse::<usize>().ok()),
        args.get(2),
    ) else {
        eprintln!("usage: load-bench idle-hold ADDR CONNECTIONS PATH");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("idle-hold: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (streams, tally) = runtime.block_on(open_all(addr, n, path));
    let report = json!({"open": streams.len(), "ok": tally.ok, "non_200": tally.non_200,
                        "errors": tally.errors, "error_samples": tally.samples});
    let mut out = std::io::stdout();
    if writeln!(out, "{report}")
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    // Held until the parent says so (a line, or its end of the pipe closing).
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(streams);
    ExitCode::SUCCESS
}

/// Opens `n` idle connections to `addr` with a holder process, waits [`SETTLE`], reads the
/// proxy's VmRSS / VmHWM, closes them. The figures, as JSON fields.
pub fn measure(
    proxy: &Proc,
    addr: SocketAddr,
    n: usize,
    exe: &Path,
    dir: &Path,
    nofile: u64,
) -> Result<Map<String, Value>, String> {
    let (rss_before, _) = proxy.rss_kib();
    let mut holder = Proc::spawn(Spec {
        name: "idle-holder",
        cpu: 0,
        nofile,
        program: exe,
        args: vec![
            "idle-hold".into(),
            addr.to_string(),
            n.to_string(),
            crate::configs::PASS_PATH.into(),
        ],
        env: Vec::new(),
        dir,
        stdout_file: None,
        piped: true,
    })?;
    let (stdin, stdout) = holder.take_pipes();
    let (Some(mut stdin), Some(stdout)) = (stdin, stdout) else {
        return Err("the idle holder's pipes".into());
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(OPEN_TIMEOUT)
        .map_err(|_| format!("the idle holder did not report\n{}", holder.log_tail(20)))?;
    let report: Value = serde_json::from_str(line.trim()).map_err(|e| {
        format!(
            "the idle holder's report `{}`: {e}\n{}",
            line.trim(),
            holder.log_tail(20)
        )
    })?;
    std::thread::sleep(SETTLE);
    let (rss_with, hwm_with) = proxy.rss_kib();
    let processes = proxy.process_count();
    let _ = writeln!(stdin, "close");
    drop(stdin);
    let _ = holder.wait_exit(Duration::from_secs(30));
    let open = report["open"].as_u64().unwrap_or(0);
    let mib = |kib: u64| (kib as f64 / 1024.0 * 10.0).round() / 10.0;
    let mut r = Map::new();
    r.insert("connections".into(), json!(n));
    r.insert("open".into(), json!(open));
    r.insert("non_200".into(), report["non_200"].clone());
    r.insert("errors".into(), report["errors"].clone());
    r.insert("error_samples".into(), report["error_samples"].clone());
    r.insert("rss_before_mib".into(), json!(mib(rss_before)));
    r.insert("rss_with_mib".into(), json!(mib(rss_with)));
    r.insert("hwm_with_mib".into(), json!(mib(hwm_with)));
    let per_conn = if open > 0 {
        (rss_with.saturating_sub(rss_before) as f64 / open as f64 * 100.0).round() / 100.0
    } else {
        0.0
    };
    r.insert("kib_per_connection".into(), json!(per_conn));
    r.insert("processes".into(), json!(processes));
    Ok(r)
}
