"""Tag immutability, through PutImage and through /v2 (skopeo and a plain manifest PUT)."""

import os
from concurrent.futures import ThreadPoolExecutor

import ecr
from ecr import EcrTestCase

LATEST = [{"filterType": "WILDCARD", "filter": "latest*"}]


class Immutability(EcrTestCase):
    def tag_digest(self, repo, tag):
        ids = self.ecr.list_images(repositoryName=repo, filter={"tagStatus": "TAGGED"})["imageIds"]
        return {i["imageTag"]: i["imageDigest"] for i in ids}.get(tag)

    def test_immutable_tag_cannot_move(self):
        repo = self.new_repo("immutable", imageTagMutability="IMMUTABLE")
        first, second = ecr.Image(), ecr.Image()
        ecr.push_image(self.ecr, repo, first, tag="v1")
        ecr.push_blobs(self.ecr, repo, second)
        self.assertEcrError(
            "ImageTagAlreadyExistsException", ecr.put_image, self.ecr, repo, second.manifest, "v1", second.media_type
        )
        self.assertEqual(self.tag_digest(repo, "v1"), first.digest)
        # A new tag is fine, and so is another tag on the same image.
        ecr.put_image(self.ecr, repo, second.manifest, "v2", second.media_type)
        ecr.put_image(self.ecr, repo, first.manifest, "v1-again", first.media_type)
        self.assertEqual(self.tag_digest(repo, "v2"), second.digest)
        self.assertEqual(self.tag_digest(repo, "v1-again"), first.digest)

    def test_immutable_with_exclusion(self):
        repo = self.new_repo(
            "immutable-excl", imageTagMutability="IMMUTABLE_WITH_EXCLUSION", imageTagMutabilityExclusionFilters=LATEST
        )
        first, second = ecr.Image(), ecr.Image()
        ecr.push_image(self.ecr, repo, first, tag="v1")
        ecr.put_image(self.ecr, repo, first.manifest, "latest", first.media_type)
        ecr.put_image(self.ecr, repo, first.manifest, "latest-dev", first.media_type)
        ecr.push_blobs(self.ecr, repo, second)
        # Excluded tags move…
        ecr.put_image(self.ecr, repo, second.manifest, "latest", second.media_type)
        ecr.put_image(self.ecr, repo, second.manifest, "latest-dev", second.media_type)
        self.assertEqual(self.tag_digest(repo, "latest"), second.digest)
        self.assertEqual(self.tag_digest(repo, "latest-dev"), second.digest)
        # …the others do not.
        self.assertEcrError(
            "ImageTagAlreadyExistsException", ecr.put_image, self.ecr, repo, second.manifest, "v1", second.media_type
        )
        self.assertEqual(self.tag_digest(repo, "v1"), first.digest)

    def test_wildcard_filters_match_whole_tags(self):
        filters = LATEST + [{"filterType": "WILDCARD", "filter": "release-*-rc"}]
        repo = self.new_repo(
            "wildcards", imageTagMutability="IMMUTABLE_WITH_EXCLUSION", imageTagMutabilityExclusionFilters=filters
        )
        first, second = ecr.Image(), ecr.Image()
        ecr.push_blobs(self.ecr, repo, first)
        ecr.push_blobs(self.ecr, repo, second)
        for tag, movable in (("latest", True), ("latest-x", True), ("mylatest", False),
                             ("release-1-rc", True), ("release-1-final", False), ("release-1-rc2", False)):
            with self.subTest(tag=tag):
                ecr.put_image(self.ecr, repo, first.manifest, tag, first.media_type)
                if movable:
                    ecr.put_image(self.ecr, repo, second.manifest, tag, second.media_type)
                    self.assertEqual(self.tag_digest(repo, tag), second.digest)
                else:
                    self.assertEcrError(
                        "ImageTagAlreadyExistsException", ecr.put_image, self.ecr, repo, second.manifest, tag, second.media_type
                    )
                    self.assertEqual(self.tag_digest(repo, tag), first.digest)

    def test_deleted_immutable_tag_can_be_pushed_again(self):
        repo = self.new_repo("immutable-reuse", imageTagMutability="IMMUTABLE")
        first, second = ecr.Image(), ecr.Image()
        ecr.push_image(self.ecr, repo, first, tag="v1")
        ecr.push_blobs(self.ecr, repo, second)
        self.assertEqual(self.ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])["failures"], [])
        ecr.put_image(self.ecr, repo, second.manifest, "v1", second.media_type)
        self.assertEqual(self.tag_digest(repo, "v1"), second.digest)

    def test_mutable_with_exclusion(self):
        repo = self.new_repo(
            "mutable-excl", imageTagMutability="MUTABLE_WITH_EXCLUSION", imageTagMutabilityExclusionFilters=LATEST
        )
        first, second = ecr.Image(), ecr.Image()
        ecr.push_image(self.ecr, repo, first, tag="v1")
        ecr.put_image(self.ecr, repo, first.manifest, "latest", first.media_type)
        ecr.push_blobs(self.ecr, repo, second)
        ecr.put_image(self.ecr, repo, second.manifest, "v1", second.media_type)
        self.assertEqual(self.tag_digest(repo, "v1"), second.digest)
        self.assertEcrError(
            "ImageTagAlreadyExistsException", ecr.put_image, self.ecr, repo, second.manifest, "latest", second.media_type
        )
        self.assertEqual(self.tag_digest(repo, "latest"), first.digest)

    def test_switching_mutability(self):
        repo = self.new_repo("switch")
        first, second = ecr.Image(), ecr.Image()
        ecr.push_image(self.ecr, repo, first, tag="v1")
        ecr.push_blobs(self.ecr, repo, second)
        self.ecr.put_image_tag_mutability(repositoryName=repo, imageTagMutability="IMMUTABLE")
        self.assertEcrError(
            "ImageTagAlreadyExistsException", ecr.put_image, self.ecr, repo, second.manifest, "v1", second.media_type
        )
        self.ecr.put_image_tag_mutability(repositoryName=repo, imageTagMutability="MUTABLE")
        ecr.put_image(self.ecr, repo, second.manifest, "v1", second.media_type)
        self.assertEqual(self.tag_digest(repo, "v1"), second.digest)

    def test_v2_manifest_put_cannot_move_an_immutable_tag(self):
        repo = self.new_repo("immutable-v2", imageTagMutability="IMMUTABLE")
        first, second = ecr.Image(), ecr.Image()
        ecr.push_image(self.ecr, repo, first, tag="v1")
        ecr.push_blobs(self.ecr, repo, second)
        answer = ecr.v2("PUT", f"{repo}/manifests/v1", second.manifest.encode(), {"Content-Type": second.media_type})
        self.assertEqual(answer.status, 400, answer)
        errors = answer.json()["errors"]
        self.assertEqual(errors[0]["code"], "TAG_INVALID")
        self.assertEqual(
            errors[0]["message"],
            f"The image tag 'v1' already exists in the '{repo}' repository and cannot be overwritten "
            "because the repository is immutable.",
        )
        self.assertEqual(self.tag_digest(repo, "v1"), first.digest)
        # The same manifest again under the same tag is no move: accepted.
        again = ecr.v2("PUT", f"{repo}/manifests/v1", first.manifest.encode(), {"Content-Type": first.media_type})
        self.assertEqual(again.status, 201, again)
        # Nor through ?tag= on a push by digest; the other tag of that request is not made either.
        tagged = ecr.v2("PUT", f"{repo}/manifests/{second.digest}?tag=v1&tag=v9", second.manifest.encode(),
                        {"Content-Type": second.media_type})
        self.assertEqual(tagged.status, 400, tagged)
        self.assertEqual(tagged.json()["errors"][0]["code"], "TAG_INVALID")
        self.assertEqual(self.tag_digest(repo, "v1"), first.digest)
        self.assertIsNone(self.tag_digest(repo, "v9"))
        # Pushing by digest (no tag) is fine too.
        by_digest = ecr.v2("PUT", f"{repo}/manifests/{second.digest}", second.manifest.encode(), {"Content-Type": second.media_type})
        self.assertEqual(by_digest.status, 201, by_digest)

    def test_skopeo_push_to_an_immutable_tag(self):
        self.need_skopeo()
        repo = self.new_repo("immutable-skopeo", imageTagMutability="IMMUTABLE")
        work = self.tempdir()
        first = ecr.Image().write_oci_layout(os.path.join(work, "first"))
        second = ecr.Image().write_oci_layout(os.path.join(work, "second"))
        target = f"docker://{ecr.HOST}/{repo}:v1"
        copy = ["copy", "--preserve-digests", "--dest-tls-verify=false"]

        pushed = ecr.skopeo(*copy, first, target)
        self.assertEqual(pushed.returncode, 0, pushed.stderr)
        digest = self.tag_digest(repo, "v1")
        self.assertIsNotNone(digest)

        refused = ecr.skopeo(*copy, second, target)
        self.assertNotEqual(refused.returncode, 0, "skopeo moved an immutable tag")
        self.assertIn("already exists", refused.stderr)
        self.assertEqual(self.tag_digest(repo, "v1"), digest)

        again = ecr.skopeo(*copy, first, target)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(self.tag_digest(repo, "v1"), digest)

    def test_racing_pushes_to_one_immutable_tag(self):
        repo = self.new_repo("immutable-race", imageTagMutability="IMMUTABLE")
        images = [ecr.Image() for _ in range(6)]
        for image in images:
            ecr.push_blobs(self.ecr, repo, image)

        def put(image_and_client):
            image, client = image_and_client
            try:
                ecr.put_image(client, repo, image.manifest, "v1", image.media_type)
                return image.digest
            except ecr.ClientError as error:
                return error.response["Error"]["Code"]

        clients = [ecr.client() for _ in images]  # boto3 makes clients one at a time
        with ThreadPoolExecutor(len(images)) as pool:
            outcomes = list(pool.map(put, zip(images, clients)))
        winners = [o for o in outcomes if o.startswith("sha256:")]
        self.assertEqual(len(winners), 1, outcomes)
        self.assertEqual(sorted(set(outcomes) - set(winners)), ["ImageTagAlreadyExistsException"], outcomes)
        self.assertEqual(self.tag_digest(repo, "v1"), winners[0])
