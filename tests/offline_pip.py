"""Install packages the way the tests need them: pip, offline, into a directory put on PYTHONPATH."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def install_offline(*packages: Path | str, target: Path) -> None:
    """``pip install`` the source trees ``packages`` into ``target`` without an index or build isolation (the
    test machines have no internet; setuptools is already installed)."""
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--no-index", "--target", str(target), *map(str, packages)],
        check=True,
        capture_output=True,
    )
