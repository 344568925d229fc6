//! The states and kinds of stored rows. Everywhere but the database and
//! the API they are these enums; the database keeps them as their lowercase
//! names ([`as_str`](ApprovalState::as_str)), and the API shows the same.

/// Declares a stored enum: its variants and their names.
macro_rules! stored_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// The name stored and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<$name, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "`{other}` is not {}: {}",
                        stringify!($name),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        /// Compares with a stored or shown name.
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_enum! {
    /// Where an approval request stands.
    ApprovalState {
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
        Recalled = "recalled",
    }
}

stored_enum! {
    /// Where one level of an approval request stands: `waiting` for the
    /// levels before it, then `pending` with its approver.
    StepState {
        Waiting = "waiting",
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
        Skipped = "skipped",
    }
}

stored_enum! {
    /// Where a durable timer stands.
    TimerState {
        Scheduled = "scheduled",
        Fired = "fired",
        Cancelled = "cancelled",
    }
}

stored_enum! {
    /// What a timer is for: a funnel's timer, or an approval step's SLA.
    TimerKind {
        Funnel = "funnel",
        Remind = "remind",
        Escalate = "escalate",
    }
}

stored_enum! {
    /// Where a notification's delivery stands.
    OutboxState {
        Pending = "pending",
        Sent = "sent",
        Failed = "failed",
    }
}

stored_enum! {
    /// Where an activated pack came from.
    #[derive(Default)]
    ActivationSource {
        /// The watched rules folder.
        #[default]
        Directory = "directory",
        Upload = "upload",
        Rollback = "rollback",
        /// An approved change request (its id is on the activation).
        Change = "change",
    }
}

stored_enum! {
    /// Where a change request stands: `draft` (its author edits it),
    /// `submitted` (waiting for an approver), `approved` (on its way to
    /// active), `scheduled` (approved, activating at `activate_at`),
    /// `active` (its pack was activated), `rejected`, `cancelled`.
    ChangeState {
        Draft = "draft",
        Submitted = "submitted",
        Approved = "approved",
        Scheduled = "scheduled",
        Active = "active",
        Rejected = "rejected",
        Cancelled = "cancelled",
    }
}

stored_enum! {
    /// What a change request is: an edit of files, or a rollback to a
    /// stored version.
    ChangeKind {
        Change = "change",
        Rollback = "rollback",
    }
}

stored_enum! {
    /// Where an impact job stands.
    ImpactState {
        Running = "running",
        Done = "done",
        Failed = "failed",
    }
}

impl TryFrom<&str> for ActivationSource {
    type Error = String;
    fn try_from(s: &str) -> Result<ActivationSource, String> {
        s.parse()
    }
}
