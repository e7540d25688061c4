//! `authz token`: mints a signed JWT from a development key, for trying the proxy and for tests.
//! Production tokens come from an identity provider; this command exists so that the quickstart
//! needs nothing but `authz`.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

use super::Outcome;
use crate::cli::TokenArgs;

/// Prints a token signed with the key file.
pub fn run(args: &TokenArgs) -> Outcome {
    match mint(args) {
        Ok(token) => {
            println!("{token}");
            Outcome::Success
        }
        Err(message) => {
            eprintln!("error: {message}");
            Outcome::Failure
        }
    }
}

fn mint(args: &TokenArgs) -> Result<String, String> {
    let algorithm: Algorithm = args
        .alg
        .parse()
        .map_err(|_| format!("unknown algorithm `{}`", args.alg))?;
    let bytes = std::fs::read(&args.key)
        .map_err(|error| format!("cannot read `{}`: {error}", args.key.display()))?;
    let key: Result<EncodingKey, jsonwebtoken::errors::Error> = match algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            EncodingKey::from_secret(trim_newline(&bytes))
        }
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&bytes),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&bytes),
        _ => EncodingKey::from_rsa_pem(&bytes),
    };
    let key = key.map_err(|error| {
        format!(
            "`{}` is not a {} key: {error}",
            args.key.display(),
            args.alg
        )
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|error| error.to_string())?
        .as_secs();
    let mut claims = Map::new();
    claims.insert("iss".to_string(), Value::from(args.iss.clone()));
    claims.insert("sub".to_string(), Value::from(args.sub.clone()));
    if let Some(aud) = &args.aud {
        claims.insert("aud".to_string(), Value::from(aud.clone()));
    }
    claims.insert("iat".to_string(), Value::from(now));
    claims.insert("nbf".to_string(), Value::from(now));
    claims.insert("exp".to_string(), Value::from(now.saturating_add(args.ttl)));
    for claim in &args.claims {
        let Some((name, value)) = claim.split_once('=') else {
            return Err(format!("`--claim {claim}`: write `name=value`"));
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::from(value));
        claims.insert(name.to_string(), value);
    }
    let mut header = Header::new(algorithm);
    header.kid = args.kid.clone();
    jsonwebtoken::encode(&header, &Value::Object(claims), &key)
        .map_err(|error| format!("cannot sign: {error}"))
}

fn trim_newline(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(b"\n").unwrap_or(bytes)
}
