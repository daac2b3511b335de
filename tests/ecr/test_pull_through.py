"""Pull-through cache rules: CreatePullThroughCacheRule (and the upstreamRegistry it checks),
DescribePullThroughCacheRules (and its pages), UpdatePullThroughCacheRule,
DeletePullThroughCacheRule, ValidatePullThroughCacheRule; credentials stored with `wharf
pull-through create`; and a cache whose upstream is this server itself, filled on first pull."""

import json
import os
import re
import socket
import uuid

from botocore.exceptions import ClientError

import ecr
from ecr import EcrTestCase

# Upstreams ECR knows by name, as `upstreamRegistry` reports them (given without a scheme).
KNOWN_UPSTREAMS = {
    "registry-1.docker.io": "docker-hub",
    "docker.io": "docker-hub",
    "index.docker.io": "docker-hub",
    "public.ecr.aws": "ecr-public",
    "quay.io": "quay",
    "registry.k8s.io": "k8s",
    "ghcr.io": "github-container-registry",
    "registry.gitlab.com": "gitlab-container-registry",
    "cgr.dev": "chainguard",
    "suite.azurecr.io": "azure-container-registry",
    "123456789012.dkr.ecr.us-west-2.amazonaws.com": "ecr",
}
# The most rules a registry holds.
MAX_RULES = 50


def prefix_name(label="rule"):
    """An ecrRepositoryPrefix (2 to 30 characters) no other test or run uses."""
    return f"ptc-{label}-{ecr.RUN}{uuid.uuid4().hex[:4]}"


def credential_arn(registry_id, prefix):
    """The ARN ECR gives the credential of the rule for PREFIX (a Secrets Manager secret)."""
    return f"arn:aws:secretsmanager:{ecr.REGION}:{registry_id}:secret:ecr-pullthroughcache/{prefix}"


def stored_credential_arn(prefix):
    """What `wharf pull-through create --username` stores the credential of the rule for PREFIX
    under: the account and region in it are those the command was given (its --registry-id and
    --region, else the id kept in the database and us-east-1), which are the server's only when
    WHARF_ADMIN_ARGS repeats the server's."""
    return re.compile(rf"^arn:aws:secretsmanager:[a-z0-9-]+:[0-9]{{12}}:secret:ecr-pullthroughcache/{re.escape(prefix)}$")


