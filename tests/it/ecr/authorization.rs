//! What an ECR request is authorized on comes from its operation, never from whichever members
//! a request happens to carry: registry-wide operations on the registry, `DescribeRepositories`
//! on each name it lists, resource-tag operations on their ARN, the rest on their
//! `repositoryName`.

use serde_json::{Value, json};

use crate::common::{TestApp, auth_on};
use crate::ecr::Key;

/// A registry with auth on, an admin key, and `bob/app` and `alice/app` made by the admin.
struct Registry {
    app: TestApp,
    admin: (String, String),
}

impl Registry {
    async fn new() -> Registry {
        let app = TestApp::spawn_with(auth_on).await;
        let admin = app.access_key("admin").await;
        let registry = Registry { app, admin };
        for name in ["alice/app", "bob/app"] {
            registry
                .call(
                    &registry.admin,
                    "CreateRepository",
                    json!({"repositoryName": name}),
                )
                .await
                .ok();
        }
        registry
    }

    /// A user allowed `actions` on the repositories `resource` matches, and their key.
    async fn user(&self, name: &str, actions: Value, resource: &str) -> (String, String) {
        let store = self.app.store().await;
        wharf::admin::create_user(&*store, name, None)
            .await
            .unwrap();
        let policy = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": actions, "Resource": resource}]});
        wharf::admin::set_policy(
            &*store,
            &wharf::admin::PolicyTarget::User(name.into()),
            Some(&policy.to_string()),
        )
        .await
        .unwrap();
        self.app.access_key(name).await
    }

    async fn call(&self, key: &Key, operation: &str, input: Value) -> crate::ecr::Answer {
        self.app.ecr_signed(key, operation, input).await
    }

    /// Asserts `key` is denied `operation` with `input`, for its own action.
    async fn denied(&self, key: &(String, String), operation: &str, input: Value) {
        let denied = self
            .call(key, operation, input)
            .await
            .error("AccessDeniedException");
        let message = denied["message"].as_str().unwrap();
        assert!(message.contains(&format!("ecr:{operation}")), "{message}");
    }

    async fn arn(&self, name: &str) -> String {
        let described = self
            .call(
                &self.admin,
                "DescribeRepositories",
                json!({"repositoryNames": [name]}),
            )
            .await
            .ok();
        described["repositories"][0]["repositoryArn"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*"}]}"#;

#[tokio::test]
async fn a_smuggled_repository_name_authorizes_nothing() {
    let registry = Registry::new().await;
    let alice = registry
        .user(
            "alice",
            json!("ecr:*"),
            "arn:aws:ecr:*:*:repository/alice/*",
        )
        .await;
    let smuggled = json!("alice/app");

    // Registry-wide operations are authorized on the registry, whatever else is sent.
    registry
        .denied(
            &alice,
            "PutRegistryPolicy",
            json!({"policyText": POLICY, "repositoryName": smuggled}),
        )
        .await;
    registry
        .call(&registry.admin, "GetRegistryPolicy", json!({}))
        .await
        .error("RegistryPolicyNotFoundException");
    for operation in [
        "GetAuthorizationToken",
        "DescribeRegistry",
        "GetRegistryPolicy",
        "DeleteRegistryPolicy",
    ] {
        registry
            .denied(&alice, operation, json!({"repositoryName": smuggled}))
            .await;
    }

    // DescribeRepositories is authorized on the names it describes.
    registry
        .denied(
            &alice,
            "DescribeRepositories",
            json!({"repositoryName": smuggled, "repositoryNames": ["bob/app"]}),
        )
        .await;
    registry
        .denied(
            &alice,
            "DescribeRepositories",
            json!({"repositoryName": smuggled, "repositoryNames": ["alice/app", "bob/app"]}),
        )
        .await;
    let own = registry
        .call(
            &alice,
            "DescribeRepositories",
            json!({"repositoryNames": ["alice/app"]}),
        )
        .await
        .ok();
    assert_eq!(own["repositories"][0]["repositoryName"], "alice/app");

    // Resource tags are authorized on the ARN they change.
    let bob_arn = registry.arn("bob/app").await;
    registry
        .denied(
            &alice,
            "TagResource",
            json!({"resourceArn": bob_arn, "repositoryName": smuggled,
                   "tags": [{"Key": "owner", "Value": "alice"}]}),
        )
        .await;
    let tags = registry
        .call(
            &registry.admin,
            "ListTagsForResource",
            json!({"resourceArn": bob_arn}),
        )
        .await
        .ok();
    assert_eq!(tags["tags"], json!([]));
    let alice_arn = registry.arn("alice/app").await;
    registry
        .call(
            &alice,
            "TagResource",
            json!({"resourceArn": alice_arn, "tags": [{"Key": "owner", "Value": "alice"}]}),
        )
        .await
        .ok();
}

#[tokio::test]
async fn each_operation_takes_its_resource_from_its_own_members() {
    let registry = Registry::new().await;
    let admin = &registry.admin;
    // The model's minimum is one name: an empty list does not mean "all".
    registry
        .call(
            admin,
            "DescribeRepositories",
            json!({"repositoryNames": []}),
        )
        .await
        .error("InvalidParameterException");
    // Without the member that names its resource, an operation has nothing to act on.
    for (operation, input) in [
        ("ListImages", json!({})),
        ("ListImages", json!({"repositoryNames": ["alice/app"]})),
        ("ListImages", json!({"repositoryName": 7})),
        ("SetRepositoryPolicy", json!({"policyText": POLICY})),
        (
            "TagResource",
            json!({"repositoryName": "alice/app", "tags": []}),
        ),
        (
            "ListTagsForResource",
            json!({"repositoryName": "alice/app"}),
        ),
    ] {
        registry
            .call(admin, operation, input)
            .await
            .error("InvalidParameterException");
    }
    // Only operations on a named repository need it to exist.
    registry
        .call(admin, "ListImages", json!({"repositoryName": "ghost/app"}))
        .await
        .error("RepositoryNotFoundException");
    registry
        .call(
            admin,
            "DescribeRegistry",
            json!({"repositoryName": "ghost/app"}),
        )
        .await
        .ok();
}

#[tokio::test]
async fn creating_a_repository_with_tags_also_needs_tag_resource() {
    let registry = Registry::new().await;
    let creator = registry
        .user(
            "creator",
            json!(["ecr:CreateRepository", "ecr:DescribeRepositories"]),
            "arn:aws:ecr:*:*:repository/team/*",
        )
        .await;
    let tagged =
        |name: &str| json!({"repositoryName": name, "tags": [{"Key": "team", "Value": "a"}]});
    let denied = registry
        .call(&creator, "CreateRepository", tagged("team/tagged"))
        .await
        .error("AccessDeniedException");
    let message = denied["message"].as_str().unwrap();
    assert!(message.contains("ecr:TagResource"), "{message}");
    assert!(message.contains("repository/team/tagged"), "{message}");
    registry
        .call(
            &creator,
            "DescribeRepositories",
            json!({"repositoryNames": ["team/tagged"]}),
        )
        .await
        .error("RepositoryNotFoundException");
    // Without tags, or with an empty list, creating is all it is.
    registry
        .call(
            &creator,
            "CreateRepository",
            json!({"repositoryName": "team/plain", "tags": []}),
        )
        .await
        .ok();

    let tagger = registry
        .user(
            "tagger",
            json!(["ecr:CreateRepository", "ecr:TagResource"]),
            "arn:aws:ecr:*:*:repository/team/*",
        )
        .await;
    registry
        .call(&tagger, "CreateRepository", tagged("team/tagged"))
        .await
        .ok();
}
