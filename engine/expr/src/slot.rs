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
    /// A value on the way was not a mapping (`deal` is text, `deal.amount` read).
    Blocked {
        key: SmolStr,
        parent: Arc<str>,
        found: &'static str,
    },
}
