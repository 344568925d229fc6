//! Which input fields a policy can read. A decision's JSON input is parsed
//! only that far: fields no expression reads are skipped, not built. CRM
//! payloads carry hundreds of fields; a policy reads a handful.

use smol_str::SmolStr;

/// The part of an input a policy reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interest {
    /// The whole value (and everything below it).
    All,
    /// Only these fields of an object; anything that is not an object is
    /// kept whole so type errors still show.
    Fields(Vec<(SmolStr, Interest)>),
}

impl Default for Interest {
    fn default() -> Self {
        Interest::Fields(Vec::new())
    }
}

impl Interest {
    /// Marks `path` (and everything below it) as read.
    pub fn add_path(&mut self, path: &[&str]) {
        let Some((first, rest)) = path.split_first() else {
            *self = Interest::All;
            return;
        };
        match self {
            Interest::All => {}
            Interest::Fields(fields) => {
                let i = match fields.iter().position(|(k, _)| k == first) {
                    Some(i) => i,
                    None => {
                        fields.push((SmolStr::new(first), Interest::default()));
                        fields.len() - 1
                    }
                };
                fields[i].1.add_path(rest);
            }
        }
    }

    /// Adds everything `other` reads.
    pub fn merge(&mut self, other: &Interest) {
        let Interest::Fields(mine) = self else { return };
        let Interest::Fields(theirs) = other else {
            *self = Interest::All;
            return;
        };
        for (k, i) in theirs {
            match mine.iter_mut().find(|(m, _)| m == k) {
                Some((_, m)) => m.merge(i),
                None => mine.push((k.clone(), i.clone())),
            }
        }
    }

    /// The interest in field `key` of an object, or `None` to skip it.
    pub fn field(&self, key: &str) -> Option<(&SmolStr, &Interest)> {
        match self {
            Interest::All => None,
            Interest::Fields(fields) => fields.iter().find(|(k, _)| k == key).map(|(k, i)| (k, i)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_merge_and_all_absorbs() {
        let mut i = Interest::default();
        i.add_path(&["deal", "amount"]);
        i.add_path(&["deal", "region"]);
        i.add_path(&["rep"]);
        i.add_path(&["rep", "manager"]);
        let (_, deal) = i.field("deal").unwrap();
        assert!(deal.field("amount").is_some() && deal.field("stage").is_none());
        assert_eq!(i.field("rep").unwrap().1, &Interest::All);
    }

    #[test]
    fn merging_keeps_every_path_of_both() {
        let mut a = Interest::default();
        a.add_path(&["deal", "amount"]);
        let mut b = Interest::default();
        b.add_path(&["deal", "region"]);
        b.add_path(&["rep", "attainment"]);
        a.merge(&b);
        let (_, deal) = a.field("deal").unwrap();
        assert!(deal.field("amount").is_some() && deal.field("region").is_some());
        assert!(a.field("rep").unwrap().1.field("attainment").is_some());
        a.merge(&Interest::All);
        assert_eq!(a, Interest::All);
    }
}
