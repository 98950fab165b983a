"""KumoHub query service: a jupyter_server extension with the REST API the panel uses.

Enabled on the user server's command line by the spawner
(`--ServerApp.jpserver_extensions`), so a user's own config cannot switch it on or off.
"""

from __future__ import annotations

import atexit
from typing import Any

from kumohub import server_settings


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "kumohub.extensions.query"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from .engines import EngineRegistry
    from .handlers import CATALOGS_KEY, SERVICE_KEY, handlers
    from .history import HistoryStore, default_history_path
    from .service import QueryService

    settings = server_settings.from_env()
    history = HistoryStore(default_history_path(), settings.query.history_limit)
    service = QueryService(settings, EngineRegistry(settings), history)
    web_app = serverapp.web_app
    web_app.settings[SERVICE_KEY] = service
    web_app.settings[CATALOGS_KEY] = {}
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    atexit.register(service.close)
    serverapp.log.info("KumoHub query API enabled (engines: %s)", ", ".join(service.registry.names))
