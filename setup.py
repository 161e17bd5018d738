"""Only the compiled scan kernel lives here; everything else is in pyproject.toml.

The extension is optional: without a C compiler the install still succeeds and
the runtime falls back to numkong or numpy (ExactScan's "auto" picks what exists).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("edgerec.runtime._scan", ["runtime/_scan.c"], optional=True,
                             extra_compile_args=["-O3"])])
