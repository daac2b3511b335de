//! Classes for authentication, sent whether auth is on or off: garbage `Authorization`
//! headers, invalid base64, Basic without a colon, floods of made-up users (each from its own
//! loopback address, so that they reach the password check rather than the limiter), Bearer
//! garbage, `alg: none`, tokens signed with another key or expired, tokens used beyond their
//! scope, and the token endpoint with garbage parameters and form bodies. With auth on, none
//! of these may get in; tokens the endpoint issues are decoded and must grant nothing
//! invalid, and nothing at all to anonymous callers.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use wharf::auth::token::{AccessEntry, SigningKey, TokenUse, claims};

use super::{Case, Class, ascii, bytes, class, one_of};
use crate::stress::classes::names::valid_name;
use crate::stress::http::{Req, Resp};

pub fn classes() -> Vec<Class> {
    vec![
        class!("auth_garbage_header", 4, garbage_header),
        class!("auth_made_up_users", 3, made_up_users),
        class!("auth_bearer_forged", 4, bearer_forged),
        class!("auth_token_beyond_scope", 2, beyond_scope),
        class!("token_endpoint_get", 4, token_get),
        class!("token_endpoint_post", 3, token_post),
    ]
}

fn basic(text: &[u8]) -> Vec<u8> {
    [b"Basic ".as_slice(), STANDARD.encode(text).as_bytes()].concat()
}

/// A protected request carrying `authorization` (and no valid credentials).
fn protected(cx: &mut Case<'_>, authorization: Vec<u8>) -> Req {
    let repo = cx.fx.pool.repo(&mut cx.rng).to_string();
    let target = match cx.rng.u8(..4) {
        0 => "/v2/".to_string(),
        1 => "/v2/_catalog".into(),
        2 => format!("/v2/{repo}/tags/list"),
        _ => format!("/v2/{repo}/manifests/v1"),
    };
    Req::new("GET", target)
        .no_auth()
        .header("authorization", authorization)
}

/// With auth on, a request with bad credentials must be answered 401 (429 when the limiter
/// stepped in); with auth off they are ignored.
fn shut_out(cx: &Case<'_>, req: &Req, resp: &Resp) {
    // The HTTP layer refuses header values with control bytes before Wharf sees them.
    let http_layer = resp.status == 400 && resp.header("x-request-id").is_none();
    if cx.auth_on() && !http_layer {
        let ok = resp.status == 401 || resp.status == 429;
        cx.expect(req, resp, ok, "401 (or 429) for bad credentials");
    }
}

async fn garbage_header(cx: &mut Case<'_>) {
    let value: Vec<u8> = match cx.rng.u8(..14) {
        0 => Vec::new(),
        1 => b"Basic".to_vec(),
        2 => b"Basic ".to_vec(),
        3 => b"Bearer".to_vec(),
        4 => b"Bearer ".to_vec(),
        5 => format!("Digest username=\"{}\"", ascii(&mut cx.rng, 8..=8)).into_bytes(),
        6 => ascii(&mut cx.rng, 1..200).into_bytes(),
        7 => format!("Basic {}", "A".repeat(cx.rng.usize(4000..8000))).into_bytes(),
        8 => b"Basic !!!not*base64!!!".to_vec(),
        9 => basic(b"nocolon"),
        10 => basic(b":"),
        11 => basic(&[b":".as_slice(), ascii(&mut cx.rng, 10..=10).as_bytes()].concat()),
        12 => basic(&[&bytes(&mut cx.rng, 6..=6)[..], b":x"].concat()),
        _ => [b"Basic ".as_slice(), &bytes(&mut cx.rng, 20..=20)].concat(),
    };
    let req = protected(cx, value);
    let mut conn = cx.spoofed_conn();
    if let Some(resp) = cx.send_on(&mut conn, &req).await {
        shut_out(cx, &req, &resp);
    }
}

/// A plausible user name that does not exist.
fn made_up_user(rng: &mut fastrand::Rng) -> String {
    let len = rng.usize(3..20);
    (0..len).map(|_| rng.alphanumeric()).collect()
}

async fn made_up_users(cx: &mut Case<'_>) {
    let count = cx.rng.usize(8..32);
    let mut requests = Vec::new();
    for _ in 0..count {
        let user = made_up_user(&mut cx.rng);
        let password = ascii(&mut cx.rng, 16..=16);
        let req = protected(cx, basic(format!("{user}:{password}").as_bytes()));
        requests.push((req, cx.spoofed_conn()));
    }
    let cx = &*cx;
    let answers =
        futures::future::join_all(requests.into_iter().map(|(req, mut conn)| async move {
            let resp = cx.send_on(&mut conn, &req).await;
            (req, resp)
        }))
        .await;
    for (req, resp) in answers {
        if let Some(resp) = resp {
            shut_out(cx, &req, &resp);
        }
    }
}

