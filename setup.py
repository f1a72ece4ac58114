"""The build's one dynamic part: ``SCRAPESHIELD_COMPILE=1`` compiles the request path into the wheel.

By default the wheel is pure Python and runs anywhere. With the variable set (and mypy and a C
compiler in the build environment: ``python -m build --wheel --no-isolation``), it carries the
modules of ``scrapeshield._native.MODULES`` compiled by mypyc, for this platform and Python.
Everything else about the package is in pyproject.toml. See docs/compiled.md.
"""

import os
import runpy

from setuptools import setup

if os.environ.get("SCRAPESHIELD_COMPILE") == "1":
    build = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "compile.py"))
    setup(ext_modules=build["extensions"]())
else:
    setup()
