"""Only the compiled parts (the scan kernel, the id lookup) live here; everything else is in pyproject.toml.

The extensions are optional: without a C compiler the install still succeeds and
the runtime falls back to numkong or numpy (ExactScan's "auto" picks what exists)
and to the id index's Python lookup.
The kernels (runtime/scan_kernels.h) pick AVX2 on x86-64 and NEON (with the
dot-product instruction where the CPU has it) on aarch64 at run time.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("edgerec.runtime._scan", ["runtime/_scan.c"], depends=["runtime/scan_kernels.h"],
                             optional=True, extra_compile_args=["-O3"]),
                   Extension("edgerec.runtime._ids", ["runtime/_ids.c"], optional=True, extra_compile_args=["-O3"])])
