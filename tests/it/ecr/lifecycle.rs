//! Lifecycle policies as a user sees them: `PutLifecyclePolicy`, `GetLifecyclePolicy`,
//! `DeleteLifecyclePolicy`, `StartLifecyclePolicyPreview` and `GetLifecyclePolicyPreview`
//! through the ECR API, and runs of the policies, which these tests start themselves on a
//! clock they choose (the background runs are off): what a policy expires, that a preview
//! shows exactly that, and what the registry serves and logs afterwards.
//!
//! Images pushed one after another get distinct push times (the push helper waits a few
//! milliseconds after each), so "the newest" is the last pushed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use wharf::metadata::{Millis, now_millis};
use wharf::oci::RepoName;
use wharf::registry::PreviewResult;

use crate::common::{LAYER, OCI_INDEX, OCI_MANIFEST, TestApp, header, sha256, uuid_like};

const DAY: Millis = 24 * 60 * 60 * 1000;

/// Images expired (or that a preview would expire), each with the priority of its rule.
type Expired = BTreeSet<(String, u32)>;

// ---- The registry ----

/// A registry whose lifecycle policies run only when a test applies them.
async fn spawn() -> TestApp {
    spawn_with_database().await.0
}

/// Like [`spawn`], with the URL of the registry's database, to read its event log.
async fn spawn_with_database() -> (TestApp, String) {
    let mut database_url = String::new();
    let app = TestApp::spawn_with(|config| database_url.clone_from(&config.database_url)).await;
    (app, database_url)
}

fn name(repo: &str) -> RepoName {
    repo.parse().expect("a repository name")
}

// ---- Policies ----

/// A rule expiring the images that `tags` and `count` (members of `selection`) select.
fn rule(priority: u32, tags: Value, count: Value) -> Value {
    let mut selection = tags;
    let (Value::Object(selection_members), Value::Object(count)) = (&mut selection, count) else {
        panic!("selection members are JSON objects");
    };
    selection_members.extend(count);
    json!({"rulePriority": priority, "selection": selection, "action": {"type": "expire"}})
}

fn any() -> Value {
    json!({"tagStatus": "any"})
}

fn untagged() -> Value {
    json!({"tagStatus": "untagged"})
}

fn prefixes(list: &[&str]) -> Value {
    json!({"tagStatus": "tagged", "tagPrefixList": list})
}

fn patterns(list: &[&str]) -> Value {
    json!({"tagStatus": "tagged", "tagPatternList": list})
}

/// `imageCountMoreThan`: all but the newest `n`.
fn keep(n: u32) -> Value {
    json!({"countType": "imageCountMoreThan", "countNumber": n})
}

/// `sinceImagePushed`: those pushed more than `days` ago.
fn pushed_over(days: u32) -> Value {
    json!({"countType": "sinceImagePushed", "countUnit": "days", "countNumber": days})
}

/// `sinceImagePulled`: those last pulled (or if never, pushed) more than `days` ago.
fn pulled_over(days: u32) -> Value {
    json!({"countType": "sinceImagePulled", "countUnit": "days", "countNumber": days})
}

/// The text of a policy of `rules`, padded with a description of the first rule to the 100
/// characters ECR requires at least.
fn policy(rules: Vec<Value>) -> String {
    policy_of_length(rules, 100)
}

/// The text of a policy of `rules`, exactly `length` characters long if its rules are
/// shorter (the first rule's description makes up the difference).
fn policy_of_length(mut rules: Vec<Value>, length: usize) -> String {
    rules[0]["description"] = json!("");
    let bare = json!({ "rules": rules }).to_string().len();
    rules[0]["description"] = json!("x".repeat(length.saturating_sub(bare)));
    json!({ "rules": rules }).to_string()
}

async fn put_policy(app: &TestApp, repo: &str, text: &str) {
    app.ecr(
        "PutLifecyclePolicy",
        json!({"repositoryName": repo, "lifecyclePolicyText": text}),
    )
    .await
    .ok();
}

// ---- Images ----

/// A one-layer image manifest whose blobs are pushed to `repo` (and whose layer is unique).
async fn staged(app: &TestApp, repo: &str) -> Value {
    let layer = format!("layer {}", uuid_like()).into_bytes();
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer_digest = app.push_blob(repo, &layer).await;
    let config_digest = app.push_blob(repo, config).await;
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": LAYER, "digest": layer_digest, "size": layer.len()}],
    })
}

/// Puts `manifest` through `/v2` under `tag` (or its digest) and returns its digest, then
/// waits a few milliseconds so that the next image pushed is newer.
async fn put(app: &TestApp, repo: &str, tag: Option<&str>, manifest: &Value) -> String {
    let digest = sha256(&serde_json::to_vec(manifest).unwrap());
    let response = app
        .put_manifest(repo, tag.unwrap_or(&digest), manifest)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED, "push to {repo}");
    assert_eq!(header(&response, "docker-content-digest"), digest);
    tokio::time::sleep(Duration::from_millis(5)).await;
    digest
}

