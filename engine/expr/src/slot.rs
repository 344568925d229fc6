//! What a decision found at each of a policy's numbered input paths: the
//! slots that `slots` fills from the input and compiled expressions read.

use std::sync::Arc;

use smol_str::SmolStr;

use crate::value::Value;

/// A decision's slots; most policies read fewer than eight paths.
pub type Slots = smallvec::SmallVec<[Slot; 8]>;

/// What a decision found at one slot's path.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Slot {
    #[default]
    Missing,
    Present(Value),
    /// A value on the way was not a mapping (`deal` is text, `deal.amount`
    /// read). Boxed: it is rare, and keeping a slot as small as a value
    /// keeps every decision's slots small to fill, move and drop.
    Blocked(Box<Blocked>),
}

/// Where a slot's path ran into something that is not a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocked {
    /// The key that could not be read.
    pub key: SmolStr,
    /// The path up to it (`deal`).
    pub parent: Arc<str>,
    /// What was there instead (`text`).
    pub found: &'static str,
}

impl Slot {
    /// A slot whose path runs through `found` at `parent`.
    pub fn blocked(key: SmolStr, parent: Arc<str>, found: &'static str) -> Slot {
        Slot::Blocked(Box::new(Blocked { key, parent, found }))
    }
}
