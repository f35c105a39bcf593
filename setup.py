"""Package discovery for the one distribution that ships three import packages.

``src/budcore`` is the core, ``adapters/`` installs as ``budcore_adapters`` and ``simulator/``
as ``budcore_simulator``. setuptools' declarative ``find`` cannot rename a directory, so the
mapping lives here; everything else is in ``pyproject.toml``.
"""

from setuptools import find_namespace_packages, setup

ROOTS = {"budcore": "src/budcore", "budcore_adapters": "adapters", "budcore_simulator": "simulator"}

packages: list[str] = []
package_dir: dict[str, str] = {}
for name, path in ROOTS.items():
    package_dir[name] = path
    packages.append(name)
    # Namespace discovery also picks up data-only directories (scenarios, samples, schemas), so
    # their files ship with the package.
    for sub in find_namespace_packages(where=path, exclude=["*__pycache__*", "*.egg-info*"]):
        packages.append(f"{name}.{sub}")
        package_dir[f"{name}.{sub}"] = f"{path}/{sub.replace('.', '/')}"

setup(packages=packages, package_dir=package_dir)
