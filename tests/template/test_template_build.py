"""`sam build` through the root Makefile's build target, without Docker, into a temporary build dir.

The build runs once per module (and the tests share an xdist group so that `--dist loadgroup` keeps
them on one worker); it takes a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncagents.local.template import read_stack

from .helpers import (
    FORMATION_PATH,
    FUNCTIONS,
    REPO_ROOT,
    SAM_BIN,
    VENV_BIN,
    make_available,
    offline_env,
    run,
    sam_available_or_skip,
)

pytestmark = [pytest.mark.template, pytest.mark.xdist_group("sam_build")]

# Sources 15 MB, their bytecode 8 MB more (which saves every cold start compiling them: README, "Cold start").
LAYER_LIMIT_BYTES = 30 * 1024 * 1024


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sam_available_or_skip()
    make = make_available()
    assert (VENV_BIN / "python").exists(), "the project venv is needed: run `make venv`"
    out = tmp_path_factory.mktemp("sam-build") / "build"
    formation = _formation_with_schedules(tmp_path_factory.mktemp("formation"))
    env = offline_env()
    env.pop("MAKEFLAGS", None)
    result = run(
        [make, "--no-print-directory", "build", f"FORMATION={formation}", f"BUILD_DIR={out}"],
        cwd=REPO_ROOT,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, f"make build failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return out


SCHEDULES = """
schedules:
  daily-report:
    schedule: "0 9 * * 1-5"
    timezone: Europe/Paris
    message: Write the daily analytics report
    user_id: reports
    webhook_url: https://reports.example.com/ready