def closed_port():
    """A port of 127.0.0.1 nothing listens on (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PullThroughTestCase(EcrTestCase):
    def create_rule(self, prefix=None, upstream="ghcr.io", **args):
        """CreatePullThroughCacheRule, deleted again after the test; its answer."""
        prefix = prefix or prefix_name()
        created = self.ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix=prefix, upstreamRegistryUrl=upstream, **args
        )
        self.forget_rule(created["ecrRepositoryPrefix"])
        return created

    def forget_rule(self, prefix):
        """Deletes the rule for PREFIX after the test, if it is still there: a registry holds at
        most 50, and reruns against one server must not run out."""

        def delete():
            try:
                self.ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
            except ClientError as error:
                if error.response["Error"]["Code"] != "PullThroughCacheRuleNotFoundException":
                    raise

        self.addCleanup(delete)

    def rule(self, prefix):
        """DescribePullThroughCacheRules of PREFIX alone: its one rule."""
        rules = self.ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=[prefix])["pullThroughCacheRules"]
        self.assertEqual(len(rules), 1, rules)
        return rules[0]

    def assertNoRule(self, prefix):
        self.assertEcrError(
            "PullThroughCacheRuleNotFoundException", self.ecr.describe_pull_through_cache_rules,
            ecrRepositoryPrefixes=[prefix],
        )

    def all_rules(self, **args):
        rules = []
        for page in self.ecr.get_paginator("describe_pull_through_cache_rules").paginate(**args):
            rules += page["pullThroughCacheRules"]
        return rules

    def validate(self, prefix, valid):
        """ValidatePullThroughCacheRule of PREFIX, which must say VALID; its answer. The answer
        repeats the rule (as DescribePullThroughCacheRules shows it) and has a failure exactly
        when the rule is not valid."""
        rule = self.rule(prefix)
        answer = self.ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
        self.assertEqual(answer["ecrRepositoryPrefix"], rule["ecrRepositoryPrefix"], answer)
        self.assertEqual(answer["registryId"], rule["registryId"], answer)
        self.assertEqual(answer["upstreamRegistryUrl"], rule["upstreamRegistryUrl"], answer)
        self.assertEqual(answer.get("credentialArn"), rule.get("credentialArn"), answer)
        self.assertIs(answer["isValid"], valid, answer)
        if valid:
            self.assertNotIn("failure", answer)
        else:
            self.assertIsInstance(answer.get("failure"), str, answer)
            self.assertTrue(answer["failure"].strip(), answer)
        return answer


class PullThroughRules(PullThroughTestCase):
    def test_create_describe_update_delete(self):
        prefix = prefix_name("crud")
        registry_id = self.registry_id()
        created = self.create_rule(prefix, "ghcr.io")
        self.assertEqual(created["ecrRepositoryPrefix"], prefix)
        self.assertEqual(created["upstreamRegistryUrl"], "https://ghcr.io")
        self.assertEqual(created["upstreamRegistry"], "github-container-registry")
        self.assertEqual(created["registryId"], registry_id)
        self.assertNotIn("credentialArn", created)
        self.assertRecent(created["createdAt"])

        described = self.rule(prefix)
        self.assertEqual(described["ecrRepositoryPrefix"], prefix)
        self.assertEqual(described["upstreamRegistryUrl"], "https://ghcr.io")
        self.assertEqual(described["upstreamRegistry"], "github-container-registry")
        self.assertEqual(described["registryId"], registry_id)
        self.assertEqual(described["createdAt"], created["createdAt"])
        self.assertEqual(described["updatedAt"], created["createdAt"])
        self.assertIn(prefix, [rule["ecrRepositoryPrefix"] for rule in self.all_rules()])

        # An update without credentialArn leaves a rule without a credential as it was, but
        # for its update time.
        updated = self.ecr.update_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
        self.assertEqual(updated["ecrRepositoryPrefix"], prefix)
        self.assertEqual(updated["registryId"], registry_id)
        self.assertNotIn("credentialArn", updated)
        self.assertGreaterEqual(updated["updatedAt"], created["createdAt"])
        self.assertEqual(self.rule(prefix)["updatedAt"], updated["updatedAt"])

        deleted = self.ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
        self.assertEqual(deleted["ecrRepositoryPrefix"], prefix)
        self.assertEqual(deleted["upstreamRegistryUrl"], "https://ghcr.io")
        self.assertEqual(deleted["registryId"], registry_id)
        self.assertEqual(deleted["createdAt"], created["createdAt"])
        self.assertNoRule(prefix)
        self.assertNotIn(prefix, [rule["ecrRepositoryPrefix"] for rule in self.all_rules()])
        self.assertEcrError(
            "PullThroughCacheRuleNotFoundException", self.ecr.delete_pull_through_cache_rule, ecrRepositoryPrefix=prefix
        )

    def test_through_the_cli(self):
        prefix = prefix_name("cli")
        self.forget_rule(prefix)
        created = ecr.cli(
            "create-pull-through-cache-rule", "--ecr-repository-prefix", prefix,
            "--upstream-registry-url", "public.ecr.aws",
        )
        self.assertEqual(created["ecrRepositoryPrefix"], prefix)
        self.assertEqual(created["upstreamRegistryUrl"], "https://public.ecr.aws")
        self.assertEqual(created["upstreamRegistry"], "ecr-public")
        self.assertEqual(created["registryId"], self.registry_id())

        described = ecr.cli("describe-pull-through-cache-rules", "--ecr-repository-prefixes", prefix)["pullThroughCacheRules"]
        self.assertEqual(len(described), 1)
        self.assertEqual(described[0]["createdAt"], created["createdAt"])
        self.assertEqual({k: v for k, v in described[0].items() if k != "updatedAt"}, created)
        # Without prefixes, every rule (the CLI follows nextToken itself).
        everything = ecr.cli("describe-pull-through-cache-rules", "--page-size", "1")["pullThroughCacheRules"]
        self.assertIn(prefix, [rule["ecrRepositoryPrefix"] for rule in everything])

        self.assertCliError(
            "PullThroughCacheRuleAlreadyExistsException", "create-pull-through-cache-rule",
            "--ecr-repository-prefix", prefix, "--upstream-registry-url", "quay.io",
        )
        deleted = ecr.cli("delete-pull-through-cache-rule", "--ecr-repository-prefix", prefix)
        self.assertEqual(deleted["ecrRepositoryPrefix"], prefix)
        self.assertEqual(deleted["upstreamRegistryUrl"], "https://public.ecr.aws")
        stderr = self.assertCliError(
            "PullThroughCacheRuleNotFoundException", "describe-pull-through-cache-rules", "--ecr-repository-prefixes", prefix
        )
        self.assertIn("DescribePullThroughCacheRules", stderr)
        self.assertCliError("PullThroughCacheRuleNotFoundException", "delete-pull-through-cache-rule",
                            "--ecr-repository-prefix", prefix)

    def test_trailing_slash_of_the_prefix_is_dropped(self):
        prefix = prefix_name("slash")
        created = self.create_rule(prefix + "/")
        self.assertEqual(created["ecrRepositoryPrefix"], prefix)
        self.assertEqual(self.rule(prefix)["ecrRepositoryPrefix"], prefix)
        self.assertEqual(self.rule(prefix + "/")["ecrRepositoryPrefix"], prefix)
        # The same prefix with or without the slash is the same rule.
        for again in (prefix, prefix + "/"):
            with self.subTest(again):
                self.assertEcrError(
                    "PullThroughCacheRuleAlreadyExistsException", self.ecr.create_pull_through_cache_rule,
                    ecrRepositoryPrefix=again, upstreamRegistryUrl="quay.io",
                )
        self.assertEqual(self.rule(prefix)["upstreamRegistryUrl"], "https://ghcr.io")
        self.assertEqual(self.ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix + "/")["ecrRepositoryPrefix"], prefix)
        self.assertNoRule(prefix)

    def test_upstream_urls(self):
        for upstream, name in KNOWN_UPSTREAMS.items():
            with self.subTest(upstream):
                created = self.create_rule(upstream=upstream)
                self.assertEqual(created["upstreamRegistryUrl"], f"https://{upstream}")
                self.assertEqual(created["upstreamRegistry"], name)
                self.assertEqual(self.rule(created["ecrRepositoryPrefix"])["upstreamRegistry"], name)
        # Any other registry: by its URL, without a name; a scheme given is kept, a trailing
        # slash is not.
        for upstream, stored in (
            ("registry.example.com:5000", "https://registry.example.com:5000"),
            ("https://registry.example.com", "https://registry.example.com"),
            ("http://127.0.0.1:5999/", "http://127.0.0.1:5999"),
        ):
            with self.subTest(upstream):
                created = self.create_rule(upstream=upstream)
                self.assertEqual(created["upstreamRegistryUrl"], stored)
                self.assertNotIn("upstreamRegistry", created)
                described = self.rule(created["ecrRepositoryPrefix"])
                self.assertEqual(described["upstreamRegistryUrl"], stored)
                self.assertNotIn("upstreamRegistry", described)

    def test_upstream_registry_must_match_the_url(self):
        # The name Wharf gives the upstream is accepted...
        for upstream, name in KNOWN_UPSTREAMS.items():
            with self.subTest(upstream):
                created = self.create_rule(upstream=upstream, upstreamRegistry=name)
                self.assertEqual(created["upstreamRegistryUrl"], f"https://{upstream}")
                self.assertEqual(created["upstreamRegistry"], name)
                self.assertEqual(self.rule(created["ecrRepositoryPrefix"])["upstreamRegistry"], name)
        # ... any other is refused, and so is any name for a host Wharf does not name.
        for upstream, name in (
            ("ghcr.io", "quay"),
            ("quay.io", "docker-hub"),
            ("registry-1.docker.io", "ecr-public"),
            ("public.ecr.aws", "ecr"),
            ("123456789012.dkr.ecr.us-west-2.amazonaws.com", "ecr-public"),
            ("suite.azurecr.io", "github-container-registry"),
            ("registry.example.com", "quay"),
            ("registry.example.com:5000", "ecr"),
            (f"http://127.0.0.1:{closed_port()}", "docker-hub"),
        ):
            with self.subTest(upstream=upstream, name=name):
                prefix = prefix_name("upname")
                self.forget_rule(prefix)
                error = self.assertEcrError(
                    "InvalidParameterException", self.ecr.create_pull_through_cache_rule,
                    ecrRepositoryPrefix=prefix, upstreamRegistryUrl=upstream, upstreamRegistry=name,
                )
                self.assertIn("upstreamRegistry", error["Error"]["Message"])
                self.assertNoRule(prefix)
        # The CLI's --upstream-registry, matching and not.
        prefix = prefix_name("upcli")
        self.forget_rule(prefix)
        self.assertCliError(
            "InvalidParameterException", "create-pull-through-cache-rule", "--ecr-repository-prefix", prefix,
            "--upstream-registry-url", "ghcr.io", "--upstream-registry", "quay",
        )
        self.assertNoRule(prefix)
        created = ecr.cli(
            "create-pull-through-cache-rule", "--ecr-repository-prefix", prefix,
            "--upstream-registry-url", "quay.io", "--upstream-registry", "quay",
        )
        self.assertEqual(created["upstreamRegistry"], "quay")
        self.assertEqual(self.rule(prefix)["upstreamRegistryUrl"], "https://quay.io")

    def test_invalid_upstream_urls_are_refused(self):
        for bad in ("ftp://ghcr.io", "https://", "https://ghcr.io/some/path", "ghcr.io?x=1", "user@ghcr.io"):
            with self.subTest(bad):
                prefix = prefix_name("badurl")
                self.forget_rule(prefix)
                error = self.assertEcrError(
                    "InvalidParameterException", self.ecr.create_pull_through_cache_rule,
                    ecrRepositoryPrefix=prefix, upstreamRegistryUrl=bad,
                )
                self.assertIn("upstream", error["Error"]["Message"])
                self.assertNoRule(prefix)

    def test_invalid_prefixes_are_refused(self):
        # botocore checks only the length; without its check the server checks it too.
        raw = ecr.unvalidated_client()
        for bad in ("p", "p" * 31, "ROOT", "Upper-case", "a//b", "-leading", "trailing-", f"ptc-{ecr.RUN}//"):
            with self.subTest(bad):
                self.assertEcrError(
                    "InvalidParameterException", raw.create_pull_through_cache_rule,
                    ecrRepositoryPrefix=bad, upstreamRegistryUrl="ghcr.io",
                )
        # The longest and shortest prefixes that are allowed.
        for good in ("p" * 26 + ecr.RUN[:4], ecr.RUN[:2]):
            with self.subTest(good):
                if good == ecr.RUN[:2]:
                    # Two characters leave no room for a run of its own: free it first if an
                    # earlier run left it behind.
                    try:
                        self.ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix=good)
                    except ClientError:
                        pass
                self.assertEqual(self.create_rule(good)["ecrRepositoryPrefix"], good)

    def test_unsupported_members_are_refused(self):
        prefix = prefix_name("unsupported")
        self.forget_rule(prefix)
        role = "arn:aws:iam::123456789012:role/ecr-pull-through"
        error = self.assertEcrError(
            "InvalidParameterException", self.ecr.create_pull_through_cache_rule,
            ecrRepositoryPrefix=prefix, upstreamRegistryUrl="ghcr.io", customRoleArn=role,
        )
        self.assertIn("customRoleArn", error["Error"]["Message"])
        error = self.assertEcrError(
            "InvalidParameterException", self.ecr.create_pull_through_cache_rule,
            ecrRepositoryPrefix=prefix, upstreamRegistryUrl="ghcr.io", upstreamRepositoryPrefix="library",
        )
        self.assertIn("upstreamRepositoryPrefix", error["Error"]["Message"])
        self.assertNoRule(prefix)

        self.create_rule(prefix)
        error = self.assertEcrError(
            "InvalidParameterException", self.ecr.update_pull_through_cache_rule,
            ecrRepositoryPrefix=prefix, customRoleArn=role,
        )
        self.assertIn("customRoleArn", error["Error"]["Message"])

    def test_unknown_credential_arn(self):
        prefix = prefix_name("nosecret")
        self.forget_rule(prefix)
        missing = credential_arn(self.registry_id(), prefix_name("missing"))
        error = self.assertEcrError(
            "SecretNotFoundException", self.ecr.create_pull_through_cache_rule,
            ecrRepositoryPrefix=prefix, upstreamRegistryUrl="ghcr.io", credentialArn=missing,
        )
        self.assertIn(missing, error["Error"]["Message"])
        self.assertNoRule(prefix)
        # An ARN that is not of a secret named ecr-pullthroughcache/… is not a credential.
        other = f"arn:aws:secretsmanager:{ecr.REGION}:{self.registry_id()}:secret:another-secret/{prefix}"
        self.assertEcrError(
            "InvalidParameterException", self.ecr.create_pull_through_cache_rule,
            ecrRepositoryPrefix=prefix, upstreamRegistryUrl="ghcr.io", credentialArn=other,
        )
        self.assertNoRule(prefix)

        self.create_rule(prefix)
        self.assertEcrError(
            "SecretNotFoundException", self.ecr.update_pull_through_cache_rule,
            ecrRepositoryPrefix=prefix, credentialArn=missing,
        )
        self.assertNotIn("credentialArn", self.rule(prefix))

    def test_unknown_prefix(self):
        known = self.create_rule()["ecrRepositoryPrefix"]
        missing = prefix_name("missing")
        self.assertNoRule(missing)
        # One unknown prefix among known ones fails the whole call.
        self.assertEcrError(
            "PullThroughCacheRuleNotFoundException", self.ecr.describe_pull_through_cache_rules,
            ecrRepositoryPrefixes=[known, missing],
        )
        self.assertEcrError(
            "PullThroughCacheRuleNotFoundException", self.ecr.update_pull_through_cache_rule, ecrRepositoryPrefix=missing
        )
        self.assertEcrError(
            "PullThroughCacheRuleNotFoundException", self.ecr.delete_pull_through_cache_rule, ecrRepositoryPrefix=missing
        )
        # A prefix of a rule's prefix is another prefix.
        self.assertNoRule(known[:-1])

    def test_validate(self):
        # Nothing answers on the upstream's port: not valid, and why.
        closed = f"http://127.0.0.1:{closed_port()}"
        prefix = self.create_rule(upstream=closed)["ecrRepositoryPrefix"]
        answer = self.validate(prefix, False)
        self.assertEqual(answer["upstreamRegistryUrl"], closed)
        self.assertEqual(answer["registryId"], self.registry_id())
        self.assertNotIn("credentialArn", answer)
        # The same through the CLI, and with the prefix's trailing slash.
        out = ecr.cli("validate-pull-through-cache-rule", "--ecr-repository-prefix", prefix + "/")
        self.assertEqual(out["ecrRepositoryPrefix"], prefix)
        self.assertEqual(out["upstreamRegistryUrl"], closed)
        self.assertIs(out["isValid"], False)
        self.assertTrue(out["failure"].strip(), out)

        missing = prefix_name("missing")
        self.assertEcrError(
            "PullThroughCacheRuleNotFoundException", self.ecr.validate_pull_through_cache_rule,
            ecrRepositoryPrefix=missing,
        )
        self.assertNoRule(missing)

    def test_pages(self):
        common = prefix_name("page")
        prefixes = [f"{common}-{i}" for i in range(3)]
        for prefix in prefixes:
            self.create_rule(prefix)

        # All rules, one a page.
        pages = list(self.ecr.get_paginator("describe_pull_through_cache_rules").paginate(
            PaginationConfig={"PageSize": 1}
        ))
        names = [rule["ecrRepositoryPrefix"] for page in pages for rule in page["pullThroughCacheRules"]]
        self.assertEqual(len(names), len(set(names)), "a rule appeared on two pages")
        self.assertTrue(set(prefixes) <= set(names), names)
        for page in pages:
            self.assertLessEqual(len(page["pullThroughCacheRules"]), 1)
        self.assertNotIn("nextToken", pages[-1])

        self.assertEqual(names, sorted(names), "the rules are not in prefix order")

        # The rules of given prefixes, asked for out of order and one twice: each once, in
        # prefix order, on one page or across pages.
        asked = [prefixes[2], prefixes[0], prefixes[1], prefixes[0]]
        whole = self.ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=asked)
        self.assertEqual([rule["ecrRepositoryPrefix"] for rule in whole["pullThroughCacheRules"]], prefixes)
        self.assertNotIn("nextToken", whole)
        first = self.ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=asked, maxResults=2)
        self.assertEqual([rule["ecrRepositoryPrefix"] for rule in first["pullThroughCacheRules"]], prefixes[:2])
        self.assertTrue(first.get("nextToken"))
        second = self.ecr.describe_pull_through_cache_rules(
            ecrRepositoryPrefixes=asked, maxResults=2, nextToken=first["nextToken"]
        )
        self.assertEqual([rule["ecrRepositoryPrefix"] for rule in second["pullThroughCacheRules"]], prefixes[2:])
        self.assertNotIn("nextToken", second)
        for size in (1, 2, 3):
            with self.subTest(page_size=size):
                pages = list(self.ecr.get_paginator("describe_pull_through_cache_rules").paginate(
                    ecrRepositoryPrefixes=asked, PaginationConfig={"PageSize": size}
                ))
                names = [rule["ecrRepositoryPrefix"] for page in pages for rule in page["pullThroughCacheRules"]]
                self.assertEqual(names, prefixes)
                self.assertEqual(len(pages), -(-len(prefixes) // size))
                self.assertNotIn("nextToken", pages[-1])

        raw = ecr.unvalidated_client()
        for why, args in (
            ("maxResults 0", {"maxResults": 0}),
            ("maxResults 1001", {"maxResults": 1001}),
            ("a token of nothing", {"nextToken": "not a token!"}),
        ):
            with self.subTest(why):
                self.assertEcrError("InvalidParameterException", raw.describe_pull_through_cache_rules, **args)

    def test_at_most_fifty_rules(self):
        existing = len(self.all_rules())
        self.assertLessEqual(existing, MAX_RULES)
        common = prefix_name("max")
        for i in range(MAX_RULES - existing):
            self.create_rule(f"{common}-{i}")
        self.assertEqual(len(self.all_rules()), MAX_RULES)
        one_more = f"{common}-x"
        self.forget_rule(one_more)
        self.assertEcrError(
            "LimitExceededException", self.ecr.create_pull_through_cache_rule,
            ecrRepositoryPrefix=one_more, upstreamRegistryUrl="ghcr.io",
        )
        self.assertNoRule(one_more)
        self.assertEqual(len(self.all_rules()), MAX_RULES)


class PullThroughCredentials(PullThroughTestCase):
    def setUp(self):
        self.need_wharf_cli()

    def test_credentials_stored_with_the_cli(self):
        registry_id = self.registry_id()
        stored, sharing, updated = prefix_name("cred"), prefix_name("share"), prefix_name("update")
        for prefix in (stored, sharing, updated):
            self.forget_rule(prefix)
        password = f"secret-{uuid.uuid4().hex}"
        out = ecr.run_wharf(
            "pull-through", "create", "--prefix", stored, "--upstream", "quay.io",
            "--username", "robot", "--password-stdin", "--skip-check", input=password + "\n",
        )
        self.assertIn(f"created pull-through cache rule {stored} -> https://quay.io", out)
        rule = self.rule(stored)
        arn = rule["credentialArn"]
        self.assertRegex(arn, stored_credential_arn(stored))
        self.assertEqual(rule["registryId"], registry_id)
        self.assertEqual(rule["upstreamRegistryUrl"], "https://quay.io")
        self.assertEqual(rule["upstreamRegistry"], "quay")
        self.assertRecent(rule["createdAt"])

        listed = ecr.run_wharf("pull-through", "list")
        self.assertRegex(listed, rf"(?m)^{re.escape(stored)}\s+https://quay\.io\s+{re.escape(arn)}$")
        self.assertNotIn(password, listed)

        # Another rule may name the stored credential, when created or updated.
        created = self.create_rule(sharing, "quay.io", credentialArn=arn)
        self.assertEqual(created["credentialArn"], arn)
        self.assertEqual(self.rule(sharing)["credentialArn"], arn)
        before = self.create_rule(updated, "quay.io")
        answer = self.ecr.update_pull_through_cache_rule(ecrRepositoryPrefix=updated, credentialArn=arn)
        self.assertEqual(answer["credentialArn"], arn)
        self.assertGreaterEqual(answer["updatedAt"], before["createdAt"])
        described = self.rule(updated)
        self.assertEqual(described["credentialArn"], arn)
        self.assertEqual(described["updatedAt"], answer["updatedAt"])
        self.assertEqual(described["createdAt"], before["createdAt"])
        # An update without one takes it away.
        answer = self.ecr.update_pull_through_cache_rule(ecrRepositoryPrefix=updated)
        self.assertNotIn("credentialArn", answer)
        self.assertNotIn("credentialArn", self.rule(updated))

        # The credential outlives the rule it came with while another rule names it...
        out = ecr.run_wharf("pull-through", "delete", "--prefix", stored)
        self.assertIn(f"deleted pull-through cache rule {stored}", out)
        self.assertNoRule(stored)
        self.assertNotRegex(ecr.run_wharf("pull-through", "list"), rf"(?m)^{re.escape(stored)}\s")
        self.ecr.update_pull_through_cache_rule(ecrRepositoryPrefix=updated, credentialArn=arn)
        # ... and is forgotten with the last rule that names it.
        self.ecr.update_pull_through_cache_rule(ecrRepositoryPrefix=updated)
        self.ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix=sharing)
        self.assertEcrError(
            "SecretNotFoundException", self.ecr.update_pull_through_cache_rule, ecrRepositoryPrefix=updated, credentialArn=arn
        )

    def test_cli_checks_the_upstream_first(self):
        prefix = prefix_name("check")
        self.forget_rule(prefix)
        # Nothing listens on port 1 of the loopback.
        done = ecr.wharf("pull-through", "create", "--prefix", prefix, "--upstream", "http://127.0.0.1:1",
                     "--username", "robot", "--password-stdin", input="secret\n")
        self.assertNotEqual(done.returncode, 0, done.stdout)
        self.assertIn("nothing stored", done.stderr)
        self.assertNoRule(prefix)
        self.assertNotRegex(ecr.run_wharf("pull-through", "list"), rf"(?m)^{re.escape(prefix)}\s")


class PullThroughCache(PullThroughTestCase):
    """A rule whose upstream is this very server: `<prefix>/<repo>` caches `<repo>`."""

    def upstream_credential(self):
        """With auth on: the ARN of a credential of a user who may only pull, stored with `wharf
        pull-through create` (which checks that the server takes it) along with a rule of its own."""
        self.need_wharf_cli()
        user = f"ptc-puller-{ecr.RUN}-{uuid.uuid4().hex[:6]}"
        password = uuid.uuid4().hex
        ecr.run_wharf("user", "create", user, "--password", password)
        self.addCleanup(ecr.run_wharf, "user", "delete", user)
        policy = os.path.join(self.tempdir(), "policy.json")
        with open(policy, "w") as f:
            json.dump({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                    "Resource": "*",
                }],
            }, f)
        ecr.run_wharf("policy", "set", "--user", user, policy)
        holder = prefix_name("login")
        self.forget_rule(holder)
        # A wrong password is refused by the check, and nothing is stored.
        refused = ecr.wharf("pull-through", "create", "--prefix", holder, "--upstream", ecr.URL,
                        "--username", user, "--password-stdin", input="wrong\n")
        self.assertNotEqual(refused.returncode, 0, refused.stdout)
        self.assertNoRule(holder)
        ecr.run_wharf("pull-through", "create", "--prefix", holder, "--upstream", ecr.URL,
                      "--username", user, "--password-stdin", input=password + "\n")
        arn = self.rule(holder)["credentialArn"]
        self.assertRegex(arn, stored_credential_arn(holder))
        return arn

    def manifest(self, repo, reference, image):
        return ecr.v2("GET", f"{repo}/manifests/{reference}", headers={"Accept": image.media_type})

    def test_pull_through_this_server(self):
        self.need_skopeo()
        upstream = self.new_repo("ptc-upstream")
        first, second, untagged = ecr.Image(layers=2), ecr.Image(), ecr.Image()
        ecr.push_image(self.ecr, upstream, first, tag="v1")
        ecr.push_image(self.ecr, upstream, untagged)
        prefix = prefix_name("self")
        cached = f"{prefix}/{upstream}"

        created = self.create_rule(prefix, ecr.URL)
        self.assertEqual(created["upstreamRegistryUrl"], ecr.URL)
        self.assertNotIn("upstreamRegistry", created)
        self.assertEcrError("RepositoryNotFoundException", self.ecr.describe_repositories, repositoryNames=[cached])
        if ecr.AUTH:
            # The server asks its own client for credentials, which the rule does not have yet.
            failure = self.validate(prefix, False)["failure"]
            self.assertIn("anonymous access was refused", failure)
            refused = self.manifest(cached, "v1", first)
            self.assertEqual(refused.status, 502, refused)
            error = refused.json()["errors"][0]
            self.assertEqual(error["code"], "UNAVAILABLE")
            self.assertIn("anonymous access was refused", error["message"])
            self.assertEcrError("RepositoryNotFoundException", self.ecr.describe_repositories, repositoryNames=[cached])
            arn = self.upstream_credential()
            self.assertEqual(
                self.ecr.update_pull_through_cache_rule(ecrRepositoryPrefix=prefix, credentialArn=arn)["credentialArn"], arn
            )
            self.assertEqual(self.validate(prefix, True)["credentialArn"], arn)
        else:
            self.assertNotIn("credentialArn", self.validate(prefix, True))

        # The first pull of a tag fetches the manifest and creates the repository.
        got = self.manifest(cached, "v1", first)
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.body, first.manifest.encode())
        self.assertEqual(got.headers["Docker-Content-Digest"], first.digest)
        self.assertEqual(got.headers["Content-Type"], first.media_type)
        for digest, data in first.blobs.items():
            with self.subTest(blob=digest):
                blob = ecr.v2("GET", f"{cached}/blobs/{digest}")
                self.assertEqual(blob.status, 200, blob)
                self.assertEqual(blob.body, data)
        repository = self.ecr.describe_repositories(repositoryNames=[cached])["repositories"][0]
        self.assertEqual(repository["repositoryName"], cached)
        self.assertEqual(repository["repositoryUri"], f"{ecr.HOST}/{cached}")
        self.assertEqual(self.ecr.list_images(repositoryName=cached)["imageIds"],
                         [{"imageDigest": first.digest, "imageTag": "v1"}])
        # The cache is an ordinary repository for the ECR API.
        fetched = self.ecr.batch_get_image(repositoryName=cached, imageIds=[{"imageTag": "v1"}])["images"]
        self.assertEqual([image["imageManifest"] for image in fetched], [first.manifest])
        layer = first.layers[0]["digest"]
        self.assertEqual(
            self.ecr.batch_check_layer_availability(repositoryName=cached, layerDigests=[layer])["layers"][0]["layerAvailability"],
            "AVAILABLE",
        )

        # A manifest by digest, and what the upstream does not have.
        by_digest = self.manifest(cached, untagged.digest, untagged)
        self.assertEqual(by_digest.status, 200, by_digest)
        self.assertEqual(by_digest.body, untagged.manifest.encode())
        missing = self.manifest(cached, "no-such-tag", first)
        self.assertEqual(missing.status, 404, missing)
        self.assertEqual(missing.json()["errors"][0]["code"], "MANIFEST_UNKNOWN")
        nothing = f"{prefix}/{ecr.repo_name('ptc-nothing')}"
        self.assertEqual(self.manifest(nothing, "v1", first).status, 404)
        self.assertEcrError("RepositoryNotFoundException", self.ecr.describe_repositories, repositoryNames=[nothing])

        # A tag pushed upstream later, pulled with skopeo.
        ecr.push_image(self.ecr, upstream, second, tag="v2")
        out = os.path.join(self.tempdir(), "pulled")
        pulled = ecr.skopeo("copy", "--preserve-digests", "--src-tls-verify=false",
                            f"docker://{ecr.HOST}/{cached}:v2", f"oci:{out}:v2")
        self.assertEqual(pulled.returncode, 0, pulled.stderr)
        with open(os.path.join(out, "index.json")) as f:
            self.assertEqual(json.load(f)["manifests"][0]["digest"], second.digest)
        for digest, data in second.blobs.items():
            with open(os.path.join(out, "blobs", "sha256", digest.split(":")[1]), "rb") as f:
                self.assertEqual(f.read(), data, digest)
        tags = {i.get("imageTag") for i in self.ecr.list_images(repositoryName=cached)["imageIds"]}
        self.assertTrue({"v1", "v2"} <= tags, tags)

        # Without the rule the cache keeps what it holds and fetches nothing more.
        ecr.push_image(self.ecr, upstream, ecr.Image(), tag="v3")
        self.ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
        self.assertEqual(self.manifest(cached, "v1", first).body, first.manifest.encode())
        self.assertEqual(self.manifest(cached, "v3", first).status, 404)
