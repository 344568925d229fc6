//! What the end-to-end tests share: the real binary on a loopback port and
//! a minimal HTTP client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-admin-token";

pub struct Server {
    pub child: Child,
    pub addr: String,
    pub _db: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest)
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// `dealrules serve` on a fresh SQLite file.
pub fn start(rules: &Path) -> Server {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("dealrules.db").display());
    start_on(rules, &url, db)
}

/// `dealrules serve` on the database `url`; `keep` lives as long as the server.
pub fn start_on(rules: &Path, url: &str, keep: tempfile::TempDir) -> Server {
    start_with(rules, url, keep, &[])
}

/// As [`start_on`], with more `serve` flags.
pub fn start_with(rules: &Path, url: &str, keep: tempfile::TempDir, flags: &[&str]) -> Server {
    let db = keep;
    let mut child = Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .args(["serve", "--listen", "127.0.0.1:0", "--rules"])
        .arg(rules)
        .arg("--db")
        .arg(url)
        .args(flags)
        .env("DEALRULES_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(url) = line.split("http://").nth(1) {
            break url.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr, _db: db }
}

/// A minimal HTTP/1.1 client: method, path, body -> (status, body).
pub fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    http_as(addr, TOKEN, method, path, body)
}

pub fn http_as(addr: &str, token: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    http_full(addr, token, method, path, &[], body).unwrap()
}

/// The whole request; an error when the server is not there (killed).
pub fn http_full(
    addr: &str,
    token: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    if status == 0 {
        return Err(std::io::Error::other("no HTTP answer"));
    }
    Ok((status, body))
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

pub const DEAL: &str = r#"{"deal": {"amount": 40000, "discount_pct": 12, "region": "NA", "payment_terms_days": 30}}"#;

pub fn wait_for(what: &str, mut ok: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if ok() {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: not seen within 10 s");
}

/// Sends `signal` (`-TERM`, `-KILL`) and waits (up to 10 s) for the exit.
pub fn stop(server: &mut Server, signal: &str) {
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            if signal == "-TERM" {
                assert!(status.success(), "{status:?}");
            }
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running 10 s after {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A folder's text files as (path inside it, text).
pub fn pack_files(dir: &Path) -> Vec<(String, String)> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            if p.is_dir() {
                walk(&p, &rel, out)
            } else {
                out.push((rel, std::fs::read_to_string(&p).unwrap()))
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out
}
