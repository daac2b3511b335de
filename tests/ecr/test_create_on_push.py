"""--create-on-push: whether a /v2 push creates the repository (ECR's own default is that it
does not; Wharf's is that it does)."""

import os
import unittest

import ecr
from ecr import EcrTestCase


class CreateOnPush(EcrTestCase):
    @unittest.skipIf(ecr.CREATE_ON_PUSH, "the server runs with --create-on-push true")
    def test_push_to_an_uncreated_repository_fails(self):
        repo = ecr.repo_name("no-create")
        answer = ecr.v2("POST", f"{repo}/blobs/uploads/")
        self.assertEqual(answer.status, 404, answer)
        self.assertEqual(answer.json()["errors"][0]["code"], "NAME_UNKNOWN")
        image = ecr.Image()
        put = ecr.v2("PUT", f"{repo}/manifests/v1", image.manifest.encode(), {"Content-Type": image.media_type})
        self.assertEqual(put.status, 404, put)
        self.assertEqual(put.json()["errors"][0]["code"], "NAME_UNKNOWN")
        self.assertEcrError("RepositoryNotFoundException", self.ecr.describe_repositories, repositoryNames=[repo])

        self.need_skopeo()
        source = image.write_oci_layout(os.path.join(self.tempdir(), "image"))
        target = f"docker://{ecr.HOST}/{repo}:v1"
        refused = ecr.skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", source, target)
        self.assertNotEqual(refused.returncode, 0, "the push created the repository")
        self.assertEcrError("RepositoryNotFoundException", self.ecr.describe_repositories, repositoryNames=[repo])

        self.ecr.create_repository(repositoryName=repo)
        pushed = ecr.skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", source, target)
        self.assertEqual(pushed.returncode, 0, pushed.stderr)
        ids = self.ecr.list_images(repositoryName=repo)["imageIds"]
        self.assertEqual(ids, [{"imageDigest": image.digest, "imageTag": "v1"}])

    @unittest.skipUnless(ecr.CREATE_ON_PUSH, "the server runs with --create-on-push false")
    def test_push_creates_the_repository(self):
        self.need_skopeo()
        repo = ecr.repo_name("create")
        image = ecr.Image()
        source = image.write_oci_layout(os.path.join(self.tempdir(), "image"))
        pushed = ecr.skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", source, f"docker://{ecr.HOST}/{repo}:v1")
        self.assertEqual(pushed.returncode, 0, pushed.stderr)
        repository = self.ecr.describe_repositories(repositoryNames=[repo])["repositories"][0]
        self.assertEqual(repository["imageTagMutability"], "MUTABLE")
        self.assertEqual(repository["encryptionConfiguration"]["encryptionType"], "AES256")
        self.assertEqual(
            self.ecr.list_images(repositoryName=repo)["imageIds"], [{"imageDigest": image.digest, "imageTag": "v1"}]
        )
