"""Hatchling build hook: compile the native core of the real-thread primitives.

`concurrency/backends/native/*.c` are compiled into one extension module,
`concurrency.backends.native._core`, with the machine's C compiler through
setuptools' `build_ext` (which knows each platform's compiler and flags). It
is optional: when it cannot be built (no compiler, no Python headers, an
unusual platform) the hook warns and the install goes on with the pure-Python
primitives of `concurrency.backends.pure`, which behave the same, only slower
and with best-effort safety against asynchronous exceptions.

- A regular wheel (`pip install .`) gets the compiled module and a
  platform-specific tag.
- An editable install (`pip install -e .`) imports the sources in place, so
  the compiled module is put next to them, in `concurrency/backends/native/`
  (ignored by git; `hatch clean` removes it). After editing the C sources,
  run `pip install -e .` again to rebuild it.
- `CONCURRENCY_PURE_PYTHON=1` at build time skips the compilation.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MODULE = "concurrency.backends.native._core"
SOURCE_DIR = Path("concurrency", "backends", "native")


class CustomBuildHook(BuildHookInterface):
    """Compile the native core into the wheel, or beside the sources when editable."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if os.environ.get("CONCURRENCY_PURE_PYTHON", "").strip() == "1":
            self.app.display_info("CONCURRENCY_PURE_PYTHON=1: not compiling the native core")
            return
        self._tmp = tempfile.mkdtemp(prefix="concurrency-build-")
        try:
            built = self._compile(Path(self._tmp))
        except Exception as exc:  # any failure means: install the pure-Python primitives
            self.app.display_warning(
                f"concurrency: the native core ({SOURCE_DIR}/*.c) was not compiled "
                f"({type(exc).__name__}: {exc}); installing the pure-Python primitives, "
                "which behave the same but are slower"
            )
            return
        if version == "editable":
            self._install_in_tree(built)
        else:
            build_data["force_include"][str(built)] = str(SOURCE_DIR / built.name)
            build_data["pure_python"] = False
            build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    def clean(self, versions: list[str]) -> None:
        for path in Path(self.root, SOURCE_DIR).glob("_core*.*"):
            if path.suffix in (".so", ".pyd"):
                path.unlink()

    def _compile(self, build_dir: Path) -> Path:
        """Build the extension under `build_dir` and return the compiled file."""
        from setuptools import Distribution, Extension
        from setuptools.command.build_ext import build_ext

        source_dir = Path(self.root, SOURCE_DIR)
        sources = sorted(str(path) for path in source_dir.glob("*.c"))
        extra = ["-fvisibility=hidden"] if sysconfig.get_config_var("CC") else []
        extension = Extension(MODULE, sources=sources, include_dirs=[str(source_dir)],
                              extra_compile_args=extra)
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
        target = Path(self.root, SOURCE_DIR, built.name)
        staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(built, staging)
        os.replace(staging, target)
