"""`%load_ext kumohub.magics`: the short name for the query magics.

The implementation lives with the other user-server code in `kumohub.extensions.magics`;
this module only gives notebooks the name the documentation uses.
"""

from kumohub.extensions.magics import (
    QueryMagics,
    load_ipython_extension,
    unload_ipython_extension,
)

__all__ = ["QueryMagics", "load_ipython_extension", "unload_ipython_extension"]
