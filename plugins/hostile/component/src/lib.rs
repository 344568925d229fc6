//! A component that misbehaves on request (ABI v2, `plugins/abi/dealrules.wit`):
//! each function is one way a partner's code can go wrong, and the host
//! must stop it with an error naming the plugin.

wit_bindgen::generate!({ path: "../../abi/dealrules.wit", world: "plugin" });

use dealrules::plugin::{clock, log, random};

struct Hostile;

#[inline(never)]
fn recurse(n: u64, pad: &mut [u8; 256]) -> u64 {
    pad[(n % 256) as usize] = n as u8;
    let mut next = *pad;
    recurse(n + 1, &mut next) + u64::from(next[0])
}

impl Guest for Hostile {
    fn functions() -> Vec<String> {
        ["spin", "grow", "huge", "recurse", "trap", "clock", "random", "log", "echo"]
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn call(function: String, input: String, _config: String) -> Result<String, String> {
        match function.as_str() {
            // Loops for ever: fuel or the deadline stops it.
            "spin" => {
                let mut x: u64 = input.len() as u64;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            // Allocates 1 MiB at a time until something stops it.
            "grow" => {
                let mut kept: Vec<Vec<u8>> = Vec::new();
                loop {
                    kept.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&kept);
                }
            }
            // Answers 8 MiB of JSON.
            "huge" => Ok(format!("\"{}\"", "x".repeat(8 << 20))),
            "recurse" => Ok(recurse(0, &mut [0u8; 256]).to_string()),
            "trap" => std::process::abort(),
            "clock" => Ok(clock::now_ms().to_string()),
            "random" => Ok(format!("{}", random::bytes(16).len())),
            "log" => {
                log::line("hello from the component");
                Ok("true".into())
            }
            "echo" => Ok(input),
            other => Err(format!("no function `{other}`")),
        }
    }
}

export!(Hostile);
