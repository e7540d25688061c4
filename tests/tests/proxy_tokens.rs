//! `authz proxy` end to end against tokens: the four key families (RS256, ES256, EdDSA, HS256)
//! verify and reach the upstream with the proxy's identity headers; every attack on the token
//! (missing or malformed, `alg: none`, HS/RS key confusion, expired, not yet valid, wrong `iss`
//! or `aud`, unknown `kid`, `jku`/`jwk`/`x5u` injection, forged signatures) is answered 401 with a
//! fixed sentence, and the recording upstream never sees the request.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod proxy_support;
mod serve_support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use proxy_support::*;
use serde_json::json;

/// Each token is refused with 401 and nothing reaches the upstream; then a good token passes,
/// so the refusals were not a broken setup.
fn refused(proxy: &Proxy, cases: &[(&str, String)]) {
    for (what, token) in cases {
        let response = proxy.get_as(token, "/docs/d1");
        assert_unauthorized(&response, what);
        assert_clean_error_body(&response, what);
    }
    proxy.upstream.assert_untouched("refused tokens");
    let control = proxy.get_as(&user_token("alice"), "/docs/d1");
    assert_eq!(control.status, 200, "{}", control.text());
    assert_eq!(proxy.upstream.only().target, "/docs/d1");
}

#[test]
fn every_key_family_verifies_and_the_upstream_sees_the_proxy_identity() {
    let proxy = Proxy::standard();
    let keys = keys();
    let tokens = [
        (
            RS_ISSUER,
            token(
                Algorithm::RS256,
                Some("rs-1"),
                &keys.rsa.encoding,
                &claims(RS_ISSUER, "alice"),
            ),
        ),
        (
            ES_ISSUER,
            token(
                Algorithm::ES256,
                Some("es-1"),
                &keys.ec.encoding,
                &claims(ES_ISSUER, "alice"),
            ),
        ),
        (
            ED_ISSUER,
            token(
                Algorithm::EdDSA,
                Some("ed-1"),
                &keys.ed.encoding,
                &claims(ED_ISSUER, "alice"),
            ),
        ),
        (
            HS_ISSUER,
            token(
                Algorithm::HS256,
                None,
                &keys.hmac,
                &claims(HS_ISSUER, "alice"),
            ),
        ),
    ];
    for (issuer, token) in &tokens {
        let response = proxy.get_as(token, "/docs/d1?x=1");
        assert_eq!(response.status, 200, "{issuer}: {}", response.text());
        assert_eq!(response.json()["upstream"], "ok");
        // The same token again comes from the verified-token cache, with the same answer.
        assert_eq!(proxy.get_as(token, "/docs/d1?x=1").status, 200);
    }
    let seen = proxy.upstream.seen();
    assert_eq!(seen.len(), 8);
    for (request, (issuer, _)) in seen.iter().step_by(2).zip(&tokens) {
        assert_eq!(request.method, "GET");
        assert_eq!(request.target, "/docs/d1?x=1");
        assert_eq!(
            request.all("x-authz-principal"),
            vec![principal_header("User", "alice")]
        );
        assert_eq!(request.header("x-authz-issuer"), Some(*issuer));
        assert_eq!(request.header("x-authz-auth"), Some("jwt"));
    }

    // Bodies reach the upstream intact, and an owner of another document is refused.
    let authorization = bearer(&user_token("alice"));
    let body = br#"{"title":"notes"}"#;
    let response = proxy.client().request(
        "POST",
        "/docs/d1",
        &[("Authorization", &authorization)],
        body,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let last = proxy.upstream.seen().pop().unwrap();
    assert_eq!(last.method, "POST");
    assert_eq!(last.body, body);
    let denied = proxy.get_as(&user_token("alice"), "/docs/d2");
    assert_eq!(denied.status, 403);
    assert_eq!(proxy.upstream.count(), 9);
}

#[test]
fn missing_and_malformed_credentials_are_refused() {
    let proxy = Proxy::standard();
    let good = user_token("alice");
    let requests: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no credentials", vec![]),
        (
            "empty bearer",
            vec![("Authorization", "Bearer ".to_string())],
        ),
        (
            "bearer word only",
            vec![("Authorization", "Bearer".to_string())],
        ),
        ("not a JWT", vec![("Authorization", bearer("not-a-token"))]),
        (
            "two parts",
            vec![("Authorization", bearer("eyJhbGciOiJFUzI1NiJ9.e30"))],
        ),
        (
            "four parts",
            vec![("Authorization", bearer(&format!("{good}.AAAA")))],
        ),
        (
            "garbage base64",
            vec![("Authorization", bearer("!!!.???.***"))],
        ),
        (
            "header is not JSON",
            vec![(
                "Authorization",
                bearer(&format!(
                    "{}.{}.AAAA",
                    URL_SAFE_NO_PAD.encode("not json"),
                    URL_SAFE_NO_PAD.encode("{}")
                )),
            )],
        ),
        (
            "basic scheme",
            vec![("Authorization", "Basic YWxpY2U6cHc=".to_string())],
        ),
        (
            "token without scheme",
            vec![("Authorization", good.clone())],
        ),
        (
            "two Authorization headers",
            vec![
                ("Authorization", bearer(&good)),
                ("Authorization", bearer(&good)),
            ],
        ),
        (
            "oversize token",
            vec![("Authorization", bearer(&"a".repeat(20_000)))],
        ),
    ];
    for (what, headers) in &requests {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let response = proxy.request("GET", "/docs/d1", &headers);
        assert_unauthorized(&response, what);
        assert_clean_error_body(&response, what);
    }
    proxy.upstream.assert_untouched("malformed credentials");
    assert_eq!(proxy.get_as(&good, "/docs/d1").status, 200);
    assert_eq!(proxy.upstream.count(), 1);
}

