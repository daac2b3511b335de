"""The wire shape of the ECR API: AWS JSON 1.1 errors, unknown operations, /v2 on the same listener."""

import ecr
from ecr import EcrTestCase


class WireShape(EcrTestCase):
    def test_error_body(self):
        answer = ecr.raw_ecr("DescribeRepositories", {"repositoryNames": [ecr.repo_name("missing")]})
        self.assertEqual(answer.status, 400, answer)
        self.assertTrue(answer.headers["Content-Type"].startswith("application/x-amz-json-1.1"), answer)
        body = answer.json()
        self.assertEqual(body["__type"].split("#")[-1], "RepositoryNotFoundException")
        self.assertIsInstance(body.get("message"), str)
        self.assertTrue(body["message"])

    def test_request_id(self):
        # botocore reports x-amzn-RequestId as ResponseMetadata.RequestId, for errors and answers alike.
        for answer in (ecr.raw_ecr("DescribeRegistry"), ecr.raw_ecr("NoSuchOp")):
            self.assertTrue(answer.headers.get("x-amzn-RequestId"), answer)

    def test_success_body(self):
        answer = ecr.raw_ecr("DescribeRegistry")
        self.assertEqual(answer.status, 200, answer)
        self.assertTrue(answer.headers["Content-Type"].startswith("application/x-amz-json-1.1"), answer)
        self.assertRegex(answer.json()["registryId"], r"^[0-9]{12}$")

    def test_unknown_operation(self):
        answer = ecr.raw_ecr("NoSuchOp")
        self.assertEqual(answer.status, 400, answer)
        self.assertEqual(answer.json()["__type"].split("#")[-1], "UnknownOperationException")

    def test_other_service_target(self):
        answer = ecr.raw_ecr(None, target="DynamoDB_20120810.ListTables")
        self.assertEqual(answer.status, 400, answer)
        self.assertTrue(answer.json()["__type"])

    def test_body_that_is_not_json(self):
        answer = ecr.raw_ecr("DescribeRepositories", b"{not json")
        self.assertEqual(answer.status, 400, answer)
        self.assertTrue(answer.json()["__type"])

    def test_missing_required_parameter(self):
        answer = ecr.raw_ecr("CreateRepository", {})
        self.assertEqual(answer.status, 400, answer)
        self.assertIn(answer.json()["__type"].split("#")[-1], ("InvalidParameterException", "ValidationException"))

    def test_v2_on_the_same_listener(self):
        answer = ecr.http("GET", "/v2/")
        self.assertEqual(answer.status, 401 if ecr.AUTH else 200, answer)
        self.assertEqual(ecr.v2("GET", "").status, 200)

    def test_next_tokens_the_server_did_not_issue(self):
        repo = self.new_repo("tokens")
        forged = ("garbage", "eyJ4IjoxfQ")  # the second is base64 of {"x":1}
        for token in forged:
            with self.subTest(token=token):
                self.assertEcrError("InvalidParameterException", self.ecr.describe_repositories, nextToken=token)
                self.assertEcrError("InvalidParameterException", self.ecr.list_images, repositoryName=repo, nextToken=token)
                self.assertEcrError("InvalidParameterException", self.ecr.describe_images, repositoryName=repo, nextToken=token)
