"""Only the optional C extension lives here; everything else is in pyproject.toml."""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Build the event queue if a compiler is there; otherwise warn and use the Python one."""

    def run(self):
        try:
            super().run()
        except Exception as error:  # noqa: BLE001 - any build failure means "use the fallback"
            print(f"warning: nnsim's C event queue was not built ({error}); using the Python one")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as error:  # noqa: BLE001
            print(f"warning: {ext.name} was not built ({error}); using the Python event queue")


setup(
    ext_modules=[Extension("nnsim.sim._cqueue", ["src/nnsim/sim/_cqueue.c"], optional=True)],
    cmdclass={"build_ext": OptionalBuildExt},
)
