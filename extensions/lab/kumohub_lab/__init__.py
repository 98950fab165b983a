"""KumoHub's JupyterLab extension (prebuilt): the query panel and the no-download UI.

Everything JupyterLab needs is installed as data: the labextension under
`share/jupyter/labextensions/@kumohub/lab` and the locked plugin list under
`etc/jupyter/labconfig/page_config.json`. This module only carries the version.
"""

__version__ = "0.1.0"
