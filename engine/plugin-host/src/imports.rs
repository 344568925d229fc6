//! What a plugin may import: the host's own `dealrules.*` functions and the
//! WASI functions C's libc links against. Each checks the manifest's
//! capabilities when called; anything else from `wasi_snapshot_preview1`
//! links but stops the call with "capability denied"; any other module
//! does not load.

use wasmtime::{Caller, Extern, Linker, Module, Val};

use crate::{CapabilityDenied, Host};

const EBADF: i32 = 8;

fn deny(capability: &'static str, import: &str) -> wasmtime::Error {
    wasmtime::Error::new(CapabilityDenied {
        capability,
        import: import.to_string(),
    })
}

fn memory(caller: &mut Caller<'_, Host>) -> wasmtime::Result<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(wasmtime::format_err!("the plugin has no memory export")),
    }
}

pub(crate) fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn log_line(caller: &mut Caller<'_, Host>, ptr: u32, len: u32) -> wasmtime::Result<()> {
    let mem = memory(caller)?;
    let mut buf = vec![0u8; (len as usize).min(4096)];
    mem.read(&*caller, ptr as usize, &mut buf)?;
    let host = caller.data_mut();
    if host.log.len() < 100 {
        host.log.push(String::from_utf8_lossy(&buf).trim_end().to_string());
    }
    Ok(())
}

/// Random bytes written straight into the guest's memory: the range is
/// checked against the memory before anything is done, nothing is
/// allocated on the host, and the work stops at the call's deadline.
fn fill_random(caller: &mut Caller<'_, Host>, ptr: u32, len: u32) -> wasmtime::Result<()> {
    let mem = memory(caller)?;
    let deadline = caller.data().deadline;
    let (start, end) = guest_range(mem.data_size(&*caller), ptr, len)?;
    for chunk in mem.data_mut(&mut *caller)[start..end].chunks_mut(64 << 10) {
        if std::time::Instant::now() >= deadline {
            return Err(wasmtime::Error::new(wasmtime::Trap::Interrupt));
        }
        getrandom::fill(chunk).map_err(|e| wasmtime::format_err!("no randomness: {e}"))?;
    }
    Ok(())
}

/// `ptr..ptr+len` as a range inside a memory of `size` bytes, or the
/// error the guest gets for asking outside it.
pub(crate) fn guest_range(size: usize, ptr: u32, len: u32) -> wasmtime::Result<(usize, usize)> {
    let start = ptr as usize;
    match start.checked_add(len as usize) {
        Some(end) if end <= size => Ok((start, end)),
        _ => Err(wasmtime::format_err!(
            "the plugin asked the host for {len} bytes at {ptr}, outside its {size} bytes of memory"
        )),
    }
}

pub fn link(linker: &mut Linker<Host>, module: &Module) -> Result<(), String> {
    let e = |x: wasmtime::Error| format!("{x:#}");
    linker
        .func_wrap(
            "dealrules",
            "log",
            |mut c: Caller<'_, Host>, ptr: u32, len: u32| -> wasmtime::Result<()> {
                if !c.data().caps.log {
                    return Err(deny("log", "dealrules.log"));
                }
                log_line(&mut c, ptr, len)
            },
        )
        .map_err(e)?;
    linker
        .func_wrap("dealrules", "now_ms", |c: Caller<'_, Host>| -> wasmtime::Result<i64> {
            if !c.data().caps.clock {
                return Err(deny("clock", "dealrules.now_ms"));
            }
            Ok((now_nanos() / 1_000_000) as i64)
        })
        .map_err(e)?;
    linker
        .func_wrap(
            "dealrules",
            "random",
            |mut c: Caller<'_, Host>, ptr: u32, len: u32| -> wasmtime::Result<()> {
                if !c.data().caps.random {
                    return Err(deny("random", "dealrules.random"));
                }
                fill_random(&mut c, ptr, len)
            },
        )
        .map_err(e)?;
    for import in module.imports() {
        let (m, name) = (import.module(), import.name());
        match m {
            "dealrules" => {
                if !["log", "now_ms", "random"].contains(&name) {
                    return Err(format!(
                        "imports `dealrules.{name}`, which the ABI does not have (log, now_ms, random)"
                    ));
                }
            }
            "wasi_snapshot_preview1" => link_wasi(linker, name, &import.ty()).map_err(e)?,
            other => {
                return Err(format!(
                    "imports from `{other}` ({other}.{name}); only `dealrules` and `wasi_snapshot_preview1` may be imported"
                ));
            }
        }
    }
    Ok(())
}