/// Pushes a new image to `repo`, under `tag` or untagged, and returns its digest.
async fn push(app: &TestApp, repo: &str, tag: Option<&str>) -> String {
    let manifest = staged(app, repo).await;
    put(app, repo, tag, &manifest).await
}

/// Pushes a new image under each tag, in order, and returns their digests.
async fn push_tagged(app: &TestApp, repo: &str, tags: &[&str]) -> Vec<String> {
    let mut digests = Vec::new();
    for tag in tags {
        digests.push(push(app, repo, Some(tag)).await);
    }
    digests
}

/// The repository's images as `DescribeImages` shows them: each digest with its details.
async fn described(app: &TestApp, repo: &str) -> BTreeMap<String, Value> {
    let output = app
        .ecr("DescribeImages", json!({"repositoryName": repo}))
        .await
        .ok();
    assert!(output.get("nextToken").is_none(), "{output}");
    let details = output["imageDetails"].as_array().unwrap();
    (details.iter())
        .map(|detail| {
            (
                detail["imageDigest"].as_str().unwrap().to_string(),
                detail.clone(),
            )
        })
        .collect()
}

/// The digests of the repository's images.
async fn digests(app: &TestApp, repo: &str) -> BTreeSet<String> {
    described(app, repo).await.into_keys().collect()
}

/// The tags of the repository's images, as `ListImages` shows them.
async fn listed_tags(app: &TestApp, repo: &str) -> BTreeSet<String> {
    let output = app
        .ecr("ListImages", json!({"repositoryName": repo}))
        .await
        .ok();
    let ids = output["imageIds"].as_array().unwrap();
    (ids.iter())
        .filter_map(|id| id["imageTag"].as_str().map(str::to_string))
        .collect()
}

/// When the registry says each image of the repository was pushed.
async fn push_times(app: &TestApp, repo: &str) -> BTreeMap<String, Millis> {
    (described(app, repo).await.into_iter())
        .map(|(digest, detail)| {
            let seconds = detail["imagePushedAt"].as_f64().unwrap();
            (digest, (seconds * 1000.0).round() as Millis)
        })
        .collect()
}

/// The status of `GET /v2/<repo>/manifests/<reference>`.
async fn pull_status(app: &TestApp, repo: &str, reference: &str) -> StatusCode {
    let url = format!("/v2/{repo}/manifests/{reference}");
    let response = app
        .get(&url)
        .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
        .send()
        .await
        .unwrap();
    response.status()
}

// ---- Expiries ----

/// `digests`, each expired by the rule of priority `rule`.
fn by(rule: u32, digests: &[&String]) -> Expired {
    (digests.iter())
        .map(|digest| (digest.to_string(), rule))
        .collect()
}

fn expired(results: &[PreviewResult]) -> Expired {
    (results.iter())
        .map(|result| (result.digest.clone(), result.rule_priority))
        .collect()
}

/// What `text` (or the repository's policy) would expire at `now`, kept as the repository's
/// last preview.
async fn preview_at(app: &TestApp, repo: &str, text: Option<&str>, now: Millis) -> Expired {
    let (_, results) = (app.state.registry)
        .preview_lifecycle(&name(repo), text, now)
        .await
        .expect("preview");
    expired(&results)
}

/// Applies the repository's policy at `now` and returns what it expired.
async fn apply_at(app: &TestApp, repo: &str, now: Millis) -> Expired {
    let results = (app.state.registry)
        .apply_lifecycle(&name(repo), now)
        .await
        .expect("lifecycle run");
    let set = expired(&results);
    assert_eq!(set.len(), results.len(), "each image expired once");
    set
}

/// `GetLifecyclePolicyPreview` with `input` added to the repository's name.
async fn get_preview(app: &TestApp, repo: &str, input: Value) -> Value {
    let mut full = json!({ "repositoryName": repo });
    full.as_object_mut()
        .unwrap()
        .extend(input.as_object().unwrap().clone());
    app.ecr("GetLifecyclePolicyPreview", full).await.ok()
}

/// The `previewResults` of a `GetLifecyclePolicyPreview` output, by digest and rule.
fn previewed(output: &Value) -> Expired {
    let results = output["previewResults"].as_array().unwrap();
    let set: Expired = (results.iter())
        .map(|result| {
            assert_eq!(result["action"], json!({"type": "EXPIRE"}), "{result}");
            let rule = result["appliedRulePriority"].as_u64().unwrap() as u32;
            (result["imageDigest"].as_str().unwrap().to_string(), rule)
        })
        .collect();
    assert_eq!(set.len(), results.len(), "no image twice in {output}");
    set
}

/// The digests of a page of preview results.
fn previewed_digests(output: &Value) -> Vec<String> {
    (output["previewResults"].as_array().unwrap().iter())
        .map(|result| result["imageDigest"].as_str().unwrap().to_string())
        .collect()
}

// ---- The event log ----

/// One event of the registry's log: action, digest, tag and detail.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    action: String,
    digest: Option<String>,
    tag: Option<String>,
    detail: Option<String>,
}

