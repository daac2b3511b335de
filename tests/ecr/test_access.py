"""Access: GetAuthorizationToken and logging in with it, repository and registry policies,
resource tags."""

import base64
import datetime
import json
import os
import subprocess

import ecr
from ecr import EcrTestCase


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


PULL_FOR_ALICE = {
    "Sid": "AlicePulls",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:user/alice"},
    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
}


class AuthorizationToken(EcrTestCase):
    def test_get_authorization_token(self):
        data = self.ecr.get_authorization_token()["authorizationData"]
        self.assertEqual(len(data), 1)
        user, colon, password = base64.b64decode(data[0]["authorizationToken"]).decode().partition(":")
        self.assertEqual((user, colon), ("AWS", ":"))
        self.assertTrue(password)
        self.assertEqual(data[0]["proxyEndpoint"], ecr.URL)
        expires = data[0]["expiresAt"]
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertGreater(expires, now)
        if ecr.AUTH:
            self.assertLess(abs((expires - now - datetime.timedelta(hours=12)).total_seconds()), 600, expires)

    def test_registry_ids_naming_this_registry(self):
        data = self.ecr.get_authorization_token(registryIds=[self.registry_id()])["authorizationData"]
        self.assertEqual(len(data), 1)
        self.assertEqual(data[0]["proxyEndpoint"], ecr.URL)

    def test_get_login_password_then_skopeo_login_push_and_pull(self):
        self.need_skopeo()
        repo = self.new_repo("login")
        work = self.tempdir()
        authfile = os.path.join(work, "auth.json")
        password = ecr.cli("get-login-password")
        self.assertIsInstance(password, str)
        self.assertTrue(password.strip())
        login = subprocess.run(
            [ecr.skopeo_path(), "login", "-u", "AWS", "--password-stdin", "--tls-verify=false",
             "--authfile", authfile, ecr.HOST],
            input=password, capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(login.returncode, 0, login.stderr)
        if ecr.AUTH:
            with open(authfile) as f:
                self.assertIn(ecr.HOST, json.load(f)["auths"])

        image = ecr.Image()
        source = image.write_oci_layout(os.path.join(work, "source"))
        target = f"docker://{ecr.HOST}/{repo}:v1"
        pushed = ecr.skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-authfile", authfile,
                            source, target, creds=False)
        self.assertEqual(pushed.returncode, 0, pushed.stderr)
        detail = self.ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "v1"}])["imageDetails"][0]
        self.assertEqual(detail["imageDigest"], image.digest)

        back = os.path.join(work, "back")
        pulled = ecr.skopeo("copy", "--preserve-digests", "--src-tls-verify=false", "--src-authfile", authfile,
                            target, f"oci:{back}:v1", creds=False)
        self.assertEqual(pulled.returncode, 0, pulled.stderr)
        with open(os.path.join(back, "index.json")) as f:
            self.assertEqual(json.load(f)["manifests"][0]["digest"], image.digest)
        for digest, data in image.blobs.items():
            with open(os.path.join(back, "blobs", "sha256", digest.split(":")[1]), "rb") as f:
                self.assertEqual(f.read(), data)


