"""cnn/__init__.py loads each module on first use: a piece of cnn loads without the rest (and without numpy), while
`cnn.X`, `from cnn import X`, `from cnn import *`, `dir(cnn)` and type checkers see every public name, from any
module loaded first."""

import ast
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cnn
from cnn import layers

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(path.stem for path in (ROOT / "cnn").glob("*.py") if path.stem != "__init__")


def fresh(code: str, *args: str) -> str:
    """stdout of `code` run by a new interpreter in the project folder."""
    command = [sys.executable, "-c", textwrap.dedent(code), *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_cnn_atomic_loads_no_layer_and_no_numpy() -> None:
    """The pipeline's data stages write through cnn.atomic: a layer's edit must not re-run them (dvc.yaml)."""
    loaded = fresh(
        """
        import sys
        import cnn.atomic
        print(*sorted(name for name in sys.modules if name == "numpy" or name.split(".")[0] == "cnn"))
        """
    )
    assert loaded.split() == ["cnn", "cnn.atomic"]


def test_the_npz_writer_loads_no_layer_and_its_zip_part_no_numpy() -> None:
    """preprocess writes its splits through cnn.npz (dvc.yaml lists these modules alone), and cnn.zipstore runs on
    a Python without numpy (tests/test_npz.py packs an archive with Debian's python3)."""
    code = """
        import sys
        import cnn.{}
        print(*sorted(name for name in sys.modules if name == "numpy" or name.split(".")[0] == "cnn"))
        """
    assert fresh(code.format("zipstore")).split() == ["cnn", "cnn.zipstore"]
    assert fresh(code.format("npz")).split() == ["cnn", "cnn.atomic", "cnn.npz", "cnn.zipstore", "numpy"]


def test_import_cnn_loads_no_numpy() -> None:
    """So `import cnn` before `import pipeline` cannot pre-empt pipeline.numerics, which pins numpy's kernels."""
    assert fresh("import sys, cnn; print('numpy' in sys.modules, len(cnn.__all__) > 0)") == "False True"


@pytest.mark.parametrize("name", cnn.__all__)
def test_every_public_name_is_the_object_of_its_module(name: str) -> None:
    module = importlib.import_module(f"cnn.{cnn._MODULE_OF[name]}")
    assert getattr(cnn, name) is getattr(module, name)
    assert name in dir(cnn)


def test_star_import_and_dir_list_every_public_name_and_module() -> None:
    names: dict = {}
    exec("from cnn import *", names)
    assert set(names) - {"__builtins__"} == set(cnn.__all__)
    assert set(MODULES) <= set(dir(cnn))


def test_a_module_is_an_attribute_before_it_is_loaded_and_a_wrong_name_fails() -> None:
    found = fresh(
        """
        import sys, cnn
        before = "cnn.step" in sys.modules
        print(before, cnn.step.__name__, hasattr(cnn, "Dense2"), hasattr(cnn, "_private"))
        """
    )
    assert found == "False cnn.step False False"
    with pytest.raises(AttributeError, match="module 'cnn' has no attribute 'Dense2'"):
        cnn.Dense2  # noqa: B018


def test_any_module_loads_first_and_then_every_public_name_resolves() -> None:
    """No import cycle hides behind the order the package used to load its modules in."""
    done = fresh(
        """
        import importlib, sys
        for first in sys.argv[1:]:
            for name in [name for name in sys.modules if name.split(".")[0] == "cnn"]:
                del sys.modules[name]
            importlib.import_module(f"cnn.{first}")
            import cnn
            for name in cnn.__all__:
                getattr(cnn, name)
        print("ok")
        """,
        *MODULES,
    )
    assert done == "ok"


def test_a_model_file_of_every_layer_type_loads_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """A layer class registers its name for layer_from_config when its module loads: loading a model must not
    depend on which modules the program happened to use before."""
    specs = [
        {"type": "standardize", "mean": 0.5, "std": 0.25},
        {"type": "conv", "depth": 2, "kernel_size": 3},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "maxpool"},
        {"type": "avgpool", "size": 2, "stride": 1},
        {"type": "dropout"},
        {"type": "global_avgpool"},
        {"type": "reshape", "shape": [2]},
        {"type": "dense", "units": 4},
        {"type": "tanh"},
        {"type": "sigmoid"},
        {"type": "flatten"},
        {"type": "dense"},
        {"type": "softmax"},
    ]
    net = cnn.Sequential(cnn.build(specs, (1, 12, 12), 3), seed=0)
    built_in = {cls.__name__ for cls in layers.LAYER_CLASSES.values() if cls.__module__.startswith("cnn.")}
    assert {type(layer).__name__ for layer in net.layers} == built_in
    cnn.save(net, tmp_path / "model.npz")
    loaded = fresh(
        "import sys, cnn; print(*[type(x).__name__ for x in cnn.load(sys.argv[1]).layers])", str(tmp_path / "model.npz")
    )
    assert loaded.split() == [type(layer).__name__ for layer in net.layers]


def test_type_checkers_see_the_names_that_load_at_run_time() -> None:
    """The `if TYPE_CHECKING:` imports of cnn/__init__.py are exactly its lazy exports, module by module."""
    tree = ast.parse((ROOT / "cnn" / "__init__.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    imported = {node.module: tuple(alias.name for alias in node.names) for node in block.body}
    assert imported == cnn._EXPORTS
