"""Hub configuration: the single place where KumoHub settings become JupyterHub traitlets."""
