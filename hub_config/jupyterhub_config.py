"""JupyterHub configuration entry point for KumoHub, in local and Kubernetes mode.

Local mode: `jupyterhub -f hub_config/jupyterhub_config.py` with $KUMOHUB_SETTINGS naming the
settings YAML. Kubernetes: the z2jh chart runs this file from `hub.extraConfig`.
"""

import sys

from kumohub.hub_config.configure import configure
from kumohub.hub_config.source import find_settings

from kumohub.settings import SettingsError

try:
    configure(c, find_settings())  # type: ignore[name-defined]  # noqa: F821
except SettingsError as error:
    print(f"KumoHub cannot start:\n{error}", file=sys.stderr)
    sys.exit(2)
