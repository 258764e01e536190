"""python -m pipeline <stage>: see pipeline/cli.py."""

from pipeline.cli import run

run()