fn link_wasi(linker: &mut Linker<Host>, name: &str, ty: &wasmtime::ExternType) -> wasmtime::Result<()> {
    const W: &str = "wasi_snapshot_preview1";
    match name {
        "clock_time_get" => {
            linker.func_wrap(
                W,
                name,
                |mut c: Caller<'_, Host>, _id: i32, _precision: i64, out: i32| -> wasmtime::Result<i32> {
                    if !c.data().caps.clock {
                        return Err(deny("clock", "wasi_snapshot_preview1.clock_time_get"));
                    }
                    let mem = memory(&mut c)?;
                    mem.write(&mut c, out as usize, &now_nanos().to_le_bytes())?;
                    Ok(0)
                },
            )?;
        }
        "clock_res_get" => {
            linker.func_wrap(
                W,
                name,
                |mut c: Caller<'_, Host>, _id: i32, out: i32| -> wasmtime::Result<i32> {
                    if !c.data().caps.clock {
                        return Err(deny("clock", "wasi_snapshot_preview1.clock_res_get"));
                    }
                    let mem = memory(&mut c)?;
                    mem.write(&mut c, out as usize, &1_000u64.to_le_bytes())?;
                    Ok(0)
                },
            )?;
        }
        "random_get" => {
            linker.func_wrap(
                W,
                name,
                |mut c: Caller<'_, Host>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
                    if !c.data().caps.random {
                        return Err(deny("random", "wasi_snapshot_preview1.random_get"));
                    }
                    fill_random(&mut c, ptr as u32, len as u32)?;
                    Ok(0)
                },
            )?;
        }
        "fd_write" => {
            // stdout/stderr go to the trace with `log`; without it they are
            // accepted and dropped (libc's stdio needs fd_write to link).
            linker.func_wrap(
                W,
                name,
                |mut c: Caller<'_, Host>, fd: i32, iovs: i32, n: i32, written: i32| -> wasmtime::Result<i32> {
                    if fd != 1 && fd != 2 {
                        return Err(deny("files", "wasi_snapshot_preview1.fd_write"));
                    }
                    let mem = memory(&mut c)?;
                    let mut total = 0u32;
                    for i in 0..n.clamp(0, 64) as usize {
                        let mut iov = [0u8; 8];
                        mem.read(&c, iovs as usize + i * 8, &mut iov)?;
                        let (ptr, len) = (
                            u32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]),
                            u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]),
                        );
                        if c.data().caps.log {
                            log_line(&mut c, ptr, len)?;
                        }
                        total = total.saturating_add(len);
                    }
                    mem.write(&mut c, written as usize, &total.to_le_bytes())?;
                    Ok(0)
                },
            )?;
        }
        "fd_close" | "fd_seek" | "fd_fdstat_get" | "fd_fdstat_set_flags" | "fd_prestat_get" => {
            // No descriptors exist but stdio: "bad file descriptor". With no
            // preopened directory, libc's fopen fails before it can ask.
            if let wasmtime::ExternType::Func(ft) = ty {
                linker.func_new(W, name, ft.clone(), |_c, _params, results| {
                    if let Some(r) = results.first_mut() {
                        *r = Val::I32(EBADF);
                    }
                    Ok(())
                })?;
            }
        }
        "proc_exit" => {
            linker.func_wrap(W, name, |_c: Caller<'_, Host>, code: i32| -> wasmtime::Result<()> {
                Err(wasmtime::format_err!("the plugin called proc_exit({code})"))
            })?;
        }
        other => {
            let capability = match other {
                n if n.starts_with("path_") || n.starts_with("fd_") => "files",
                n if n.starts_with("sock_") => "network",
                n if n.starts_with("environ_") || n.starts_with("args_") => "environment",
                _ => "files",
            };
            let import = format!("wasi_snapshot_preview1.{other}");
            if let wasmtime::ExternType::Func(ft) = ty {
                linker.func_new(W, other, ft.clone(), move |_c, _params, _results| {
                    Err(deny(capability, &import))
                })?;
            }
        }
    }
    Ok(())
}
