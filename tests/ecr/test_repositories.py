"""Repositories and the registry: CreateRepository, DescribeRepositories (and its pagination),
DeleteRepository, PutImageTagMutability, PutImageScanningConfiguration, DescribeRegistry."""

import datetime
import json
import re
from concurrent.futures import ThreadPoolExecutor

import ecr
from ecr import EcrTestCase


class Repositories(EcrTestCase):
    def assertRepository(self, repo, name, registry_id=None):
        registry_id = registry_id or self.registry_id()
        self.assertRegex(registry_id, r"^[0-9]{12}$")
        self.assertEqual(repo["repositoryName"], name)
        self.assertEqual(repo["registryId"], registry_id)
        self.assertEqual(repo["repositoryArn"], f"arn:aws:ecr:{ecr.REGION}:{registry_id}:repository/{name}")
        self.assertEqual(repo["repositoryUri"], f"{ecr.HOST}/{name}")

    def test_create_with_every_setting_through_the_cli(self):
        name = ecr.repo_name("cli")
        created = ecr.cli(
            "create-repository", "--repository-name", name,
            "--tags", "Key=team,Value=platform", "Key=env,Value=test",
            "--image-tag-mutability", "IMMUTABLE",
            "--image-scanning-configuration", "scanOnPush=true",
            "--encryption-configuration", "encryptionType=AES256",
        )["repository"]
        self.assertRepository(created, name)
        self.assertEqual(created["imageTagMutability"], "IMMUTABLE")
        self.assertEqual(created["imageScanningConfiguration"], {"scanOnPush": True})
        self.assertEqual(created["encryptionConfiguration"]["encryptionType"], "AES256")
        # The CLI prints timestamps as ISO 8601 (or epoch seconds); either way it is now.
        created_at = created["createdAt"]
        if isinstance(created_at, (int, float)):
            created_at = datetime.datetime.fromtimestamp(created_at, datetime.timezone.utc)
        else:
            created_at = datetime.datetime.fromisoformat(created_at)
        self.assertRecent(created_at)

        described = ecr.cli("describe-repositories", "--repository-names", name)["repositories"]
        self.assertEqual(len(described), 1)
        self.assertEqual(described[0], created)

        tags = self.ecr.list_tags_for_resource(resourceArn=created["repositoryArn"])["tags"]
        self.assertCountEqual(tags, [{"Key": "team", "Value": "platform"}, {"Key": "env", "Value": "test"}])

    def test_create_defaults(self):
        name = ecr.repo_name("defaults")
        repo = self.ecr.create_repository(repositoryName=name)["repository"]
        self.assertRepository(repo, name)
        self.assertEqual(repo["imageTagMutability"], "MUTABLE")
        self.assertEqual(repo["imageScanningConfiguration"], {"scanOnPush": False})
        self.assertEqual(repo["encryptionConfiguration"], {"encryptionType": "AES256"})
        self.assertRecent(repo["createdAt"])
        described = self.ecr.describe_repositories(repositoryNames=[name])["repositories"]
        self.assertEqual(described, [repo])

    def test_registry_id_is_stable_and_twelve_digits(self):
        first = self.ecr.create_repository(repositoryName=ecr.repo_name("id"))["repository"]["registryId"]
        second = self.ecr.create_repository(repositoryName=ecr.repo_name("id"))["repository"]["registryId"]
        self.assertRegex(first, r"^[0-9]{12}$")
        self.assertEqual(first, second)
        self.assertEqual(first, self.registry_id())
        if ecr.REGISTRY_ID:
            self.assertEqual(first, ecr.REGISTRY_ID, "the server was started with --registry-id")

    def test_registry_id_parameter_naming_this_registry_is_accepted(self):
        name = self.new_repo("regid")
        registry_id = self.registry_id()
        found = self.ecr.describe_repositories(registryId=registry_id, repositoryNames=[name])["repositories"]
        self.assertEqual([r["repositoryName"] for r in found], [name])

    def test_create_with_tag_mutability_exclusions(self):
        filters = [{"filterType": "WILDCARD", "filter": "latest*"}]
        for mutability in ("IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION"):
            with self.subTest(mutability):
                name = ecr.repo_name("exclusion")
                repo = self.ecr.create_repository(
                    repositoryName=name, imageTagMutability=mutability,
                    imageTagMutabilityExclusionFilters=filters,
                )["repository"]
                self.assertEqual(repo["imageTagMutability"], mutability)
                self.assertEqual(repo["imageTagMutabilityExclusionFilters"], filters)
                described = self.ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
                self.assertEqual(described["imageTagMutability"], mutability)
                self.assertEqual(described["imageTagMutabilityExclusionFilters"], filters)

    def test_unusual_valid_names(self):
        for label in ("a.b_c__d-e", "x--y/z.9", "deep/er/and/deeper/still"):
            with self.subTest(label):
                name = f"ecr-suite/{ecr.RUN}-{label}"
                repo = self.ecr.create_repository(repositoryName=name)["repository"]
                self.assertEqual(repo["repositoryName"], name)
                self.assertEqual(repo["repositoryUri"], f"{ecr.HOST}/{name}")
                described = self.ecr.describe_repositories(repositoryNames=[name])["repositories"]
                self.assertEqual(described[0]["repositoryArn"], repo["repositoryArn"])
                self.assertEqual(ecr.v2("GET", f"{name}/tags/list").status, 200)

    def test_create_existing_repository_fails(self):
        name = self.new_repo("twice")
        self.assertEcrError("RepositoryAlreadyExistsException", self.ecr.create_repository, repositoryName=name)

    def test_create_existing_repository_fails_through_the_cli(self):
        name = self.new_repo("twice-cli")
        self.assertCliError("RepositoryAlreadyExistsException", "create-repository", "--repository-name", name)

    def test_invalid_names_are_refused(self):
        raw = ecr.unvalidated_client()
        for bad in ("Bad/Name", "a//b", "trailing/", "-leading", "UPPER"):
            with self.subTest(bad):
                self.assertEcrError("InvalidParameterException", raw.create_repository, repositoryName=bad)

    def test_describe_unknown_repository(self):
        missing = ecr.repo_name("missing")
        self.assertEcrError("RepositoryNotFoundException", self.ecr.describe_repositories, repositoryNames=[missing])
        # One unknown name among known ones fails the whole call, as in ECR.
        known = self.new_repo("known")
        self.assertEcrError(
            "RepositoryNotFoundException", self.ecr.describe_repositories, repositoryNames=[known, missing]
        )

    def test_describe_unknown_repository_through_the_cli(self):
        stderr = self.assertCliError(
            "RepositoryNotFoundException", "describe-repositories", "--repository-names", ecr.repo_name("missing")
        )
        self.assertIn("DescribeRepositories", stderr)

    def test_describe_several_by_name(self):
        names = [self.new_repo("several") for _ in range(3)]
        found = self.ecr.describe_repositories(repositoryNames=names)["repositories"]
        self.assertCountEqual([r["repositoryName"] for r in found], names)

    def all_repository_names(self):
        names = []
        for page in self.ecr.get_paginator("describe_repositories").paginate():
            names += [r["repositoryName"] for r in page["repositories"]]
        return names

    def test_pagination_with_the_paginator(self):
        mine = [self.new_repo("page") for _ in range(5)]
        pages = list(self.ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 2}))
        names = [r["repositoryName"] for page in pages for r in page["repositories"]]
        self.assertEqual(len(names), len(set(names)), "a repository appeared on two pages")
        self.assertTrue(set(mine) <= set(names), "a repository is missing from the pages")
        for page in pages[:-1]:
            self.assertEqual(len(page["repositories"]), 2)
        self.assertLessEqual(len(pages[-1]["repositories"]), 2)
        self.assertNotIn("nextToken", pages[-1])
        self.assertCountEqual(names, self.all_repository_names())

    def test_pagination_with_max_results(self):
        for _ in range(3):
            self.new_repo("maxresults")
        first = self.ecr.describe_repositories(maxResults=2)
        self.assertEqual(len(first["repositories"]), 2)
        self.assertIn("nextToken", first)
        second = self.ecr.describe_repositories(maxResults=2, nextToken=first["nextToken"])
        self.assertTrue(second["repositories"])
        overlap = {r["repositoryName"] for r in first["repositories"]} & {r["repositoryName"] for r in second["repositories"]}
        self.assertFalse(overlap)

    def test_pagination_through_the_cli(self):
        for _ in range(3):
            self.new_repo("cli-page")
        first = ecr.cli("describe-repositories", "--max-items", "2", "--page-size", "2")
        self.assertEqual(len(first["repositories"]), 2)
        self.assertIn("NextToken", first)
        rest = ecr.cli("describe-repositories", "--starting-token", first["NextToken"], "--page-size", "2")
        names = [r["repositoryName"] for r in first["repositories"] + rest["repositories"]]
        self.assertEqual(len(names), len(set(names)), "a repository appeared twice")
        self.assertCountEqual(names, self.all_repository_names())

    def test_delete_empty_repository(self):
        name = self.new_repo("delete")
        deleted = self.ecr.delete_repository(repositoryName=name)["repository"]
        self.assertRepository(deleted, name)
        self.assertEcrError("RepositoryNotFoundException", self.ecr.describe_repositories, repositoryNames=[name])
        self.assertEcrError("RepositoryNotFoundException", self.ecr.delete_repository, repositoryName=name)

    def test_delete_repository_with_images(self):
        name = self.new_repo("delete-full")
        image = ecr.Image()
        ecr.push_image(self.ecr, name, image, tag="v1")
        self.assertEcrError("RepositoryNotEmptyException", self.ecr.delete_repository, repositoryName=name)
        self.assertEqual(ecr.v2("GET", f"{name}/manifests/v1", headers={"Accept": ecr.OCI_MANIFEST}).status, 200)
        deleted = self.ecr.delete_repository(repositoryName=name, force=True)["repository"]
        self.assertEqual(deleted["repositoryName"], name)
        self.assertEcrError("RepositoryNotFoundException", self.ecr.describe_repositories, repositoryNames=[name])
        self.assertEqual(ecr.v2("GET", f"{name}/manifests/v1", headers={"Accept": ecr.OCI_MANIFEST}).status, 404)
        # The name is free again, and the new repository is empty.
        self.ecr.create_repository(repositoryName=name)
        self.assertEqual(self.ecr.list_images(repositoryName=name)["imageIds"], [])

    def test_repository_with_layers_but_no_images_is_empty(self):
        name = self.new_repo("delete-layers-only")
        ecr.upload_blob(self.ecr, name, b"a layer no image uses " + ecr.RUN.encode())
        self.assertEqual(self.ecr.delete_repository(repositoryName=name)["repository"]["repositoryName"], name)

    def test_deleted_repository_leaves_no_policy_or_tags_behind(self):
        name = self.new_repo("delete-settings", tags=[{"Key": "k", "Value": "v"}], imageTagMutability="IMMUTABLE")
        self.ecr.set_repository_policy(repositoryName=name, policyText=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/alice"},
                           "Action": "ecr:BatchGetImage"}],
        }))
        self.ecr.delete_repository(repositoryName=name)
        repo = self.ecr.create_repository(repositoryName=name)["repository"]
        self.assertEqual(repo["imageTagMutability"], "MUTABLE")
        self.assertEcrError("RepositoryPolicyNotFoundException", self.ecr.get_repository_policy, repositoryName=name)
        self.assertEqual(self.ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"], [])

    def test_delete_unknown_repository(self):
        self.assertEcrError(
            "RepositoryNotFoundException", self.ecr.delete_repository, repositoryName=ecr.repo_name("missing")
        )

    def test_put_image_tag_mutability(self):
        name = self.new_repo("mutability")
        answer = self.ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="IMMUTABLE")
        self.assertEqual(answer["repositoryName"], name)
        self.assertEqual(answer["registryId"], self.registry_id())
        self.assertEqual(answer["imageTagMutability"], "IMMUTABLE")
        described = self.ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        self.assertEqual(described["imageTagMutability"], "IMMUTABLE")

        filters = [{"filterType": "WILDCARD", "filter": "dev-*"}]
        answer = self.ecr.put_image_tag_mutability(
            repositoryName=name, imageTagMutability="IMMUTABLE_WITH_EXCLUSION", imageTagMutabilityExclusionFilters=filters
        )
        self.assertEqual(answer["imageTagMutability"], "IMMUTABLE_WITH_EXCLUSION")
        self.assertEqual(answer["imageTagMutabilityExclusionFilters"], filters)
        described = self.ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        self.assertEqual(described["imageTagMutabilityExclusionFilters"], filters)

        answer = self.ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="MUTABLE")
        self.assertEqual(answer["imageTagMutability"], "MUTABLE")
        described = self.ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        self.assertEqual(described["imageTagMutability"], "MUTABLE")
        self.assertFalse(described.get("imageTagMutabilityExclusionFilters"))

    def test_put_image_tag_mutability_on_unknown_repository(self):
        self.assertEcrError(
            "RepositoryNotFoundException", self.ecr.put_image_tag_mutability,
            repositoryName=ecr.repo_name("missing"), imageTagMutability="IMMUTABLE",
        )

    def test_put_image_scanning_configuration(self):
        name = self.new_repo("scanning")
        answer = self.ecr.put_image_scanning_configuration(
            repositoryName=name, imageScanningConfiguration={"scanOnPush": True}
        )
        self.assertEqual(answer["repositoryName"], name)
        self.assertEqual(answer["registryId"], self.registry_id())
        self.assertEqual(answer["imageScanningConfiguration"], {"scanOnPush": True})
        described = self.ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        self.assertEqual(described["imageScanningConfiguration"], {"scanOnPush": True})
        self.assertEcrError(
            "RepositoryNotFoundException", self.ecr.put_image_scanning_configuration,
            repositoryName=ecr.repo_name("missing"), imageScanningConfiguration={"scanOnPush": True},
        )

    def test_describe_registry(self):
        answer = self.ecr.describe_registry()
        self.assertRegex(answer["registryId"], r"^[0-9]{12}$")
        self.assertEqual(answer["replicationConfiguration"]["rules"], [])
        if ecr.REGISTRY_ID:
            self.assertEqual(answer["registryId"], ecr.REGISTRY_ID)
        self.assertTrue(re.fullmatch(r"[0-9]{12}", ecr.cli("describe-registry")["registryId"]))

    def test_racing_creates_of_one_name(self):
        name = ecr.repo_name("race")

        def create(client):
            try:
                client.create_repository(repositoryName=name)
                return "created"
            except ecr.ClientError as error:
                return error.response["Error"]["Code"]

        clients = [ecr.client() for _ in range(6)]  # boto3 makes clients one at a time
        with ThreadPoolExecutor(6) as pool:
            outcomes = list(pool.map(create, clients))
        self.assertEqual(sorted(outcomes), ["RepositoryAlreadyExistsException"] * 5 + ["created"], outcomes)

    def test_delete_racing_pushes(self):
        # Whichever wins, every call answers as ECR would: done, or the repository (or its upload)
        # is gone; never a ServerException or a deadlock. And a deleted repository stays deleted:
        # nothing in flight brings it back. A race, so a few rounds.
        for round in range(4):
            name = self.new_repo("race-delete")
            images = [ecr.Image() for _ in range(3)]
            for image in images:
                ecr.push_blobs(self.ecr, name, image)
            clients = [ecr.client() for _ in range(6)]

            def work(k, name=name, images=images, clients=clients):
                try:
                    if k == 5:
                        clients[k].delete_repository(repositoryName=name, force=True)
                    elif k >= 3:
                        ecr.upload_blob(clients[k], name, f"racing layer {k} {name}".encode())
                    else:
                        ecr.put_image(clients[k], name, images[k].manifest, f"t{k}", images[k].media_type)
                    return "done"
                except ecr.ClientError as error:
                    return error.response["Error"]["Code"]

            with ThreadPoolExecutor(len(clients)) as pool:
                outcomes = list(pool.map(work, range(len(clients))))
            self.assertEqual(outcomes[5], "done", outcomes)
            allowed = {"done", "RepositoryNotFoundException", "UploadNotFoundException", "LayersNotFoundException"}
            self.assertTrue(set(outcomes) <= allowed, outcomes)
            with self.assertRaises(ecr.ClientError, msg=f"round {round}: the deleted repository is back after {outcomes}"):
                self.ecr.describe_repositories(repositoryNames=[name])