"""


def _formation_with_schedules(folder: Path) -> Path:
    """The example formation (and its triggers) plus a schedule, as a user would write it."""
    import shutil

    formation = folder / "formation.yaml"
    text = FORMATION_PATH.read_text(encoding="utf-8") if FORMATION_PATH.exists() else ""
    formation.write_text(text + SCHEDULES, encoding="utf-8")
    if (REPO_ROOT / "triggers").is_dir():
        shutil.copytree(REPO_ROOT / "triggers", folder / "triggers")
    return formation


def _tree_size(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


def test_layer_contents(build_dir: Path) -> None:
    layer = build_dir / "AsyncAgentsLayer"
    python = layer / "python"
    for package in ("aws_lambda_powertools", "pydantic", "pydantic_core", "cachetools"):
        assert (python / package / "__init__.py").is_file(), f"{package} missing from the layer"
    for module in ("config.py", "domain/errors.py", "api/app.py", "data/dynamo.py", "build_formation.py"):
        assert (python / "asyncagents" / module).is_file(), f"asyncagents/{module} missing from the layer"
    shared_objects = list((python / "pydantic_core").glob("*.so"))
    assert shared_objects, "pydantic_core has no compiled extension"
    assert all("aarch64" in so.name and "cpython-312" in so.name for so in shared_objects), shared_objects


def test_layer_has_no_runtime_provided_or_build_junk(build_dir: Path) -> None:
    python = build_dir / "AsyncAgentsLayer" / "python"
    for provided in ("boto3", "botocore", "s3transfer"):
        assert not (python / provided).exists(), f"{provided} must not be in the layer (the runtime has it)"
        assert not list(python.glob(f"{provided}-*.dist-info")), provided
    assert not [pyc for pyc in python.rglob("*.pyc") if ".cpython-312." not in pyc.name], "bytecode of another Python"
    assert not list(python.rglob("*.egg-info")), "egg-info in the layer"


def test_layer_ships_bytecode_for_the_runtime(build_dir: Path) -> None:
    # Given a CPython 3.12 on this machine (the build compiles with it; without one it warns and ships sources)
    from asyncagents.build_bytecode import lambda_python

    if lambda_python() is None:
        pytest.skip("no Python 3.12 here: the layer ships sources only")
    python = build_dir / "AsyncAgentsLayer" / "python"
    sources = sorted(python.rglob("*.py"))
    assert len(sources) > 500
    # Then every module has its 3.12 bytecode beside it, hash-based and unchecked (flags 0b01): the read-only
    # runtime loads it as is, whatever timestamps the zip kept
    for source in sources:
        cached = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        assert cached.is_file(), f"no bytecode for {source.relative_to(python)}"
        assert int.from_bytes(cached.read_bytes()[4:8], "little") == 0b01, cached


def test_layer_ships_the_validated_formation(build_dir: Path) -> None:
    from asyncagents.config import load_formation

    shipped = build_dir / "AsyncAgentsLayer" / "formation.json"
    assert shipped.is_file()
    config = load_formation(shipped)  # the functions read it exactly like this (FORMATION_PATH)
    assert "github-issue" in config.triggers  # with the trigger definitions of triggers/ beside it
    assert config.schedules["daily-report"].timezone == "Europe/Paris"
    # And the validated objects beside it, which the functions read instead (never validating the formation again)
    from asyncagents.built_formation import load_built, pickled_path

    assert pickled_path(shipped).is_file()
    assert load_built(shipped) == config


def test_the_built_template_holds_the_formation_schedules(build_dir: Path) -> None:
    import json

    template = json.loads((build_dir / "template.yaml").read_text(encoding="utf-8"))
    schedule = template["Resources"]["FormationScheduleDailyReport"]
    properties = schedule["Properties"]
    assert schedule["Type"] == "AWS::Scheduler::Schedule"
    assert properties["Name"] == "formation-daily-report" and properties["GroupName"] == {"Ref": "ScheduleGroup"}
    # Unix day-of-week 1-5 (Monday to Friday) as EventBridge numbers it (Sunday is 1), in the user's zone
    assert properties["ScheduleExpression"] == "cron(0 9 ? * 2,3,4,5,6 *)"
    assert properties["ScheduleExpressionTimezone"] == "Europe/Paris"
    target = properties["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["RunScheduleFunction", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}}
    assert json.loads(target["Input"]) == {
        "job_id": "formation-daily-report",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }
    # The rest of the template is untouched: the functions still point at their built code
    assert "RunScheduleFunction" in template["Resources"] and "ApiFunction" in template["Resources"]
    # And CloudFormation's linter finds nothing wrong with what was added
    result = run([str(VENV_BIN / "cfn-lint"), "--format", "parseable", str(build_dir / "template.yaml")], timeout=180)
    assert result.returncode == 0, (result.stdout + result.stderr).strip()


def test_layer_size_under_limit(build_dir: Path) -> None:
    size = _tree_size(build_dir / "AsyncAgentsLayer")
    assert size < LAYER_LIMIT_BYTES, f"layer unzipped size {size / 1e6:.1f} MB exceeds {LAYER_LIMIT_BYTES >> 20} MiB"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_artifact_is_its_handler_module_alone(build_dir: Path, function: str) -> None:
    # Given the handler the template names (one shared functions/Makefile builds every function)
    handler = read_stack(REPO_ROOT / "template.yaml").functions[function].handler
    module = handler.rsplit(".", 1)[0].replace(".", "/") + ".py"
    # Then the artifact holds that module and nothing else (no Makefile, no other function's handler)
    artifact = build_dir / function
    files = sorted(str(path.relative_to(artifact)) for path in artifact.rglob("*") if path.is_file())
    assert files == [module], f"{function}: {files}"


def test_built_template_written(build_dir: Path) -> None:
    assert (build_dir / "template.yaml").is_file()


def test_layer_build_without_formation_env_explains_make_build(tmp_path: Path) -> None:
    make = make_available()
    env = offline_env(ARTIFACTS_DIR=str(tmp_path / "artifacts"))
    env.pop("ASYNCAGENTS_FORMATION", None)
    env.pop("MAKEFLAGS", None)
    layer_dir = REPO_ROOT / "layers" / "asyncagents"
    result = run([make, "-s", "build-AsyncAgentsLayer"], cwd=layer_dir, env=env, timeout=60)
    assert result.returncode != 0
    assert "ASYNCAGENTS_FORMATION" in result.stderr and "make build" in result.stderr, result.stderr
    assert not (tmp_path / "artifacts").exists() or not any((tmp_path / "artifacts").iterdir())


# -- the Serverless Application Repository: `make package` against moto's S3 on 127.0.0.1 -------------------------

PACKAGE_BUCKET = "asyncagents-sar-artifacts"

SAR_CHECK = """
import json, sys
from samcli.vendor.serverlessrepo.parser import get_app_metadata, parse_template
from samcli.vendor.serverlessrepo.publish import _create_application_request, _create_application_version_request
template = parse_template(open(sys.argv[1]).read())
metadata = get_app_metadata(template)
metadata.validate(["author", "description", "name", "semantic_version"])  # what sam publish requires
created = _create_application_request(metadata, "TEMPLATE")
versioned = _create_application_version_request(metadata, "app-id", "TEMPLATE")
print(json.dumps({"create": created, "version": versioned}))
"""


@pytest.fixture(scope="module")
def packaged(build_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    """The publishable template `make package` writes, and the S3 client of the bucket it uploaded to."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=PACKAGE_BUCKET)
    out = tmp_path_factory.mktemp("package") / "packaged.yaml"
    env = offline_env(AWS_ENDPOINT_URL_S3=endpoint, **credentials)
    env.pop("MAKEFLAGS", None)
    # -o build: the module's build is the one packaged (make package builds first otherwise).
    command = [make_available(), "--no-print-directory", "-o", "build", "package"]
    command += [f"BUILD_DIR={build_dir}", f"S3_BUCKET={PACKAGE_BUCKET}", f"PACKAGED={out}"]
    try:
        result = run(command, cwd=REPO_ROOT, env=env, timeout=600)
        assert result.returncode == 0, f"make package failed:\n{result.stdout}\n{result.stderr}"
        yield out, s3
    finally:
        server.stop()


