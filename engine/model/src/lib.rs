//! The dealrules policy model: the pack's YAML document types, the loader that
//! reads them with positions, and the diagnostics it reports.
//!
//! ```
//! use dealrules_model::{load_pack, PackSource, Kind};
//! let source = PackSource::from_texts([("approvals.yaml", r#"
//! apiVersion: dealrules/v1
//! kind: ApprovalPolicy
//! metadata: { name: discounts }
//! spec:
//!   levels: [auto, manager]
//!   rules:
//!     - { id: small, when: "deal.discount_pct <= 10", level: auto }
//!     - { id: rest, level: manager }
//! "#)]);
//! let pack = load_pack(source).unwrap();
//! assert!(pack.find(Kind::ApprovalPolicy, "discounts").is_some());
//! assert!(pack.version.starts_with("sha256:"));
//! ```
//!
//! Core concepts:
//! - [`PackSource`]: the files of a pack, from a folder or from memory.
//! - [`load_pack`]: all-or-nothing parsing; every error of every file at once.
//! - [`Diagnostic`]: `file:line:col: Kind/name: message`.
//! - [`types`]: one struct per document kind, refusing unknown keys.
#![forbid(unsafe_code)]

pub mod archive;
pub mod diag;
pub mod duration;
pub mod pack;
pub mod types;
pub mod yaml;

pub use diag::{Diagnostic, PackErrors, Pos, did_you_mean, suggest};
pub use pack::{
    Document, MAX_FILE_BYTES, Pack, PackSource, Spec, TestDocument, deserialize_at, load_pack, load_pack_partial,
};
pub use types::*;
