//! Write a dealrules plugin in Rust (ABI v1, `plugins/abi/ABI.md`).
//!
//! ```ignore
//! use dealrules_plugin_sdk::{json, plugin, Request, Value};
//!
//! fn double(req: &Request) -> Result<Value, String> {
//!     let n = req.input["deal"]["amount"].as_i64().ok_or("deal.amount must be a whole number")?;
//!     Ok(json!(n * 2))
//! }
//!
//! plugin! { double => double }
//! ```
//!
//! Build with `cargo build --release --target wasm32-unknown-unknown`; the
//! module needs no import unless it uses [`caps`]. Numbers keep their
//! digits (`serde_json`'s `arbitrary_precision`): read money with
//! [`decimal`], never through `f64`.

pub use serde_json::{self, json, Value};

/// One call's request.
pub struct Request {
    /// The function called (one of the manifest's `exports`).
    pub function: String,
    /// The facts the manifest's `inputs:` allow, nothing else.
    pub input: Value,
    /// The manifest's `config`.
    pub config: Value,
}

/// Reads a decimal (`12.34`, `"12.34"`) as an integer scaled by
/// 10^`places`, rounding half away from zero. Exact.
pub fn decimal(v: &Value, places: u32) -> Option<i128> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value: i128 = whole.parse().ok()?;
    let mut frac = frac.bytes();
    for _ in 0..places {
        value = value.checked_mul(10)? + frac.next().map(|b| (b - b'0') as i128).unwrap_or(0);
    }
    if frac.next().is_some_and(|b| b >= b'5') {
        value += 1;
    }
    Some(if neg { -value } else { value })
}

/// Writes an integer scaled by 10^`places` as a decimal string.
pub fn format_decimal(v: i128, places: u32) -> String {
    let neg = v < 0;
    let digits = format!("{:0width$}", v.unsigned_abs(), width = places as usize + 1);
    let (whole, frac) = digits.split_at(digits.len() - places as usize);
    let sign = if neg { "-" } else { "" };
    if places == 0 { format!("{sign}{whole}") } else { format!("{sign}{whole}.{frac}") }
}

/// An integer scaled by 10^`places` as an exact JSON number (`100000.00`).
pub fn decimal_value(v: i128, places: u32) -> Value {
    serde_json::from_str(&format_decimal(v, places)).unwrap_or(Value::Null)
}

/// The host's capability imports; each needs the capability in the manifest.
pub mod caps {
    #[link(wasm_import_module = "dealrules")]
    unsafe extern "C" {
        #[link_name = "log"]
        fn dr_log(ptr: *const u8, len: u32);
        #[link_name = "now_ms"]
        fn dr_now_ms() -> i64;
    }

    /// A line in the decision trace (capability `log`).
    pub fn log(line: &str) {
        // SAFETY: the host reads `len` bytes at `ptr` from this module's memory.
        unsafe { dr_log(line.as_ptr(), line.len() as u32) }
    }

    /// Unix milliseconds (capability `clock`).
    pub fn now_ms() -> i64 {
        // SAFETY: no arguments; the host returns a number.
        unsafe { dr_now_ms() }
    }
}

#[doc(hidden)]
pub fn __alloc(len: u32) -> *mut u8 {
    // Each call runs in a fresh instance, so what is allocated for it is
    // never freed: the instance goes away whole.
    let mut buf = Vec::<u8>::with_capacity(len.max(1) as usize);
    let ptr = buf.as_mut_ptr();
    core::mem::forget(buf);
    ptr
}

#[doc(hidden)]
/// # Safety
/// `ptr..ptr+len` must be the request the host wrote into this module's memory.
pub unsafe fn __run(ptr: *const u8, len: u32, f: fn(&Request) -> Result<Value, String>) -> u64 {
    // SAFETY: the host wrote `len` bytes at `ptr` (see ABI.md).
    let bytes = unsafe { core::slice::from_raw_parts(ptr, len as usize) };
    let answer = match serde_json::from_slice::<Value>(bytes) {
        Ok(mut req) => {
            let request = Request {
                function: req["function"].as_str().unwrap_or_default().to_string(),
                input: req["input"].take(),
                config: req["config"].take(),
            };
            match f(&request) {
                Ok(v) => json!({ "ok": v }),
                Err(e) => json!({ "error": e }),
            }
        }
        Err(e) => json!({ "error": format!("the request is not JSON: {e}") }),
    };
    let out = serde_json::to_vec(&answer).unwrap_or_else(|_| br#"{"error":"the answer could not be written"}"#.to_vec()).into_boxed_slice();
    let (p, n) = (out.as_ptr() as u64, out.len() as u64);
    core::mem::forget(out);
    (p << 32) | n
}

/// Exports the ABI's functions and one export per `name => function`.
#[macro_export]
macro_rules! plugin {
    ($($export:ident => $f:path),+ $(,)?) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn dr_alloc(len: u32) -> *mut u8 {
            $crate::__alloc(len)
        }
        #[unsafe(no_mangle)]
        pub extern "C" fn dealrules_abi_v1() {}
        $(
            // In its own scope, so the export may share its name with the function.
            const _: () = {
                #[unsafe(export_name = stringify!($export))]
                extern "C" fn __dealrules_export(ptr: *const u8, len: u32) -> u64 {
                    // SAFETY: the host calls exports with the request it wrote (ABI.md).
                    unsafe { $crate::__run(ptr, len, $f) }
                }
            };
        )+
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal(&json!("1234.565"), 2), Some(123457));
        assert_eq!(decimal(&json!(-0.5), 0), Some(-1));
        assert_eq!(decimal(&json!("abc"), 2), None);
        assert_eq!(format_decimal(123457, 2), "1234.57");
        assert_eq!(format_decimal(-5, 2), "-0.05");
    }
}
