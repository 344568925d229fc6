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
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Service => "service",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

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

    /// Adds a stored token by its hash (hex); a damaged hash or role is
    /// skipped, not trusted.
    pub fn add_stored(&mut self, record: &dealrules_store::TokenRecord) {
        let mut hash = [0u8; 32];
        if hex::decode_to_slice(&record.token_hash, &mut hash).is_err() {
            return;
        }
        if let Some(role) = Role::parse(&record.role) {
            self.entries.push((
                hash,
                Principal {
                    subject: record.subject.clone(),
                    role,
                    groups: record.groups.clone(),
                },
            ));
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principal of the token with this hash, checking every entry.
    pub fn by_hash(&self, presented: &[u8; 32]) -> Option<Principal> {
        let mut found = None;
        for (hash, who) in &self.entries {
            if bool::from(hash.ct_eq(presented)) {
                found = Some(who.clone());
            }
        }
        found
    }

    /// Checks every stored hash, whatever matches first, so timing tells
    /// nothing about which token was close.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
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

/// The tokens a server accepts: those in the store (refreshed when an
/// unknown token is presented, at most once a second, and every 10 s, so a
/// token made or revoked on another node or by the CLI takes effect) plus
/// the one from `DEALRULES_ADMIN_TOKEN`.
pub struct Tokens {
    book: arc_swap::ArcSwap<TokenBook>,
    fixed: TokenBook,
    last_refresh: std::sync::Mutex<std::time::Instant>,
}

impl Tokens {
    pub fn new(fixed: TokenBook) -> Tokens {
        Tokens {
            book: arc_swap::ArcSwap::from_pointee(fixed.clone()),
            fixed,
            last_refresh: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }

    /// Reloads the stored tokens.
    pub async fn refresh(&self, stored: &dealrules_store::Tokens) -> Result<(), dealrules_store::StoreError> {
        let stored = stored.tokens().await?;
        let mut book = self.fixed.clone();
        for record in &stored {
            book.add_stored(record);
        }
        self.book.store(std::sync::Arc::new(book));
        *self.last_refresh.lock().unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.book.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The principal of a token known by its hash (a console session's),
    /// as current as [`Tokens::authenticate`] keeps the book: a revoked
    /// token answers `None`.
    pub fn by_hash(&self, hash: &[u8; 32]) -> Option<Principal> {
        self.book.load().by_hash(hash)
    }

    pub async fn authenticate(
        &self,
        stored: &dealrules_store::Tokens,
        authorization: Option<&str>,
    ) -> Result<Principal, ApiError> {
        match self.book.load().authenticate(authorization) {
            Ok(p) => Ok(p),
            Err(e) => {
                let stale = self.last_refresh.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
                    > std::time::Duration::from_secs(1);
                if stale && authorization.is_some() && self.refresh(stored).await.is_ok() {
                    self.book.load().authenticate(authorization)
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// Refuses a request whose role is below `needed`.
pub fn require(who: &Principal, needed: Role) -> Result<(), ApiError> {
    if who.role >= needed {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            format!("this needs the {needed:?} role; the token has {:?}", who.role).to_lowercase(),
        ))
    }
}
