//! Packs sent as bytes (an HTTP upload): a tar.gz archive or a JSON map of
//! path -> text.
//! Nothing in an upload may reach outside the pack: only plain files with
//! relative paths made of plain names; links, devices, `..` and absolute
//! paths are refused, and sizes are capped before they are read.

use std::collections::BTreeMap;
use std::io::Read;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

use crate::PackSource;

/// Largest upload body (compressed).
pub const MAX_UPLOAD_BYTES: usize = 16 << 20;
/// Largest pack once unpacked.
pub const MAX_UNPACKED_BYTES: u64 = 64 << 20;
/// Most files a pack may hold.
pub const MAX_FILES: usize = 10_000;

/// Checks a path from an upload; the path as the pack will know it.
pub fn safe_path(raw: &str) -> Result<String, String> {
    if raw.is_empty() || raw.len() > 512 {
        return Err(format!("`{raw}`: a path must have 1 to 512 bytes"));
    }
    if raw.contains('\\') || raw.contains('\0') || raw.starts_with('/') || raw.contains(':') {
        return Err(format!("`{raw}`: only relative paths with `/` are allowed"));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err(format!("`{raw}`: `..` is not allowed in a pack path")),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(format!("`{raw}`: not a file path"));
    }
    Ok(parts.join("/"))
}

/// Hidden files and folders (`.git`, `._x` from macOS) are skipped, as
/// when a pack is read from a folder.
fn hidden(path: &str) -> bool {
    path.split('/').any(|p| p.starts_with('.'))
}

/// Reads an upload; gzip is recognized by its magic bytes, whatever the
/// content type says.
pub fn read_pack(body: &[u8]) -> Result<PackSource, String> {
    if body.starts_with(&[0x1f, 0x8b]) {
        read_tar_gz(body)
    } else {
        read_json_map(body)
    }
}

