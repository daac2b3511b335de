"""Lifecycle policies: PutLifecyclePolicy, GetLifecyclePolicy, DeleteLifecyclePolicy,
StartLifecyclePolicyPreview, GetLifecyclePolicyPreview, and `wharf lifecycle run` expiring what
the preview showed."""

import datetime
import json
import os
import time

import ecr
from ecr import EcrTestCase

RELEASES = [f"release-{i}" for i in range(1, 5)]


def keep_newest(prefix="release-", keep=1, priority=1):
    """A rule keeping the newest KEEP images tagged PREFIX…; its description also makes every
    policy longer than the 100 characters botocore asks for."""
    return {
        "rulePriority": priority,
        "description": f"keep only the newest {keep} images tagged {prefix}*, expire the older ones",
        "selection": {
            "tagStatus": "tagged",
            "tagPrefixList": [prefix],
            "countType": "imageCountMoreThan",
            "countNumber": keep,
        },
        "action": {"type": "expire"},
    }


def policy(*rules):
    return json.dumps({"rules": list(rules or [keep_newest()])}, indent=2)


def pushed_at(when):
    """A timestamp as the CLI prints it (ISO 8601 or epoch seconds) as a datetime."""
    if isinstance(when, (int, float)):
        return datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
    return datetime.datetime.fromisoformat(when)


class LifecycleTestCase(EcrTestCase):
    def push_releases(self, repo):
        """Pushes four images tagged release-1…4, in that order, each pushed later than the one
        before; {tag: digest}."""
        digests = {}
        for tag in RELEASES:
            image = ecr.Image()
            ecr.push_image(self.ecr, repo, image, tag=tag)
            digests[tag] = image.digest
            time.sleep(0.01)  # push times are in milliseconds: no two the same
        return digests

    def all_preview_results(self, repo, **args):
        """Every page of GetLifecyclePolicyPreview, followed through nextToken; (pages, results)."""
        pages, token = [], None
        while True:
            page = self.ecr.get_lifecycle_policy_preview(
                repositoryName=repo, **args, **({"nextToken": token} if token else {})
            )
            pages.append(page)
            token = page.get("nextToken")
            if not token:
                return pages, [result for page in pages for result in page["previewResults"]]
            self.assertLess(len(pages), 20, "nextToken never ends")

    def assertExpiresOlderReleases(self, results, digests, repo):
        """RESULTS are the preview of keep_newest() on the images of push_releases()."""
        self.assertEqual(
            sorted((r["imageDigest"], tuple(r.get("imageTags", []))) for r in results),
            sorted((digests[tag], (tag,)) for tag in RELEASES[:3]),
        )
        pushed = {
            detail["imageDigest"]: detail["imagePushedAt"]
            for detail in self.ecr.describe_images(repositoryName=repo)["imageDetails"]
        }
        for result in results:
            self.assertEqual(result["action"], {"type": "EXPIRE"}, result)
            self.assertEqual(result["appliedRulePriority"], 1, result)
            self.assertIsInstance(result["imagePushedAt"], datetime.datetime)
            self.assertRecent(result["imagePushedAt"])
            self.assertEqual(result["imagePushedAt"], pushed[result["imageDigest"]])


