"""Hatchling build hook: compile the optional C accelerator of the `fast` Mutex.

`concurrency/backends/_fastmutex.c` is compiled with the machine's C compiler
through setuptools' `build_ext` (which knows each platform's compiler and
flags). It is optional: when it cannot be built (no compiler, no Python
headers, an unusual platform) the hook warns and the install goes on with the
pure-Python Mutex, which behaves the same, only slower.

- A regular wheel (`pip install .`) gets the compiled module and a
  platform-specific tag.
- An editable install (`pip install -e .`) imports the sources in place, so
  the compiled module is put next to them, in `concurrency/backends/`
  (ignored by git; `hatch clean` removes it). After editing the C source,
  run `pip install -e .` again to rebuild it.
- `CONCURRENCY_PURE_PYTHON=1` at build time skips the compilation.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MODULE = "concurrency.backends._fastmutex"
SOURCE = Path("concurrency", "backends", "_fastmutex.c")
PACKAGE_DIR = Path("concurrency", "backends")


class CustomBuildHook(BuildHookInterface):
    """Compile `_fastmutex` into the wheel, or beside the sources when editable."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if os.environ.get("CONCURRENCY_PURE_PYTHON", "").strip() == "1":
            self.app.display_info("CONCURRENCY_PURE_PYTHON=1: not compiling the C accelerator")
            return
        self._tmp = tempfile.mkdtemp(prefix="concurrency-build-")
        try:
            built = self._compile(Path(self._tmp))
        except Exception as exc:  # any failure means: install the pure-Python Mutex
            self.app.display_warning(
                f"concurrency: the optional C accelerator {SOURCE} was not compiled "
                f"({type(exc).__name__}: {exc}); installing the pure-Python Mutex, "
                "which behaves the same but is slower"
            )
            return
        if version == "editable":
            self._install_in_tree(built)
        else:
            build_data["force_include"][str(built)] = str(PACKAGE_DIR / built.name)
            build_data["pure_python"] = False
            build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    def clean(self, versions: list[str]) -> None:
        for path in Path(self.root, PACKAGE_DIR).glob("_fastmutex*.*"):
            if path.suffix in (".so", ".pyd"):
                path.unlink()

    def _compile(self, build_dir: Path) -> Path:
        """Build the extension under `build_dir` and return the compiled file."""
        from setuptools import Distribution, Extension
        from setuptools.command.build_ext import build_ext

        extension = Extension(MODULE, sources=[str(Path(self.root, SOURCE))])
        command = build_ext(Distribution({"name": "concurrency", "ext_modules": [extension]}))
        command.build_lib = str(build_dir / "lib")
        command.build_temp = str(build_dir / "temp")
        command.ensure_finalized()
        command.run()
        return Path(command.get_ext_fullpath(MODULE))

    def _install_in_tree(self, built: Path) -> None:
        """Put the module beside the sources, replacing any older build atomically.

        A running interpreter may have the old file mapped: writing into it could
        crash that process, while renaming a new file over it cannot.
        """
        target = Path(self.root, PACKAGE_DIR, built.name)
        staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(built, staging)
        os.replace(staging, target)
