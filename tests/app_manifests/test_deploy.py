"""The deployment manifests in app-manifests/deploy/: every command they run is an ``aac``
command, every ``AAC_*`` variable a setting, and the Kubernetes objects are valid against the
Kubernetes JSON schemas (shipped offline by ``kubernetes-validate``)."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from bot.cli import _parser
from config.settings import ENV_PREFIX, OTHER_VARIABLES, Settings, load_settings

DEPLOY = Path(__file__).parents[2] / "app-manifests" / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
# The oldest Kubernetes release still supported upstream when this was written.
KUBERNETES_VERSION = "1.31"
IMAGE = "aac-bot"
SETTINGS = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | OTHER_VARIABLES


def cli_args(argv: list[str]) -> argparse.Namespace:
    """Parse as `aac` would; a command or option it does not know fails the test."""
    try:
        return _parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"`aac {shlex.join(argv)}` is not an aac command")


def check_variables(names: set[str], where: str) -> None:
    unknown = sorted(n for n in names if n.startswith(ENV_PREFIX) and n not in SETTINGS)
    assert not unknown, f"{where} names settings that do not exist: {unknown}"


# -- Dockerfile ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(DEPLOY / "Dockerfile"))


def final_stage(dockerfile: DockerfileParser) -> list[dict[str, Any]]:
    items = [i for i in dockerfile.structure if i["instruction"] != "COMMENT"]
    last_from = max(n for n, i in enumerate(items) if i["instruction"] == "FROM")
    return items[last_from:]


def test_the_image_is_multi_stage_and_the_final_stage_has_no_compilers(
    dockerfile: DockerfileParser,
) -> None:
    assert dockerfile.is_multistage
    stage = final_stage(dockerfile)
    runs = " ".join(i["value"] for i in stage if i["instruction"] == "RUN")
    for compiler in ("build-essential", "gcc", "g++", "clang", "apt-get install"):
        assert compiler not in runs
    assert any(i["value"].startswith("--from=build ") for i in stage if i["instruction"] == "COPY")


def test_the_image_runs_as_a_user_and_serves_with_a_healthcheck(
    dockerfile: DockerfileParser,
) -> None:
    stage = final_stage(dockerfile)
    [user] = [i["value"] for i in stage if i["instruction"] == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    entrypoint = json.loads(next(i["value"] for i in stage if i["instruction"] == "ENTRYPOINT"))
    command = json.loads(next(i["value"] for i in stage if i["instruction"] == "CMD"))
    assert [*entrypoint, *command] == ["aac", "serve"]
    cli_args(command)
    [health] = [i["value"] for i in stage if i["instruction"] == "HEALTHCHECK"]
    assert "/healthz" in health


def test_the_images_settings_exist_and_parse(dockerfile: DockerfileParser) -> None:
    env = {k: v for k, v in dockerfile.envs.items() if k.startswith(ENV_PREFIX)}
    check_variables(set(env), "the Dockerfile")
    settings = load_settings(env)
    assert settings.host == "0.0.0.0"
    assert settings.sqlite_path is not None
    assert str(settings.sqlite_path).startswith("/data/")


def test_the_build_context_sends_what_the_image_copies(dockerfile: DockerfileParser) -> None:
    """The Dockerfile's own ignore file lets through every source it copies, and no env file."""
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line.removeprefix("!").rstrip("/") for line in ignore if line.startswith("!")}
    for item in dockerfile.structure:
        if item["instruction"] == "COPY" and not item["value"].startswith("--from="):
            for source in item["value"].split()[:-1]:
                assert source.rstrip("/") in allowed, source
                assert (DEPLOY.parents[1] / source).exists(), source
    assert "app-manifests/deploy/aac.env" in ignore


# -- compose ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    return data


def env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip().removeprefix("# ")
        if "=" in line and line.split("=", 1)[0].isupper():
            key, value = line.split("=", 1)
            pairs[key] = value
    return pairs