/// The repository's `DELETE` and `UNTAG` events, read from the registry's database.
async fn removals(database_url: &str, repo: &str) -> BTreeSet<Event> {
    use sqlx::{Connection as _, Row as _};
    sqlx::any::install_default_drivers();
    let mut connection = sqlx::AnyConnection::connect(database_url)
        .await
        .expect("connect to the registry's database");
    let rows = sqlx::query(
        "SELECT action, digest, tag, detail FROM events \
         WHERE repository = $1 AND action IN ('DELETE', 'UNTAG') ORDER BY id",
    )
    .bind(repo)
    .fetch_all(&mut connection)
    .await
    .expect("read the event log");
    (rows.iter())
        .map(|row| Event {
            action: row.get("action"),
            digest: row.get("digest"),
            tag: row.get("tag"),
            detail: row.get("detail"),
        })
        .collect()
}

fn event(action: &str, digest: &str, tag: Option<&str>, detail: Option<&str>) -> Event {
    Event {
        action: action.into(),
        digest: Some(digest.into()),
        tag: tag.map(str::to_string),
        detail: detail.map(str::to_string),
    }
}

// ---- Tests ----

#[tokio::test]
async fn a_policy_is_put_read_replaced_and_deleted() {
    let app = spawn().await;
    app.create_repository("team/app", json!({})).await;
    let registry_id = app.ecr("DescribeRegistry", json!({})).await.ok()["registryId"].clone();
    let repo = json!({"repositoryName": "team/app"});

    let never = (app.ecr("GetLifecyclePolicy", repo.clone()).await)
        .error("LifecyclePolicyNotFoundException");
    assert!(
        never["message"].as_str().unwrap().contains("team/app"),
        "{never}"
    );

    let first = policy(vec![rule(1, untagged(), pushed_over(14))]);
    let input = json!({"repositoryName": "team/app", "lifecyclePolicyText": first});
    let put = app.ecr("PutLifecyclePolicy", input).await.ok();
    assert_eq!(put["registryId"], registry_id);
    assert_eq!(put["repositoryName"], "team/app");
    assert_eq!(put["lifecyclePolicyText"], first);
    let got = app.ecr("GetLifecyclePolicy", repo.clone()).await.ok();
    assert_eq!(got["registryId"], registry_id);
    assert_eq!(got["repositoryName"], "team/app");
    assert_eq!(got["lifecyclePolicyText"], first);

    // A second policy replaces the first, text for text.
    let second = policy(vec![
        rule(1, prefixes(&["prod"]), keep(10)),
        rule(2, any(), keep(50)),
    ]);
    put_policy(&app, "team/app", &second).await;
    let got = app.ecr("GetLifecyclePolicy", repo.clone()).await.ok();
    assert_eq!(got["lifecyclePolicyText"], second);

    let deleted = app.ecr("DeleteLifecyclePolicy", repo.clone()).await.ok();
    assert_eq!(deleted["registryId"], registry_id);
    assert_eq!(deleted["repositoryName"], "team/app");
    assert_eq!(deleted["lifecyclePolicyText"], second);
    (app.ecr("GetLifecyclePolicy", repo.clone()).await).error("LifecyclePolicyNotFoundException");
    (app.ecr("DeleteLifecyclePolicy", repo.clone()).await)
        .error("LifecyclePolicyNotFoundException");

    let absent = json!({"repositoryName": "absent"});
    let put_absent = json!({"repositoryName": "absent", "lifecyclePolicyText": first});
    for (operation, input) in [
        ("PutLifecyclePolicy", put_absent),
        ("GetLifecyclePolicy", absent.clone()),
        ("DeleteLifecyclePolicy", absent),
    ] {
        let error = (app.ecr(operation, input).await).error("RepositoryNotFoundException");
        assert!(
            error["message"].as_str().unwrap().contains("absent"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn invalid_policies_are_refused_saying_what_is_wrong() {
    let app = spawn().await;
    app.create_repository("strict", json!({})).await;
    let valid = policy(vec![rule(1, any(), keep(5))]);
    put_policy(&app, "strict", &valid).await;

    let with_member = |at_rule: bool, member: &str| {
        let mut document: Value = serde_json::from_str(&valid).unwrap();
        let target = if at_rule {
            &mut document["rules"][0]
        } else {
            &mut document
        };
        target[member] = json!("2012-10-17");
        document.to_string()
    };
    let cases = [
        (
            policy(vec![
                rule(1, untagged(), keep(1)),
                rule(1, prefixes(&["a"]), keep(1)),
            ]),
            "rule 2 (rulePriority 1): rulePriority must be unique, and rule 1 (rulePriority 1) \
             has it too",
        ),
        (
            policy(vec![rule(1, json!({"tagStatus": "tagged"}), keep(1))]),
            r#"rule 1 (rulePriority 1): tagStatus "tagged" needs selection.tagPrefixList or selection.tagPatternList"#,
        ),
        (
            policy(vec![rule(1, any(), keep(3)), rule(2, untagged(), keep(1))]),
            r#"rule 1 (rulePriority 1): a rule with tagStatus "any" must have the highest rulePriority, and rule 2 (rulePriority 2) has a higher one"#,
        ),
        (
            policy(vec![rule(
                1,
                untagged(),
                json!({"countType": "imageCountMoreThan", "countUnit": "days", "countNumber": 1}),
            )]),
            r#"rule 1 (rulePriority 1): selection.countUnit is not allowed with countType "imageCountMoreThan""#,
        ),
        (
            with_member(false, "Version"),
            "the policy: unknown member Version",
        ),
        (with_member(true, "note"), "rule 1: unknown member note"),
        (
            policy(vec![rule(
                1,
                json!({"tagStatus": "tagged", "tagPrefix": ["a"]}),
                keep(1),
            )]),
            "rule 1 (rulePriority 1): unknown member selection.tagPrefix",
        ),
        (
            format!("{{\"rules\": [{}", " ".repeat(100)),
            "the policy is not valid JSON: ",
        ),
    ];
    for (text, problem) in &cases {
        assert!(text.chars().count() >= 100, "long enough: {text}");
        let input = json!({"repositoryName": "strict", "lifecyclePolicyText": text});
        let error = (app.ecr("PutLifecyclePolicy", input).await).error("InvalidParameterException");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(problem), "{message:?} names {problem:?}");
        // Previews check the policy they are given just the same.
        let input = json!({"repositoryName": "strict", "lifecyclePolicyText": text});
        let error = (app.ecr("StartLifecyclePolicyPreview", input).await)
            .error("InvalidParameterException");
        assert!(
            error["message"].as_str().unwrap().contains(problem),
            "{error}"
        );
    }

    // From 100 to 30720 characters: shorter or longer texts are refused before they are read.
    let length_refused = async |text: String| {
        let input = json!({"repositoryName": "strict", "lifecyclePolicyText": text});
        let error = (app.ecr("PutLifecyclePolicy", input).await).error("InvalidParameterException");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("lifecyclePolicyText"), "{message}");
        assert!(message.contains("between 100 and 30720"), "{message}");
    };
    length_refused(r#"{"rules": []}"#.into()).await;
    length_refused(format!("{{{}", " ".repeat(98))).await;
    let longest = policy_of_length(vec![rule(1, any(), keep(5))], 30720);
    assert_eq!(longest.len(), 30720);
    length_refused(format!("{longest} ")).await;
    // 100 characters are read (and this text is not JSON).
    let input =
        json!({"repositoryName": "strict", "lifecyclePolicyText": format!("{{{}", " ".repeat(99))});
    let error = (app.ecr("PutLifecyclePolicy", input).await).error("InvalidParameterException");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{error}"
    );

    // Nothing refused replaced the policy; the longest one does.
    let got = (app
        .ecr("GetLifecyclePolicy", json!({"repositoryName": "strict"}))
        .await)
        .ok();
    assert_eq!(got["lifecyclePolicyText"], valid);
    put_policy(&app, "strict", &longest).await;
    let got = (app
        .ecr("GetLifecyclePolicy", json!({"repositoryName": "strict"}))
        .await)
        .ok();
    assert_eq!(got["lifecyclePolicyText"], longest);
}

#[tokio::test]
async fn previews_show_the_stored_policy_or_the_one_given_until_a_new_policy() {
    let app = spawn().await;
    let pushed = push_tagged(&app, "preview", &["a-1", "a-2", "a-3"]).await;
    let (a1, a2) = (&pushed[0], &pushed[1]);
    let repo = json!({"repositoryName": "preview"});

    (app.ecr("GetLifecyclePolicyPreview", repo.clone()).await)
        .error("LifecyclePolicyPreviewNotFoundException");
    // Without a policy given, the preview is of the stored one, which there is not.
    (app.ecr("StartLifecyclePolicyPreview", repo.clone()).await)
        .error("LifecyclePolicyNotFoundException");

    let stored = policy(vec![rule(1, prefixes(&["a-"]), keep(2))]);
    put_policy(&app, "preview", &stored).await;
    let started = app
        .ecr("StartLifecyclePolicyPreview", repo.clone())
        .await
        .ok();
    assert_eq!(started["repositoryName"], "preview");
    assert_eq!(started["lifecyclePolicyText"], stored);
    assert_eq!(started["status"], "COMPLETE");
    let preview = get_preview(&app, "preview", json!({})).await;
    assert_eq!(preview["repositoryName"], "preview");
    assert_eq!(preview["lifecyclePolicyText"], stored);
    assert_eq!(preview["status"], "COMPLETE");
    assert_eq!(previewed(&preview), by(1, &[a1]));
    assert_eq!(preview["summary"]["expiringImageTotalCount"], 1);
    let result = &preview["previewResults"][0];
    assert_eq!(result["imageTags"], json!(["a-1"]));
    let details = described(&app, "preview").await;
    assert_eq!(result["imagePushedAt"], details[a1]["imagePushedAt"]);

    // A policy given in the request is previewed instead, and not stored.
    let given = policy(vec![rule(1, prefixes(&["a-"]), keep(1))]);
    let input = json!({"repositoryName": "preview", "lifecyclePolicyText": given});
    let started = app.ecr("StartLifecyclePolicyPreview", input).await.ok();
    assert_eq!(started["lifecyclePolicyText"], given);
    assert_eq!(started["status"], "COMPLETE");
    let preview = get_preview(&app, "preview", json!({})).await;
    assert_eq!(preview["lifecyclePolicyText"], given);
    assert_eq!(previewed(&preview), by(1, &[a1, a2]));
    assert_eq!(preview["summary"]["expiringImageTotalCount"], 2);
    let got = app.ecr("GetLifecyclePolicy", repo.clone()).await.ok();
    assert_eq!(got["lifecyclePolicyText"], stored);
    // A preview expires nothing.
    assert_eq!(digests(&app, "preview").await.len(), 3);

    // A new policy makes the last preview obsolete.
    put_policy(&app, "preview", &policy(vec![rule(1, any(), keep(9))])).await;
    (app.ecr("GetLifecyclePolicyPreview", repo.clone()).await)
        .error("LifecyclePolicyPreviewNotFoundException");

    let absent = json!({"repositoryName": "absent"});
    let given_absent = json!({"repositoryName": "absent", "lifecyclePolicyText": given});
    for (operation, input) in [
        ("StartLifecyclePolicyPreview", absent.clone()),
        ("StartLifecyclePolicyPreview", given_absent),
        ("GetLifecyclePolicyPreview", absent),
    ] {
        (app.ecr(operation, input).await).error("RepositoryNotFoundException");
    }
}

#[tokio::test]
async fn a_count_rule_expires_all_but_the_newest_images() {
    let app = spawn().await;
    let tags = [
        "release-1",
        "release-2",
        "release-3",
        "release-4",
        "release-5",
    ];
    let releases = push_tagged(&app, "counted", &tags).await;
    let latest = push(&app, "counted", Some("latest")).await;
    put_policy(
        &app,
        "counted",
        &policy(vec![rule(1, prefixes(&["release-"]), keep(2))]),
    )
    .await;

    let oldest: Vec<&String> = releases[..3].iter().collect();
    app.ecr(
        "StartLifecyclePolicyPreview",
        json!({"repositoryName": "counted"}),
    )
    .await
    .ok();
    let preview = get_preview(&app, "counted", json!({})).await;
    assert_eq!(previewed(&preview), by(1, &oldest));
    assert_eq!(preview["summary"]["expiringImageTotalCount"], 3);
    let details = described(&app, "counted").await;
    for result in preview["previewResults"].as_array().unwrap() {
        let digest = result["imageDigest"].as_str().unwrap();
        let n = releases.iter().position(|d| d == digest).unwrap() + 1;
        assert_eq!(result["imageTags"], json!([format!("release-{n}")]));
        assert_eq!(result["imagePushedAt"], details[digest]["imagePushedAt"]);
        assert_eq!(result["appliedRulePriority"], 1);
    }

    assert_eq!(
        apply_at(&app, "counted", now_millis()).await,
        by(1, &oldest)
    );
    let remaining: BTreeSet<String> = [&releases[3], &releases[4], &latest]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(digests(&app, "counted").await, remaining);
    assert_eq!(
        listed_tags(&app, "counted").await,
        BTreeSet::from(["latest", "release-4", "release-5"].map(String::from))
    );
    for (tag, digest) in tags.iter().zip(&releases).take(3) {
        assert_eq!(
            pull_status(&app, "counted", tag).await,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            pull_status(&app, "counted", digest).await,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        pull_status(&app, "counted", "release-5").await,
        StatusCode::OK
    );

    // What is left is within the policy: another run expires nothing.
    assert_eq!(
        apply_at(&app, "counted", now_millis()).await,
        Expired::new()
    );
}

#[tokio::test]
async fn a_run_expires_exactly_what_its_preview_showed() {
    let app = spawn().await;
    let repo = "mixed";
    let prod1 = push(&app, repo, Some("prod-1")).await;
    let loose1 = push(&app, repo, None).await;
    let dev1 = push(&app, repo, Some("dev-1")).await;
    let prod2 = push(&app, repo, Some("prod-2")).await;
    let dev2 = push(&app, repo, Some("dev-2")).await;
    let loose2 = push(&app, repo, None).await;
    let dev3 = push(&app, repo, Some("dev-3")).await;
    let prod3 = push(&app, repo, Some("prod-3")).await;
    let dev4 = push(&app, repo, Some("dev-4")).await;
    put_policy(
        &app,
        repo,
        &policy(vec![
            rule(1, prefixes(&["prod"]), keep(1)),
            rule(2, untagged(), pushed_over(1)),
            rule(3, any(), keep(3)),
        ]),
    )
    .await;

    // Today the untagged images are too young, yet rule 2 takes them from rule 3, which
    // counts only the images no earlier rule took (Wharf's rule, where ECR would count them
    // all): of dev-1 to dev-4 it keeps the newest three.
    let mut today = by(1, &[&prod1, &prod2]);
    today.extend(by(3, &[&dev1]));
    assert_eq!(preview_at(&app, repo, None, now_millis()).await, today);

    let later = now_millis() + 2 * DAY;
    let preview = preview_at(&app, repo, None, later).await;
    let mut expected = by(1, &[&prod1, &prod2]);
    expected.extend(by(2, &[&loose1, &loose2]));
    expected.extend(by(3, &[&dev1]));
    assert_eq!(preview, expected);
    // The API shows the same preview.
    let shown = get_preview(&app, repo, json!({})).await;
    assert_eq!(previewed(&shown), preview);
    assert_eq!(shown["summary"]["expiringImageTotalCount"], 5);

    assert_eq!(apply_at(&app, repo, later).await, preview);
    assert_eq!(
        digests(&app, repo).await,
        BTreeSet::from([dev2, dev3, prod3, dev4])
    );
}

#[tokio::test]
async fn an_age_rule_expires_images_only_once_they_are_older_than_its_days() {
    let app = spawn().await;
    let first = push(&app, "aging", Some("first")).await;
    let second = push(&app, "aging", None).await;
    let pushed = push_times(&app, "aging").await;
    let (oldest, newest) = (pushed[&first], pushed[&second]);
    assert!(oldest < newest, "{pushed:?}");
    put_policy(
        &app,
        "aging",
        &policy(vec![rule(1, any(), pushed_over(10))]),
    )
    .await;

    assert_eq!(
        apply_at(&app, "aging", newest + 9 * DAY).await,
        Expired::new()
    );
    // Exactly ten days old is not older than ten days.
    let ten_days = preview_at(&app, "aging", None, oldest + 10 * DAY).await;
    assert_eq!(ten_days, Expired::new());
    let just_over = preview_at(&app, "aging", None, oldest + 10 * DAY + 1).await;
    assert_eq!(just_over, by(1, &[&first]));
    assert_eq!(digests(&app, "aging").await.len(), 2);

    let later = newest + 11 * DAY;
    assert_eq!(
        apply_at(&app, "aging", later).await,
        by(1, &[&first, &second])
    );
    assert_eq!(digests(&app, "aging").await, BTreeSet::new());
}

#[tokio::test]
async fn a_pull_age_counts_from_the_last_pull_or_else_from_the_push() {
    let app = spawn().await;
    let pulled = push(&app, "pulls", Some("pulled")).await;
    let idle = push(&app, "pulls", Some("idle")).await;
    // Both pushed thirty days ago, as far as the registry knows.
    app.sql(&format!(
        "UPDATE manifests SET pushed_at = pushed_at - {} WHERE repository = 'pulls'",
        30 * DAY
    ))
    .await;
    assert_eq!(pull_status(&app, "pulls", "pulled").await, StatusCode::OK);
    let details = described(&app, "pulls").await;
    assert!(details[&pulled].get("lastRecordedPullTime").is_some());
    assert!(details[&idle].get("lastRecordedPullTime").is_none());

    let now = now_millis();
    let by_push = policy(vec![rule(1, any(), pushed_over(10))]);
    assert_eq!(
        preview_at(&app, "pulls", Some(&by_push), now).await,
        by(1, &[&pulled, &idle])
    );
    put_policy(
        &app,
        "pulls",
        &policy(vec![rule(1, any(), pulled_over(10))]),
    )
    .await;
    // Never pulled: the push, thirty days ago, counts. Pulled just now: the pull counts.
    assert_eq!(apply_at(&app, "pulls", now + DAY).await, by(1, &[&idle]));
    assert_eq!(
        digests(&app, "pulls").await,
        [pulled.clone()].into_iter().collect()
    );
    assert_eq!(apply_at(&app, "pulls", now + 9 * DAY).await, Expired::new());
    assert_eq!(
        apply_at(&app, "pulls", now + 11 * DAY).await,
        by(1, &[&pulled])
    );
}

#[tokio::test]
async fn tag_patterns_match_whole_tags_and_prefixes_their_starts() {
    let app = spawn().await;
    let tags = ["v1-rc", "v1-final", "v10", "v2-rc", "release"];
    let pushed = push_tagged(&app, "patterns", &tags).await;
    let digest = |tag: &str| pushed[tags.iter().position(|t| *t == tag).unwrap()].clone();
    let later = now_millis() + 2 * DAY;
    let selected = async |tags: Value| -> BTreeSet<String> {
        let text = policy(vec![rule(1, tags, pushed_over(1))]);
        (preview_at(&app, "patterns", Some(&text), later)
            .await
            .into_iter())
        .map(|(digest, _)| digest)
        .collect()
    };
    let tagged_as =
        |tags: &[&str]| -> BTreeSet<String> { tags.iter().map(|t| digest(t)).collect() };

    assert_eq!(
        selected(patterns(&["v*-rc"])).await,
        tagged_as(&["v1-rc", "v2-rc"])
    );
    assert_eq!(
        selected(prefixes(&["v1"])).await,
        tagged_as(&["v1-rc", "v1-final", "v10"])
    );
    // Without a wildcard, a pattern is a whole tag.
    assert_eq!(selected(patterns(&["v1"])).await, tagged_as(&[]));
    assert_eq!(selected(patterns(&["v10"])).await, tagged_as(&["v10"]));
    // Each pattern of the list must match one of the image's tags.
    assert_eq!(
        selected(patterns(&["v1*", "*-rc"])).await,
        tagged_as(&["v1-rc"])
    );
}

#[tokio::test]
async fn the_manifests_of_an_index_are_never_expired_on_their_own() {
    let app = spawn().await;
    let repo = "multi";
    let mut children = Vec::new();
    for _ in 0..2 {
        let manifest = staged(&app, repo).await;
        let size = serde_json::to_vec(&manifest).unwrap().len();
        let digest = put(&app, repo, None, &manifest).await;
        children.push(
            json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                             "platform": {"architecture": "amd64", "os": "linux"}}),
        );
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children});
    let index_digest = put(&app, repo, Some("multi"), &index).await;
    let loose = push(&app, repo, None).await;
    let child_digests: Vec<String> = (children.iter())
        .map(|child| child["digest"].as_str().unwrap().to_string())
        .collect();

    // Counted among the untagged images, the two children would make the loose one expire.
    let keep_one = policy(vec![rule(1, untagged(), keep(1))]);
    assert_eq!(
        preview_at(&app, repo, Some(&keep_one), now_millis()).await,
        Expired::new()
    );

    put_policy(
        &app,
        repo,
        &policy(vec![rule(1, untagged(), pushed_over(1))]),
    )
    .await;
    let later = now_millis() + 2 * DAY;
    assert_eq!(preview_at(&app, repo, None, later).await, by(1, &[&loose]));
    let shown = get_preview(&app, repo, json!({})).await;
    assert_eq!(previewed(&shown), by(1, &[&loose]));
    assert_eq!(apply_at(&app, repo, later).await, by(1, &[&loose]));

    let mut remaining: BTreeSet<String> = child_digests.iter().cloned().collect();
    remaining.insert(index_digest);
    assert_eq!(digests(&app, repo).await, remaining);
    assert_eq!(pull_status(&app, repo, "multi").await, StatusCode::OK);
    for child in &child_digests {
        assert_eq!(pull_status(&app, repo, child).await, StatusCode::OK);
    }
}