def test_make_package_uploads_everything_the_template_names(packaged: tuple[Path, Any]) -> None:
    from asyncagents.local.template import load_template

    path, s3 = packaged
    template = load_template(path)
    application = template["Metadata"]["AWS::ServerlessRepo::Application"]
    uris = [application["LicenseUrl"], application["ReadmeUrl"]]
    for resource in template["Resources"].values():
        properties = resource.get("Properties") or {}
        uris += [properties[key] for key in ("CodeUri", "ContentUri", "DefinitionUri") if key in properties]
    assert len(uris) >= 2 + len(FUNCTIONS) + 1  # the listing's files, every function, the layer
    for uri in uris:
        if isinstance(uri, dict):  # the state machine's definition: {Bucket, Key}
            uri = f"s3://{uri['Bucket']}/{uri['Key']}"
        assert isinstance(uri, str) and uri.startswith(f"s3://{PACKAGE_BUCKET}/"), uri
        s3.head_object(Bucket=PACKAGE_BUCKET, Key=uri.removeprefix(f"s3://{PACKAGE_BUCKET}/"))
    readme = s3.get_object(Bucket=PACKAGE_BUCKET, Key=application["ReadmeUrl"].split("/", 3)[3])["Body"].read()
    assert readme == (REPO_ROOT / "README.md").read_bytes()


def test_the_packaged_listing_passes_sams_own_validation_and_names_this_version(packaged: tuple[Path, Any]) -> None:
    import json

    from asyncagents import __version__

    path, _ = packaged
    python = SAM_BIN.parent / "python"
    result = run([str(python), "-c", SAR_CHECK, str(path)], timeout=120)
    assert result.returncode == 0, result.stderr
    requests = json.loads(result.stdout)
    assert requests["create"]["SemanticVersion"] == __version__ == requests["version"]["SemanticVersion"]
    assert requests["create"]["SpdxLicenseId"] == "Apache-2.0"
    assert requests["create"]["LicenseUrl"].startswith("s3://") and requests["create"]["ReadmeUrl"].startswith("s3://")


def test_the_packaged_template_transforms_to_plain_cloudformation(packaged: tuple[Path, Any]) -> None:
    from samtranslator.translator.transform import transform

    from asyncagents.local.template import load_template

    from .conftest import _StaticPolicyLoader

    path, _ = packaged
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        cfn = transform(load_template(path), {}, _StaticPolicyLoader())
    kinds = {resource["Type"] for resource in cfn["Resources"].values()}
    assert "AWS::Lambda::Function" in kinds and not [k for k in kinds if k.startswith("AWS::Serverless::")]
    for name, resource in cfn["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            assert resource["Properties"]["Code"]["S3Bucket"] == PACKAGE_BUCKET, name
