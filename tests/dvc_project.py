"""A throwaway copy of this project with its own git repo and an isolated DVC, for tests that run real dvc."""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def project_files() -> list[str]:
    """The files git tracks, plus the new ones it does not ignore: what a fresh clone would hold."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return [name for name in listing.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


def copy_files(dest: Path) -> None:
    """project_files() copied into dest (folders made, times kept): a fresh clone's files, without git."""
    for name in project_files():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)


def readme_block(marker: str, lang: str = "bash") -> str:
    """The fenced `lang` block right after `<!-- marker -->` in README.md, so the tests run what the README shows.
    In a bash block, comments (from a `#` at a line's start or after a space) are dropped, as bash drops them."""
    match = re.search(rf"<!-- {re.escape(marker)} -->\s*```{lang}\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert match, f"README.md has no {lang} block after <!-- {marker} -->"
    if lang != "bash":
        return match.group(1)
    return "".join(re.sub(r"(^|\s)#.*", "", line).rstrip() + "\n" for line in match.group(1).splitlines())


def dvc_env(home: Path) -> dict[str, str]:
    """Environment that keeps DVC's site, global and system config inside `home` and git's identity fixed."""
    env = dict(os.environ)
    for name in ("DVC_SITE_CACHE_DIR", "DVC_GLOBAL_CONFIG_DIR", "DVC_SYSTEM_CONFIG_DIR"):
        (home / name.lower()).mkdir(parents=True, exist_ok=True)
        env[name] = str(home / name.lower())
    env.update(
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.com",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    env.pop("DVC_EXP_GIT_REMOTE", None)
    return env


class Project:
    """A copy of the project at `path`; `run` executes a command there with the isolated environment."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path, self.env = path, env

    @classmethod
    def create(cls, path: Path) -> "Project":
        copy_files(path)
        project = cls(path, dvc_env(path.parent / f"{path.name}-home"))
        project.run("git", "init", "-q", "-b", "main")
        project.commit("project as copied")
        return project

    @classmethod
    def with_committed_run(cls, path: Path, epochs: int = 2) -> "Project":
        """A copy of the project after a committed `dvc repro` of an `epochs`-epoch run (fast, and distinct
        from the shipped run)."""
        project = cls.create(path)
        project.set_param("train.epochs", str(epochs))
        project.dvc("repro")
        project.commit(f"{epochs}-epoch run")
        return project

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        result = subprocess.run(args, cwd=self.path, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def start(self, *args: str, stderr: int = subprocess.PIPE) -> subprocess.Popen:
        """`args` started here in the background, in a process group of its own (os.killpg reaches it and its
        children, as Ctrl-C in a terminal would); text stdout piped, stderr piped or (subprocess.STDOUT) merged."""
        return subprocess.Popen(
            args, cwd=self.path, env=self.env, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True
        )

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(str(BIN / "dvc"), *args, check=check)

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "--allow-empty", "-m", message)

    def sha256(self, name: str) -> str:
        return hashlib.sha256((self.path / name).read_bytes()).hexdigest()

    def set_param(self, dotted: str, value: str) -> None:
        """Change one scalar in params.yaml in place, keeping its comments (like a user's edit)."""
        section, key = dotted.split(".")
        lines = (self.path / "params.yaml").read_text().splitlines(keepends=True)
        current = None
        for i, line in enumerate(lines):
            if not line.startswith(" ") and line.rstrip().endswith(":"):
                current = line.strip()[:-1]
            elif current == section and line.strip().startswith(f"{key}:"):
                indent = line[: len(line) - len(line.lstrip())]
                comment = line[line.index("#") :] if "#" in line else "\n"
                lines[i] = f"{indent}{key}: {value}  {comment}".rstrip() + "\n"
                break
        else:
            raise KeyError(dotted)
        (self.path / "params.yaml").write_text("".join(lines))
