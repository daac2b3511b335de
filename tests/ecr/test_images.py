"""Images: PutImage, BatchGetImage, ListImages, DescribeImages, BatchDeleteImage, ListImageReferrers;
images pushed through the API are the same images /v2 serves."""

import json
import os
import time

import ecr
from ecr import EcrTestCase

UNKNOWN_DIGEST = "sha256:" + "0" * 64


class PutImage(EcrTestCase):
    def test_push_an_oci_image_through_the_api(self):
        repo = self.new_repo("put-oci")
        image = ecr.Image(layers=2)
        answer = ecr.push_image(self.ecr, repo, image, tag="v1")["image"]
        self.assertEqual(answer["registryId"], self.registry_id())
        self.assertEqual(answer["repositoryName"], repo)
        self.assertEqual(answer["imageId"], {"imageDigest": image.digest, "imageTag": "v1"})
        self.assertEqual(answer["imageManifest"], image.manifest)
        self.assertEqual(answer["imageManifestMediaType"], ecr.OCI_MANIFEST)

        # /v2 serves exactly the bytes PutImage got, under the digest of those bytes.
        got = ecr.v2("GET", f"{repo}/manifests/v1", headers={"Accept": ecr.OCI_MANIFEST})
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.body, image.manifest.encode())
        self.assertEqual(got.headers["Docker-Content-Digest"], image.digest)
        self.assertEqual(got.headers["Content-Type"], ecr.OCI_MANIFEST)
        for digest, data in image.blobs.items():
            self.assertEqual(ecr.v2("GET", f"{repo}/blobs/{digest}").body, data)

        fetched = self.ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
        self.assertEqual(fetched["failures"], [])
        self.assertEqual(len(fetched["images"]), 1)
        self.assertEqual(fetched["images"][0]["imageManifest"], image.manifest)
        self.assertEqual(fetched["images"][0]["imageId"]["imageDigest"], image.digest)
        self.assertEqual(fetched["images"][0]["imageManifestMediaType"], ecr.OCI_MANIFEST)

    def test_push_a_docker_image_with_the_cli(self):
        repo = self.new_repo("put-docker-cli")
        image = ecr.Image(docker=True)
        ecr.push_blobs(self.ecr, repo, image)
        answer = ecr.cli(
            "put-image", "--repository-name", repo, "--image-tag", "v1",
            "--image-manifest", image.manifest, "--image-manifest-media-type", ecr.DOCKER_MANIFEST,
        )["image"]
        self.assertEqual(answer["imageId"], {"imageDigest": image.digest, "imageTag": "v1"})
        self.assertEqual(answer["imageManifestMediaType"], ecr.DOCKER_MANIFEST)

        fetched = ecr.cli("batch-get-image", "--repository-name", repo, "--image-ids", "imageTag=v1")
        self.assertEqual(fetched["images"][0]["imageManifest"], image.manifest)

        details = ecr.cli("describe-images", "--repository-name", repo)["imageDetails"]
        self.assertEqual(len(details), 1)
        self.assertEqual(details[0]["imageDigest"], image.digest)
        self.assertEqual(details[0]["imageTags"], ["v1"])
        self.assertEqual(details[0]["imageManifestMediaType"], ecr.DOCKER_MANIFEST)
        self.assertEqual(details[0]["artifactMediaType"], ecr.DOCKER_CONFIG)

        got = ecr.v2("GET", f"{repo}/manifests/v1", headers={"Accept": ecr.DOCKER_MANIFEST})
        self.assertEqual(got.body, image.manifest.encode())
        self.assertEqual(got.headers["Content-Type"], ecr.DOCKER_MANIFEST)

    def test_image_pushed_on_v2_is_the_same_image(self):
        repo = self.new_repo("v2-push")
        image = ecr.Image(docker=True)
        for digest, data in image.blobs.items():
            posted = ecr.v2("POST", f"{repo}/blobs/uploads/?digest={digest}", data, {"Content-Type": "application/octet-stream"})
            self.assertEqual(posted.status, 201, posted)
        put = ecr.v2("PUT", f"{repo}/manifests/v1", image.manifest.encode(), {"Content-Type": image.media_type})
        self.assertEqual(put.status, 201, put)
        self.assertEqual(self.ecr.list_images(repositoryName=repo)["imageIds"], [{"imageDigest": image.digest, "imageTag": "v1"}])
        fetched = self.ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])["images"][0]
        self.assertEqual(fetched["imageManifest"], image.manifest)
        self.assertEqual(fetched["imageManifestMediaType"], ecr.DOCKER_MANIFEST)
        checked = self.ecr.batch_check_layer_availability(repositoryName=repo, layerDigests=list(image.blobs))
        self.assertCountEqual([layer["layerDigest"] for layer in checked["layers"]], list(image.blobs))

    def test_media_type_comes_from_the_manifest_when_not_given(self):
        repo = self.new_repo("put-no-type")
        image = ecr.Image()
        answer = ecr.push_image(self.ecr, repo, image, tag="v1", media_type=False)["image"]
        self.assertEqual(answer["imageManifestMediaType"], ecr.OCI_MANIFEST)

    def test_same_image_and_tag_again(self):
        repo = self.new_repo("put-twice")
        image = ecr.Image()
        ecr.push_image(self.ecr, repo, image, tag="v1")
        self.assertEcrError("ImageAlreadyExistsException", ecr.put_image, self.ecr, repo, image.manifest, "v1", image.media_type)

    def test_missing_layer(self):
        repo = self.new_repo("put-missing-layer")
        image = ecr.Image()
        ecr.upload_blob(self.ecr, repo, image.config)  # the config, not the layer
        self.assertEcrError("LayersNotFoundException", ecr.put_image, self.ecr, repo, image.manifest, "v1", image.media_type)
        self.assertEqual(self.ecr.list_images(repositoryName=repo)["imageIds"], [])

    def test_index_with_a_missing_child(self):
        repo = self.new_repo("put-index-missing")
        present, absent = ecr.Image(), ecr.Image()
        ecr.push_image(self.ecr, repo, present)
        index, _ = ecr.index_of(present, absent)
        self.assertEcrError("ReferencedImagesNotFoundException", ecr.put_image, self.ecr, repo, index, "multi", ecr.OCI_INDEX)

    def test_push_an_index(self):
        repo = self.new_repo("put-index")
        amd, arm = ecr.Image(), ecr.Image()
        ecr.push_image(self.ecr, repo, amd)
        ecr.push_image(self.ecr, repo, arm)
        index, digest = ecr.index_of(amd, arm)
        answer = ecr.put_image(self.ecr, repo, index, "multi", ecr.OCI_INDEX)["image"]
        self.assertEqual(answer["imageId"]["imageDigest"], digest)
        detail = self.ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "multi"}])["imageDetails"][0]
        self.assertEqual(detail["imageDigest"], digest)
        self.assertEqual(detail["imageManifestMediaType"], ecr.OCI_INDEX)
        got = ecr.v2("GET", f"{repo}/manifests/multi", headers={"Accept": ecr.OCI_INDEX})
        self.assertEqual(got.body, index.encode())

    def test_push_a_docker_manifest_list(self):
        repo = self.new_repo("put-list")
        amd, arm = ecr.Image(docker=True), ecr.Image(docker=True)
        ecr.push_image(self.ecr, repo, amd)
        ecr.push_image(self.ecr, repo, arm)
        listing, digest = ecr.index_of(amd, arm, docker=True)
        answer = ecr.put_image(self.ecr, repo, listing, "multi", ecr.DOCKER_LIST)["image"]
        self.assertEqual(answer["imageId"]["imageDigest"], digest)
        self.assertEqual(answer["imageManifestMediaType"], ecr.DOCKER_LIST)
        fetched = self.ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "multi"}])["images"][0]
        self.assertEqual(fetched["imageManifest"], listing)
        self.assertEqual(fetched["imageManifestMediaType"], ecr.DOCKER_LIST)
        detail = self.ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "multi"}])["imageDetails"][0]
        self.assertEqual(detail["imageManifestMediaType"], ecr.DOCKER_LIST)

    def test_retag_with_the_manifest_from_batch_get_image(self):
        repo = self.new_repo("retag")
        image = ecr.Image()
        ecr.push_image(self.ecr, repo, image, tag="v1")
        manifest = self.ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])["images"][0]["imageManifest"]
        answer = self.ecr.put_image(repositoryName=repo, imageManifest=manifest, imageTag="v2")["image"]
        self.assertEqual(answer["imageId"], {"imageDigest": image.digest, "imageTag": "v2"})
        ids = self.ecr.list_images(repositoryName=repo)["imageIds"]
        self.assertCountEqual(ids, [{"imageDigest": image.digest, "imageTag": "v1"}, {"imageDigest": image.digest, "imageTag": "v2"}])
        detail = self.ecr.describe_images(repositoryName=repo)["imageDetails"]
        self.assertEqual(len(detail), 1)
        self.assertCountEqual(detail[0]["imageTags"], ["v1", "v2"])

    def test_image_digest_that_does_not_match(self):
        repo = self.new_repo("put-digest")
        image = ecr.Image()
        ecr.push_blobs(self.ecr, repo, image)
        self.assertEcrError(
            "ImageDigestDoesNotMatchException", ecr.put_image, self.ecr, repo, image.manifest, "v1",
            image.media_type, imageDigest="sha256:" + "a" * 64,
        )
        answer = ecr.put_image(self.ecr, repo, image.manifest, "v1", image.media_type, imageDigest=image.digest)
        self.assertEqual(answer["image"]["imageId"]["imageDigest"], image.digest)

    def test_untagged_push(self):
        repo = self.new_repo("put-untagged")
        image = ecr.Image()
        answer = ecr.push_image(self.ecr, repo, image)["image"]
        self.assertEqual(answer["imageId"]["imageDigest"], image.digest)
        self.assertNotIn("imageTag", answer["imageId"])
        self.assertEqual(
            self.ecr.list_images(repositoryName=repo, filter={"tagStatus": "UNTAGGED"})["imageIds"],
            [{"imageDigest": image.digest}],
        )

    def test_tagging_an_untagged_image(self):
        repo = self.new_repo("put-tag-later")
        image = ecr.Image()
        ecr.push_image(self.ecr, repo, image)
        answer = ecr.put_image(self.ecr, repo, image.manifest, "v1", image.media_type)["image"]
        self.assertEqual(answer["imageId"], {"imageDigest": image.digest, "imageTag": "v1"})
        self.assertEqual(self.ecr.list_images(repositoryName=repo)["imageIds"], [{"imageDigest": image.digest, "imageTag": "v1"}])

    def test_invalid_tag(self):
        repo = self.new_repo("put-bad-tag")
        image = ecr.Image()
        ecr.push_blobs(self.ecr, repo, image)
        raw = ecr.unvalidated_client()
        for tag in ("bad tag", "x" * 301):
            with self.subTest(tag=tag[:20]):
                self.assertEcrError("InvalidParameterException", ecr.put_image, raw, repo, image.manifest, tag, image.media_type)
        self.assertEqual(self.ecr.list_images(repositoryName=repo)["imageIds"], [])

    def test_unknown_repository(self):
        image = ecr.Image()
        self.assertEcrError(
            "RepositoryNotFoundException", ecr.put_image, self.ecr, ecr.repo_name("missing"), image.manifest, "v1"
        )

    def test_manifest_that_is_not_json(self):
        repo = self.new_repo("put-garbage")
        self.assertEcrError("InvalidParameterException", ecr.put_image, self.ecr, repo, "this is not a manifest", "v1")

    def test_moving_a_tag_leaves_the_old_image_untagged(self):
        repo = self.new_repo("move-tag")
        old, new = ecr.Image(), ecr.Image()
        ecr.push_image(self.ecr, repo, old, tag="v1")
        ecr.push_image(self.ecr, repo, new, tag="v1")
        lists = {
            status: self.ecr.list_images(repositoryName=repo, filter={"tagStatus": status})["imageIds"]
            for status in ("TAGGED", "UNTAGGED", "ANY")
        }
        self.assertEqual(lists["TAGGED"], [{"imageDigest": new.digest, "imageTag": "v1"}])
        self.assertEqual(lists["UNTAGGED"], [{"imageDigest": old.digest}])
        self.assertCountEqual(lists["ANY"], [{"imageDigest": new.digest, "imageTag": "v1"}, {"imageDigest": old.digest}])
        self.assertCountEqual(self.ecr.list_images(repositoryName=repo)["imageIds"], lists["ANY"])
        untagged = self.ecr.describe_images(repositoryName=repo, filter={"tagStatus": "UNTAGGED"})["imageDetails"]
        self.assertEqual([d["imageDigest"] for d in untagged], [old.digest])
        self.assertFalse(untagged[0].get("imageTags"))


