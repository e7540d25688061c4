//! Private keys for signing JWTs: the development tokens of `authz token` and the identity
//! assertions the proxy sends upstream. Keys are PEM files (PKCS#8 or the algorithm's own
//! form); an HMAC secret is the file's bytes, less one trailing newline.

use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey};

/// Parses a JWS algorithm name as it is written in tokens (`ES256`, `EdDSA`, `HS256`, …).
pub fn algorithm(name: &str) -> Result<Algorithm, String> {
    name.parse().map_err(|_| {
        format!(
            "unknown algorithm `{name}`; use one of HS256, HS384, HS512, RS256, RS384, RS512, \
             PS256, PS384, PS512, ES256, ES384, EdDSA"
        )
    })
}

/// Reads the signing key for `algorithm` from `path`.
pub fn encoding_key(algorithm: Algorithm, path: &Path) -> Result<EncodingKey, String> {
    let bytes = std::fs::read(path)
        .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
    let key = match algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            let secret = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
            // RFC 7518 3.2: a key at least as long as the hash.
            let minimum = match algorithm {
                Algorithm::HS384 => 48,
                Algorithm::HS512 => 64,
                _ => 32,
            };
            if secret.len() < minimum {
                return Err(format!(
                    "`{}` holds {} bytes; a {algorithm:?} secret needs at least {minimum}",
                    path.display(),
                    secret.len()
                ));
            }
            EncodingKey::from_secret(secret)
        }
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&bytes),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&bytes),
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => EncodingKey::from_rsa_pem(&bytes),
        other => return Err(format!("{other:?} keys are not supported for signing")),
    };
    key.map_err(|error| {
        format!(
            "`{}` is not a {algorithm:?} signing key: {error}",
            path.display()
        )
    })
}
