"""Build plots/offline.html, the page template `dvc plots show` fills, with vega, vega-lite and vega-embed inside.

DVC's own page loads those three libraries from a CDN, so offline its charts stay blank. This template carries
them inline (DVC substitutes only `{plot_divs}`; without a `{scripts}` placeholder it adds no CDN tags), and
`.dvc/config` points `plots.html_template` at it. To update the libraries:

    cd /tmp && npm pack vega@5 vega-lite@5 vega-embed@6
    python plots/build_template.py /tmp/vega-*.tgz /tmp/vega-lite-*.tgz /tmp/vega-embed-*.tgz

then update the versions and integrity hashes in plots/README.md (`npm view vega@X dist.integrity`).
"""

import json
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ("vega", "vega-lite", "vega-embed")  # vega-embed needs the other two loaded first

PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>DVC plots (mnist-cnn-dvc)</title>
{scripts}
<style>
body {{ font-family: sans-serif; margin: 16px; }}
body > div {{ display: inline-block; vertical-align: top; margin: 8px 16px 24px 0; }}
body > div img {{ max-width: 100%; }}
</style>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


def library(tarball: Path) -> tuple[str, str, str]:
    """(name, version, minified UMD build) from an npm tarball."""
    with tarfile.open(tarball) as archive:
        meta = json.load(archive.extractfile("package/package.json"))
        code = archive.extractfile(f"package/build/{meta['name']}.min.js").read().decode()
    if "</script" in code:
        raise SystemExit(f"{tarball}: the build contains '</script', which cannot be inlined")
    return meta["name"], meta["version"], code


def build(tarballs: list[Path]) -> str:
    found = {name: (version, code) for name, version, code in map(library, tarballs)}
    missing = [name for name in ORDER if name not in found]
    if missing:
        raise SystemExit(f"missing npm tarballs for {missing}; give one each of {list(ORDER)}")
    scripts = "\n".join(
        f"<script>/* {name} {found[name][0]}, BSD-3-Clause, see plots/licenses/{name}.LICENSE */\n{found[name][1]}\n"
        "</script>"
        for name in ORDER
    )
    return PAGE.format(scripts=scripts)


if __name__ == "__main__":
    (HERE / "offline.html").write_text(build([Path(arg) for arg in sys.argv[1:]]), encoding="utf-8")
