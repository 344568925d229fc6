//! Packs sent over HTTP: read by [`dealrules_model::archive`], where the
//! rules for what an upload may hold live beside the folder reader.

pub use dealrules_model::archive::*;
