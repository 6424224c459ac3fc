"""The examples in the docstrings of BreastSubtypeLib and BreastSubtypeTraining run and hold.

An example that needs a file or a trained model says ``# doctest: +SKIP``; every other one runs here.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("BreastSubtypeLib", "BreastSubtypeTraining")


def _modules() -> list[str]:
    names = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names.append(package_name)
        names += [m.name for m in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}.")]
    return sorted(names)


@pytest.mark.parametrize("module_name", _modules())
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, module_name, globs=vars(module).copy()):
        runner.run(test)
    failed, _attempted = runner.summarize(verbose=False)
    assert failed == 0, f"{failed} docstring example(s) of {module_name} fail (see the output above)"
