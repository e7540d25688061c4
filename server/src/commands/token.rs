//! `authz token`: mints a signed JWT from a development key, for trying the proxy and for tests.
//! Production tokens come from an identity provider; this command exists so that the quickstart
//! needs nothing but `authz`.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::Header;
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
    let algorithm = crate::signing::algorithm(&args.alg)?;
    let key = crate::signing::encoding_key(algorithm, &args.key)?;
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
