"""Package layout: the `kumohub` import namespace spread over the repository's folders.

Each top-level folder keeps its concern (hub_config/, spawner/, extensions/) while importing
as kumohub.hub_config, kumohub.spawner and kumohub.extensions; subpackages are found, not
listed, so adding one needs no edit here.
"""

from setuptools import find_packages, setup

ROOTS = {
    "kumohub": "kumohub",
    "kumohub.hub_config": "hub_config",
    "kumohub.spawner": "spawner",
    "kumohub.extensions": "extensions",
}

packages: list[str] = []
for name, folder in ROOTS.items():
    packages.append(name)
    found = find_packages(folder, exclude=["*node_modules*", "lab", "lab.*"])
    packages += [f"{name}.{sub}" for sub in found]

setup(packages=packages, package_dir=ROOTS)