class RepositoryPolicy(EcrTestCase):
    def test_set_get_delete(self):
        repo = self.new_repo("policy")
        text = policy(PULL_FOR_ALICE)
        answer = self.ecr.set_repository_policy(repositoryName=repo, policyText=text)
        self.assertEqual(answer["repositoryName"], repo)
        self.assertEqual(answer["registryId"], self.registry_id())
        self.assertEqual(json.loads(answer["policyText"]), json.loads(text))

        got = self.ecr.get_repository_policy(repositoryName=repo)
        self.assertEqual(got["repositoryName"], repo)
        self.assertEqual(got["registryId"], self.registry_id())
        self.assertEqual(json.loads(got["policyText"]), json.loads(text))

        deleted = self.ecr.delete_repository_policy(repositoryName=repo)
        self.assertEqual(deleted["repositoryName"], repo)
        self.assertEqual(json.loads(deleted["policyText"]), json.loads(text))
        self.assertEcrError("RepositoryPolicyNotFoundException", self.ecr.get_repository_policy, repositoryName=repo)
        self.assertEcrError("RepositoryPolicyNotFoundException", self.ecr.delete_repository_policy, repositoryName=repo)

    def test_replace(self):
        repo = self.new_repo("policy-replace")
        self.ecr.set_repository_policy(repositoryName=repo, policyText=policy(PULL_FOR_ALICE))
        other = dict(PULL_FOR_ALICE, Sid="Other", Effect="Deny")
        self.ecr.set_repository_policy(repositoryName=repo, policyText=policy(other))
        got = self.ecr.get_repository_policy(repositoryName=repo)["policyText"]
        self.assertEqual(json.loads(got), json.loads(policy(other)))

    def test_no_policy(self):
        repo = self.new_repo("policy-none")
        self.assertEcrError("RepositoryPolicyNotFoundException", self.ecr.get_repository_policy, repositoryName=repo)

    def test_bad_policies(self):
        repo = self.new_repo("policy-bad")
        for label, text in (
            ("not json", "{not json"),
            ("no statement", json.dumps({"Version": "2012-10-17"})),
            ("bad effect", policy(dict(PULL_FOR_ALICE, Effect="Maybe"))),
            ("no action", policy({k: v for k, v in PULL_FOR_ALICE.items() if k != "Action"})),
        ):
            with self.subTest(label):
                self.assertEcrError(
                    "InvalidParameterException", self.ecr.set_repository_policy, repositoryName=repo, policyText=text
                )
        self.assertEcrError("RepositoryPolicyNotFoundException", self.ecr.get_repository_policy, repositoryName=repo)

    def test_unknown_repository(self):
        missing = ecr.repo_name("missing")
        self.assertEcrError(
            "RepositoryNotFoundException", self.ecr.set_repository_policy, repositoryName=missing, policyText=policy(PULL_FOR_ALICE)
        )
        self.assertEcrError("RepositoryNotFoundException", self.ecr.get_repository_policy, repositoryName=missing)
        self.assertEcrError("RepositoryNotFoundException", self.ecr.delete_repository_policy, repositoryName=missing)


class RegistryPolicy(EcrTestCase):
    def test_put_get_delete(self):
        registry_id = self.registry_id()
        # Something that grants nothing to anyone who exists, so the other tests are unaffected.
        text = policy({
            "Sid": "NobodyReplicates",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{registry_id}:user/nobody-{ecr.RUN}"},
            "Action": ["ecr:BatchGetImage"],
            "Resource": f"arn:aws:ecr:{ecr.REGION}:{registry_id}:repository/nothing-{ecr.RUN}/*",
        })
        put = self.ecr.put_registry_policy(policyText=text)
        self.addCleanup(self.delete_quietly)
        self.assertEqual(put["registryId"], registry_id)
        self.assertEqual(json.loads(put["policyText"]), json.loads(text))
        got = self.ecr.get_registry_policy()
        self.assertEqual(got["registryId"], registry_id)
        self.assertEqual(json.loads(got["policyText"]), json.loads(text))
        deleted = self.ecr.delete_registry_policy()
        self.assertEqual(json.loads(deleted["policyText"]), json.loads(text))
        self.assertEcrError("RegistryPolicyNotFoundException", self.ecr.get_registry_policy)
        self.assertEcrError("RegistryPolicyNotFoundException", self.ecr.delete_registry_policy)

    def delete_quietly(self):
        try:
            self.ecr.delete_registry_policy()
        except ecr.ClientError:
            pass

    def test_bad_registry_policy(self):
        self.assertEcrError("InvalidParameterException", self.ecr.put_registry_policy, policyText="{not json")


