//! Tests of the identity module with real keys and real signed tokens: keys are generated with
//! aws-lc-rs, tokens signed with jsonwebtoken (or, for hand-made headers, by its `sign` over a
//! hand-made signing input), and remote JWKS are served by a hyper server on loopback.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaPublicKeyComponents, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::api_keys::ApiKeyStore;
use super::config::{ClaimType, IdentityConfig};
use super::jwks::parse_jwks;
use super::token_cache::{CachedToken, TokenCache};
use super::*;

const ISSUER: &str = "https://issuer.test/";
const HMAC_ISSUER: &str = "https://hmac.test/";
const AUDIENCE: &str = "orders-api";
const HMAC_SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";

// ---------------------------------------------------------------------------------------------
// Keys.

/// A signing key with its public JWK.
struct TestKey {
    encoding: EncodingKey,
    jwk: Value,
    /// The public key as PEM (RSA only), the bytes an HS/RS confusion attack signs with.
    public_pem: Option<String>,
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn rsa_key(kid: &str) -> TestKey {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let private: Pkcs8V1Der = pair.as_der().unwrap();
    let encoding =
        EncodingKey::from_rsa_pem(pem("PRIVATE KEY", private.as_ref()).as_bytes()).unwrap();
    let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    let public: PublicKeyX509Der = pair.public_key().as_der().unwrap();
    TestKey {
        encoding,
        jwk: json!({
            "kty": "RSA", "kid": kid, "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(&components.n),
            "e": URL_SAFE_NO_PAD.encode(&components.e),
        }),
        public_pem: Some(pem("PUBLIC KEY", public.as_ref())),
    }
}

fn ec_key(kid: &str) -> TestKey {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let pkcs8 = pair.to_pkcs8v1().unwrap();
    let point = pair.public_key().as_ref().to_vec();
    assert_eq!(point.len(), 65);
    TestKey {
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({
            "kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }),
        public_pem: None,
    }
}

fn ed_key(kid: &str) -> TestKey {
    let pair = Ed25519KeyPair::generate().unwrap();
    let pkcs8 = pair.to_pkcs8().unwrap();
    TestKey {
        encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        jwk: json!({
            "kty": "OKP", "kid": kid, "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        }),
        public_pem: None,
    }
}

/// The issuer's keys, generated once (RSA generation is slow).
struct Keys {
    rsa: TestKey,
    ec: TestKey,
    ed: TestKey,
    /// A key of the attacker's, never published by the issuer.
    attacker_ec: TestKey,
    attacker_rsa: TestKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa: rsa_key("rsa-1"),
        ec: ec_key("ec-1"),
        ed: ed_key("ed-1"),
        attacker_ec: ec_key("attacker"),
        attacker_rsa: rsa_key("rsa-1"),
    })
}

fn jwks(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|key| key.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

// ---------------------------------------------------------------------------------------------
// Tokens.

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Good claims for the asymmetric issuer.
fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "exp": now() + 600,
        "iat": now(),
        "email": "alice@example.com",
        "roles": ["support", "admin"],
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

/// A token signed with jsonwebtoken's `encode`.
fn token(algorithm: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A token with a hand-made header, signed over the exact signing input.
fn raw_token(header: &Value, claims: &Value, key: &EncodingKey, algorithm: Algorithm) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, algorithm).unwrap();
    format!("{input}.{signature}")
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

// ---------------------------------------------------------------------------------------------
// Configurations.

/// The standard test configuration: the asymmetric issuer from a JWKS file, the HMAC issuer,
/// and API keys.
struct Setup {
    _dir: tempfile::TempDir,
    auth: Authenticator,
}

const API_KEY: &str = "ak_live_billing_0123456789";

fn setup() -> Setup {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("jwks.json"),
        jwks(&[&keys.rsa, &keys.ec, &keys.ed]),
    )
    .unwrap();
    let digest: String = sha256(API_KEY.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    std::fs::write(
        dir.path().join("api-keys.toml"),
        format!(
            "[[keys]]\nsha256 = \"{digest}\"\ntype = \"Service\"\nid = \"billing\"\n\
             attributes = {{ team = \"payments\", tier = 2 }}\n"
        ),
    )
    .unwrap();
    let config = parse_config(&format!(
        r#"
        [[jwt]]
        issuer = "{ISSUER}"
        audiences = ["{AUDIENCE}", "other-api"]
        algorithms = ["RS256", "PS256", "ES256", "EdDSA"]
        jwks_file = "jwks.json"
        principal_type = "User"
        attributes = {{ email = {{ claim = "email", type = "String" }}, roles = {{ claim = "roles", type = "Set<String>" }}, level = {{ claim = "level", type = "Long", optional = true }}, tags = {{ claim = "tags", optional = true }} }}

        [[jwt]]
        issuer = "{HMAC_ISSUER}"
        audiences = ["{AUDIENCE}"]
        algorithms = ["HS256"]
        hmac_secret = "{HMAC_SECRET}"
        principal_type = "Service"
        id_claim = "client_id"

        [api_keys]
        file = "api-keys.toml"
        "#
    ));
    let auth = Authenticator::from_config(&config, dir.path()).unwrap();
    Setup { _dir: dir, auth }
}

fn parse_config(text: &str) -> IdentityConfig {
    toml::from_str(text).unwrap()
}

fn config_error(text: &str) -> String {
    match toml::from_str::<IdentityConfig>(text) {
        Err(error) => error.to_string(),
        Ok(config) => match Authenticator::from_config(&config, Path::new(".")) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("the configuration was accepted:\n{text}"),
        },
    }
}

async fn check(auth: &Authenticator, token: &str) -> Result<Option<Identity>, AuthError> {
    auth.authenticate(&bearer(token))
        .await
        .map(|identity| identity.map(Arc::unwrap_or_clone))
}

async fn rejected(auth: &Authenticator, token: &str) -> AuthError {
    match check(auth, token).await {
        Err(error) => error,
        Ok(identity) => panic!("the token was accepted: {identity:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Good tokens.

#[tokio::test]
async fn tokens_of_every_algorithm_verify_and_map_to_the_principal() {
    let Setup { auth, .. } = setup();
    let keys = keys();
    let cases = [
        (Algorithm::RS256, "rsa-1", &keys.rsa),
        (Algorithm::PS256, "rsa-1", &keys.rsa),
        (Algorithm::ES256, "ec-1", &keys.ec),
        (Algorithm::EdDSA, "ed-1", &keys.ed),
    ];
    for (algorithm, kid, key) in cases {
        let claims = with(claims(), "level", json!(3));
        let identity = check(&auth, &token(algorithm, Some(kid), &key.encoding, &claims))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(identity.principal, json!({"type": "User", "id": "alice"}));
        assert_eq!(
            identity.entity,
            json!({
                "type": "User", "id": "alice",
                "attrs": {"email": "alice@example.com", "roles": ["support", "admin"], "level": 3},
                "parents": [],
            }),
            "{algorithm:?}"
        );
        assert_eq!(
            identity.header("x-authz-principal"),
            Some(r#"{"type":"User","id":"alice"}"#)
        );
        assert_eq!(identity.header("x-authz-issuer"), Some(ISSUER));
        assert_eq!(identity.header("x-authz-auth"), Some("jwt"));
    }

    let hmac = EncodingKey::from_secret(HMAC_SECRET.as_bytes()).unwrap();
    let service =
        json!({"iss": HMAC_ISSUER, "aud": AUDIENCE, "client_id": "billing", "exp": now() + 60});
    let identity = check(&auth, &token(Algorithm::HS256, None, &hmac, &service))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        identity.principal,
        json!({"type": "Service", "id": "billing"})
    );
}

#[tokio::test]
async fn no_credential_gives_no_identity() {
    let Setup { auth, .. } = setup();
    assert_eq!(auth.authenticate(&HeaderMap::new()).await, Ok(None));
    let mut headers = HeaderMap::new();
    headers.insert("x-other", HeaderValue::from_static("value"));
    assert_eq!(auth.authenticate(&headers).await, Ok(None));
}

#[tokio::test]
async fn identity_headers_are_header_safe_whatever_the_id() {
    let Setup { auth, .. } = setup();
    let claims = with(claims(), "sub", json!("é\r\nx-authz-principal: admin"));
    let token = token(Algorithm::ES256, Some("ec-1"), &keys().ec.encoding, &claims);
    let identity = check(&auth, &token).await.unwrap().unwrap();
    // Every header is kept: none was dropped for an unsafe value.
    assert_eq!(identity.headers.len(), 3);
    for (_, value) in &identity.headers {
        let text = value.to_str().unwrap();
        assert!(!text.contains('\r') && !text.contains('\n'), "{text:?}");
    }
    assert_eq!(
        identity.header("x-authz-principal"),
        Some(r#"{"type":"User","id":"\u00e9\r\nx-authz-principal: admin"}"#)
    );
}

// ---------------------------------------------------------------------------------------------
// Attack classes.

#[tokio::test]
async fn missing_and_malformed_tokens_are_rejected() {
    let Setup { auth, .. } = setup();
    let good = token(
        Algorithm::ES256,
        Some("ec-1"),
        &keys().ec.encoding,
        &claims(),
    );
    let header = good.split('.').next().unwrap().to_string();
    let cases: Vec<(String, &str)> = vec![
        ("Bearer".to_string(), "empty bearer token"),
        ("Bearer    ".to_string(), "empty bearer token"),
        ("Bearer abc".to_string(), "not three"),
        ("Bearer a.b".to_string(), "not three"),
        (format!("Bearer {good}.x"), "not three"),
        ("Bearer ..".to_string(), "empty header"),
        ("Bearer a+b.c/d.e".to_string(), "not base64url"),
        (
            format!("Bearer {}.e30.", URL_SAFE_NO_PAD.encode("not json")),
            "header",
        ),
        (
            format!("Bearer {}.e30.", URL_SAFE_NO_PAD.encode("[1]")),
            "header",
        ),
        (
            format!("Bearer {header}.{}.", URL_SAFE_NO_PAD.encode("\"x\"")),
            "payload",
        ),
        (
            format!("Bearer {}.e30.", URL_SAFE_NO_PAD.encode(r#"{"alg":5}"#)),
            "alg",
        ),
        (
            format!(
                "Bearer {}.e30.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":1}"#)
            ),
            "kid",
        ),
        (
            format!(
                "Bearer {}.e30.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","crit":["exp"]}"#)
            ),
            "crit",
        ),
        (format!("Bearer {}", "a".repeat(20_000)), "too long"),
    ];
    for (value, expected) in cases {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
        match auth.authenticate(&headers).await {
            Err(AuthError::Malformed(reason)) => {
                assert!(reason.contains(expected), "{value:?}: {reason}")
            }
            other => panic!("{value:?}: {other:?}"),
        }
    }

    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_static("Basic YWxpY2U6cHc="),
    );
    assert_eq!(
        auth.authenticate(&headers).await,
        Err(AuthError::UnsupportedScheme)
    );

    let mut headers = bearer(&good);
    headers.append(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {good}")).unwrap(),
    );
    assert!(matches!(
        auth.authenticate(&headers).await,
        Err(AuthError::Malformed(_))
    ));

    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
    );
    assert!(matches!(
        auth.authenticate(&headers).await,
        Err(AuthError::Malformed(_))
    ));
}

#[tokio::test]
async fn alg_none_is_never_accepted() {
    let Setup { auth, .. } = setup();
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        for kid in [None, Some("rsa-1")] {
            let mut header = json!({"alg": alg, "typ": "JWT"});
            if let Some(kid) = kid {
                header["kid"] = json!(kid);
            }
            let header = URL_SAFE_NO_PAD.encode(header.to_string());
            // Without a signature, and with one copied from a valid token.
            let valid = token(
                Algorithm::RS256,
                Some("rsa-1"),
                &keys().rsa.encoding,
                &claims(),
            );
            let signature = valid.rsplit('.').next().unwrap();
            for token in [
                format!("{header}.{payload}."),
                format!("{header}.{payload}.{signature}"),
            ] {
                assert_eq!(
                    rejected(&auth, &token).await,
                    AuthError::DisallowedAlgorithm
                );
            }
        }
    }
    assert!(config_error(&format!(
        r#"[[jwt]]
        issuer = "{ISSUER}"
        audiences = ["{AUDIENCE}"]
        algorithms = ["none"]
        jwks_file = "jwks.json"
        principal_type = "User""#
    ))
    .contains("unsupported algorithm `none`"));
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_rejected() {
    let Setup { auth, .. } = setup();
    let keys = keys();
    let public_pem = keys.rsa.public_pem.as_ref().unwrap();
    let n = URL_SAFE_NO_PAD
        .decode(keys.rsa.jwk["n"].as_str().unwrap())
        .unwrap();
    for secret in [
        public_pem.as_bytes(),
        &n,
        keys.rsa.jwk.to_string().as_bytes(),
    ] {
        let forged = EncodingKey::from_secret(secret).unwrap();
        for algorithm in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            for kid in [Some("rsa-1"), None] {
                let token = token(algorithm, kid, &forged, &claims());
                assert_eq!(
                    rejected(&auth, &token).await,
                    AuthError::DisallowedAlgorithm
                );
            }
        }
    }
    // The configuration cannot open the door either: an asymmetric issuer with HS algorithms,
    // or an HMAC issuer with asymmetric ones, is refused at load.
    let error = config_error(&format!(
        r#"[[jwt]]
        issuer = "{ISSUER}"
        audiences = ["{AUDIENCE}"]
        algorithms = ["RS256", "HS256"]
        jwks_url = "https://issuer.test/jwks.json"
        principal_type = "User""#
    ));
    assert!(error.contains("jwt[0].algorithms"), "{error}");
    assert!(error.contains("either HMAC or asymmetric"), "{error}");
    let error = config_error(&format!(
        r#"[[jwt]]
        issuer = "{ISSUER}"
        audiences = ["{AUDIENCE}"]
        algorithms = ["HS256", "RS256"]
        hmac_secret = "{HMAC_SECRET}"
        principal_type = "User""#
    ));
    assert!(error.contains("either HMAC or asymmetric"), "{error}");
    // And an `oct` key slipped into a JWKS is not used.
    let parsed = parse_jwks(
        json!({"keys": [{"kty": "oct", "kid": "k", "k": URL_SAFE_NO_PAD.encode(HMAC_SECRET)}]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert!(parsed.keys.is_empty());
    assert!(parsed.skipped[0].contains("oct"), "{:?}", parsed.skipped);
}

#[tokio::test]
async fn expired_tokens_are_rejected() {
    let Setup { auth, .. } = setup();
    let key = &keys().ec.encoding;
    let sign = |claims: Value| token(Algorithm::ES256, Some("ec-1"), key, &claims);
    let expired = sign(with(claims(), "exp", json!(now() - 120)));
    assert_eq!(rejected(&auth, &expired).await, AuthError::Expired);
    let long_ago = sign(with(claims(), "exp", json!(1)));
    assert_eq!(rejected(&auth, &long_ago).await, AuthError::Expired);
    let negative = sign(with(claims(), "exp", json!(-5)));
    assert_eq!(rejected(&auth, &negative).await, AuthError::Expired);
    // Within the 30 s leeway the token is still good.
    let just_expired = sign(with(claims(), "exp", json!(now() - 10)));
    assert!(check(&auth, &just_expired).await.is_ok());
    // `exp` is required, and must be a number.
    let missing = sign(without(claims(), "exp"));
    assert_eq!(
        rejected(&auth, &missing).await,
        AuthError::MissingClaim("exp".into())
    );
    let text = sign(with(claims(), "exp", json!("tomorrow")));
    assert_eq!(
        rejected(&auth, &text).await,
        AuthError::WrongClaimType("exp".into())
    );
    assert_eq!(AuthError::Expired.client_message(), "the token has expired");
}

#[tokio::test]
async fn tokens_not_yet_valid_are_rejected() {
    let Setup { auth, .. } = setup();
    let key = &keys().ed.encoding;
    let sign = |claims: Value| token(Algorithm::EdDSA, Some("ed-1"), key, &claims);
    let future_nbf = sign(with(claims(), "nbf", json!(now() + 120)));
    assert_eq!(rejected(&auth, &future_nbf).await, AuthError::NotYetValid);
    let future_iat = sign(with(claims(), "iat", json!(now() + 120)));
    assert_eq!(rejected(&auth, &future_iat).await, AuthError::NotYetValid);
    let far_future = sign(with(claims(), "nbf", json!(u64::MAX)));
    assert_eq!(rejected(&auth, &far_future).await, AuthError::NotYetValid);
    // Within the leeway: accepted.
    let soon = sign(with(claims(), "nbf", json!(now() + 10)));
    assert!(check(&auth, &soon).await.is_ok());
    let fractional = sign(with(claims(), "nbf", json!(now() as f64 - 0.5)));
    assert!(check(&auth, &fractional).await.is_ok());
    let text = sign(with(claims(), "nbf", json!("now")));
    assert_eq!(
        rejected(&auth, &text).await,
        AuthError::WrongClaimType("nbf".into())
    );
}

#[tokio::test]
async fn wrong_issuers_are_rejected() {
    let Setup { auth, .. } = setup();
    let keys = keys();
    let sign = |claims: Value| token(Algorithm::RS256, Some("rsa-1"), &keys.rsa.encoding, &claims);
    for iss in [
        json!("https://evil.test/"),
        json!("https://issuer.test"),
        json!([ISSUER]),
        json!(1),
    ] {
        let token = sign(with(claims(), "iss", iss.clone()));
        assert_eq!(
            rejected(&auth, &token).await,
            AuthError::WrongIssuer,
            "{iss}"
        );
    }
    let no_iss = sign(without(claims(), "iss"));
    assert_eq!(rejected(&auth, &no_iss).await, AuthError::WrongIssuer);
    // A token that claims the HMAC issuer but is signed with the RSA key gets nowhere: that
    // issuer allows only HS256.
    let other_issuer = sign(with(claims(), "iss", json!(HMAC_ISSUER)));
    assert_eq!(
        rejected(&auth, &other_issuer).await,
        AuthError::DisallowedAlgorithm
    );
    // A token of the HMAC issuer presented as the RSA issuer's fails on the algorithm too.
    let hmac = EncodingKey::from_secret(HMAC_SECRET.as_bytes()).unwrap();
    let hmac_token = token(Algorithm::HS256, None, &hmac, &claims());
    assert_eq!(
        rejected(&auth, &hmac_token).await,
        AuthError::DisallowedAlgorithm
    );
}

#[tokio::test]
async fn wrong_audiences_are_rejected() {
    let Setup { auth, .. } = setup();
    let key = &keys().ec.encoding;
    let sign = |claims: Value| token(Algorithm::ES256, Some("ec-1"), key, &claims);
    let other = sign(with(claims(), "aud", json!("billing-api")));
    assert_eq!(rejected(&auth, &other).await, AuthError::WrongAudience);
    let none_of_them = sign(with(claims(), "aud", json!(["billing-api", "x"])));
    assert_eq!(
        rejected(&auth, &none_of_them).await,
        AuthError::WrongAudience
    );
    let empty = sign(with(claims(), "aud", json!([])));
    assert_eq!(rejected(&auth, &empty).await, AuthError::WrongAudience);
    let missing = sign(without(claims(), "aud"));
    assert_eq!(rejected(&auth, &missing).await, AuthError::WrongAudience);
    let number = sign(with(claims(), "aud", json!(7)));
    assert_eq!(
        rejected(&auth, &number).await,
        AuthError::WrongClaimType("aud".into())
    );
    // An audience list that names ours among others is accepted.
    let several = sign(with(claims(), "aud", json!(["billing-api", AUDIENCE])));
    assert!(check(&auth, &several).await.is_ok());
    let second = sign(with(claims(), "aud", json!("other-api")));
    assert!(check(&auth, &second).await.is_ok());
}

#[tokio::test]
async fn unknown_kids_are_rejected() {
    let Setup { auth, .. } = setup();
    let keys = keys();
    let unknown = token(Algorithm::ES256, Some("ec-2"), &keys.ec.encoding, &claims());
    assert_eq!(rejected(&auth, &unknown).await, AuthError::UnknownKid);
    // Without a kid, a set of several keys does not guess.
    let no_kid = token(Algorithm::ES256, None, &keys.ec.encoding, &claims());
    assert_eq!(rejected(&auth, &no_kid).await, AuthError::UnknownKid);
    // A kid that selects a key of another kind: the algorithm must suit the key.
    let mismatch = token(
        Algorithm::ES256,
        Some("rsa-1"),
        &keys.ec.encoding,
        &claims(),
    );
    assert_eq!(
        rejected(&auth, &mismatch).await,
        AuthError::DisallowedAlgorithm
    );
    let mismatch = token(
        Algorithm::RS256,
        Some("ed-1"),
        &keys.rsa.encoding,
        &claims(),
    );
    assert_eq!(
        rejected(&auth, &mismatch).await,
        AuthError::DisallowedAlgorithm
    );
    // An algorithm of the right kind that the issuer does not allow.
    let rs512 = token(
        Algorithm::RS512,
        Some("rsa-1"),
        &keys.rsa.encoding,
        &claims(),
    );
    assert_eq!(
        rejected(&auth, &rs512).await,
        AuthError::DisallowedAlgorithm
    );
}

#[tokio::test]
async fn a_one_key_jwks_serves_tokens_without_kid() {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwks.json"), jwks(&[&keys.ec])).unwrap();
    let config = parse_config(&format!(
        r#"[[jwt]]
        issuer = "{ISSUER}"
        audiences = ["{AUDIENCE}"]
        algorithms = ["ES256"]
        jwks_file = "jwks.json"
        principal_type = "User""#
    ));
    let auth = Authenticator::from_config(&config, dir.path()).unwrap();
    let no_kid = token(Algorithm::ES256, None, &keys.ec.encoding, &claims());
    assert!(check(&auth, &no_kid).await.unwrap().is_some());
    let other_kid = token(Algorithm::ES256, Some("x"), &keys.ec.encoding, &claims());
    assert_eq!(rejected(&auth, &other_kid).await, AuthError::UnknownKid);
}

#[tokio::test]
async fn jku_jwk_x5u_and_x5c_headers_are_ignored() {
    let Setup { auth, .. } = setup();
    let keys = keys();
    let attacker = &keys.attacker_ec;
    // The attacker serves their key at a URL and puts it in the header, too.
    let server = JwksServer::start(Some(jwks(&[attacker]))).await;
    for kid in ["attacker", "ec-1"] {
        let header = json!({
            "alg": "ES256",
            "kid": kid,
            "jku": server.url(),
            "x5u": server.url(),
            "jwk": attacker.jwk,
            "x5c": ["MIIBAAAA"],
        });
        let token = raw_token(&header, &claims(), &attacker.encoding, Algorithm::ES256);
        let expected = if kid == "attacker" {
            AuthError::UnknownKid
        } else {
            AuthError::BadSignature
        };
        assert_eq!(rejected(&auth, &token).await, expected, "kid {kid}");
    }
    // Without a kid the attacker's header key is not used either.
    let header = json!({"alg": "ES256", "jwk": attacker.jwk});
    let token = raw_token(&header, &claims(), &attacker.encoding, Algorithm::ES256);
    assert_eq!(rejected(&auth, &token).await, AuthError::UnknownKid);
    assert_eq!(server.hits(), 0, "a header URL was fetched");
    // The same headers on a token signed by the issuer's own key change nothing.
    let header = json!({"alg": "ES256", "kid": "ec-1", "jku": server.url(), "jwk": attacker.jwk});
    let token = raw_token(&header, &claims(), &keys.ec.encoding, Algorithm::ES256);
    assert!(check(&auth, &token).await.unwrap().is_some());
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn forged_signatures_are_rejected() {
    let Setup { auth, .. } = setup();
    let keys = keys();
    for (algorithm, kid, key, forger) in [
        (Algorithm::RS256, "rsa-1", &keys.rsa, &keys.attacker_rsa),
        (Algorithm::ES256, "ec-1", &keys.ec, &keys.attacker_ec),
    ] {
        let good = token(algorithm, Some(kid), &key.encoding, &claims());
        let [header, _, signature]: [&str; 3] =
            good.split('.').collect::<Vec<_>>().try_into().unwrap();
        // The payload changed under the issuer's signature.
        let admin = URL_SAFE_NO_PAD.encode(with(claims(), "sub", json!("admin")).to_string());
        let tampered = format!("{header}.{admin}.{signature}");
        assert_eq!(rejected(&auth, &tampered).await, AuthError::BadSignature);
        // The signature changed.
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        bytes[10] ^= 1;
        let flipped = format!(
            "{header}.{}.{}",
            good.split('.').nth(1).unwrap(),
            URL_SAFE_NO_PAD.encode(&bytes)
        );
        assert_eq!(rejected(&auth, &flipped).await, AuthError::BadSignature);
        // Signed by another key under the issuer's kid.
        let forged = token(algorithm, Some(kid), &forger.encoding, &claims());
        assert_eq!(rejected(&auth, &forged).await, AuthError::BadSignature);
        // An empty signature.
        let empty = format!("{header}.{}.", good.split('.').nth(1).unwrap());
        assert_eq!(rejected(&auth, &empty).await, AuthError::BadSignature);
    }
    // An HMAC token signed with another secret.
    let wrong = EncodingKey::from_secret(b"another secret, just as long as the real one").unwrap();
    let service =
        json!({"iss": HMAC_ISSUER, "aud": AUDIENCE, "client_id": "billing", "exp": now() + 60});
    let token = token(Algorithm::HS256, None, &wrong, &service);
    assert_eq!(rejected(&auth, &token).await, AuthError::BadSignature);
    assert_eq!(AuthError::BadSignature.client_message(), "invalid token");
}

#[tokio::test]
async fn claims_of_the_wrong_type_are_rejected() {
    let Setup { auth, .. } = setup();
    let key = &keys().ec.encoding;
    let sign = |claims: Value| token(Algorithm::ES256, Some("ec-1"), key, &claims);
    let wrong = |claim: &str| AuthError::WrongClaimType(claim.to_string());
    let cases = [
        (with(claims(), "roles", json!("admin")), wrong("roles")),
        (with(claims(), "roles", json!(["admin", 1])), wrong("roles")),
        (
            with(claims(), "roles", json!({"admin": true})),
            wrong("roles"),
        ),
        (with(claims(), "email", json!(5)), wrong("email")),
        (with(claims(), "email", json!(null)), wrong("email")),
        (
            with(claims(), "email", json!(["a@example.com"])),
            wrong("email"),
        ),
        (with(claims(), "level", json!("high")), wrong("level")),
        (with(claims(), "level", json!(1.5)), wrong("level")),
        (with(claims(), "level", json!(u64::MAX)), wrong("level")),
        (
            with(claims(), "tags", json!({"nested": "object"})),
            wrong("tags"),
        ),
        (with(claims(), "tags", json!([["nested"]])), wrong("tags")),
        (with(claims(), "sub", json!(42)), wrong("sub")),
        (with(claims(), "sub", json!("")), wrong("sub")),
        (
            without(claims(), "sub"),
            AuthError::MissingClaim("sub".into()),
        ),
        (
            without(claims(), "email"),
            AuthError::MissingClaim("email".into()),
        ),
    ];
    for (claims, expected) in cases {
        assert_eq!(
            rejected(&auth, &sign(claims.clone())).await,
            expected,
            "{claims}"
        );
    }
    // Optional claims may be left out; untyped ones take scalars and arrays of scalars.
    let identity = check(&auth, &sign(with(claims(), "tags", json!(["a", 1, true]))))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(identity.entity["attrs"]["tags"], json!(["a", 1, true]));
    assert!(identity.entity["attrs"].get("level").is_none());
}

// ---------------------------------------------------------------------------------------------
// API keys.

#[tokio::test]
async fn api_keys_map_to_their_principal() {
    let Setup { auth, .. } = setup();
    let expected = json!({
        "type": "Service", "id": "billing",
        "attrs": {"team": "payments", "tier": 2}, "parents": [],
    });
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", HeaderValue::from_static(API_KEY));
    let identity = auth.authenticate(&headers).await.unwrap().unwrap();
    assert_eq!(identity.entity, expected);
    assert!(identity
        .header("x-authz-auth")
        .is_some_and(|auth| auth == "api-key"));

    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("ApiKey {API_KEY}")).unwrap(),
    );
    assert_eq!(
        auth.authenticate(&headers).await.unwrap().unwrap().entity,
        expected
    );

    for wrong in [
        "ak_live_billing_012345678",
        "ak_live_billing_01234567890",
        "x",
    ] {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_str(wrong).unwrap());
        assert_eq!(
            auth.authenticate(&headers).await,
            Err(AuthError::UnknownApiKey)
        );
    }
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", HeaderValue::from_static(""));
    assert!(matches!(
        auth.authenticate(&headers).await,
        Err(AuthError::Malformed(_))
    ));

    // A key and a token at once is refused, not resolved by a preference.
    let token = token(
        Algorithm::ES256,
        Some("ec-1"),
        &keys().ec.encoding,
        &claims(),
    );
    let mut headers = bearer(&token);
    headers.insert("x-api-key", HeaderValue::from_static(API_KEY));
    assert_eq!(
        auth.authenticate(&headers).await,
        Err(AuthError::MultipleCredentials)
    );
}

#[test]
fn api_key_files_hold_digests_only_and_errors_name_the_entry() {
    let digest = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
    let store = ApiKeyStore::parse(&format!(
        "[[keys]]\nsha256 = \"{}\"\ntype = \"User\"\nid = \"u\"\n",
        digest.to_uppercase()
    ))
    .unwrap();
    assert_eq!(store.len(), 1);
    assert!(store.lookup("password").is_some());
    assert!(store.lookup("Password").is_none());

    let error = ApiKeyStore::parse("[[keys]]\nsha256 = \"abc\"\ntype = \"User\"\nid = \"u\"\n")
        .unwrap_err();
    assert!(error.contains("keys[0].sha256"), "{error}");
    let twice = format!(
        "[[keys]]\nsha256 = \"{digest}\"\ntype = \"User\"\nid = \"a\"\n\
         [[keys]]\nsha256 = \"{digest}\"\ntype = \"User\"\nid = \"b\"\n"
    );
    assert!(ApiKeyStore::parse(&twice).unwrap_err().contains("keys[1]"));
    let unknown = format!(
        "[[keys]]\nsha256 = \"{digest}\"\ntype = \"User\"\nid = \"a\"\nkey = \"password\"\n"
    );
    assert!(ApiKeyStore::parse(&unknown).is_err());
}

// ---------------------------------------------------------------------------------------------
// Configuration.

#[test]
fn configuration_errors_name_the_key() {
    let base = |extra: &str| {
        format!("[[jwt]]\nissuer = \"{ISSUER}\"\nprincipal_type = \"User\"\n{extra}\n")
    };
    let cases = [
        (
            base("audiences = []\nalgorithms = [\"RS256\"]\njwks_url = \"https://a.test/\""),
            "jwt[0].audiences",
        ),
        (
            base("audiences = [\"a\"]\nalgorithms = []\njwks_url = \"https://a.test/\""),
            "jwt[0].algorithms",
        ),
        (
            "[[jwt]]\nissuer = \"login-service\"\nprincipal_type = \"User\"\naudiences = [\"a\"]\n\
             algorithms = [\"RS256\"]\n"
                .to_string(),
            "give one key source",
        ),
        (
            "[[jwt]]\nissuer = \"http://idp.example.com\"\nprincipal_type = \"User\"\n\
             audiences = [\"a\"]\n"
                .to_string(),
            "OIDC discovery",
        ),
        (
            base("audiences = [\"a\"]\nalgorithms = [\"HS256\"]"),
            "jwt[0].algorithms",
        ),
        (
            base(&format!(
                "audiences = [\"a\"]\nalgorithms = [\"HS256\"]\nhmac_secret = \"{HMAC_SECRET}\"\n\
                 jwks_url = \"https://a.test/\""
            )),
            "only one key source",
        ),
        (
            base("audiences = [\"a\"]\nalgorithms = [\"HS256\"]\nhmac_secret = \"short\""),
            "jwt[0].hmac_secret",
        ),
        (
            base("audiences = [\"a\"]\nalgorithms = [\"RS256\"]\njwks_url = \"http://idp.example.com/jwks\""),
            "jwt[0].jwks_url",
        ),
        (
            base("audiences = [\"a\"]\nalgorithms = [\"RS256\"]\njwks_url = \"https://a.test/\"\njwks_stale_seconds = -1"),
            "jwt[0].jwks_stale_seconds",
        ),
        (
            base("audiences = [\"a\"]\nalgorithms = [\"RS256\"]\njwks_file = \"missing.json\""),
            "jwt[0].jwks_file",
        ),
        (
            base("audiences = [\"a\"]\nalgorithms = [\"RS256\"]\njwks_url = \"https://a.test/\"\nalgorithm = \"RS256\""),
            "unknown field `algorithm`",
        ),
        (
            base("audiences = [\"a\"]\nalgorithms = [\"RS256\"]\njwks_url = \"https://a.test/\"\nattributes = { roles = { claim = \"roles\", type = \"List\" } }"),
            "expected a claim name",
        ),
        (
            format!(
                "{}{}",
                base("audiences = [\"a\"]\nalgorithms = [\"RS256\"]\njwks_url = \"https://a.test/\""),
                base("audiences = [\"b\"]\nalgorithms = [\"ES256\"]\njwks_url = \"https://b.test/\""),
            ),
            "jwt[1].issuer",
        ),
    ];
    for (text, expected) in cases {
        let error = config_error(&text);
        assert!(error.contains(expected), "{text}\n=> {error}");
    }
    // Loopback http is allowed (for tests and sidecars), and the defaults are as documented.
    let config = parse_config(&base(
        "audiences = [\"a\"]\nalgorithms = [\"RS256\"]\njwks_url = \"http://127.0.0.1:9/jwks\"\n\
         attributes = { roles = { claim = \"roles\", type = \"Set<String>\" }, email = \"mail\" }",
    ));
    assert!(Authenticator::from_config(&config, Path::new(".")).is_ok());
    let issuer = &config.jwt[0];
    assert_eq!(issuer.leeway_seconds, 30);
    assert_eq!(issuer.id_claim, "sub");
    assert_eq!(config.token_cache_size, 10_000);
    let timing = issuer.jwks_timing("x").unwrap();
    assert_eq!(timing.refresh, Duration::from_secs(300));
    assert_eq!(timing.min_refetch, Duration::from_secs(30));
    assert_eq!(timing.stale_for, Duration::from_secs(3600));
    assert_eq!(
        issuer.attributes["roles"].claim_type,
        Some(ClaimType::SetOfString)
    );
    assert_eq!(issuer.attributes["email"].claim, "mail");
    assert!(!format!(
        "{:?}",
        parse_config(&format!(
            "[[jwt]]\nissuer = \"i\"\naudiences = [\"a\"]\nalgorithms = [\"HS256\"]\n\
         hmac_secret = \"{HMAC_SECRET}\"\nprincipal_type = \"User\"\n"
        ))
    )
    .contains(HMAC_SECRET));
}

// ---------------------------------------------------------------------------------------------
// JWKS parsing.

#[test]
fn malformed_jwks_never_panic_and_unusable_keys_are_skipped() {
    let keys = keys();
    for text in [
        &b""[..],
        b"null",
        b"[]",
        b"{}",
        b"{\"keys\": 5}",
        b"{\"keys\": {}}",
        b"\xff\xfe",
        b"{\"keys\": [",
    ] {
        assert!(
            parse_jwks(text).is_err(),
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
    let mut small_rsa = keys.rsa.jwk.clone();
    small_rsa["n"] = json!(URL_SAFE_NO_PAD.encode([0xc5u8; 128]));
    small_rsa["kid"] = json!("small");
    let entries = json!([
        1, "text", null, [], {},
        {"kty": "RSA"},
        {"kty": "RSA", "n": 5, "e": "AQAB"},
        {"kty": "RSA", "n": "!!!", "e": "AQAB"},
        small_rsa,
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "OKP", "crv": "X25519", "x": "AA"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AA"},
        {"kty": "PQ", "kid": "future"},
        with(keys.ec.jwk.clone(), "alg", json!("RS256")),
        with(keys.ec.jwk.clone(), "alg", json!("none")),
        with(keys.ec.jwk.clone(), "use", json!("enc")),
        with(keys.ec.jwk.clone(), "key_ops", json!(["encrypt"])),
        keys.rsa.jwk.clone(),
        keys.ec.jwk.clone(),
        with(keys.ed.jwk.clone(), "kid", json!("ec-1")),
    ]);
    let parsed = parse_jwks(json!({ "keys": entries }).to_string().as_bytes()).unwrap();
    assert_eq!(parsed.keys.len(), 2, "{:?}", parsed.skipped);
    assert_eq!(parsed.skipped.len(), 19, "{:?}", parsed.skipped);
    assert!(parsed
        .skipped
        .iter()
        .any(|reason| reason.contains("2048 bits")));
    assert!(parsed
        .skipped
        .iter()
        .any(|reason| reason.contains("same kid")));
    assert!(parsed.keys.select(Some("rsa-1")).is_some());
    assert!(parsed.keys.select(Some("small")).is_none());

    // Bytes from a generator never make the parser panic.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let base = jwks(&[&keys.rsa, &keys.ec]).into_bytes();
    for _ in 0..2000 {
        let mut text = base.clone();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state as usize) % text.len();
            text[at] = (state >> 32) as u8;
        }
        let _ = parse_jwks(&text);
    }
}

// ---------------------------------------------------------------------------------------------
// The token cache.

#[test]
fn the_token_cache_is_bounded_and_entries_expire() {
    let identity = Arc::new(Identity::new(
        principal_entity("User", "a", serde_json::Map::new()),
        "jwt",
        None,
    ));
    let entry = |expires_at| CachedToken {
        identity: Arc::clone(&identity),
        issuer: 0,
        generation: 0,
        expires_at,
    };
    let cache = TokenCache::new(100);
    for index in 0..1000u32 {
        cache.insert(sha256(&index.to_be_bytes()), entry(2000), 1000);
        assert!(cache.len() <= 100);
    }
    cache.insert(sha256(b"expiring"), entry(1500), 1000);
    assert!(cache.get(&sha256(b"expiring"), 1499).is_some());
    assert!(cache.get(&sha256(b"expiring"), 1500).is_none());
    // An already expired token is not kept, and a cache of size 0 keeps nothing.
    cache.insert(sha256(b"old"), entry(900), 1000);
    assert!(cache.get(&sha256(b"old"), 800).is_none());
    let off = TokenCache::new(0);
    off.insert(sha256(b"x"), entry(2000), 1000);
    assert!(off.is_empty());
}

#[tokio::test]
async fn verified_tokens_are_cached_until_they_expire() {
    let Setup { auth, .. } = setup();
    let key = &keys().ec.encoding;
    let first = token(Algorithm::ES256, Some("ec-1"), key, &claims());
    let identity = check(&auth, &first).await.unwrap();
    assert_eq!(auth.cached_tokens(), 1);
    assert_eq!(check(&auth, &first).await.unwrap(), identity);
    assert_eq!(auth.cached_tokens(), 1);
    // A token about to expire is cached only until its `exp`; one already past it (inside the
    // leeway) is verified every time and not cached.
    let late = token(
        Algorithm::ES256,
        Some("ec-1"),
        key,
        &with(claims(), "exp", json!(now() - 5)),
    );
    assert!(check(&auth, &late).await.is_ok());
    assert_eq!(auth.cached_tokens(), 1);
    // Rejected tokens are never cached.
    let bad = token(
        Algorithm::ES256,
        Some("ec-1"),
        key,
        &with(claims(), "aud", json!("x")),
    );
    assert!(check(&auth, &bad).await.is_err());
    assert!(check(&auth, &bad).await.is_err());
    assert_eq!(auth.cached_tokens(), 1);
}

// ---------------------------------------------------------------------------------------------
// Remote JWKS over a loopback HTTP server.

/// A JWKS endpoint on 127.0.0.1 that counts its requests; `None` as the body answers 503.
struct JwksServer {
    addr: SocketAddr,
    state: Arc<Mutex<(Option<String>, u64)>>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn start(body: Option<String>) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new((body, 0u64)));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| {
                        let state = Arc::clone(&state);
                        async move {
                            let mut state = state.lock().unwrap();
                            state.1 += 1;
                            let response = match &state.0 {
                                Some(body) => {
                                    hyper::Response::new(Full::new(Bytes::from(body.clone())))
                                }
                                None => {
                                    let mut response =
                                        hyper::Response::new(Full::new(Bytes::new()));
                                    *response.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                                    response
                                }
                            };
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        JwksServer { addr, state, task }
    }

    fn url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    fn hits(&self) -> u64 {
        self.state.lock().unwrap().1
    }

    fn serve(&self, body: Option<String>) {
        self.state.lock().unwrap().0 = body;
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An authenticator whose one issuer takes its keys from `url`, with timings in seconds.
fn remote(url: &str, refresh: f64, min_refetch: f64, stale: f64) -> Authenticator {
    let config = parse_config(&format!(
        r#"[[jwt]]
        issuer = "{ISSUER}"
        audiences = ["{AUDIENCE}"]
        algorithms = ["RS256", "ES256", "EdDSA"]
        jwks_url = "{url}"
        jwks_refresh_seconds = {refresh}
        jwks_min_refetch_seconds = {min_refetch}
        jwks_stale_seconds = {stale}
        jwks_timeout_seconds = 2
        principal_type = "User""#
    ));
    Authenticator::from_config(&config, Path::new(".")).unwrap()
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_its_kid_first_appears() {
    let keys = keys();
    let server = JwksServer::start(Some(jwks(&[&keys.ec]))).await;
    let auth = remote(&server.url(), 300.0, 0.2, 3600.0);
    let old = token(Algorithm::ES256, Some("ec-1"), &keys.ec.encoding, &claims());
    assert!(check(&auth, &old).await.unwrap().is_some());
    assert_eq!(server.hits(), 1);

    // The issuer rotates: a new key is published and tokens start naming it.
    server.serve(Some(jwks(&[&keys.ec, &keys.ed])));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let new = token(Algorithm::EdDSA, Some("ed-1"), &keys.ed.encoding, &claims());
    assert!(check(&auth, &new).await.unwrap().is_some());
    assert_eq!(server.hits(), 2);
    // Both keys are now known without further fetches.
    assert!(check(
        &auth,
        &token(
            Algorithm::ES256,
            Some("ec-1"),
            &keys.ec.encoding,
            &with(claims(), "sub", json!("bob"))
        )
    )
    .await
    .is_ok());
    assert_eq!(server.hits(), 2);

    // The old key is withdrawn: once a refresh sees that, even a cached token signed with it
    // is verified again and refused.
    server.serve(Some(jwks(&[&keys.ed])));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let unknown = token(Algorithm::ES256, Some("ec-9"), &keys.ec.encoding, &claims());
    assert_eq!(rejected(&auth, &unknown).await, AuthError::UnknownKid);
    assert_eq!(server.hits(), 3);
    assert_eq!(rejected(&auth, &old).await, AuthError::UnknownKid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_unknown_kids_fetches_at_most_once_per_interval() {
    let keys = keys();
    let server = JwksServer::start(Some(jwks(&[&keys.ec]))).await;
    let auth = Arc::new(remote(&server.url(), 300.0, 2.0, 3600.0));
    auth.refresh_keys().await;
    assert_eq!(server.hits(), 1);

    let burst = |round: usize| {
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..200 {
            let auth = Arc::clone(&auth);
            let token = token(
                Algorithm::ES256,
                Some(&format!("random-{round}-{index}")),
                &keys.ec.encoding,
                &claims(),
            );
            tasks.spawn(async move { check(&auth, &token).await });
        }
        tasks
    };
    // Within the interval of the first fetch: no fetch at all.
    let results = burst(0).join_all().await;
    assert!(results
        .iter()
        .all(|result| *result == Err(AuthError::UnknownKid)));
    assert_eq!(server.hits(), 1);
    // After the interval: one fetch for the whole burst, then none again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let results = burst(1).join_all().await;
    assert!(results
        .iter()
        .all(|result| *result == Err(AuthError::UnknownKid)));
    assert_eq!(server.hits(), 2);
    let results = burst(2).join_all().await;
    assert!(results
        .iter()
        .all(|result| *result == Err(AuthError::UnknownKid)));
    assert_eq!(server.hits(), 2);
    assert_eq!(auth.jwks_fetches(ISSUER), Some(2));
}

#[tokio::test]
async fn a_failing_endpoint_serves_stale_keys_within_the_bound_then_fails_closed() {
    let keys = keys();
    let server = JwksServer::start(Some(jwks(&[&keys.ec]))).await;
    // Refresh every 0.2 s, stale bound 3 s.
    let auth = remote(&server.url(), 0.2, 0.1, 3.0);
    let cached = token(Algorithm::ES256, Some("ec-1"), &keys.ec.encoding, &claims());
    assert!(check(&auth, &cached).await.is_ok());
    let fetched = std::time::Instant::now();

    // The endpoint fails (503, then garbage): the keys last fetched are still served.
    server.serve(None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh = token(
        Algorithm::ES256,
        Some("ec-1"),
        &keys.ec.encoding,
        &with(claims(), "sub", json!("bob")),
    );
    assert!(check(&auth, &fresh).await.is_ok());
    server.serve(Some("{\"keys\": \"garbage\"".to_string()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(check(&auth, &cached).await.is_ok());
    let hits_while_down = server.hits();
    assert!(
        hits_while_down >= 2,
        "refreshes were attempted: {hits_while_down}"
    );

    // Past the bound every token is refused, the cached one included.
    let elapsed = fetched.elapsed();
    tokio::time::sleep(Duration::from_millis(3300).saturating_sub(elapsed)).await;
    assert_eq!(rejected(&auth, &cached).await, AuthError::KeysUnavailable);
    assert_eq!(rejected(&auth, &fresh).await, AuthError::KeysUnavailable);
    assert_eq!(AuthError::KeysUnavailable.client_message(), "invalid token");

    // When the endpoint recovers, the keys come back.
    server.serve(Some(jwks(&[&keys.ec])));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(check(&auth, &cached).await.is_ok());
}

#[tokio::test]
async fn an_endpoint_never_reached_fails_closed() {
    let server = JwksServer::start(None).await;
    let auth = remote(&server.url(), 300.0, 30.0, 3600.0);
    let token = token(
        Algorithm::ES256,
        Some("ec-1"),
        &keys().ec.encoding,
        &claims(),
    );
    assert_eq!(rejected(&auth, &token).await, AuthError::KeysUnavailable);
    assert_eq!(rejected(&auth, &token).await, AuthError::KeysUnavailable);
    // The second token did not cause a second fetch within the refetch interval.
    assert_eq!(server.hits(), 1);

    // Nothing listening at all: refused connections, same answer.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let auth = remote(&format!("http://{closed}/jwks.json"), 300.0, 30.0, 3600.0);
    assert_eq!(rejected(&auth, &token).await, AuthError::KeysUnavailable);
}

// ---------------------------------------------------------------------------------------------
// OIDC discovery.

#[test]
fn an_issuer_url_alone_is_found_by_discovery() {
    let config = parse_config(
        "[[jwt]]\nissuer = \"https://login.example.com/realm/\"\naudiences = [\"a\"]\n\
         principal_type = \"User\"\n",
    );
    let issuer = &config.jwt[0];
    issuer.validate("identity.jwt[0]").unwrap();
    assert!(matches!(
        issuer.key_source("identity.jwt[0]").unwrap(),
        super::config::KeySource::Discovery(url)
            if url == "https://login.example.com/realm/.well-known/openid-configuration"
    ));
}

#[test]
fn a_discovery_document_must_name_the_issuer_its_keys_and_an_asymmetric_algorithm() {
    let issuer = "https://login.example.com";
    let document = |issuer: &str, jwks: &str, algorithms: &str| {
        format!(
            r#"{{"issuer": "{issuer}", "jwks_uri": "{jwks}", "id_token_signing_alg_values_supported": {algorithms}}}"#
        )
    };
    let found = jwks::parse_discovery(
        document(
            issuer,
            "https://login.example.com/keys",
            r#"["RS256", "HS256", "none", "ES256"]"#,
        )
        .as_bytes(),
        issuer,
    )
    .unwrap();
    assert_eq!(found.jwks_uri.to_string(), "https://login.example.com/keys");
    // HMAC and `none` are never taken from a discovery document.
    assert_eq!(found.algorithms, [Algorithm::RS256, Algorithm::ES256]);

    let refused = [
        (
            document(
                "https://evil.example.com",
                "https://login.example.com/keys",
                r#"["RS256"]"#,
            ),
            "names the issuer `https://evil.example.com`",
        ),
        (
            document(issuer, "http://login.example.com/keys", r#"["RS256"]"#),
            "jwks_uri",
        ),
        (
            document(issuer, "https://login.example.com/keys", r#"["HS256"]"#),
            "no asymmetric signing algorithm",
        ),
        (
            r#"{"jwks_uri": "https://login.example.com/keys"}"#.to_string(),
            "no `issuer`",
        ),
        ("not json".to_string(), "not JSON"),
    ];
    for (text, expected) in refused {
        let error = jwks::parse_discovery(text.as_bytes(), issuer).unwrap_err();
        assert!(error.contains(expected), "{text}: {error}");
    }
}
