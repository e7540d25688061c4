//! Why a credential was refused.
//!
//! Each [`AuthError`] carries two texts: its `Display` form is the reason for the logs (it may
//! name a claim or an issuer from the configuration, but never key material, the token or what
//! a parser said about it), and [`AuthError::client_message`] is a fixed sentence that is safe
//! to send to the caller.

/// A credential that was presented but not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The credential is not in a form this proxy reads (not three base64url parts of JSON,
    /// an empty bearer token, an `Authorization` header sent twice, a `crit` header).
    #[error("malformed credential: {0}")]
    Malformed(&'static str),
    /// The `Authorization` header uses a scheme other than `Bearer` or `ApiKey`.
    #[error("unsupported authorization scheme")]
    UnsupportedScheme,
    /// More than one credential was presented (a bearer token and an API key, say).
    #[error("more than one credential presented")]
    MultipleCredentials,
    /// The header's `alg` is not one the issuer allows (always so for `none`), or does not
    /// suit the key that `kid` selects.
    #[error("algorithm not allowed for this issuer or key")]
    DisallowedAlgorithm,
    /// The signature does not verify with the issuer's key.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is in the past, beyond the leeway.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` is in the future, beyond the leeway.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is missing or names no configured issuer.
    #[error("issuer not trusted")]
    WrongIssuer,
    /// `aud` names none of the issuer's audiences.
    #[error("audience not accepted")]
    WrongAudience,
    /// No key of the issuer has the token's `kid` (or the token has no `kid` and the issuer
    /// has several keys).
    #[error("unknown key id")]
    UnknownKid,
    /// The issuer has no usable keys: its JWKS endpoint has failed for longer than the stale
    /// bound (fail closed).
    #[error("issuer keys unavailable")]
    KeysUnavailable,
    /// A required claim is missing.
    #[error("missing claim `{0}`")]
    MissingClaim(String),
    /// A claim has the wrong JSON type for its use or mapping.
    #[error("claim `{0}` has the wrong type")]
    WrongClaimType(String),
    /// The API key is not in the key file.
    #[error("unknown API key")]
    UnknownApiKey,
}

impl AuthError {
    /// A fixed sentence for the client; it reveals nothing about keys or parsers.
    pub fn client_message(&self) -> &'static str {
        match self {
            AuthError::Malformed(_)
            | AuthError::UnsupportedScheme
            | AuthError::MultipleCredentials => "malformed credentials",
            AuthError::Expired => "the token has expired",
            AuthError::NotYetValid => "the token is not valid yet",
            AuthError::UnknownApiKey => "invalid API key",
            AuthError::DisallowedAlgorithm
            | AuthError::BadSignature
            | AuthError::WrongIssuer
            | AuthError::WrongAudience
            | AuthError::UnknownKid
            | AuthError::KeysUnavailable
            | AuthError::MissingClaim(_)
            | AuthError::WrongClaimType(_) => "invalid token",
        }
    }

    /// A stable code for logs and metrics, such as `expired`.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Malformed(_) => "malformed",
            AuthError::UnsupportedScheme => "unsupported_scheme",
            AuthError::MultipleCredentials => "multiple_credentials",
            AuthError::DisallowedAlgorithm => "disallowed_algorithm",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::UnknownKid => "unknown_kid",
            AuthError::KeysUnavailable => "keys_unavailable",
            AuthError::MissingClaim(_) => "missing_claim",
            AuthError::WrongClaimType(_) => "wrong_claim_type",
            AuthError::UnknownApiKey => "unknown_api_key",
        }
    }
}