class Listing(EcrTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.repo = ecr.repo_name("listing")
        cls.ecr.create_repository(repositoryName=cls.repo)
        cls.tagged, cls.untagged = ecr.Image(), ecr.Image()
        cls.tags = [f"t{i}" for i in range(5)]
        ecr.push_image(cls.ecr, cls.repo, cls.tagged, tag=cls.tags[0])
        for tag in cls.tags[1:]:
            ecr.put_image(cls.ecr, cls.repo, cls.tagged.manifest, tag, cls.tagged.media_type)
        ecr.push_image(cls.ecr, cls.repo, cls.untagged)
        cls.all_ids = [{"imageDigest": cls.tagged.digest, "imageTag": t} for t in cls.tags] + [
            {"imageDigest": cls.untagged.digest}
        ]

    def test_list_images_default_is_every_image(self):
        self.assertCountEqual(self.ecr.list_images(repositoryName=self.repo)["imageIds"], self.all_ids)

    def test_list_images_by_tag_status(self):
        tagged = self.ecr.list_images(repositoryName=self.repo, filter={"tagStatus": "TAGGED"})["imageIds"]
        self.assertCountEqual(tagged, self.all_ids[:-1])
        untagged = self.ecr.list_images(repositoryName=self.repo, filter={"tagStatus": "UNTAGGED"})["imageIds"]
        self.assertEqual(untagged, [{"imageDigest": self.untagged.digest}])

    def test_list_images_paginator(self):
        pages = list(self.ecr.get_paginator("list_images").paginate(
            repositoryName=self.repo, PaginationConfig={"PageSize": 2}
        ))
        ids = [i for page in pages for i in page["imageIds"]]
        self.assertCountEqual(ids, self.all_ids)
        for page in pages[:-1]:
            self.assertEqual(len(page["imageIds"]), 2)
        self.assertGreaterEqual(len(pages), 3)

    def test_list_images_through_the_cli(self):
        first = ecr.cli("list-images", "--repository-name", self.repo, "--max-items", "2", "--page-size", "2")
        self.assertEqual(len(first["imageIds"]), 2)
        self.assertIn("NextToken", first)
        rest = ecr.cli("list-images", "--repository-name", self.repo, "--starting-token", first["NextToken"], "--page-size", "2")
        self.assertCountEqual(first["imageIds"] + rest["imageIds"], self.all_ids)

    def test_list_images_of_unknown_repository(self):
        self.assertEcrError("RepositoryNotFoundException", self.ecr.list_images, repositoryName=ecr.repo_name("missing"))

    def test_describe_images_paginator(self):
        pages = list(self.ecr.get_paginator("describe_images").paginate(
            repositoryName=self.repo, PaginationConfig={"PageSize": 1}
        ))
        digests = [d["imageDigest"] for page in pages for d in page["imageDetails"]]
        self.assertCountEqual(digests, [self.tagged.digest, self.untagged.digest])

    def test_describe_images_by_filter(self):
        tagged = self.ecr.describe_images(repositoryName=self.repo, filter={"tagStatus": "TAGGED"})["imageDetails"]
        self.assertEqual([d["imageDigest"] for d in tagged], [self.tagged.digest])
        self.assertCountEqual(tagged[0]["imageTags"], self.tags)
        every = self.ecr.describe_images(repositoryName=self.repo, filter={"tagStatus": "ANY"})["imageDetails"]
        self.assertCountEqual([d["imageDigest"] for d in every], [self.tagged.digest, self.untagged.digest])


class DescribeImages(EcrTestCase):
    def wait_for_pull_time(self, repo, image_id):
        # ECR records pulls asynchronously; Wharf should within moments.
        for _ in range(30):
            detail = self.ecr.describe_images(repositoryName=repo, imageIds=[image_id])["imageDetails"][0]
            if "lastRecordedPullTime" in detail:
                return detail["lastRecordedPullTime"]
            time.sleep(0.1)
        self.fail(f"no lastRecordedPullTime after a pull: {detail}")

    def test_details(self):
        repo = self.new_repo("describe")
        image = ecr.Image(layers=2)
        ecr.push_image(self.ecr, repo, image, tag="v1")
        for image_id in ({"imageTag": "v1"}, {"imageDigest": image.digest}):
            with self.subTest(**image_id):
                details = self.ecr.describe_images(repositoryName=repo, imageIds=[image_id])["imageDetails"]
                self.assertEqual(len(details), 1)
                detail = details[0]
                self.assertEqual(detail["registryId"], self.registry_id())
                self.assertEqual(detail["repositoryName"], repo)
                self.assertEqual(detail["imageDigest"], image.digest)
                self.assertEqual(detail["imageTags"], ["v1"])
                # The compressed layers, at least; at most everything the image holds.
                self.assertGreaterEqual(detail["imageSizeInBytes"], image.layers_size)
                self.assertLessEqual(detail["imageSizeInBytes"], image.layers_size + len(image.config) + image.size)
                self.assertRecent(detail["imagePushedAt"])
                self.assertEqual(detail["imageManifestMediaType"], ecr.OCI_MANIFEST)
                self.assertEqual(detail["artifactMediaType"], ecr.OCI_CONFIG)
                self.assertNotIn("lastRecordedPullTime", detail)

    def test_last_recorded_pull_time_after_batch_get_image(self):
        repo = self.new_repo("pulltime-api")
        image = ecr.Image()
        ecr.push_image(self.ecr, repo, image, tag="v1")
        self.ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
        self.assertRecent(self.wait_for_pull_time(repo, {"imageTag": "v1"}))

    def test_last_recorded_pull_time_after_a_v2_pull(self):
        repo = self.new_repo("pulltime-v2")
        image = ecr.Image()
        ecr.push_image(self.ecr, repo, image, tag="v1")
        got = ecr.v2("GET", f"{repo}/manifests/v1", headers={"Accept": ecr.OCI_MANIFEST})
        self.assertEqual(got.status, 200, got)
        self.assertRecent(self.wait_for_pull_time(repo, {"imageDigest": image.digest}))

    def test_unknown_images(self):
        repo = self.new_repo("describe-missing")
        ecr.push_image(self.ecr, repo, ecr.Image(), tag="v1")
        self.assertEcrError("ImageNotFoundException", self.ecr.describe_images, repositoryName=repo, imageIds=[{"imageTag": "nope"}])
        self.assertEcrError(
            "ImageNotFoundException", self.ecr.describe_images, repositoryName=repo, imageIds=[{"imageDigest": UNKNOWN_DIGEST}]
        )
        self.assertEcrError("RepositoryNotFoundException", self.ecr.describe_images, repositoryName=ecr.repo_name("missing"))

    def test_index_details(self):
        repo = self.new_repo("describe-index")
        amd, arm = ecr.Image(), ecr.Image()
        ecr.push_image(self.ecr, repo, amd)
        ecr.push_image(self.ecr, repo, arm)
        index, digest = ecr.index_of(amd, arm)
        ecr.put_image(self.ecr, repo, index, "multi", ecr.OCI_INDEX)
        detail = self.ecr.describe_images(repositoryName=repo, imageIds=[{"imageDigest": digest}])["imageDetails"][0]
        self.assertEqual(detail["imageManifestMediaType"], ecr.OCI_INDEX)
        self.assertEqual(detail["imageTags"], ["multi"])
        # ECR: "If the image is a manifest list, this will be the max size of all manifests in the list."
        children = self.ecr.describe_images(
            repositoryName=repo, imageIds=[{"imageDigest": amd.digest}, {"imageDigest": arm.digest}]
        )["imageDetails"]
        self.assertEqual(len(children), 2)
        self.assertEqual(detail["imageSizeInBytes"], max(c["imageSizeInBytes"] for c in children))


class BatchGetImage(EcrTestCase):
    def test_found_and_not_found(self):
        repo = self.new_repo("batch-get")
        image = ecr.Image()
        ecr.push_image(self.ecr, repo, image, tag="v1")
        answer = self.ecr.batch_get_image(
            repositoryName=repo,
            imageIds=[{"imageTag": "v1"}, {"imageTag": "nope"}, {"imageDigest": UNKNOWN_DIGEST}],
            acceptedMediaTypes=[ecr.OCI_MANIFEST, ecr.DOCKER_MANIFEST],
        )
        self.assertEqual(len(answer["images"]), 1)
        found = answer["images"][0]
        self.assertEqual(found["registryId"], self.registry_id())
        self.assertEqual(found["repositoryName"], repo)
        self.assertEqual(found["imageId"], {"imageDigest": image.digest, "imageTag": "v1"})
        self.assertEqual(found["imageManifest"], image.manifest)
        self.assertEqual(found["imageManifestMediaType"], ecr.OCI_MANIFEST)
        failures = sorted(answer["failures"], key=lambda f: json.dumps(f["imageId"], sort_keys=True))
        self.assertEqual([f["imageId"] for f in failures], [{"imageDigest": UNKNOWN_DIGEST}, {"imageTag": "nope"}])
        for failure in failures:
            self.assertEqual(failure["failureCode"], "ImageNotFound")
            self.assertTrue(failure.get("failureReason"))

    def test_tag_and_digest_that_do_not_match(self):
        repo = self.new_repo("batch-get-mismatch")
        first, second = ecr.Image(), ecr.Image()
        ecr.push_image(self.ecr, repo, first, tag="one")
        ecr.push_image(self.ecr, repo, second, tag="two")
        answer = self.ecr.batch_get_image(
            repositoryName=repo, imageIds=[{"imageTag": "one", "imageDigest": second.digest}]
        )
        self.assertEqual(answer["images"], [])
        self.assertEqual(answer["failures"][0]["imageId"], {"imageTag": "one", "imageDigest": second.digest})
        self.assertEqual(answer["failures"][0]["failureCode"], "ImageTagDoesNotMatchDigest")

    def test_by_digest(self):
        repo = self.new_repo("batch-get-digest")
        image = ecr.Image(docker=True)
        ecr.push_image(self.ecr, repo, image, tag="v1")
        answer = self.ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageDigest": image.digest}])
        self.assertEqual(answer["failures"], [])
        self.assertEqual(answer["images"][0]["imageId"]["imageDigest"], image.digest)
        self.assertEqual(answer["images"][0]["imageManifest"], image.manifest)
        self.assertEqual(answer["images"][0]["imageManifestMediaType"], ecr.DOCKER_MANIFEST)

    def test_unknown_repository(self):
        self.assertEcrError(
            "RepositoryNotFoundException", self.ecr.batch_get_image,
            repositoryName=ecr.repo_name("missing"), imageIds=[{"imageTag": "v1"}],
        )


class BatchDeleteImage(EcrTestCase):
    def ids(self, repo):
        return self.ecr.list_images(repositoryName=repo)["imageIds"]

    def test_by_tag(self):
        repo = self.new_repo("delete-tag")
        image = ecr.Image()
        ecr.push_image(self.ecr, repo, image, tag="v1")
        ecr.put_image(self.ecr, repo, image.manifest, "v2", image.media_type)

        answer = self.ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
        self.assertEqual(answer["failures"], [])
        self.assertEqual(answer["imageIds"], [{"imageDigest": image.digest, "imageTag": "v1"}])
        self.assertEqual(self.ids(repo), [{"imageDigest": image.digest, "imageTag": "v2"}])
        self.assertEqual(ecr.v2("GET", f"{repo}/manifests/v1", headers={"Accept": ecr.OCI_MANIFEST}).status, 404)

        # Its last tag takes the image with it.
        answer = self.ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "v2"}])
        self.assertEqual(answer["imageIds"], [{"imageDigest": image.digest, "imageTag": "v2"}])
        self.assertEqual(self.ids(repo), [])
        self.assertEcrError(
            "ImageNotFoundException", self.ecr.describe_images, repositoryName=repo, imageIds=[{"imageDigest": image.digest}]
        )
        self.assertEqual(ecr.v2("GET", f"{repo}/manifests/{image.digest}", headers={"Accept": ecr.OCI_MANIFEST}).status, 404)
        # Without images the repository is empty again.
        self.ecr.delete_repository(repositoryName=repo)

    def test_by_digest(self):
        repo = self.new_repo("delete-digest")
        image, other = ecr.Image(), ecr.Image()
        ecr.push_image(self.ecr, repo, image, tag="a")
        ecr.put_image(self.ecr, repo, image.manifest, "b", image.media_type)
        ecr.push_image(self.ecr, repo, other, tag="keep")
        answer = self.ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": image.digest}])
        self.assertEqual(answer["failures"], [])
        self.assertTrue(answer["imageIds"])
        self.assertEqual({i["imageDigest"] for i in answer["imageIds"]}, {image.digest})
        self.assertEqual(self.ids(repo), [{"imageDigest": other.digest, "imageTag": "keep"}])
        for tag in ("a", "b"):
            self.assertEqual(ecr.v2("GET", f"{repo}/manifests/{tag}", headers={"Accept": ecr.OCI_MANIFEST}).status, 404)

    def test_failures_echo_the_ids(self):
        repo = self.new_repo("delete-missing")
        image = ecr.Image()
        ecr.push_image(self.ecr, repo, image, tag="v1")
        answer = self.ecr.batch_delete_image(
            repositoryName=repo, imageIds=[{"imageTag": "nope"}, {"imageDigest": UNKNOWN_DIGEST}, {"imageTag": "v1"}]
        )
        self.assertEqual(answer["imageIds"], [{"imageDigest": image.digest, "imageTag": "v1"}])
        failures = sorted(answer["failures"], key=lambda f: json.dumps(f["imageId"], sort_keys=True))
        self.assertEqual([f["imageId"] for f in failures], [{"imageDigest": UNKNOWN_DIGEST}, {"imageTag": "nope"}])
        for failure in failures:
            self.assertEqual(failure["failureCode"], "ImageNotFound")
            self.assertTrue(failure.get("failureReason"))

    def test_through_the_cli(self):
        repo = self.new_repo("delete-cli")
        image = ecr.Image()
        ecr.push_image(self.ecr, repo, image, tag="v1")
        answer = ecr.cli("batch-delete-image", "--repository-name", repo, "--image-ids", "imageTag=v1", "imageTag=nope")
        self.assertEqual(answer["imageIds"], [{"imageDigest": image.digest, "imageTag": "v1"}])
        self.assertEqual(len(answer["failures"]), 1)
        self.assertEqual(answer["failures"][0]["imageId"], {"imageTag": "nope"})
        self.assertEqual(answer["failures"][0]["failureCode"], "ImageNotFound")
        self.assertEqual(self.ids(repo), [])

    def test_child_of_an_index(self):
        repo = self.new_repo("delete-index")
        amd, arm = ecr.Image(), ecr.Image()
        ecr.push_image(self.ecr, repo, amd)
        ecr.push_image(self.ecr, repo, arm)
        index, digest = ecr.index_of(amd, arm)
        ecr.put_image(self.ecr, repo, index, "multi", ecr.OCI_INDEX)

        answer = self.ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": amd.digest}])
        self.assertEqual(answer["imageIds"], [])
        self.assertEqual(len(answer["failures"]), 1)
        self.assertEqual(answer["failures"][0]["imageId"], {"imageDigest": amd.digest})
        self.assertEqual(answer["failures"][0]["failureCode"], "ImageReferencedByManifestList")
        self.assertEqual(len(self.ids(repo)), 3)

        # The index and its children together: children first, the index last.
        answer = self.ecr.batch_delete_image(
            repositoryName=repo,
            imageIds=[{"imageDigest": amd.digest}, {"imageDigest": arm.digest}, {"imageDigest": digest}],
        )
        self.assertEqual(answer["failures"], [])
        self.assertEqual({i["imageDigest"] for i in answer["imageIds"]}, {amd.digest, arm.digest, digest})
        self.assertEqual(self.ids(repo), [])

    def test_unknown_repository(self):
        self.assertEcrError(
            "RepositoryNotFoundException", self.ecr.batch_delete_image,
            repositoryName=ecr.repo_name("missing"), imageIds=[{"imageTag": "v1"}],
        )