#[test]
fn alg_none_is_refused_in_every_spelling() {
    let proxy = Proxy::standard();
    let mut cases = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        for issuer in [RS_ISSUER, ES_ISSUER, HS_ISSUER] {
            let header = json!({ "alg": alg, "typ": "JWT" });
            let claims = claims(issuer, "root");
            cases.push((
                "alg none, empty signature",
                unsigned_token(&header, &claims, ""),
            ));
            cases.push((
                "alg none, some signature",
                unsigned_token(&header, &claims, "c2ln"),
            ));
        }
    }
    // `none` with the issuer's own kid changes nothing.
    cases.push((
        "alg none with kid",
        unsigned_token(
            &json!({ "alg": "none", "kid": "es-1" }),
            &claims(ES_ISSUER, "root"),
            "",
        ),
    ));
    refused(&proxy, &cases);
}

#[test]
fn hs_rs_key_confusion_is_refused() {
    let proxy = Proxy::standard();
    let keys = keys();
    let public_pem = keys.rsa.public_pem.clone().unwrap();
    let n = keys.rsa.jwk["n"].as_str().unwrap().to_string();
    let mut cases = Vec::new();
    for (secret, label) in [
        (
            public_pem.as_bytes().to_vec(),
            "HS256 signed with the RSA public key PEM",
        ),
        (n.as_bytes().to_vec(), "HS256 signed with the JWK's modulus"),
        (
            keys.rsa.jwk.to_string().into_bytes(),
            "HS256 signed with the JWK",
        ),
    ] {
        let key = secret_key(&secret);
        for algorithm in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            cases.push((
                label,
                token(algorithm, Some("rs-1"), &key, &claims(RS_ISSUER, "root")),
            ));
            cases.push((
                label,
                token(algorithm, None, &key, &claims(RS_ISSUER, "root")),
            ));
        }
    }
    // The other way round: an RSA-signed token presented to the HMAC issuer.
    cases.push((
        "RS256 token naming the HMAC issuer",
        token(
            Algorithm::RS256,
            Some("rs-1"),
            &keys.rsa.encoding,
            &claims(HS_ISSUER, "root"),
        ),
    ));
    // The HMAC issuer allows HS256 only: the right secret with another HS algorithm fails.
    cases.push((
        "HS512 with the right secret",
        token(
            Algorithm::HS512,
            None,
            &keys.hmac,
            &claims(HS_ISSUER, "root"),
        ),
    ));
    // An algorithm of the right family that the issuer does not list (PS256 for RS256 only).
    cases.push((
        "PS256 with the issuer's RSA key",
        token(
            Algorithm::PS256,
            Some("rs-1"),
            &keys.rsa.encoding,
            &claims(RS_ISSUER, "root"),
        ),
    ));
    refused(&proxy, &cases);
}

