//! JWT claims of master and access tokens (design §4) and what each role may do.
//! Signing and verification live in the server; these are the agreed shapes and rules.

use serde::{Deserialize, Serialize};

/// The `iss` claim of every Hearth token.
pub const ISSUER: &str = "hearth";
/// The `aud` claim of every Hearth token.
pub const AUDIENCE: &str = "hearth-sync";

/// What a token may do in its workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The owner: everything, including minting and revoking access tokens.
    Master,
    /// Read and push updates and snapshots.
    Write,
    /// Read only.
    Read,
}

/// The id of the master token a rotation mints: a function of the rotated token's id and the
/// client's rotation id, so a client that lost the reply can ask again and get the same token.
pub fn rotation_token_id(old_token_id: &str, rotation_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("hearth-rotation\n{old_token_id}\n{rotation_id}"));
    hex::encode(&digest[..16])
}

impl Role {
    /// May pull updates and join the live channel.
    pub fn can_read(self) -> bool {
        true
    }

    /// May push updates and upload snapshots.
    pub fn can_write(self) -> bool {
        matches!(self, Role::Master | Role::Write)
    }

    /// May mint, list and revoke tokens, rotate the master token, back up and delete.
    pub fn is_master(self) -> bool {
        matches!(self, Role::Master)
    }

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Write => "write",
            Role::Read => "read",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "master" => Some(Role::Master),
            "write" => Some(Role::Write),
            "read" => Some(Role::Read),
            _ => None,
        }
    }
}

/// Claims carried by a Hearth JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Token id (also the revocation key).
    pub sub: String,
    /// Workspace id.
    pub ws: String,
    /// Role in that workspace.
    pub role: Role,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expiry, seconds since the Unix epoch; absent for master tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Always [`ISSUER`].
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_the_design_says() {
        assert!(Role::Master.can_write() && Role::Master.is_master());
        assert!(Role::Write.can_write() && !Role::Write.is_master());
        assert!(!Role::Read.can_write() && !Role::Read.is_master() && Role::Read.can_read());
        for r in [Role::Master, Role::Write, Role::Read] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn a_master_claim_omits_exp() -> Result<(), serde_json::Error> {
        let c = Claims {
            sub: "t".into(),
            ws: "w".into(),
            role: Role::Master,
            iat: 1,
            exp: None,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        let v = serde_json::to_value(&c)?;
        assert!(v.get("exp").is_none());
        assert_eq!(v["role"], "master");
        Ok(())
    }
}
