"""A remote beyond a folder: `dvc push`/`pull` and `dvc exp push`/`pull` against an S3-compatible server
(moto's server mode, as dvc-s3's own tests use) that the test starts on 127.0.0.1."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.dvc_project import Project

pytestmark = pytest.mark.slow
BUCKET = "mnist-cnn-dvc"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def moto_bucket() -> Iterator[str]:
    """An empty bucket BUCKET on a moto S3 server on 127.0.0.1, for as long as the block runs; yields the
    endpoint URL. CREDENTIALS must be in the environment."""
    boto3 = pytest.importorskip("boto3")
    server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty bucket on a moto S3 server on 127.0.0.1; yields the endpoint URL."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with moto_bucket() as endpoint:
        yield endpoint


def experiments(project: Project) -> dict[str, dict]:
    """{experiment name: its data (params, metrics)} from `dvc exp show --json`."""
    rows = json.loads(project.dvc("exp", "show", "--json").stdout)
    return {
        rev["name"]: rev.get("data", {})
        for row in rows
        for exp in row.get("experiments") or []
        for rev in exp.get("revs", [])
        if rev.get("name")
    }


def objects(endpoint: str) -> list[str]:
    import boto3

    listing = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=BUCKET)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_outputs_and_an_experiment_travel_through_s3_between_two_clones(tmp_path: Path, s3_endpoint: str) -> None:
    origin = tmp_path / "origin.git"
    first = Project.create(tmp_path / "first")
    first.env.update(CREDENTIALS)
    first.run("git", "init", "-q", "--bare", "-b", "main", str(origin))
    first.dvc("remote", "add", "-d", "store", f"s3://{BUCKET}/dvc")
    first.dvc("remote", "modify", "store", "endpointurl", s3_endpoint)
    first.set_param("train.epochs", "2")
    first.dvc("repro")
    first.commit("baseline with an S3 remote")
    first.run("git", "remote", "add", "origin", str(origin))
    first.run("git", "push", "-q", "origin", "main")
    first.dvc("push")
    model_hash = first.sha256("models/model.npz")
    assert any(key.startswith("dvc/files/md5/") for key in objects(s3_endpoint))

    first.dvc("exp", "run", "-S", "train.learning_rate=0.05", "--name", "shared-exp")
    pushed = experiments(first)["shared-exp"]["metrics"]["metrics.json"]["data"]
    first.dvc("exp", "push", "origin", "shared-exp")

    second = Project(tmp_path / "second", first.env)
    first.run("git", "clone", "-q", str(origin), str(second.path))
    second.dvc("pull")  # the committed run's data and model, from S3
    assert second.sha256("models/model.npz") == model_hash
    assert "Running stage" not in second.dvc("repro").stdout

    second.dvc("exp", "pull", "origin", "shared-exp")
    assert experiments(second)["shared-exp"]["metrics"]["metrics.json"]["data"] == pushed
    second.dvc("exp", "apply", "shared-exp")
    second.dvc("pull")
    assert json.loads((second.path / "metrics.json").read_text()) == pushed
    assert "Running stage" not in second.dvc("repro").stdout  # its outputs came from S3: nothing re-trained