/// The members of a JSON object in order, a key written twice kept twice
/// (a map would silently keep the last), so a pack naming a file twice is
/// refused rather than half read.
struct Members(Vec<(String, Box<serde_json::value::RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of path -> text")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<serde_json::value::RawValue>>()? {
                    if out.len() >= MAX_FILES {
                        return Err(serde::de::Error::custom(format!("more than {MAX_FILES} files")));
                    }
                    out.push(entry);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `{"path": "text", ...}`, or the same map under `"files"`.
pub fn read_json_map(body: &[u8]) -> Result<PackSource, String> {
    let text = std::str::from_utf8(body)
        .map_err(|e| format!("the body is neither a tar.gz archive nor JSON: not UTF-8: {e}"))?;
    let Members(mut members) = serde_json::from_str(text).map_err(|e| {
        format!("the body is neither a tar.gz archive nor JSON (a JSON pack is an object of path -> text): {e}")
    })?;
    if let [(key, inner)] = members.as_slice()
        && key == "files"
        && inner.get().starts_with('{')
    {
        members = serde_json::from_str::<Members>(inner.get())
            .map_err(|e| format!("`files`: {e}"))?
            .0;
    }
    let mut files = BTreeMap::new();
    for (path, text) in &members {
        let text: String =
            serde_json::from_str(text.get()).map_err(|_| format!("`{path}`: the value must be the file's text"))?;
        let path = safe_path(path)?;
        if !hidden(&path) && files.insert(path.clone(), text.as_bytes().to_vec()).is_some() {
            return Err(format!("`{path}` is given twice"));
        }
    }
    finish(files)
}

pub fn read_tar_gz(body: &[u8]) -> Result<PackSource, String> {
    // The decompressed stream is capped, so a gzip bomb stops at the cap.
    let gz = flate2::read::GzDecoder::new(body).take(MAX_UNPACKED_BYTES + 1);
    let mut archive = tar::Archive::new(gz);
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    for entry in archive.entries().map_err(|e| format!("not a tar.gz archive: {e}"))? {
        let mut entry = entry.map_err(|e| format!("the archive is damaged: {e}"))?;
        let raw = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| "a path in the archive is not UTF-8".to_string())?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() || kind.is_gnu_longname() {
            continue;
        }
        if !kind.is_file() {
            return Err(format!(
                "`{raw}`: only plain files may be in a pack (this is a {kind:?})"
            ));
        }
        let path = safe_path(&raw)?;
        let size = entry.header().size().map_err(|e| format!("`{raw}`: {e}"))?;
        if size > crate::MAX_FILE_BYTES {
            return Err(format!("`{path}`: larger than {} bytes", crate::MAX_FILE_BYTES));
        }
        total += size;
        if total > MAX_UNPACKED_BYTES {
            return Err(format!("the pack is larger than {MAX_UNPACKED_BYTES} bytes unpacked"));
        }
        if files.len() >= MAX_FILES {
            return Err(format!("more than {MAX_FILES} files"));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut bytes).map_err(|e| format!("`{path}`: {e}"))?;
        if !hidden(&path) && files.insert(path.clone(), bytes).is_some() {
            return Err(format!("`{path}` is in the archive twice"));
        }
    }
    finish(strip_common_folder(files))
}

/// `tar czf pack.tgz rules/` puts every file under `rules/`: a single
/// top folder holding everything is not part of the pack's paths.
fn strip_common_folder(files: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    let top = |p: &str| p.split_once('/').map(|(t, _)| t.to_string());
    let first = files.keys().next().and_then(|p| top(p));
    match first {
        Some(t) if files.keys().all(|p| top(p).as_deref() == Some(t.as_str())) => {
            let cut = t.len() + 1;
            // Only when it is a wrapper, not one of the pack's own folders.
            if [
                "policies",
                "tests",
                "scripts",
                "plugins",
                "tables",
                "funnels",
                "approvals",
                "incentives",
                "targets",
            ]
            .contains(&t.as_str())
            {
                return files;
            }
            files.into_iter().map(|(p, b)| (p[cut..].to_string(), b)).collect()
        }
        _ => files,
    }
}

fn finish(files: BTreeMap<String, Vec<u8>>) -> Result<PackSource, String> {
    if files.is_empty() {
        return Err("the pack has no files".into());
    }
    Ok(PackSource { files })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (path, bytes, kind) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            // Write the name raw, so hostile names reach the reader as sent.
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            if kind.is_symlink() {
                h.set_link_name("/etc/passwd").unwrap();
            }
            h.set_cksum();
            builder.append(&h, *bytes).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn archives_unpack_into_pack_paths() {
        let body = tar_gz(&[
            ("rules/policies/a.yaml", b"a: 1\n", tar::EntryType::Regular),
            ("rules/.git/config", b"x", tar::EntryType::Regular),
            ("rules/tests/t.yaml", b"t: 1\n", tar::EntryType::Regular),
        ]);
        let pack = read_pack(&body).unwrap();
        assert_eq!(
            pack.files.keys().collect::<Vec<_>>(),
            ["policies/a.yaml", "tests/t.yaml"]
        );
        let body = tar_gz(&[
            ("policies/a.yaml", b"a: 1\n", tar::EntryType::Regular),
            ("policies/b.yaml", b"b: 1\n", tar::EntryType::Regular),
        ]);
        assert_eq!(
            read_pack(&body).unwrap().files.keys().collect::<Vec<_>>(),
            ["policies/a.yaml", "policies/b.yaml"]
        );
    }

    #[test]
    fn hostile_archives_are_refused() {
        for (path, kind, want) in [
            ("../../etc/cron.d/x", tar::EntryType::Regular, "`..` is not allowed"),
            ("/etc/passwd", tar::EntryType::Regular, "only relative paths"),
            ("policies/link.yaml", tar::EntryType::Symlink, "only plain files"),
            ("policies/hard.yaml", tar::EntryType::Link, "only plain files"),
            ("dev/tty", tar::EntryType::Char, "only plain files"),
        ] {
            let err = read_pack(&tar_gz(&[(path, b"x", kind)])).unwrap_err();
            assert!(err.contains(want), "{path}: {err}");
        }
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_cap() {
        // 80 MiB of zeros in one file compresses to about 80 KiB.
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best()));
        let mut h = tar::Header::new_gnu();
        h.set_size(80 << 20);
        h.set_mode(0o644);
        h.set_cksum();
        builder
            .append_data(&mut h, "policies/zeros.yaml", std::io::repeat(0).take(80 << 20))
            .unwrap();
        let body = builder.into_inner().unwrap().finish().unwrap();
        assert!(body.len() < MAX_UPLOAD_BYTES);
        let err = read_pack(&body).unwrap_err();
        assert!(err.contains("larger than"), "{err}");
    }

    #[test]
    fn json_maps_are_checked_like_archives() {
        let pack = read_pack(br#"{"policies/a.yaml": "a: 1\n", "./tests/t.yaml": "t"}"#).unwrap();
        assert_eq!(
            pack.files.keys().collect::<Vec<_>>(),
            ["policies/a.yaml", "tests/t.yaml"]
        );
        assert_eq!(read_pack(br#"{"files": {"a.yaml": "x"}}"#).unwrap().files.len(), 1);
        assert!(read_pack(br#"{"../a.yaml": "x"}"#).unwrap_err().contains(".."));
        assert!(read_pack(br#"{"C:\\a.yaml": "x"}"#).is_err());
        assert!(read_pack(br#"{"a.yaml": 1}"#).unwrap_err().contains("text"));
        assert!(read_pack(br#"{}"#).unwrap_err().contains("no files"));
        assert!(read_pack(b"kind: Funnel").unwrap_err().contains("neither"));
        // Regression: a file named twice kept only its last text.
        assert!(
            read_pack(br#"{"a.yaml": "x: 1", "a.yaml": "x: 2"}"#)
                .unwrap_err()
                .contains("given twice")
        );
        assert!(
            read_pack(br#"{"files": {"a.yaml": "x: 1", "./a.yaml": "x: 2"}}"#)
                .unwrap_err()
                .contains("given twice")
        );
    }
}
