//! One wrk run: the posting script (`bench/xmlrpc-post.lua`) on keep-alive connections, and the
//! `BENCH_WRK` line it prints, parsed.

use super::BenchError;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

/// What one run measured. Latencies in ms.
#[derive(Debug, Clone)]
pub struct WrkRun {
    pub rps: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    /// Answers that were not HTTP 200 with `<boolean>1</boolean>`, plus socket errors.
    pub failures: u64,
    pub bytes: u64,
}

pub struct Wrk<'a> {
    pub script: &'a Path,
    pub addr: SocketAddr,
    pub seconds: u32,
}

impl Wrk<'_> {
    /// `wrk -t<1|2> -c<connections> -d<seconds>s --timeout 30s -s <script> <url>` posting `body`.
    pub fn run(&self, body: &Path, connections: u32) -> Result<WrkRun, BenchError> {
        let threads = if connections == 1 { 1 } else { 2 };
        let output = Command::new("wrk")
            .arg(format!("-t{threads}"))
            .arg(format!("-c{connections}"))
            .arg(format!("-d{}s", self.seconds))
            .arg("--timeout")
            .arg("30s")
            .arg("-s")
            .arg(self.script)
            .arg(format!("http://{}/RPC2", self.addr))
            .env("BENCH_BODY", body)
            .output()
            .map_err(|e| BenchError::Spawn("wrk".into(), e))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find(|l| l.starts_with("BENCH_WRK "))
            .ok_or_else(|| {
                BenchError::Protocol(format!(
                    "wrk printed no BENCH_WRK line: {stdout} {}",
                    String::from_utf8_lossy(&output.stderr)
                ))
            })?;
        let fields: HashMap<&str, &str> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let num = |k: &str| -> Result<f64, BenchError> {
            fields
                .get(k)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| BenchError::Protocol(format!("BENCH_WRK line without {k}: {line}")))
        };
        Ok(WrkRun {
            rps: num("rps")?,
            mean_ms: num("mean_ms")?,
            p50_ms: num("p50_ms")?,
            p99_ms: num("p99_ms")?,
            requests: num("requests")? as u64,
            failures: (num("failed")? + num("socket_errors")?) as u64,
            bytes: num("bytes")? as u64,
        })
    }
}
