"""Package list for setuptools (the rest of the metadata is in pyproject.toml): every sporeflow
package, plus sporeflow.tools mapped onto the root tools/ folder so that the IR tool is installed
code (the `sporeflow-ir` console script) while the checkout keeps its tools/ folder."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["sporeflow", "sporeflow.*"]) + ["sporeflow.tools"],
      package_dir={"sporeflow.tools": "tools"})
