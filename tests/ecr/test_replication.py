"""Replication: PutReplicationConfiguration, DescribeRegistry (which carries the configuration),
DescribeImageReplicationStatus, and `wharf replication get|backfill`.

Destinations are remotes made with `wharf remote add`, here on a closed port of the loopback, so
that every copy stays IN_PROGRESS (it is retried for hours before it is FAILED). The
configuration is the registry's, and tests of other files push images too: every test here sets
rules only for repositories of its own, and sets the configuration back to no rules at its end.
"""

import json
import os
import re
import socket
import uuid

import ecr
from ecr import EcrTestCase

EMPTY = {"rules": []}


def closed_port():
    """A port of 127.0.0.1 nothing listens on (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def registry_id_of_nobody():
    """Twelve digits no remote (nor this registry) is likely to be named."""
    return "9" + str(uuid.uuid4().int)[:11]


def prefix_filter(prefix):
    return {"filter": prefix, "filterType": "PREFIX_MATCH"}


class ReplicationTestCase(EcrTestCase):
    def tearDown(self):
        # Before the remotes go (cleanups run after tearDown).
        self.ecr.put_replication_configuration(replicationConfiguration=EMPTY)

    def add_remote(self, region="eu-west-3"):
        """A remote on a closed port (`wharf remote add --skip-check`), deleted after the test;
        the destination naming it."""
        self.need_wharf_cli()
        registry_id = registry_id_of_nobody()
        out = ecr.run_wharf(
            "remote", "add", "--registry-id", registry_id, "--region", region,
            "--url", f"http://127.0.0.1:{closed_port()}", "--skip-check",
        )
        self.assertIn(f"remote {registry_id} {region}", out)
        self.addCleanup(ecr.run_wharf, "remote", "delete", "--registry-id", registry_id, "--region", region)
        return {"region": region, "registryId": registry_id}

    def configuration(self):
        return self.ecr.describe_registry()["replicationConfiguration"]

    def statuses(self, repo, **image_id):
        answer = self.ecr.describe_image_replication_status(repositoryName=repo, imageId=image_id)
        self.assertEqual(answer["repositoryName"], repo)
        return answer


class ReplicationConfiguration(ReplicationTestCase):
    """What needs no remote."""

    def test_empty_configuration(self):
        put = self.ecr.put_replication_configuration(replicationConfiguration=EMPTY)
        self.assertEqual(put["replicationConfiguration"], EMPTY)
        registry = self.ecr.describe_registry()
        self.assertEqual(registry["registryId"], self.registry_id())
        self.assertEqual(registry["replicationConfiguration"], EMPTY)
        self.assertEqual(ecr.cli("describe-registry")["replicationConfiguration"], EMPTY)

    def test_unknown_destination_is_refused(self):
        before = self.configuration()
        nobody = {"region": "eu-west-3", "registryId": registry_id_of_nobody()}
        error = self.assertEcrError(
            "InvalidParameterException", self.ecr.put_replication_configuration,
            replicationConfiguration={"rules": [{"destinations": [nobody]}]},
        )
        self.assertIn(nobody["registryId"], error["Error"]["Message"])
        path = os.path.join(self.tempdir(), "replication.json")
        with open(path, "w") as f:
            json.dump({"rules": [{"destinations": [nobody], "repositoryFilters": [prefix_filter("ecr-suite/")]}]}, f)
        self.assertCliError("InvalidParameterException", "put-replication-configuration",
                            "--replication-configuration", f"file://{path}")
        self.assertEqual(self.configuration(), before)

    def test_malformed_configurations_are_refused(self):
        # What botocore would not send.
        before = self.configuration()
        nobody = {"region": "eu-west-3", "registryId": registry_id_of_nobody()}
        for why, body in (
            ("no rules member", {"replicationConfiguration": {}}),
            ("no configuration", {}),
            ("an unknown member", {"replicationConfiguration": {"rules": [{"destinations": [nobody], "bogus": True}]}}),
            ("rules not a list", {"replicationConfiguration": {"rules": "all"}}),
        ):
            with self.subTest(why):
                answer = ecr.raw_ecr("PutReplicationConfiguration", body)
                self.assertEqual(answer.status, 400, answer)
                self.assertIn(answer.json()["__type"].split("#")[-1],
                              ("InvalidParameterException", "ValidationException"), answer)
        self.assertEqual(self.configuration(), before)

    def test_status_of_unknown_repositories_and_images(self):
        missing = ecr.repo_name("repl-missing")
        self.assertEcrError(
            "RepositoryNotFoundException", self.ecr.describe_image_replication_status,
            repositoryName=missing, imageId={"imageTag": "v1"},
        )
        repo = self.new_repo("repl-empty")
        error = self.assertEcrError(
            "ImageNotFoundException", self.ecr.describe_image_replication_status,
            repositoryName=repo, imageId={"imageTag": "v1"},
        )
        self.assertIn(repo, error["Error"]["Message"])
        self.assertEcrError(
            "ImageNotFoundException", self.ecr.describe_image_replication_status,
            repositoryName=repo, imageId={"imageDigest": ecr.sha256(b"nothing")},
        )

    def test_image_no_rule_matches_has_no_statuses(self):
        repo = self.new_repo("repl-none")
        image = ecr.Image()
        ecr.push_image(self.ecr, repo, image, tag="v1")
        answer = self.statuses(repo, imageTag="v1")
        self.assertEqual(answer["imageId"], {"imageDigest": image.digest, "imageTag": "v1"})
        self.assertEqual(answer["replicationStatuses"], [])


class ReplicationRules(ReplicationTestCase):
    """Configurations naming remotes, and pushes replicated by them."""

    def setUp(self):
        self.need_wharf_cli()

    def test_put_and_describe(self):
        first, second = self.add_remote("eu-west-3"), self.add_remote("ap-south-1")
        prefix = ecr.repo_name("repl-put")
        configuration = {
            "rules": [
                {
                    "destinations": [first],
                    "repositoryFilters": [prefix_filter(prefix + "/a"), prefix_filter(prefix + "/b")],
                },
                {
                    "destinations": [first, second],
                    "repositoryFilters": [prefix_filter(prefix + "/c")],
                    "deleteReplication": {"enabled": False},
                },
            ]
        }
        put = self.ecr.put_replication_configuration(replicationConfiguration=configuration)
        self.assertEqual(put["replicationConfiguration"], configuration)
        registry = self.ecr.describe_registry()
        self.assertEqual(registry["registryId"], self.registry_id())
        self.assertEqual(registry["replicationConfiguration"], configuration)
        self.assertEqual(json.loads(ecr.run_wharf("replication", "get")), configuration)

        # A later configuration replaces the earlier one whole; a rule without filters (every
        # repository) is kept as it was given.
        replacement = {"rules": [{"destinations": [second]}]}
        self.assertEqual(
            self.ecr.put_replication_configuration(replicationConfiguration=replacement)["replicationConfiguration"],
            replacement,
        )
        self.assertEqual(self.configuration(), replacement)
        self.ecr.put_replication_configuration(replicationConfiguration=EMPTY)
        self.assertEqual(self.configuration(), EMPTY)

    def test_put_and_describe_through_the_cli(self):
        destination = self.add_remote()
        repo = self.new_repo("repl-cli")
        configuration = {"rules": [{"destinations": [destination], "repositoryFilters": [prefix_filter(repo)]}]}
        path = os.path.join(self.tempdir(), "replication.json")
        with open(path, "w") as f:
            json.dump(configuration, f)
        put = ecr.cli("put-replication-configuration", "--replication-configuration", f"file://{path}")
        self.assertEqual(put["replicationConfiguration"], configuration)
        described = ecr.cli("describe-registry")
        self.assertEqual(described["registryId"], self.registry_id())
        self.assertEqual(described["replicationConfiguration"], configuration)

        image = ecr.Image()
        ecr.push_image(self.ecr, repo, image, tag="v1")
        status = ecr.cli("describe-image-replication-status", "--repository-name", repo, "--image-id", "imageTag=v1")
        self.assertEqual(status["repositoryName"], repo)
        self.assertEqual(status["imageId"], {"imageDigest": image.digest, "imageTag": "v1"})
        self.assertEqual(status["replicationStatuses"], [dict(destination, status="IN_PROGRESS")])

    def test_invalid_configurations_are_refused(self):
        destination = self.add_remote()
        nobody = {"region": "eu-west-3", "registryId": registry_id_of_nobody()}
        prefix = ecr.repo_name("repl-invalid")
        valid = {"rules": [{"destinations": [destination], "repositoryFilters": [prefix_filter(prefix)]}]}
        self.ecr.put_replication_configuration(replicationConfiguration=valid)

        def rule(*destinations, **more):
            return dict({"destinations": list(destinations or [destination]),
                         "repositoryFilters": [prefix_filter(prefix)]}, **more)

        raw = ecr.unvalidated_client()
        for why, configuration in (
            ("eleven rules", {"rules": [rule() for _ in range(11)]}),
            ("no destinations", {"rules": [rule(), {"destinations": [], "repositoryFilters": [prefix_filter(prefix)]}]}),
            ("26 destinations", {"rules": [rule(*[destination] * 26)]}),
            ("an unknown destination among known ones", {"rules": [rule(destination, nobody)]}),
            ("a filterType other than PREFIX_MATCH", {"rules": [rule(repositoryFilters=[{"filter": prefix, "filterType": "WILDCARD"}])]}),
            ("a one-character filter", {"rules": [rule(repositoryFilters=[prefix_filter("e")])]}),
            ("deletions replicated", {"rules": [rule(deleteReplication={"enabled": True})]}),
        ):
            with self.subTest(why):
                self.assertEcrError("InvalidParameterException", raw.put_replication_configuration,
                                    replicationConfiguration=configuration)
                self.assertEqual(self.configuration(), valid)
        # Ten rules are allowed.
        most = {"rules": [rule() for _ in range(10)]}
        self.assertEqual(self.ecr.put_replication_configuration(replicationConfiguration=most)["replicationConfiguration"], most)
        self.assertEqual(self.configuration(), most)

    def test_push_into_a_matching_repository_is_queued(self):
        first, second = self.add_remote("eu-west-3"), self.add_remote("ap-south-1")
        matched = self.new_repo("repl-match")
        both = self.new_repo("repl-both")
        other = self.new_repo("repl-other")
        self.ecr.put_replication_configuration(replicationConfiguration={"rules": [
            {"destinations": [first], "repositoryFilters": [prefix_filter(matched), prefix_filter(both)]},
            {"destinations": [second, first], "repositoryFilters": [prefix_filter(both)]},
        ]})

        # Through the ECR API.
        image = ecr.Image()
        ecr.push_image(self.ecr, matched, image, tag="v1")
        answer = self.statuses(matched, imageTag="v1")
        self.assertEqual(answer["imageId"], {"imageDigest": image.digest, "imageTag": "v1"})
        self.assertEqual(answer["replicationStatuses"], [dict(first, status="IN_PROGRESS")])
        by_digest = self.statuses(matched, imageDigest=image.digest)
        self.assertEqual(by_digest["imageId"]["imageDigest"], image.digest)
        self.assertEqual(by_digest["replicationStatuses"], answer["replicationStatuses"])

        # Through /v2: one status per destination, however many rules name it.
        image = ecr.Image()
        ecr.push_blobs(self.ecr, both, image)
        put = ecr.v2("PUT", f"{both}/manifests/v1", image.manifest.encode(), {"Content-Type": image.media_type})
        self.assertEqual(put.status, 201, put)
        statuses = self.statuses(both, imageTag="v1")["replicationStatuses"]
        self.assertCountEqual(statuses, [dict(first, status="IN_PROGRESS"), dict(second, status="IN_PROGRESS")])
        for status in statuses:
            self.assertNotIn("failureCode", status)

        # A repository no filter matches.
        image = ecr.Image()
        ecr.push_image(self.ecr, other, image, tag="v1")
        self.assertEqual(self.statuses(other, imageTag="v1")["replicationStatuses"], [])

    def test_backfill_queues_images_pushed_before_the_rule(self):
        destination = self.add_remote()
        repo = self.new_repo("repl-backfill")
        tagged, untagged = ecr.Image(), ecr.Image()
        ecr.push_image(self.ecr, repo, tagged, tag="v1")
        ecr.push_image(self.ecr, repo, untagged)
        self.ecr.put_replication_configuration(replicationConfiguration={
            "rules": [{"destinations": [destination], "repositoryFilters": [prefix_filter(repo)]}]
        })
        # Images pushed before the rule are not queued by it...
        self.assertEqual(self.statuses(repo, imageTag="v1")["replicationStatuses"], [])
        self.assertEqual(self.statuses(repo, imageDigest=untagged.digest)["replicationStatuses"], [])

        # ... until a backfill queues them: the tagged one under its tag, the other by digest.
        out = ecr.run_wharf("replication", "backfill", "--repository", repo)
        self.assertRegex(out, r"queued 2 copies of 2 images in 1 repositories")
        for image_id in ({"imageTag": "v1"}, {"imageDigest": tagged.digest}, {"imageDigest": untagged.digest}):
            with self.subTest(**image_id):
                self.assertEqual(self.statuses(repo, **image_id)["replicationStatuses"],
                                 [dict(destination, status="IN_PROGRESS")])
        # Never twice.
        again = ecr.run_wharf("replication", "backfill", "--repository", repo)
        self.assertTrue(re.search(r"queued 0 copies of 2 images in 1 repositories", again), again)
