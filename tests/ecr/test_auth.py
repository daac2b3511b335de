"""SigV4 and policies on the ECR API; only against a server with --auth true (WHARF_ECR_AUTH=1)."""

import base64
import datetime
import json
import os
import unittest
import uuid
from unittest import mock

import botocore
import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import ecr
from ecr import EcrTestCase


@unittest.skipUnless(ecr.AUTH, "auth is off on this server (these tests run against the --auth true server)")
class Signatures(EcrTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if ecr.IN_CI and (not os.environ.get("WHARF_ECR_KEY_ID") or not os.environ.get("WHARF_ECR_SECRET")):
            raise AssertionError("WHARF_ECR_KEY_ID / WHARF_ECR_SECRET are required with auth on under CI")

    def test_signed_with_an_access_key(self):
        self.assertRegex(ecr.client().describe_registry()["registryId"], r"^[0-9]{12}$")
        self.assertTrue(ecr.cli("describe-registry")["registryId"])

    def test_wrong_secret(self):
        wrong = ecr.client(secret=ecr.SECRET + "x")
        self.assertEcrError("InvalidSignatureException", wrong.describe_registry, status=None)
        error = self.assertEcrError("InvalidSignatureException", wrong.create_repository,
                                    repositoryName=ecr.repo_name("nope"), status=None)
        self.assertGreaterEqual(error["ResponseMetadata"]["HTTPStatusCode"], 400)
        self.assertLess(error["ResponseMetadata"]["HTTPStatusCode"], 500)

    def test_unknown_key_id(self):
        unknown = ecr.client(key_id="WKA" + uuid.uuid4().hex[:17].upper())
        error = self.assertEcrError("UnrecognizedClientException", unknown.describe_registry, status=None)
        self.assertIn(error["ResponseMetadata"]["HTTPStatusCode"], range(400, 500))

    def test_unsigned(self):
        unsigned = ecr.client(signature_version=botocore.UNSIGNED)
        error = self.assertEcrError("MissingAuthenticationTokenException", unsigned.describe_registry, status=None)
        self.assertIn(error["ResponseMetadata"]["HTTPStatusCode"], range(400, 500))
        raw = ecr.raw_ecr("DescribeRegistry", sign=False)
        self.assertIn(raw.status, range(400, 500), raw)
        self.assertEqual(raw.json()["__type"].split("#")[-1], "MissingAuthenticationTokenException")

    def test_skewed_clock(self):
        skewed = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=20)
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=skewed):
            error = self.assertEcrError("InvalidSignatureException", ecr.client().describe_registry, status=None)
        self.assertIn(error["ResponseMetadata"]["HTTPStatusCode"], range(400, 500))
        ahead = skewed + datetime.timedelta(minutes=40)
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=ahead):
            self.assertEcrError("InvalidSignatureException", ecr.client().describe_registry, status=None)

    def test_tampered_body(self):
        # A signature over one body does not carry another.
        request = AWSRequest(method="POST", url=ecr.URL + "/", data=b"{}", headers={
            "X-Amz-Target": ecr.TARGET_PREFIX + "DescribeRepositories",
            "Content-Type": "application/x-amz-json-1.1",
        })
        SigV4Auth(Credentials(ecr.KEY_ID, ecr.SECRET), "ecr", ecr.REGION).add_auth(request)
        prepared = request.prepare()
        answer = ecr.http("POST", prepared.url, b'{"maxResults": 1}', dict(prepared.headers.items()))
        self.assertIn(answer.status, range(400, 500), answer)
        self.assertEqual(answer.json()["__type"].split("#")[-1], "InvalidSignatureException")

    def test_signed_target_cannot_be_swapped(self):
        # X-Amz-Target is signed: a signed DescribeRepositories does not become a DeleteRepository.
        repo = self.new_repo("auth-swap")
        request = AWSRequest(method="POST", url=ecr.URL + "/", data=json.dumps({"repositoryName": repo}).encode(), headers={
            "X-Amz-Target": ecr.TARGET_PREFIX + "DescribeRepositories",
            "Content-Type": "application/x-amz-json-1.1",
        })
        SigV4Auth(Credentials(ecr.KEY_ID, ecr.SECRET), "ecr", ecr.REGION).add_auth(request)
        prepared = request.prepare()
        headers = dict(prepared.headers.items())
        headers["X-Amz-Target"] = ecr.TARGET_PREFIX + "DeleteRepository"
        answer = ecr.http("POST", prepared.url, prepared.body, headers)
        self.assertIn(answer.status, range(400, 500), answer)
        self.assertEqual(answer.json()["__type"].split("#")[-1], "InvalidSignatureException")
        self.assertEqual(len(self.ecr.describe_repositories(repositoryNames=[repo])["repositories"]), 1)

    def test_signature_for_another_service(self):
        request = AWSRequest(method="POST", url=ecr.URL + "/", data=b"{}", headers={
            "X-Amz-Target": ecr.TARGET_PREFIX + "DescribeRegistry",
            "Content-Type": "application/x-amz-json-1.1",
        })
        SigV4Auth(Credentials(ecr.KEY_ID, ecr.SECRET), "s3", ecr.REGION).add_auth(request)
        prepared = request.prepare()
        answer = ecr.http("POST", prepared.url, prepared.body, dict(prepared.headers.items()))
        self.assertIn(answer.status, range(400, 500), answer)
        self.assertEqual(answer.json()["__type"].split("#")[-1], "InvalidSignatureException")

    def test_download_url_without_credentials_on_v2_is_refused(self):
        # The presigned download URL works without credentials (tests/ecr/test_layers.py); /v2 does not.
        repo = self.new_repo("auth-v2")
        data = os.urandom(100)
        ecr.upload_blob(self.ecr, repo, data)
        self.assertEqual(ecr.http("GET", f"/v2/{repo}/blobs/{ecr.sha256(data)}").status, 401)
        url = self.ecr.get_download_url_for_layer(repositoryName=repo, layerDigest=ecr.sha256(data))["downloadUrl"]
        self.assertEqual(ecr.http("GET", url).body, data)


