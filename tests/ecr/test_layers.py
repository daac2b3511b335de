"""Layer uploads and downloads: InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload,
BatchCheckLayerAvailability, GetDownloadUrlForLayer."""

import os
import uuid

import ecr
from ecr import EcrTestCase

UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class Layers(EcrTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.repo = ecr.repo_name("layers")
        cls.ecr.create_repository(repositoryName=cls.repo)

    def initiate(self):
        answer = self.ecr.initiate_layer_upload(repositoryName=self.repo)
        self.assertRegex(answer["uploadId"], UUID)
        self.assertGreater(answer["partSize"], 0)
        return answer["uploadId"]

    def part(self, upload_id, first, data, repo=None):
        return self.ecr.upload_layer_part(
            repositoryName=repo or self.repo, uploadId=upload_id, partFirstByte=first,
            partLastByte=first + len(data) - 1, layerPartBlob=data,
        )

    def test_upload_in_parts_then_check_and_download(self):
        data = os.urandom(70_000)
        upload_id = self.initiate()
        answer = self.part(upload_id, 0, data[:30_000])
        self.assertEqual(answer["lastByteReceived"], 29_999)
        self.assertEqual(answer["uploadId"], upload_id)
        self.assertEqual(answer["repositoryName"], self.repo)
        self.assertEqual(answer["registryId"], self.registry_id())
        self.assertEqual(self.part(upload_id, 30_000, data[30_000:])["lastByteReceived"], 69_999)
        done = self.ecr.complete_layer_upload(repositoryName=self.repo, uploadId=upload_id, layerDigests=[ecr.sha256(data)])
        self.assertEqual(done["layerDigest"], ecr.sha256(data))
        self.assertEqual(done["uploadId"], upload_id)
        self.assertEqual(done["repositoryName"], self.repo)
        self.assertEqual(done["registryId"], self.registry_id())

        unknown = "sha256:" + "0" * 64
        checked = self.ecr.batch_check_layer_availability(repositoryName=self.repo, layerDigests=[ecr.sha256(data), unknown])
        self.assertEqual(len(checked["layers"]), 1)
        layer = checked["layers"][0]
        self.assertEqual(layer["layerDigest"], ecr.sha256(data))
        self.assertEqual(layer["layerAvailability"], "AVAILABLE")
        self.assertEqual(layer["layerSize"], len(data))
        self.assertEqual(len(checked["failures"]), 1)
        failure = checked["failures"][0]
        self.assertEqual(failure["layerDigest"], unknown)
        self.assertEqual(failure["failureCode"], "MissingLayerDigest")
        self.assertTrue(failure.get("failureReason"))

        url = self.ecr.get_download_url_for_layer(repositoryName=self.repo, layerDigest=ecr.sha256(data))
        self.assertEqual(url["layerDigest"], ecr.sha256(data))
        # The URL works on its own, without any credentials (even with auth on), like S3's.
        fetched = ecr.http("GET", url["downloadUrl"])
        self.assertEqual(fetched.status, 200, fetched)
        self.assertEqual(fetched.body, data)

        # The blob is the repository's on /v2 too.
        head = ecr.v2("HEAD", f"{self.repo}/blobs/{ecr.sha256(data)}")
        self.assertEqual(head.status, 200, head)
        self.assertEqual(head.headers["Content-Length"], str(len(data)))

        # A finished upload is gone.
        self.assertEcrError("UploadNotFoundException", self.part, upload_id, 70_000, b"more")

    def test_large_layer_in_several_parts(self):
        # Parts under and over S3's 5 MiB multipart minimum, up to the largest UploadLayerPart
        # takes (20 MiB, some 27 MiB of JSON), and a tiny last one.
        sizes = [3 * 1024 * 1024, 20 * 1024 * 1024]
        data = os.urandom(sum(sizes) + 17)
        upload_id = self.initiate()
        first = 0
        for size in sizes + [len(data) - sum(sizes)]:
            answer = self.part(upload_id, first, data[first:first + size])
            first += size
            self.assertEqual(answer["lastByteReceived"], first - 1)
        done = self.ecr.complete_layer_upload(repositoryName=self.repo, uploadId=upload_id, layerDigests=[ecr.sha256(data)])
        self.assertEqual(done["layerDigest"], ecr.sha256(data))
        url = self.ecr.get_download_url_for_layer(repositoryName=self.repo, layerDigest=ecr.sha256(data))["downloadUrl"]
        fetched = ecr.http("GET", url)
        self.assertEqual(fetched.status, 200)
        self.assertTrue(fetched.body == data, "the downloaded layer differs from the uploaded one")

    def test_download_url_cannot_be_forged(self):
        data = os.urandom(300)
        ecr.upload_blob(self.ecr, self.repo, data)
        url = self.ecr.get_download_url_for_layer(repositoryName=self.repo, layerDigest=ecr.sha256(data))["downloadUrl"]
        for label, forged in (("truncated", url[:-10]), ("altered", url[:-12] + ("A" if url[-12] != "A" else "B") + url[-11:])):
            with self.subTest(label):
                answer = ecr.http("GET", forged)
                self.assertIn(answer.status, range(400, 500), answer)
                self.assertNotEqual(answer.body, data)

    def test_single_part_upload(self):
        data = b"single part " + uuid.uuid4().bytes
        self.assertEqual(ecr.upload_blob(self.ecr, self.repo, data), ecr.sha256(data))
        checked = self.ecr.batch_check_layer_availability(repositoryName=self.repo, layerDigests=[ecr.sha256(data)])
        self.assertEqual(checked["layers"][0]["layerSize"], len(data))
        self.assertEqual(checked["failures"], [])

    def test_part_out_of_order(self):
        upload_id = self.initiate()
        self.part(upload_id, 0, b"a" * 100)
        self.assertEcrError("InvalidLayerPartException", self.part, upload_id, 200, b"b" * 100)
        self.assertEcrError("InvalidLayerPartException", self.part, upload_id, 50, b"b" * 100)
        # The upload goes on from where it was.
        self.assertEqual(self.part(upload_id, 100, b"c" * 100)["lastByteReceived"], 199)
        data = b"a" * 100 + b"c" * 100
        done = self.ecr.complete_layer_upload(repositoryName=self.repo, uploadId=upload_id, layerDigests=[ecr.sha256(data)])
        self.assertEqual(done["layerDigest"], ecr.sha256(data))

    def test_first_part_not_at_zero(self):
        upload_id = self.initiate()
        self.assertEcrError("InvalidLayerPartException", self.part, upload_id, 10, b"x" * 10)

    def test_unknown_upload(self):
        unknown = str(uuid.uuid4())
        self.assertEcrError("UploadNotFoundException", self.part, unknown, 0, b"data")
        self.assertEcrError(
            "UploadNotFoundException", self.ecr.complete_layer_upload,
            repositoryName=self.repo, uploadId=unknown, layerDigests=[ecr.sha256(b"data")],
        )

    def test_upload_belongs_to_its_repository(self):
        other = self.new_repo("layers-other")
        upload_id = self.initiate()
        self.assertEcrError("UploadNotFoundException", self.part, upload_id, 0, b"data", repo=other)

    def test_upload_does_not_outlive_its_repository(self):
        repo = self.new_repo("layers-deleted")
        upload_id = self.ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
        self.part(upload_id, 0, b"abcd", repo=repo)
        self.ecr.delete_repository(repositoryName=repo, force=True)
        self.assertEcrError("RepositoryNotFoundException", self.part, upload_id, 4, b"efgh", repo=repo)
        self.ecr.create_repository(repositoryName=repo)
        self.assertEcrError("UploadNotFoundException", self.part, upload_id, 4, b"efgh", repo=repo)
        self.assertEcrError(
            "UploadNotFoundException", self.ecr.complete_layer_upload,
            repositoryName=repo, uploadId=upload_id, layerDigests=[ecr.sha256(b"abcd")],
        )

    def test_wrong_digest(self):
        upload_id = self.initiate()
        self.part(upload_id, 0, b"the real bytes")
        self.assertEcrError(
            "InvalidLayerException", self.ecr.complete_layer_upload,
            repositoryName=self.repo, uploadId=upload_id, layerDigests=[ecr.sha256(b"other bytes")],
        )

    def test_complete_without_parts(self):
        upload_id = self.initiate()
        self.assertEcrError(
            "EmptyUploadException", self.ecr.complete_layer_upload,
            repositoryName=self.repo, uploadId=upload_id, layerDigests=[ecr.sha256(b"")],
        )

    def test_layer_ops_on_unknown_repository(self):
        missing = ecr.repo_name("missing")
        self.assertEcrError("RepositoryNotFoundException", self.ecr.initiate_layer_upload, repositoryName=missing)
        self.assertEcrError(
            "RepositoryNotFoundException", self.ecr.batch_check_layer_availability,
            repositoryName=missing, layerDigests=[ecr.sha256(b"x")],
        )
        self.assertEcrError(
            "RepositoryNotFoundException", self.ecr.get_download_url_for_layer,
            repositoryName=missing, layerDigest=ecr.sha256(b"x"),
        )

    def test_download_url_of_unknown_layer(self):
        self.assertEcrError(
            "LayersNotFoundException", self.ecr.get_download_url_for_layer,
            repositoryName=self.repo, layerDigest="sha256:" + "1" * 64,
        )

    def test_layer_of_another_repository_is_not_available_here(self):
        other = self.new_repo("layers-elsewhere")
        data = os.urandom(1000)
        ecr.upload_blob(self.ecr, other, data)
        checked = self.ecr.batch_check_layer_availability(repositoryName=self.repo, layerDigests=[ecr.sha256(data)])
        self.assertEqual(checked["layers"], [])
        self.assertEqual(checked["failures"][0]["failureCode"], "MissingLayerDigest")
        self.assertEcrError(
            "LayersNotFoundException", self.ecr.get_download_url_for_layer,
            repositoryName=self.repo, layerDigest=ecr.sha256(data),
        )

    def test_blob_pushed_on_v2_is_available(self):
        data = os.urandom(5000)
        digest = ecr.sha256(data)
        started = ecr.v2("POST", f"{self.repo}/blobs/uploads/?digest={digest}", data,
                         {"Content-Type": "application/octet-stream"})
        self.assertEqual(started.status, 201, started)
        checked = self.ecr.batch_check_layer_availability(repositoryName=self.repo, layerDigests=[digest])
        self.assertEqual(checked["layers"][0]["layerAvailability"], "AVAILABLE")
        url = self.ecr.get_download_url_for_layer(repositoryName=self.repo, layerDigest=digest)["downloadUrl"]
        self.assertEqual(ecr.http("GET", url).body, data)

    def test_invalid_digest_format(self):
        checked = ecr.unvalidated_client().batch_check_layer_availability(
            repositoryName=self.repo, layerDigests=["not-a-digest"]
        )
        self.assertEqual(checked["layers"], [])
        self.assertEqual(checked["failures"][0]["layerDigest"], "not-a-digest")
        self.assertEqual(checked["failures"][0]["failureCode"], "InvalidLayerDigest")