#[test]
fn expired_tokens_are_refused() {
    let proxy = Proxy::standard();
    let keys = keys();
    let sign = |claims: serde_json::Value| {
        token(Algorithm::ES256, Some("es-1"), &keys.ec.encoding, &claims)
    };
    let base = claims(ES_ISSUER, "alice");
    let expired = sign(with(base.clone(), "exp", json!(now() - 120)));
    let response = proxy.get_as(&expired, "/docs/d1");
    assert_unauthorized(&response, "expired");
    assert_eq!(response.json()["error"]["message"], "the token has expired");
    let cases = vec![
        ("expired two minutes ago", expired),
        (
            "expired long ago",
            sign(with(base.clone(), "exp", json!(1_000_000))),
        ),
        (
            "expired HS256",
            token(
                Algorithm::HS256,
                None,
                &keys.hmac,
                &with(claims(HS_ISSUER, "alice"), "exp", json!(now() - 3600)),
            ),
        ),
        ("no exp", sign(without(base.clone(), "exp"))),
        (
            "exp as a string",
            sign(with(base.clone(), "exp", json!((now() + 600).to_string()))),
        ),
        ("exp as null", sign(with(base, "exp", json!(null)))),
    ];
    refused(&proxy, &cases);
}

#[test]
fn tokens_not_yet_valid_are_refused() {
    let proxy = Proxy::standard();
    let keys = keys();
    let sign = |claims: serde_json::Value| {
        token(Algorithm::EdDSA, Some("ed-1"), &keys.ed.encoding, &claims)
    };
    let base = claims(ED_ISSUER, "alice");
    let early = sign(with(base.clone(), "nbf", json!(now() + 600)));
    let response = proxy.get_as(&early, "/docs/d1");
    assert_unauthorized(&response, "nbf");
    assert_eq!(
        response.json()["error"]["message"],
        "the token is not valid yet"
    );
    let cases = vec![
        ("nbf in ten minutes", early),
        (
            "nbf tomorrow",
            sign(with(base.clone(), "nbf", json!(now() + 86_400))),
        ),
        ("nbf as a string", sign(with(base, "nbf", json!("0")))),
    ];
    refused(&proxy, &cases);
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let proxy = Proxy::standard();
    let keys = keys();
    let es = |claims: serde_json::Value| {
        token(Algorithm::ES256, Some("es-1"), &keys.ec.encoding, &claims)
    };
    let base = claims(ES_ISSUER, "alice");
    let cases = vec![
        (
            "unknown issuer",
            es(with(base.clone(), "iss", json!("https://evil.test"))),
        ),
        (
            "issuer with a trailing slash",
            es(with(base.clone(), "iss", json!("https://es.test/"))),
        ),
        (
            "issuer in another case",
            es(with(base.clone(), "iss", json!("https://ES.test"))),
        ),
        ("no issuer", es(without(base.clone(), "iss"))),
        (
            "issuer as an array",
            es(with(base.clone(), "iss", json!([ES_ISSUER]))),
        ),
        // Signed by the ES issuer's key but naming the RS issuer: that issuer's keys decide.
        (
            "another configured issuer",
            es(with(base.clone(), "iss", json!(RS_ISSUER))),
        ),
        (
            "wrong audience",
            es(with(base.clone(), "aud", json!("other-api"))),
        ),
        (
            "audience list without ours",
            es(with(base.clone(), "aud", json!(["a", "b"]))),
        ),
        (
            "empty audience list",
            es(with(base.clone(), "aud", json!([]))),
        ),
        ("no audience", es(without(base.clone(), "aud"))),
        (
            "the service audience",
            es(with(base, "aud", json!(MESH_AUDIENCE))),
        ),
    ];
    refused(&proxy, &cases);
    // An audience list that includes ours is accepted.
    let listed = es(with(
        claims(ES_ISSUER, "alice"),
        "aud",
        json!(["x", AUDIENCE]),
    ));
    assert_eq!(proxy.get_as(&listed, "/docs/d1").status, 200);
}

#[test]
fn unknown_kid_is_refused() {
    let proxy = Proxy::standard();
    let keys = keys();
    let claims = claims(ES_ISSUER, "root");
    let cases = vec![
        (
            "unknown kid, attacker key",
            token(
                Algorithm::ES256,
                Some("es-2"),
                &keys.attacker_ec.encoding,
                &claims,
            ),
        ),
        // The issuer's own key under a kid it never published.
        (
            "unknown kid, issuer key",
            token(Algorithm::ES256, Some("es-2"), &keys.ec.encoding, &claims),
        ),
        (
            "kid of another issuer",
            token(Algorithm::ES256, Some("rs-1"), &keys.ec.encoding, &claims),
        ),
        (
            "path-like kid",
            token(
                Algorithm::ES256,
                Some("../../es.jwks"),
                &keys.ec.encoding,
                &claims,
            ),
        ),
        (
            "empty kid",
            token(Algorithm::ES256, Some(""), &keys.ec.encoding, &claims),
        ),
        (
            "kid as a number",
            raw_token(
                &json!({"alg": "ES256", "kid": 1}),
                &claims,
                &keys.ec.encoding,
                Algorithm::ES256,
            ),
        ),
    ];
    refused(&proxy, &cases);
}