class Policies(LifecycleTestCase):
    def test_put_get_delete_through_the_cli(self):
        repo = self.new_repo("lifecycle-cli")
        text = policy()
        path = os.path.join(self.tempdir(), "policy.json")
        with open(path, "w") as f:
            f.write(text)

        put = ecr.cli("put-lifecycle-policy", "--repository-name", repo, "--lifecycle-policy-text", f"file://{path}")
        self.assertEqual(put["repositoryName"], repo)
        self.assertEqual(put["registryId"], self.registry_id())
        self.assertEqual(json.loads(put["lifecyclePolicyText"]), json.loads(text))

        got = ecr.cli("get-lifecycle-policy", "--repository-name", repo)
        self.assertEqual(got["repositoryName"], repo)
        self.assertEqual(got["registryId"], self.registry_id())
        self.assertEqual(json.loads(got["lifecyclePolicyText"]), json.loads(text))

        deleted = ecr.cli("delete-lifecycle-policy", "--repository-name", repo)
        self.assertEqual(deleted["repositoryName"], repo)
        self.assertEqual(json.loads(deleted["lifecyclePolicyText"]), json.loads(text))

        stderr = self.assertCliError("LifecyclePolicyNotFoundException", "get-lifecycle-policy", "--repository-name", repo)
        self.assertIn("GetLifecyclePolicy", stderr)
        self.assertCliError("LifecyclePolicyNotFoundException", "delete-lifecycle-policy", "--repository-name", repo)

    def test_put_replaces_the_policy(self):
        repo = self.new_repo("lifecycle-replace")
        self.ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=policy())
        second = policy(keep_newest("nightly-", keep=7), keep_newest("release-", keep=3, priority=2))
        answer = self.ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=second)
        self.assertEqual(answer["repositoryName"], repo)
        self.assertEqual(json.loads(answer["lifecyclePolicyText"]), json.loads(second))
        got = self.ecr.get_lifecycle_policy(repositoryName=repo)
        self.assertEqual(json.loads(got["lifecyclePolicyText"]), json.loads(second))

    def test_invalid_policies_are_refused(self):
        repo = self.new_repo("lifecycle-invalid")
        no_list = keep_newest()
        del no_list["selection"]["tagPrefixList"]
        bad_count = keep_newest()
        bad_count["selection"]["countType"] = "imageCountLessThan"
        bad_action = keep_newest()
        bad_action["action"] = {"type": "delete"}
        same_priority = [keep_newest("a-"), keep_newest("b-")]
        any_first = keep_newest()
        any_first["selection"] = {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}
        cases = {
            "not JSON": '{"rules": [' + " " * 120,
            "tagged without a tag list": policy(no_list),
            "unknown countType": policy(bad_count),
            "unknown action": policy(bad_action),
            "repeated rulePriority": policy(*same_priority),
            "any before another rule": policy(any_first, keep_newest(priority=2)),
        }
        for why, text in cases.items():
            with self.subTest(why):
                self.assertGreaterEqual(len(text), 100)
                error = self.assertEcrError(
                    "InvalidParameterException", self.ecr.put_lifecycle_policy, repositoryName=repo, lifecyclePolicyText=text
                )
                self.assertIn("Lifecycle policy validation failure", error["Error"]["Message"])
                self.assertEcrError(
                    "InvalidParameterException", self.ecr.start_lifecycle_policy_preview, repositoryName=repo,
                    lifecyclePolicyText=text,
                )
        # Nothing was stored.
        self.assertEcrError("LifecyclePolicyNotFoundException", self.ecr.get_lifecycle_policy, repositoryName=repo)
        self.assertEcrError("LifecyclePolicyPreviewNotFoundException", self.ecr.get_lifecycle_policy_preview, repositoryName=repo)

    def test_policy_text_length_is_checked_by_the_server(self):
        # botocore refuses texts under 100 characters itself; without its check the server does.
        repo = self.new_repo("lifecycle-length")
        raw = ecr.unvalidated_client()
        short = json.dumps({"rules": [{"rulePriority": 1}]})
        long = policy(dict(keep_newest(), description="x" * 30720))
        for why, text in (("short", short), ("long", long)):
            with self.subTest(why):
                error = self.assertEcrError(
                    "InvalidParameterException", raw.put_lifecycle_policy, repositoryName=repo, lifecyclePolicyText=text
                )
                self.assertIn("lifecyclePolicyText", error["Error"]["Message"])
        self.assertEcrError("LifecyclePolicyNotFoundException", self.ecr.get_lifecycle_policy, repositoryName=repo)

    def test_unknown_repository(self):
        missing = ecr.repo_name("missing")
        for call, args in (
            (self.ecr.put_lifecycle_policy, {"lifecyclePolicyText": policy()}),
            (self.ecr.get_lifecycle_policy, {}),
            (self.ecr.delete_lifecycle_policy, {}),
            (self.ecr.start_lifecycle_policy_preview, {"lifecyclePolicyText": policy()}),
            (self.ecr.start_lifecycle_policy_preview, {}),
            (self.ecr.get_lifecycle_policy_preview, {}),
        ):
            with self.subTest(call.__name__, args=sorted(args)):
                self.assertEcrError("RepositoryNotFoundException", call, repositoryName=missing, **args)

    def test_repository_without_a_policy(self):
        repo = self.new_repo("lifecycle-none")
        self.assertEcrError("LifecyclePolicyNotFoundException", self.ecr.get_lifecycle_policy, repositoryName=repo)
        self.assertEcrError("LifecyclePolicyNotFoundException", self.ecr.delete_lifecycle_policy, repositoryName=repo)
        # A preview of the repository's own policy needs one.
        self.assertEcrError("LifecyclePolicyNotFoundException", self.ecr.start_lifecycle_policy_preview, repositoryName=repo)
        self.assertEcrError("LifecyclePolicyPreviewNotFoundException", self.ecr.get_lifecycle_policy_preview, repositoryName=repo)

    def test_deleted_repository_takes_its_policy_and_preview_along(self):
        repo = self.new_repo("lifecycle-recreate")
        self.ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=policy())
        self.ecr.start_lifecycle_policy_preview(repositoryName=repo)
        self.ecr.delete_repository(repositoryName=repo, force=True)
        self.assertEcrError("RepositoryNotFoundException", self.ecr.get_lifecycle_policy, repositoryName=repo)
        self.ecr.create_repository(repositoryName=repo)
        self.assertEcrError("LifecyclePolicyNotFoundException", self.ecr.get_lifecycle_policy, repositoryName=repo)
        self.assertEcrError("LifecyclePolicyPreviewNotFoundException", self.ecr.get_lifecycle_policy_preview, repositoryName=repo)


