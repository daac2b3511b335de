//! Tag lists and the catalog, with `n`/`last` pagination and `Link`.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{JsonBody, TestApp, assert_error, header};

#[tokio::test]
async fn tags_are_listed_in_lexical_order_and_paginated() {
    let app = TestApp::spawn().await;
    let (manifest, ..) = app.push_image("paged", "seed").await;
    for tag in ["b", "a", "C", "c", "a1"] {
        assert_eq!(
            app.put_manifest("paged", tag, &manifest).await.status(),
            StatusCode::CREATED
        );
    }
    let all = app.get("/v2/paged/tags/list").send().await.unwrap();
    assert!(all.headers().get("link").is_none());
    assert_eq!(
        all.json_body().await,
        json!({"name": "paged", "tags": ["C", "a", "a1", "b", "c", "seed"]})
    );

    let first = app.get("/v2/paged/tags/list?n=2").send().await.unwrap();
    assert_eq!(
        header(&first, "link"),
        "</v2/paged/tags/list?n=2&last=a>; rel=\"next\""
    );
    assert_eq!(first.json_body().await["tags"], json!(["C", "a"]));
    let next = app
        .get("/v2/paged/tags/list?n=2&last=a")
        .send()
        .await
        .unwrap();
    assert_eq!(next.json_body().await["tags"], json!(["a1", "b"]));
    let last = app
        .get("/v2/paged/tags/list?n=2&last=b")
        .send()
        .await
        .unwrap();
    assert!(last.headers().get("link").is_none());
    assert_eq!(last.json_body().await["tags"], json!(["c", "seed"]));
    let past = app
        .get("/v2/paged/tags/list?last=seed")
        .send()
        .await
        .unwrap();
    assert_eq!(past.json_body().await["tags"], json!([]));
    let zero = app.get("/v2/paged/tags/list?n=0").send().await.unwrap();
    assert_eq!(zero.json_body().await["tags"], json!([]));
    let bad = app.get("/v2/paged/tags/list?n=lots").send().await.unwrap();
    assert_error(bad, 400, "PAGINATION_NUMBER_INVALID").await;
}

#[tokio::test]
async fn tags_of_an_unknown_repository_are_name_unknown() {
    let app = TestApp::spawn().await;
    let response = app.get("/v2/nobody/home/tags/list").send().await.unwrap();
    assert_error(response, 404, "NAME_UNKNOWN").await;
}

#[tokio::test]
async fn catalog_lists_repositories_with_pagination() {
    let app = TestApp::spawn().await;
    for repo in ["zeta", "alpha/one", "alpha/two"] {
        app.push_blob(repo, repo.as_bytes()).await;
    }
    let all = app
        .get("/v2/_catalog")
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    assert_eq!(
        all,
        json!({"repositories": ["alpha/one", "alpha/two", "zeta"]})
    );
    let first = app.get("/v2/_catalog?n=1").send().await.unwrap();
    assert_eq!(
        header(&first, "link"),
        "</v2/_catalog?n=1&last=alpha%2Fone>; rel=\"next\""
    );
    assert_eq!(
        first.json_body().await["repositories"],
        json!(["alpha/one"])
    );
    let rest = app
        .get("/v2/_catalog?n=5&last=alpha%2Fone")
        .send()
        .await
        .unwrap();
    assert_eq!(
        rest.json_body().await["repositories"],
        json!(["alpha/two", "zeta"])
    );
}

#[tokio::test]
async fn a_last_that_could_not_be_listed_is_refused() {
    let app = TestApp::spawn().await;
    app.push_image("lasts", "v1").await;
    for last in ["%00", "-x", "a%20b"] {
        let tags = app
            .get(&format!("/v2/lasts/tags/list?last={last}"))
            .send()
            .await
            .unwrap();
        assert_error(tags, 400, "TAG_INVALID").await;
        let catalog = app
            .get(&format!("/v2/_catalog?last={last}"))
            .send()
            .await
            .unwrap();
        assert_error(catalog, 400, "NAME_INVALID").await;
    }
}