def test_compose_waits_for_the_database_then_the_migration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "web", "worker"}
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("web", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
    assert services["migrate"]["restart"] == "no"
    assert "healthcheck" in services["postgres"]


def test_compose_runs_aac_commands_from_its_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {"migrate": ["db", "upgrade"], "web": ["serve", "--no-worker"], "worker": ["worker"]}
    for name, command in expected.items():
        service = services[name]
        assert service["command"] == command
        cli_args(service["command"])
        assert service["image"].split(":")[0] == IMAGE
        assert service["build"]["dockerfile"] == "app-manifests/deploy/Dockerfile"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["env_file"] == ["aac.env"]
    # A worker stopping gets longer than a job lease to finish or release its jobs.
    grace = int(services["worker"]["stop_grace_period"].removesuffix("s"))
    assert grace > Settings().job_lease_seconds


def test_the_env_file_example_names_real_settings_and_the_database(
    compose: dict[str, Any],
) -> None:
    example = env_file(DEPLOY / "aac.env.example")
    check_variables(set(example), "aac.env.example")
    assert {"AAC_PUBLIC_URL", "AAC_SECRET_KEYS", "AAC_DATABASE_URL"} <= set(example)
    # The URL reaches the compose database with the password the database is given.
    url = example["AAC_DATABASE_URL"]
    assert f":{example['POSTGRES_PASSWORD']}@postgres:5432/" in url
    postgres = compose["services"]["postgres"]["environment"]
    assert url.endswith("/" + postgres["POSTGRES_DB"])
    assert f"//{postgres['POSTGRES_USER']}:" in url
    assert load_settings({"AAC_DATABASE_URL": url}).database_url == url


# -- Kubernetes ------------------------------------------------------------------------
def kubernetes_objects() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                found.append((path.name, document))
    return found


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [obj for _, obj in kubernetes_objects() if obj["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    [obj] = [o for o in by_kind(kind) if o["metadata"]["name"] == name]
    return obj


def containers() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(object name, pod spec, container) of every workload."""
    out = []
    for obj in by_kind("Deployment") + by_kind("Job"):
        pod = obj["spec"]["template"]["spec"]
        out += [(obj["metadata"]["name"], pod, c) for c in pod["containers"]]
    return out


@pytest.mark.parametrize(
    ("file", "obj"),
    [(f, o) for f, o in kubernetes_objects() if o["kind"] != "Kustomization"],
    ids=lambda value: value if isinstance(value, str) else value["kind"],
)
def test_every_kubernetes_object_is_valid_against_its_schema(
    file: str, obj: dict[str, Any]
) -> None:
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{file}: {exc.message} at {'/'.join(map(str, exc.path))}")


def test_the_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    [kustomization] = by_kind("Kustomization")
    files = {p.name for p in KUBERNETES.glob("*.yaml")}
    assert set(kustomization["resources"]) == files - {"kustomization.yaml", "secret.example.yaml"}
    assert [i["name"] for i in kustomization["images"]] == [IMAGE]


def test_every_container_runs_an_aac_command_of_the_image_as_a_user() -> None:
    commands = {}
    for name, pod, container in containers():
        assert container["image"] == IMAGE, name
        assert container["command"][0] == "aac", name
        cli_args(container["command"][1:])
        commands[name] = container["command"][1:]
        assert container["resources"]["requests"], name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
    assert commands == {
        "aac-bot-web": ["serve", "--no-worker"],
        "aac-bot-worker": ["worker"],
        "aac-bot-migrate": ["db", "upgrade"],
    }


def test_every_variable_is_a_setting_and_the_secrets_come_from_the_secret() -> None:
    config = named("ConfigMap", "aac-bot")
    check_variables(set(config["data"]), "configmap.yaml")
    load_settings(config["data"])  # the values parse too
    secret = named("Secret", "aac-bot")
    for name, _, container in containers():
        env = {e["name"]: e for e in container.get("env", [])}
        check_variables(set(env), name)
        for variable, key in (
            ("AAC_SECRET_KEYS", "secret-keys"),
            ("AAC_DATABASE_URL", "database-url"),
        ):
            ref = env[variable]["valueFrom"]["secretKeyRef"]
            assert (ref["name"], ref["key"]) == ("aac-bot", key), name
            assert key in secret["stringData"]
        assert container["envFrom"] == [{"configMapRef": {"name": "aac-bot"}}]


def test_the_web_is_probed_spread_and_reachable() -> None:
    web = named("Deployment", "aac-bot-web")
    [container] = web["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert web["spec"]["selector"]["matchLabels"] == labels
    [pdb] = by_kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == labels
    assert pdb["spec"]["minAvailable"] < web["spec"]["replicas"]
    service = named("Service", "aac-bot-web")
    assert service["spec"]["selector"] == labels
    [port] = service["spec"]["ports"]
    assert port["targetPort"] == container["ports"][0]["name"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert int(env["AAC_PORT"]) == container["ports"][0]["containerPort"]
    [ingress] = by_kind("Ingress")
    [rule] = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "aac-bot-web", "port": {"name": port["name"]}}
    public = load_settings(named("ConfigMap", "aac-bot")["data"]).public_url
    assert public == f"https://{rule['host']}"


def test_the_worker_outlasts_a_job_lease_when_stopped() -> None:
    worker = named("Deployment", "aac-bot-worker")
    lease = load_settings(named("ConfigMap", "aac-bot")["data"]).job_lease_seconds
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > lease