/// The `kid` of the server's key, from a token it issues (auth on only).
async fn server_kid(cx: &mut Case<'_>) -> Option<String> {
    let req = Req::new("GET", "/token?service=wharf");
    let resp = cx.send(&req).await?;
    let token = resp.json()?["token"].as_str()?.to_string();
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?;
    let header: Value = serde_json::from_slice(&header).ok()?;
    Some(header["kid"].as_str()?.to_string())
}

fn segment(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

async fn bearer_forged(cx: &mut Case<'_>) {
    let kid = if cx.auth_on() {
        server_kid(cx).await.unwrap_or_default()
    } else {
        "0123456789abcdef".into()
    };
    let repo = cx.fx.pool.repo(&mut cx.rng).to_string();
    let access = vec![AccessEntry {
        kind: "repository".into(),
        name: repo,
        actions: vec!["*".into()],
    }];
    let lifetime = std::time::Duration::from_secs(300);
    let mut claim = claims(
        "wharf",
        "wharf",
        "admin",
        TokenUse::Access,
        lifetime,
        access,
    );
    let other = SigningKey::from_pkcs8(&SigningKey::generate()).unwrap();
    let variant = cx.rng.u8(..8);
    if variant == 3 {
        claim.exp = claim.iat - 3600;
        claim.nbf = claim.iat - 7200;
    }
    let signed = other.sign(&claim);
    let parts: Vec<&str> = signed.split('.').collect();
    let with_header =
        |header: Value, signature: &str| format!("{}.{}.{signature}", segment(&header), parts[1]);
    let token = match variant {
        0 => with_header(json!({"alg": "none", "typ": "JWT"}), ""),
        1 => with_header(json!({"alg": "none", "typ": "JWT", "kid": kid}), ""),
        2 => with_header(json!({"alg": "HS256", "typ": "JWT", "kid": kid}), parts[2]),
        // Another key's signature under the server's key id (expired, for variant 3).
        3 | 4 => with_header(json!({"alg": "ES256", "typ": "JWT", "kid": kid}), parts[2]),
        5 => signed.clone(),
        6 => format!("{}.{}", parts[0], parts[1]),
        _ => ascii(&mut cx.rng, 1..300),
    };
    let req = protected(cx, format!("Bearer {token}").into_bytes());
    if let Some(resp) = cx.send(&req).await {
        shut_out(cx, &req, &resp);
    }
}

/// A real token for pulling one repository, used to push to it, to read another, or to
/// list the catalog; and a refresh token used as a Bearer token.
async fn beyond_scope(cx: &mut Case<'_>) {
    if !cx.auth_on() {
        return;
    }
    let repos = cx.fx.pool.repos.clone();
    let offline = "&offline_token=true";
    let scope = format!("repository:{}:pull", repos[0]);
    let req = Req::new(
        "GET",
        format!("/token?service=wharf&scope={scope}{offline}"),
    );
    let Some(resp) = cx.send(&req).await else {
        return;
    };
    cx.expect(&req, &resp, resp.status == 200, "200");
    let Some(body) = resp.json() else { return };
    let (Some(token), refresh) = (body["token"].as_str(), body["refresh_token"].as_str()) else {
        return;
    };
    let (use_refresh, token) = match (cx.rng.u8(..4), refresh) {
        (0, Some(refresh)) => (true, refresh.to_string()),
        _ => (false, token.to_string()),
    };
    let manifest = cx.fx.pool.manifest.bytes.clone();
    let req = match cx.rng.u8(..3) {
        0 => Req::new("PUT", format!("/v2/{}/manifests/fuzz-scope", repos[0]))
            .header("content-type", crate::common::OCI_MANIFEST)
            .body(manifest),
        1 => Req::new("GET", format!("/v2/{}/manifests/v1", repos[1])),
        _ if use_refresh => Req::new("GET", format!("/v2/{}/manifests/v1", repos[0])),
        _ => Req::new("GET", "/v2/_catalog"),
    };
    let req = req
        .no_auth()
        .header("authorization", format!("Bearer {token}"));
    if let Some(resp) = cx.send(&req).await {
        let ok = resp.status == 401 || resp.status == 403;
        cx.expect(&req, &resp, ok, "401 or 403 beyond the token's scope");
    }
}

fn garbage_param(cx: &mut Case<'_>) -> String {
    let pool = cx.fx.pool.repo(&mut cx.rng).to_string();
    let long = "r".repeat(cx.rng.usize(1000..6000));
    let many: Vec<String> = (0..17).map(|i| format!("repository:r{i}:pull")).collect();
    let many = many.join("%20");
    one_of(
        &mut cx.rng,
        &[
            "",
            "%00",
            "%ff%fe",
            "repository",
            "repository:",
            "repository::pull",
            "repository:UPPER:pull",
            "repository:a/../b:pull",
            "repository:a%2Fb:pull",
            "registry:catalog:*",
            "registry:other:*",
            "repository:x:pull,push,delete,*,evil",
            format!("repository:{pool}:pull,push").as_str(),
            format!("repository:{long}:pull").as_str(),
            many.as_str(),
            "wharf",
            "other-service",
        ],
    )
    .to_string()
}

/// A token the endpoint issued: it may only name valid resources, and anonymous tokens
/// (no `sub`) may carry no actions, since no pool repository is public.
fn check_token(cx: &Case<'_>, req: &Req, resp: &Resp) {
    let Some(token) = resp
        .json()
        .and_then(|b| b["token"].as_str().map(str::to_string))
    else {
        return cx.expect(req, resp, false, "a token in the 200's body");
    };
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
        .and_then(|c| serde_json::from_slice::<Value>(&c).ok())
        .unwrap_or_default();
    let anonymous = claims["sub"].as_str().is_none_or(str::is_empty);
    for entry in claims["access"].as_array().into_iter().flatten() {
        let name = entry["name"].as_str().unwrap_or_default();
        let valid = match entry["type"].as_str() {
            Some("repository") => valid_name(name),
            Some("registry") => name == "catalog",
            _ => false,
        };
        let granted = entry["actions"].as_array().is_some_and(|a| !a.is_empty());
        cx.expect(req, resp, valid, "tokens naming valid resources only");
        cx.expect(
            req,
            resp,
            !(anonymous && granted),
            "nothing granted to anonymous callers",
        );
    }
}

async fn token_get(cx: &mut Case<'_>) {
    let mut target = String::from("/token");
    let mut sep = '?';
    for key in [
        "scope",
        "service",
        "account",
        "scope",
        "offline_token",
        "client_id",
    ] {
        if cx.rng.bool() {
            let value = garbage_param(cx);
            target.push_str(&format!("{sep}{key}={value}"));
            sep = '&';
        }
    }
    let credentials = cx.rng.u8(..3);
    let mut req = Req::new("GET", target);
    if credentials == 1 {
        let user = made_up_user(&mut cx.rng);
        req = req
            .no_auth()
            .header("authorization", basic(format!("{user}:pw").as_bytes()));
    } else if credentials == 2 {
        req = req.no_auth();
    }
    let mut conn = cx.spoofed_conn();
    let Some(resp) = cx.send_on(&mut conn, &req).await else {
        return;
    };
    if !cx.auth_on() {
        return cx.expect(&req, &resp, resp.status == 404, "404: auth is off");
    }
    match resp.status {
        200 => check_token(cx, &req, &resp),
        400 | 401 | 429 => {}
        _ => cx.expect(&req, &resp, false, "200, 400, 401 or 429"),
    }
    if credentials == 1 {
        cx.expect(
            &req,
            &resp,
            resp.status != 200,
            "no token for a made-up user",
        );
    }
}

async fn token_post(cx: &mut Case<'_>) {
    let user = made_up_user(&mut cx.rng);
    let scope = garbage_param(cx);
    let body: Vec<u8> = match cx.rng.u8(..8) {
        0 => Vec::new(),
        1 => format!("grant_type={}", garbage_param(cx)).into_bytes(),
        2 => format!("grant_type=password&username={user}&password=x&service=wharf&scope={scope}")
            .into_bytes(),
        3 => b"grant_type=password&username=&password=".to_vec(),
        4 => format!(
            "grant_type=refresh_token&refresh_token={}",
            ascii(&mut cx.rng, 100..=100)
        )
        .into_bytes(),
        5 => format!(
            "grant_type=password&username={user}&password={}",
            "p".repeat(70_000)
        )
        .into_bytes(),
        6 => bytes(&mut cx.rng, 1..2000),
        _ => format!("grant_type=refresh_token&scope={scope}").into_bytes(),
    };
    let req = Req::new("POST", "/token")
        .no_auth()
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    let mut conn = cx.spoofed_conn();
    let Some(resp) = cx.send_on(&mut conn, &req).await else {
        return;
    };
    let wanted = if cx.auth_on() {
        "400, 401, 413 or 429"
    } else {
        "404"
    };
    let ok = if cx.auth_on() {
        [400, 401, 413, 429].contains(&resp.status)
    } else {
        resp.status == 404
    };
    cx.expect(&req, &resp, ok, wanted);
}