@unittest.skipUnless(ecr.AUTH, "auth is off on this server (these tests run against the --auth true server)")
class Policies(EcrTestCase):
    def setUp(self):
        self.need_wharf_cli()

    def user_client(self, policy=None):
        return self.user(policy)[1]

    def user(self, policy=None):
        """A new Wharf user with POLICY as identity policy (none when None): (name, its client)."""
        name = f"ecr-user-{ecr.RUN}-{uuid.uuid4().hex[:6]}"
        ecr.run_wharf("user", "create", name, "--password", uuid.uuid4().hex)
        if policy is not None:
            path = os.path.join(self.tempdir(), "policy.json")
            with open(path, "w") as f:
                json.dump(policy, f)
            ecr.run_wharf("policy", "set", "--user", name, path)
        key_id, secret = ecr.create_key(name)
        return name, ecr.client(key_id=key_id, secret=secret)

    def test_user_without_a_policy_is_denied(self):
        user = self.user_client()
        self.assertEcrError("AccessDeniedException", user.create_repository, repositoryName=ecr.repo_name("denied"))
        self.assertEcrError("AccessDeniedException", user.get_authorization_token)
        repo = self.new_repo("denied-existing")
        self.assertEcrError("AccessDeniedException", user.describe_repositories, repositoryNames=[repo])
        self.assertEcrError("AccessDeniedException", user.delete_repository, repositoryName=repo)
        # The repository is untouched.
        self.assertEqual(len(self.ecr.describe_repositories(repositoryNames=[repo])["repositories"]), 1)

    def test_deleted_key_stops_working(self):
        key_id, secret = ecr.create_key("admin")
        second = ecr.client(key_id=key_id, secret=secret)
        self.assertEqual(second.describe_registry()["registryId"], self.registry_id())
        ecr.run_wharf("key", "delete", key_id)
        self.assertEcrError("UnrecognizedClientException", second.describe_registry, status=None)

    def test_user_allowed_to_describe_team_repositories(self):
        user = self.user_client({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": "ecr:DescribeRepositories",
                "Resource": "arn:aws:ecr:*:*:repository/team/*",
            }],
        })
        team = f"team/x-{ecr.RUN}-{uuid.uuid4().hex[:6]}"
        self.ecr.create_repository(repositoryName=team)
        found = user.describe_repositories(repositoryNames=[team])["repositories"]
        self.assertEqual([r["repositoryName"] for r in found], [team])
        self.assertEcrError("AccessDeniedException", user.delete_repository, repositoryName=team)
        self.assertEcrError("AccessDeniedException", user.create_repository, repositoryName=f"team/new-{uuid.uuid4().hex[:6]}")
        outside = self.new_repo("outside-team")
        self.assertEcrError("AccessDeniedException", user.describe_repositories, repositoryNames=[outside])
        self.assertEqual(len(self.ecr.describe_repositories(repositoryNames=[team])["repositories"]), 1)

    def test_resources_of_another_account_or_region_grant_nothing(self):
        # IAM matches every part of a resource ARN: repositories of another account or region
        # are other resources, whatever their name.
        registry_id = self.registry_id()
        other_account = "000000000000" if registry_id != "000000000000" else "111111111111"
        other_region = "eu-west-1" if ecr.REGION != "eu-west-1" else "eu-central-1"
        team = f"team/x-{ecr.RUN}-{uuid.uuid4().hex[:6]}"
        self.ecr.create_repository(repositoryName=team)
        for label, resource in (
            ("account", f"arn:aws:ecr:{ecr.REGION}:{other_account}:repository/team/*"),
            ("region", f"arn:aws:ecr:{other_region}:{registry_id}:repository/team/*"),
        ):
            with self.subTest(label):
                user = self.user_client({
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "ecr:DescribeRepositories", "Resource": resource}],
                })
                self.assertEcrError("AccessDeniedException", user.describe_repositories, repositoryNames=[team])
        # The same policy naming this registry and region does grant.
        user = self.user_client({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow", "Action": "ecr:DescribeRepositories",
                "Resource": f"arn:aws:ecr:{ecr.REGION}:{registry_id}:repository/team/*",
            }],
        })
        self.assertEqual(len(user.describe_repositories(repositoryNames=[team])["repositories"]), 1)

    def test_login_password_belongs_to_the_user(self):
        # A user allowed to pull team/* gets a login password that pulls there, and pushes nowhere.
        user = self.user_client({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:GetAuthorizationToken"],
                "Resource": "*",
            }],
        })
        repo = self.new_repo("user-login")
        image = ecr.Image()
        ecr.push_image(self.ecr, repo, image, tag="v1")
        token = user.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        basic = base64.b64decode(token).decode()
        got = ecr.http("GET", f"/v2/{repo}/manifests/v1", headers={"Accept": ecr.OCI_MANIFEST}, basic=basic)
        self.assertEqual(got.status, 200, got)
        put = ecr.http("PUT", f"/v2/{repo}/manifests/v2", image.manifest.encode(),
                       {"Content-Type": image.media_type}, basic=basic)
        self.assertEqual(put.status, 403, put)

    def test_repository_policy_set_through_the_api_applies(self):
        name, user = self.user()
        repo = self.new_repo("repo-policy")
        ecr.push_image(self.ecr, repo, ecr.Image(), tag="v1")
        other = self.new_repo("repo-policy-other")
        self.assertEcrError("AccessDeniedException", user.batch_get_image, repositoryName=repo, imageIds=[{"imageTag": "v1"}])

        self.ecr.set_repository_policy(repositoryName=repo, policyText=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "UserPulls",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{self.registry_id()}:user/{name}"},
                "Action": ["ecr:BatchGetImage", "ecr:DescribeImages"],
            }],
        }))
        self.assertEqual(len(user.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])["images"]), 1)
        self.assertEqual(len(user.describe_images(repositoryName=repo)["imageDetails"]), 1)
        self.assertEcrError("AccessDeniedException", user.batch_delete_image, repositoryName=repo, imageIds=[{"imageTag": "v1"}])
        self.assertEcrError("AccessDeniedException", user.describe_images, repositoryName=other)
        layer = json.loads(user.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])["images"][0]["imageManifest"])["layers"][0]
        self.assertEcrError("AccessDeniedException", user.get_download_url_for_layer, repositoryName=repo, layerDigest=layer["digest"])

        self.ecr.delete_repository_policy(repositoryName=repo)
        self.assertEcrError("AccessDeniedException", user.batch_get_image, repositoryName=repo, imageIds=[{"imageTag": "v1"}])

    def test_explicit_deny_in_a_repository_policy_stops_the_admin(self):
        repo = self.new_repo("repo-deny")
        image = ecr.Image()
        ecr.push_blobs(self.ecr, repo, image)
        self.ecr.set_repository_policy(repositoryName=repo, policyText=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Sid": "Frozen", "Effect": "Deny", "Principal": "*", "Action": "ecr:PutImage"}],
        }))
        self.assertEcrError("AccessDeniedException", ecr.put_image, self.ecr, repo, image.manifest, "v1", image.media_type)
        self.ecr.delete_repository_policy(repositoryName=repo)
        ecr.put_image(self.ecr, repo, image.manifest, "v1", image.media_type)