#[test]
fn jku_jwk_and_x5u_headers_are_ignored() {
    let proxy = Proxy::standard();
    let keys = keys();
    // The attacker serves its own key set and points the token at it.
    let evil = JwksServer::start(Some(jwks(&[&keys.attacker_ec])));
    let claims = claims(ES_ISSUER, "root");
    let attacker = &keys.attacker_ec;
    let sign = |header: serde_json::Value| {
        raw_token(&header, &claims, &attacker.encoding, Algorithm::ES256)
    };
    let cases = vec![
        (
            "jku",
            sign(json!({"alg": "ES256", "kid": "es-1", "jku": evil.url()})),
        ),
        (
            "jku without kid",
            sign(json!({"alg": "ES256", "jku": evil.url()})),
        ),
        (
            "jwk",
            sign(json!({"alg": "ES256", "kid": "es-1", "jwk": attacker.jwk})),
        ),
        (
            "jwk without kid",
            sign(json!({"alg": "ES256", "jwk": attacker.jwk})),
        ),
        (
            "x5u",
            sign(json!({"alg": "ES256", "kid": "es-1", "x5u": evil.url()})),
        ),
        (
            "jku, jwk and x5u",
            sign(
                json!({"alg": "ES256", "kid": "es-1", "jku": evil.url(), "jwk": attacker.jwk, "x5u": evil.url()}),
            ),
        ),
        // An embedded HMAC key: sign with a secret the attacker chose.
        (
            "jwk oct",
            raw_token(
                &json!({"alg": "HS256", "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode("attacker-chosen-secret-0123456789")}}),
                &claims,
                &secret_key(b"attacker-chosen-secret-0123456789"),
                Algorithm::HS256,
            ),
        ),
    ];
    refused(&proxy, &cases);
    assert_eq!(
        evil.request_count(),
        0,
        "the proxy fetched the attacker's key set"
    );
    // With the issuer's own key, an ignored `jku` does not get in the way.
    let good = raw_token(
        &json!({"alg": "ES256", "kid": "es-1", "jku": evil.url()}),
        &claims_for_alice(),
        &keys.ec.encoding,
        Algorithm::ES256,
    );
    assert_eq!(proxy.get_as(&good, "/docs/d1").status, 200);
    assert_eq!(evil.request_count(), 0);
}

fn claims_for_alice() -> serde_json::Value {
    claims(ES_ISSUER, "alice")
}

#[test]
fn forged_signatures_are_refused() {
    let proxy = Proxy::standard();
    let keys = keys();
    let genuine = user_token("alice");
    let parts: Vec<&str> = genuine.split('.').collect();
    // The payload changed to root, keeping alice's signature.
    let root_payload = URL_SAFE_NO_PAD.encode(claims(ES_ISSUER, "root").to_string());
    let swapped = format!("{}.{root_payload}.{}", parts[0], parts[2]);
    // One bit of the signature flipped.
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[5] ^= 1;
    let flipped = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(&signature)
    );
    let truncated = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..20]);
    let stripped = format!("{}.{}.", parts[0], parts[1]);
    let claims_root = claims(ES_ISSUER, "root");
    let cases = vec![
        ("payload swapped", swapped),
        ("signature bit flipped", flipped),
        ("signature truncated", truncated),
        ("signature removed", stripped),
        (
            "attacker EC key with the issuer's kid",
            token(
                Algorithm::ES256,
                Some("es-1"),
                &keys.attacker_ec.encoding,
                &claims_root,
            ),
        ),
        (
            "attacker RSA key with the issuer's kid",
            token(
                Algorithm::RS256,
                Some("rs-1"),
                &keys.attacker_rsa.encoding,
                &claims(RS_ISSUER, "root"),
            ),
        ),
        (
            "attacker Ed25519 key",
            token(
                Algorithm::EdDSA,
                Some("ed-1"),
                &ed_key("ed-1").encoding,
                &claims(ED_ISSUER, "root"),
            ),
        ),
        (
            "wrong HMAC secret",
            token(
                Algorithm::HS256,
                None,
                &secret_key(&[7u8; 64]),
                &claims(HS_ISSUER, "root"),
            ),
        ),
    ];
    refused(&proxy, &cases);
}