class Previews(LifecycleTestCase):
    def test_preview_of_a_policy_in_the_request(self):
        repo = self.new_repo("preview")
        digests = self.push_releases(repo)
        text = policy()
        started = self.ecr.start_lifecycle_policy_preview(repositoryName=repo, lifecyclePolicyText=text)
        self.assertEqual(started["status"], "COMPLETE")
        self.assertEqual(started["repositoryName"], repo)
        self.assertEqual(started["registryId"], self.registry_id())
        self.assertEqual(json.loads(started["lifecyclePolicyText"]), json.loads(text))

        preview = self.ecr.get_lifecycle_policy_preview(repositoryName=repo)
        self.assertEqual(preview["status"], "COMPLETE")
        self.assertEqual(preview["repositoryName"], repo)
        self.assertEqual(json.loads(preview["lifecyclePolicyText"]), json.loads(text))
        self.assertEqual(preview["summary"]["expiringImageTotalCount"], 3)
        self.assertNotIn("nextToken", preview)
        self.assertEqual(len(preview["previewResults"]), 3)
        self.assertExpiresOlderReleases(preview["previewResults"], digests, repo)

        # A preview of a given text does not set the repository's policy, nor expire anything.
        self.assertEcrError("LifecyclePolicyNotFoundException", self.ecr.get_lifecycle_policy, repositoryName=repo)
        self.assertEqual(len(self.ecr.list_images(repositoryName=repo)["imageIds"]), 4)

    def test_preview_of_the_repository_policy(self):
        repo = self.new_repo("preview-own")
        digests = self.push_releases(repo)
        text = policy()
        self.ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=text)
        started = self.ecr.start_lifecycle_policy_preview(repositoryName=repo)
        self.assertEqual(started["status"], "COMPLETE")
        self.assertEqual(json.loads(started["lifecyclePolicyText"]), json.loads(text))
        preview = self.ecr.get_lifecycle_policy_preview(repositoryName=repo)
        self.assertEqual(preview["summary"]["expiringImageTotalCount"], 3)
        self.assertExpiresOlderReleases(preview["previewResults"], digests, repo)

        # A later preview replaces the earlier one: keeping three expires only release-1.
        self.ecr.start_lifecycle_policy_preview(repositoryName=repo, lifecyclePolicyText=policy(keep_newest(keep=3)))
        preview = self.ecr.get_lifecycle_policy_preview(repositoryName=repo)
        self.assertEqual([r["imageDigest"] for r in preview["previewResults"]], [digests["release-1"]])
        self.assertEqual(preview["summary"]["expiringImageTotalCount"], 1)

    def test_preview_pages(self):
        repo = self.new_repo("preview-pages")
        digests = self.push_releases(repo)
        self.ecr.start_lifecycle_policy_preview(repositoryName=repo, lifecyclePolicyText=policy())

        pages, results = self.all_preview_results(repo, maxResults=2)
        self.assertEqual([len(page["previewResults"]) for page in pages], [2, 1])
        for page in pages:
            self.assertEqual(page["summary"]["expiringImageTotalCount"], 3)
        seen = [r["imageDigest"] for r in results]
        self.assertEqual(len(seen), len(set(seen)), seen)
        self.assertExpiresOlderReleases(results, digests, repo)

        paginated = list(self.ecr.get_paginator("get_lifecycle_policy_preview").paginate(
            repositoryName=repo, PaginationConfig={"PageSize": 1}
        ))
        self.assertEqual(len(paginated), 3)
        results = [r for page in paginated for r in page["previewResults"]]
        self.assertEqual([r["imageDigest"] for r in results], seen)

        everything = self.ecr.get_paginator("get_lifecycle_policy_preview").paginate(
            repositoryName=repo, PaginationConfig={"PageSize": 2}
        ).build_full_result()
        self.assertEqual([r["imageDigest"] for r in everything["previewResults"]], seen)
        self.assertEqual(everything["summary"]["expiringImageTotalCount"], 3)
        self.assertEqual(everything["status"], "COMPLETE")

    def test_preview_filters(self):
        repo = self.new_repo("preview-filter")
        digests = self.push_releases(repo)
        self.ecr.start_lifecycle_policy_preview(repositoryName=repo, lifecyclePolicyText=policy())
        tagged = self.ecr.get_lifecycle_policy_preview(repositoryName=repo, filter={"tagStatus": "TAGGED"})
        self.assertEqual(len(tagged["previewResults"]), 3)
        untagged = self.ecr.get_lifecycle_policy_preview(repositoryName=repo, filter={"tagStatus": "UNTAGGED"})
        self.assertEqual(untagged["previewResults"], [])
        named = self.ecr.get_lifecycle_policy_preview(
            repositoryName=repo, imageIds=[{"imageTag": "release-2"}, {"imageTag": "release-4"}]
        )
        self.assertEqual([r["imageDigest"] for r in named["previewResults"]], [digests["release-2"]])
        self.assertEcrError(
            "InvalidParameterException", self.ecr.get_lifecycle_policy_preview, repositoryName=repo,
            imageIds=[{"imageTag": "release-2"}], maxResults=2,
        )

    def test_preview_through_the_cli(self):
        repo = self.new_repo("preview-cli")
        digests = self.push_releases(repo)
        path = os.path.join(self.tempdir(), "policy.json")
        with open(path, "w") as f:
            f.write(policy())
        started = ecr.cli(
            "start-lifecycle-policy-preview", "--repository-name", repo, "--lifecycle-policy-text", f"file://{path}"
        )
        self.assertEqual(started["status"], "COMPLETE")

        printed = ecr.cli("get-lifecycle-policy-preview", "--repository-name", repo)
        self.assertEqual(printed["status"], "COMPLETE")
        self.assertEqual(printed["summary"]["expiringImageTotalCount"], 3)
        by_boto = self.ecr.get_lifecycle_policy_preview(repositoryName=repo)["previewResults"]
        self.assertEqual(len(printed["previewResults"]), 3)
        for result, expected in zip(printed["previewResults"], by_boto):
            self.assertEqual(pushed_at(result.pop("imagePushedAt")), expected.pop("imagePushedAt"))
            self.assertEqual(result, expected)
        self.assertEqual(
            sorted(r["imageTags"][0] for r in printed["previewResults"]), RELEASES[:3],
        )
        self.assertEqual({r["imageDigest"] for r in printed["previewResults"]}, {digests[t] for t in RELEASES[:3]})

        # The CLI follows nextToken itself.
        paged = ecr.cli("get-lifecycle-policy-preview", "--repository-name", repo, "--page-size", "1")
        self.assertEqual([r["imageDigest"] for r in paged["previewResults"]], [r["imageDigest"] for r in by_boto])