#[tokio::test]
async fn preview_results_come_in_pages_and_by_tag_status() {
    let app = spawn().await;
    let repo = "pages";
    let mut by_tag = BTreeMap::new();
    let mut untagged_ones = BTreeSet::new();
    for n in 1..=7 {
        if n % 2 == 0 {
            untagged_ones.insert(push(&app, repo, None).await);
        } else {
            let tag = format!("t-{n}");
            by_tag.insert(tag.clone(), push(&app, repo, Some(&tag)).await);
        }
    }
    let tagged: BTreeSet<String> = by_tag.values().cloned().collect();
    let all: BTreeSet<String> = tagged.union(&untagged_ones).cloned().collect();
    put_policy(&app, repo, &policy(vec![rule(1, any(), pushed_over(1))])).await;
    let later = now_millis() + 2 * DAY;
    assert_eq!(preview_at(&app, repo, None, later).await.len(), 7);

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut token: Option<Value> = None;
    loop {
        let mut input = json!({"maxResults": 3});
        if let Some(token) = token.take() {
            input["nextToken"] = token;
        }
        let page = get_preview(&app, repo, input).await;
        assert_eq!(page["summary"]["expiringImageTotalCount"], 7, "{page}");
        let digests = previewed_digests(&page);
        sizes.push(digests.len());
        seen.extend(digests);
        match page.get("nextToken") {
            Some(next) => token = Some(next.clone()),
            None => break,
        }
    }
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(seen.len(), 7, "no repeats: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all);

    let by_status = async |status: &str, max_results: Option<u32>| {
        let mut seen = BTreeSet::new();
        let mut input = json!({"filter": {"tagStatus": status}});
        if let Some(max) = max_results {
            input["maxResults"] = json!(max);
        }
        loop {
            let page = get_preview(&app, repo, input.clone()).await;
            for result in page["previewResults"].as_array().unwrap() {
                match status {
                    "TAGGED" => assert!(result.get("imageTags").is_some(), "{result}"),
                    "UNTAGGED" => assert!(result.get("imageTags").is_none(), "{result}"),
                    _ => {}
                }
                assert!(seen.insert(result["imageDigest"].as_str().unwrap().to_string()));
            }
            match page.get("nextToken") {
                Some(next) => input["nextToken"] = next.clone(),
                None => return seen,
            }
        }
    };
    assert_eq!(by_status("UNTAGGED", None).await, untagged_ones);
    assert_eq!(by_status("TAGGED", None).await, tagged);
    assert_eq!(by_status("TAGGED", Some(1)).await, tagged);
    assert_eq!(by_status("ANY", Some(2)).await, all);

    // Named images only.
    let named = get_preview(&app, repo, json!({"imageIds": [{"imageTag": "t-3"}]})).await;
    assert_eq!(previewed_digests(&named), [by_tag["t-3"].as_str()]);
    let digest = &by_tag["t-5"];
    let named = get_preview(&app, repo, json!({"imageIds": [{"imageDigest": digest}]})).await;
    assert_eq!(previewed_digests(&named), [digest.as_str()]);

    for input in [
        json!({"repositoryName": repo, "maxResults": 0}),
        json!({"repositoryName": repo, "maxResults": 101}),
        json!({"repositoryName": repo, "nextToken": "not a token"}),
        json!({"repositoryName": repo, "filter": {"tagStatus": "SOME"}}),
        json!({"repositoryName": repo, "maxResults": 5, "imageIds": [{"imageTag": "t-3"}]}),
    ] {
        (app.ecr("GetLifecyclePolicyPreview", input).await).error("InvalidParameterException");
    }
    let full = get_preview(&app, repo, json!({"maxResults": 100})).await;
    assert_eq!(previewed_digests(&full).len(), 7);
    assert!(full.get("nextToken").is_none());
}

#[tokio::test]
async fn each_expiry_is_logged_with_its_rule() {
    let (app, database_url) = spawn_with_database().await;
    let repo = "logged";
    let manifest = staged(&app, repo).await;
    let first = put(&app, repo, Some("a-1"), &manifest).await;
    assert_eq!(put(&app, repo, Some("a-1-alias"), &manifest).await, first);
    let second = push(&app, repo, Some("a-2")).await;
    let loose = push(&app, repo, None).await;
    let kept = push(&app, repo, Some("a-3")).await;
    put_policy(
        &app,
        repo,
        &policy(vec![
            rule(1, prefixes(&["a-"]), keep(1)),
            rule(2, untagged(), pushed_over(1)),
        ]),
    )
    .await;
    assert_eq!(removals(&database_url, repo).await, BTreeSet::new());

    let mut expected = by(1, &[&first, &second]);
    expected.extend(by(2, &[&loose]));
    assert_eq!(apply_at(&app, repo, now_millis() + 2 * DAY).await, expected);
    let rule_1 = Some("lifecycle policy rule 1");
    let deletes = BTreeSet::from([
        event("DELETE", &first, None, rule_1),
        event("DELETE", &second, None, rule_1),
        event("DELETE", &loose, None, Some("lifecycle policy rule 2")),
    ]);
    let logged = removals(&database_url, repo).await;
    let (logged_deletes, untags): (BTreeSet<Event>, BTreeSet<Event>) =
        logged.into_iter().partition(|e| e.action == "DELETE");
    assert_eq!(logged_deletes, deletes);
    let untagged_tags: BTreeSet<(Option<String>, Option<String>)> =
        (untags.into_iter()).map(|e| (e.digest, e.tag)).collect();
    let tag = |digest: &str, tag: &str| (Some(digest.to_string()), Some(tag.to_string()));
    assert_eq!(
        untagged_tags,
        BTreeSet::from([
            tag(&first, "a-1"),
            tag(&first, "a-1-alias"),
            tag(&second, "a-2"),
        ])
    );
    assert_eq!(digests(&app, repo).await, BTreeSet::from([kept]));
}

#[tokio::test]
async fn a_pass_over_all_repositories_applies_each_policy_and_skips_the_others() {
    let app = spawn().await;
    let mut images = BTreeMap::new();
    for repo in ["with/a", "with/b", "with/c", "without"] {
        images.insert(repo, push_tagged(&app, repo, &["1", "2", "3"]).await);
    }
    put_policy(&app, "with/a", &policy(vec![rule(1, any(), keep(1))])).await;
    put_policy(
        &app,
        "with/b",
        &policy(vec![rule(1, prefixes(&["2"]), pushed_over(1))]),
    )
    .await;
    // A policy that expires nothing now.
    put_policy(&app, "with/c", &policy(vec![rule(1, any(), keep(5))])).await;

    let reported = Mutex::new(BTreeMap::new());
    let progress = |repo: &str, expired_now: &[PreviewResult]| {
        let previous = (reported.lock().unwrap()).insert(repo.to_string(), expired(expired_now));
        assert!(previous.is_none(), "{repo} reported once");
    };
    let run = (app.state.registry)
        .apply_all_lifecycles(now_millis() + 2 * DAY, &progress)
        .await
        .expect("lifecycle pass");
    assert_eq!((run.repositories, run.expired), (3, 3));
    let a = &images["with/a"];
    let b = &images["with/b"];
    assert_eq!(
        reported.into_inner().unwrap(),
        BTreeMap::from([
            ("with/a".to_string(), by(1, &[&a[0], &a[1]])),
            ("with/b".to_string(), by(1, &[&b[1]])),
            ("with/c".to_string(), Expired::new()),
        ])
    );
    assert_eq!(
        digests(&app, "with/a").await,
        BTreeSet::from([a[2].clone()])
    );
    assert_eq!(
        digests(&app, "with/b").await,
        BTreeSet::from([b[0].clone(), b[2].clone()])
    );
    for repo in ["with/c", "without"] {
        let all: BTreeSet<String> = images[repo].iter().cloned().collect();
        assert_eq!(digests(&app, repo).await, all, "{repo}");
    }
}
