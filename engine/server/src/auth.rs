//! Bearer tokens with roles. Tokens are kept as SHA-256 hashes and compared
//! in constant time; the plain token is shown once, when it is made.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Roles, weakest first: a role may do what the roles before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Service,
    Approver,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "service" => Some(Role::Service),
            "approver" => Some(Role::Approver),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who a request is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub role: Role,
    pub groups: Vec<String>,
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new random token: 32 bytes from the OS, hex.
pub fn generate_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the OS: {e}"))?;
    Ok(format!("drt_{}", hex::encode(bytes)))
}

#[derive(Debug, Default, Clone)]
pub struct TokenBook {
    entries: Vec<([u8; 32], Principal)>,
}

impl TokenBook {
    pub fn add(&mut self, token: &str, principal: Principal) {
        self.entries.push((hash_token(token), principal));
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks every stored hash, whatever matches first, so timing tells
    /// nothing about which token was close.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        let token = authorization.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).ok_or(ApiError::Unauthorized)?;
        let presented = hash_token(token);
        let mut found = None;
        for (hash, who) in &self.entries {
            if bool::from(hash.ct_eq(&presented)) {
                found = Some(who.clone());
            }
        }
        found.ok_or(ApiError::Unauthorized)
    }
}

/// Refuses a request whose role is below `needed`.
pub fn require(who: &Principal, needed: Role) -> Result<(), ApiError> {
    if who.role >= needed {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("this needs the {needed:?} role; the token has {:?}", who.role).to_lowercase()))
    }
}