class Expiry(LifecycleTestCase):
    def setUp(self):
        self.need_wharf_cli()

    def test_lifecycle_run_expires_what_the_preview_showed(self):
        repo = self.new_repo("expiry")
        digests = self.push_releases(repo)
        self.ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=policy())
        self.ecr.start_lifecycle_policy_preview(repositoryName=repo)
        preview = self.ecr.get_lifecycle_policy_preview(repositoryName=repo)["previewResults"]
        self.assertExpiresOlderReleases(preview, digests, repo)

        out = ecr.run_wharf("lifecycle", "run")
        self.assertRegex(out, r"applied the lifecycle policies of [0-9]+ repositories: [0-9]+ images expired")
        # One line per image expired: repository, digest, tags, push time, rule.
        lines = [line.split("\t") for line in out.splitlines() if line.startswith(repo + "\t")]
        self.assertEqual(
            sorted((fields[1], fields[2], fields[4]) for fields in lines),
            sorted((r["imageDigest"], ",".join(r["imageTags"]), "rule 1") for r in preview),
            out,
        )

        self.assertEqual(
            self.ecr.list_images(repositoryName=repo)["imageIds"],
            [{"imageDigest": digests["release-4"], "imageTag": "release-4"}],
        )
        fetched = self.ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "release-1"}, {"imageTag": "release-4"}])
        self.assertEqual([image["imageId"]["imageTag"] for image in fetched["images"]], ["release-4"])
        self.assertEqual(len(fetched["failures"]), 1, fetched["failures"])
        self.assertEqual(fetched["failures"][0]["imageId"], {"imageTag": "release-1"})
        self.assertEqual(fetched["failures"][0]["failureCode"], "ImageNotFound")
        self.assertEqual(ecr.v2("GET", f"{repo}/manifests/release-2", headers={"Accept": ecr.OCI_MANIFEST}).status, 404)
        self.assertEqual(ecr.v2("GET", f"{repo}/manifests/release-4", headers={"Accept": ecr.OCI_MANIFEST}).status, 200)

        # The policy stays; applied again, it finds nothing more to expire.
        self.assertEqual(json.loads(self.ecr.get_lifecycle_policy(repositoryName=repo)["lifecyclePolicyText"]), json.loads(policy()))
        again = ecr.run_wharf("lifecycle", "run")
        self.assertFalse([line for line in again.splitlines() if line.startswith(repo + "\t")], again)
        self.ecr.start_lifecycle_policy_preview(repositoryName=repo)
        after = self.ecr.get_lifecycle_policy_preview(repositoryName=repo)
        self.assertEqual(after["previewResults"], [])
        self.assertEqual(after["summary"]["expiringImageTotalCount"], 0)
