"""Each stage's code deps in dvc.yaml are what the stage really loads: every stage runs its dvc.yaml cmd on the
shipped sample in a copy of the project, then lists the project files it imported. Each of them must be a dep
(the file or its folder), and each code dep must have been loaded: editing an HTTP retry re-runs the download
only, and a layer change re-runs neither the download nor preprocess, which writes through cnn.npz (cnn loads
its modules on first use, so that loads cnn/__init__.py, cnn/npz.py, cnn/zipstore.py and cnn/atomic.py alone).
Every stage computes with the numerics that pipeline.numerics pins before numpy loads."""

import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from pipeline import numerics
from tests.dvc_project import ROOT, copy_files

STAGES = YAML(typ="safe", pure=True).load((ROOT / "dvc.yaml").read_text())["stages"]

# Runs in the stage's interpreter (PYTHONPATH): at exit, the files of every module it loaded.
SITECUSTOMIZE = textwrap.dedent(
    """
    import atexit, os, sys

    def _dump():
        names = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
        with open(os.environ["STAGE_IMPORTS"], "a", encoding="utf-8") as out:
            out.writelines(f"{name}\\n" for name in sorted(n for n in names if n))
        numerics = sys.modules.get("pipeline.numerics")
        with open(os.environ["STAGE_IMPORTS"] + ".numerics", "w", encoding="utf-8") as out:
            out.write(numerics.CURRENT.mode if numerics else "not loaded")

    atexit.register(_dump)
    """
)


def dep_path(dep) -> str:
    return next(iter(dep)) if isinstance(dep, dict) else dep


def is_code(path: Path) -> bool:
    """A Python file or package (data/sample's make_sample.py does not make the sample a code dep)."""
    return path.suffix == ".py" or (path / "__init__.py").is_file()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[set[str], str]]:
    """{stage: (project files (relative, posix) it imported, its numerics mode)}, after running every stage in
    dvc.yaml order."""
    work = tmp_path_factory.mktemp("stage-deps")
    repo, hook = work / "repo", work / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    copy_files(repo)
    found = {}
    for stage, spec in STAGES.items():
        listing = work / f"{stage}.txt"
        listing.touch()
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "STAGE_IMPORTS": str(listing)}
        env.update(PYTHONPATH=f"{hook}:{repo}", PYTHONDONTWRITEBYTECODE="1", HOME=str(work))
        result = subprocess.run(shlex.split(spec["cmd"]), cwd=repo, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"{stage}: {spec['cmd']} failed:\n{result.stderr}"
        files = {Path(line) for line in listing.read_text().splitlines()}
        mode = Path(f"{listing}.numerics").read_text()
        found[stage] = ({f.relative_to(repo).as_posix() for f in files if f.is_relative_to(repo)}, mode)
    return found


@pytest.fixture(scope="module")
def imports(runs: dict[str, tuple[set[str], str]]) -> dict[str, set[str]]:
    return {stage: files for stage, (files, _) in runs.items()}


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_imported_project_file_is_a_dep(imports: dict[str, set[str]], stage: str) -> None:
    deps = [dep_path(d) for d in STAGES[stage].get("deps", [])]
    assert imports[stage], f"{stage}: no project file imported; is the stage run from the copy?"
    missing = sorted(f for f in imports[stage] if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps))
    assert not missing, f"dvc.yaml stage {stage} imports {missing} but does not list them as deps"


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_code_dep_is_loaded(imports: dict[str, set[str]], stage: str) -> None:
    deps = [dep_path(d) for d in STAGES[stage].get("deps", [])]
    code = [d for d in deps if is_code(ROOT / d)]
    unused = [d for d in code if not any(f == d or f.startswith(d.rstrip("/") + "/") for f in imports[stage])]
    assert not unused, f"dvc.yaml stage {stage} lists {unused} as deps but never loads them"


def test_the_data_stages_do_not_load_the_network_or_the_transfer(imports: dict[str, set[str]]) -> None:
    """...nor depend on it: a folder dep would cover the files they load, and the layers beside them."""
    assert not [f for f in imports["download"] if f.startswith("cnn/")]
    assert {f for f in imports["preprocess"] if f.startswith("cnn/")} == {
        "cnn/__init__.py",
        "cnn/atomic.py",
        "cnn/npz.py",
        "cnn/zipstore.py",
    }
    for stage in ("download", "preprocess"):
        assert not [d for d in map(dep_path, STAGES[stage]["deps"]) if d.rstrip("/") in ("cnn", "pipeline")], stage
    for stage in ("check", "preprocess", "train", "evaluate"):
        assert "pipeline/download.py" not in imports[stage], stage
    assert "pipeline/sources.py" in imports["check"]


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_computes_with_the_pinned_numerics(runs: dict[str, tuple[set[str], str]], stage: str) -> None:
    """The canonical kernels where this machine can run them (tests/test_numerics.py), else native, never unpinned
    because a stage loaded numpy before pipeline.numerics."""
    expected = "canonical" if numerics._unavailable() is None else "native"
    assert runs[stage][1] == expected, f"{stage}: numerics {runs[stage][1]}"