SBOM = "application/vnd.example.sbom.v1+json"


class Referrers(EcrTestCase):
    def test_list_image_referrers(self):
        repo = self.new_repo("referrers")
        subject = ecr.Image()
        ecr.push_image(self.ecr, repo, subject, tag="v1")
        empty, sbom = b"{}", json.dumps({"sbom": os.urandom(8).hex()}).encode()
        ecr.upload_blob(self.ecr, repo, empty)
        ecr.upload_blob(self.ecr, repo, sbom)
        artifact = json.dumps({
            "schemaVersion": 2,
            "mediaType": ecr.OCI_MANIFEST,
            "artifactType": SBOM,
            "config": {"mediaType": ecr.OCI_EMPTY, "digest": ecr.sha256(empty), "size": len(empty)},
            "layers": [{"mediaType": "application/json", "digest": ecr.sha256(sbom), "size": len(sbom)}],
            "subject": subject.descriptor(),
            "annotations": {"org.example.kind": "sbom"},
        })
        ecr.put_image(self.ecr, repo, artifact, None, ecr.OCI_MANIFEST)
        digest = ecr.sha256(artifact.encode())

        referrers = self.ecr.list_image_referrers(repositoryName=repo, subjectId={"imageDigest": subject.digest})["referrers"]
        self.assertEqual(len(referrers), 1)
        self.assertEqual(referrers[0]["digest"], digest)
        self.assertEqual(referrers[0]["mediaType"], ecr.OCI_MANIFEST)
        self.assertEqual(referrers[0]["artifactType"], SBOM)
        self.assertEqual(referrers[0]["size"], len(artifact.encode()))

        matching = self.ecr.list_image_referrers(
            repositoryName=repo, subjectId={"imageDigest": subject.digest}, filter={"artifactTypes": [SBOM]}
        )["referrers"]
        self.assertEqual([r["digest"] for r in matching], [digest])
        other = self.ecr.list_image_referrers(
            repositoryName=repo, subjectId={"imageDigest": subject.digest},
            filter={"artifactTypes": ["application/vnd.example.other"]},
        )["referrers"]
        self.assertEqual(other, [])

        # The same referrer through /v2.
        listed = ecr.v2("GET", f"{repo}/referrers/{subject.digest}")
        self.assertEqual(listed.status, 200, listed)
        self.assertEqual([m["digest"] for m in listed.json()["manifests"]], [digest])

    def test_referrers_pagination(self):
        repo = self.new_repo("referrers-pages")
        subject = ecr.Image()
        ecr.push_image(self.ecr, repo, subject, tag="v1")
        empty = b"{}"
        ecr.upload_blob(self.ecr, repo, empty)
        digests = []
        for i in range(5):
            artifact = json.dumps({
                "schemaVersion": 2,
                "mediaType": ecr.OCI_MANIFEST,
                "artifactType": SBOM,
                "config": {"mediaType": ecr.OCI_EMPTY, "digest": ecr.sha256(empty), "size": len(empty)},
                "layers": [{"mediaType": ecr.OCI_EMPTY, "digest": ecr.sha256(empty), "size": len(empty)}],
                "subject": subject.descriptor(),
                "annotations": {"n": str(i)},
            })
            ecr.put_image(self.ecr, repo, artifact, None, ecr.OCI_MANIFEST)
            digests.append(ecr.sha256(artifact.encode()))
        # botocore has no paginator for ListImageReferrers: follow nextToken by hand.
        pages, token = [], None
        while len(pages) < 10:
            args = {"nextToken": token} if token else {}
            page = self.ecr.list_image_referrers(
                repositoryName=repo, subjectId={"imageDigest": subject.digest}, maxResults=2, **args
            )
            pages.append(page)
            token = page.get("nextToken")
            if not token:
                break
        found = [r["digest"] for page in pages for r in page["referrers"]]
        self.assertCountEqual(found, digests)
        for page in pages[:-1]:
            self.assertEqual(len(page["referrers"]), 2)

    def test_no_referrers(self):
        repo = self.new_repo("referrers-none")
        subject = ecr.Image()
        ecr.push_image(self.ecr, repo, subject, tag="v1")
        answer = self.ecr.list_image_referrers(repositoryName=repo, subjectId={"imageDigest": subject.digest})
        self.assertEqual(answer["referrers"], [])