class ResourceTags(EcrTestCase):
    def arn(self, repo):
        return self.ecr.describe_repositories(repositoryNames=[repo])["repositories"][0]["repositoryArn"]

    def test_tag_list_untag(self):
        repo = self.new_repo("tags", tags=[{"Key": "team", "Value": "a"}])
        arn = self.arn(repo)
        self.assertEqual(self.ecr.list_tags_for_resource(resourceArn=arn)["tags"], [{"Key": "team", "Value": "a"}])
        self.ecr.tag_resource(resourceArn=arn, tags=[{"Key": "team", "Value": "b"}, {"Key": "cost", "Value": "42"}])
        self.assertCountEqual(
            self.ecr.list_tags_for_resource(resourceArn=arn)["tags"],
            [{"Key": "team", "Value": "b"}, {"Key": "cost", "Value": "42"}],
        )
        self.ecr.untag_resource(resourceArn=arn, tagKeys=["team", "not-there"])
        self.assertEqual(self.ecr.list_tags_for_resource(resourceArn=arn)["tags"], [{"Key": "cost", "Value": "42"}])

    def test_through_the_cli(self):
        repo = self.new_repo("tags-cli")
        arn = self.arn(repo)
        self.assertIsNone(ecr.cli("tag-resource", "--resource-arn", arn, "--tags", "Key=k,Value=v"))
        self.assertEqual(ecr.cli("list-tags-for-resource", "--resource-arn", arn)["tags"], [{"Key": "k", "Value": "v"}])

    def test_unknown_repository(self):
        registry_id = self.registry_id()
        arn = f"arn:aws:ecr:{ecr.REGION}:{registry_id}:repository/{ecr.repo_name('missing')}"
        self.assertEcrError("RepositoryNotFoundException", self.ecr.list_tags_for_resource, resourceArn=arn)
        self.assertEcrError("RepositoryNotFoundException", self.ecr.tag_resource, resourceArn=arn, tags=[{"Key": "k", "Value": "v"}])
        self.assertEcrError("RepositoryNotFoundException", self.ecr.untag_resource, resourceArn=arn, tagKeys=["k"])

    def test_arn_of_another_registry_or_region(self):
        # The same repository name under another account id or region is another resource.
        repo = self.new_repo("tags-elsewhere", tags=[{"Key": "k", "Value": "v"}])
        arn = self.arn(repo)
        registry_id = self.registry_id()
        other_account = "000000000000" if registry_id != "000000000000" else "111111111111"
        other_region = "eu-west-1" if ecr.REGION != "eu-west-1" else "eu-central-1"
        for label, foreign in (
            ("account", arn.replace(f":{registry_id}:", f":{other_account}:")),
            ("region", arn.replace(f":{ecr.REGION}:", f":{other_region}:")),
        ):
            with self.subTest(label):
                for call, args in (
                    (self.ecr.list_tags_for_resource, {}),
                    (self.ecr.tag_resource, {"tags": [{"Key": "k", "Value": "changed"}]}),
                    (self.ecr.untag_resource, {"tagKeys": ["k"]}),
                ):
                    with self.assertRaises(ecr.ClientError, msg=f"{call.__name__} on {foreign}") as caught:
                        call(resourceArn=foreign, **args)
                    self.assertIn(
                        caught.exception.response["Error"]["Code"],
                        ("InvalidParameterException", "RepositoryNotFoundException"),
                    )
        self.assertEqual(self.ecr.list_tags_for_resource(resourceArn=arn)["tags"], [{"Key": "k", "Value": "v"}])

    def test_invalid_tags(self):
        repo = self.new_repo("tags-invalid")
        arn = self.arn(repo)
        for label, tag in (("long key", {"Key": "k" * 129, "Value": "v"}), ("long value", {"Key": "k", "Value": "v" * 257})):
            with self.subTest(label):
                self.assertEcrError("InvalidTagParameterException", self.ecr.tag_resource, resourceArn=arn, tags=[tag])
                self.assertEcrError(
                    "InvalidTagParameterException", self.ecr.create_repository,
                    repositoryName=ecr.repo_name("tags-invalid"), tags=[tag],
                )
        self.assertEqual(self.ecr.list_tags_for_resource(resourceArn=arn)["tags"], [])

    def test_not_an_arn(self):
        self.assertEcrError("InvalidParameterException", self.ecr.list_tags_for_resource, resourceArn="not-an-arn")

    def test_too_many_tags(self):
        repo = self.new_repo("tags-many")
        arn = self.arn(repo)
        self.ecr.tag_resource(resourceArn=arn, tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
        self.assertEqual(len(self.ecr.list_tags_for_resource(resourceArn=arn)["tags"]), 50)
        self.assertEcrError("TooManyTagsException", self.ecr.tag_resource, resourceArn=arn, tags=[{"Key": "k50", "Value": "v"}])
        self.assertEqual(len(self.ecr.list_tags_for_resource(resourceArn=arn)["tags"]), 50)
        # Changing the value of an existing key is no new tag.
        self.ecr.tag_resource(resourceArn=arn, tags=[{"Key": "k0", "Value": "changed"}])
        self.assertEcrError(
            "TooManyTagsException", self.ecr.create_repository,
            repositoryName=ecr.repo_name("tags-many"), tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)],
        )
