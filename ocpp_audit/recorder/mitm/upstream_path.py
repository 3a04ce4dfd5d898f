"""Prepend a path to every request on its way upstream: mitmproxy's reverse mode takes no path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mitmproxy import ctx, exceptions, http

if TYPE_CHECKING:
    from mitmproxy.addonmanager import Loader

ORIGINAL_PATH = "ocpp_audit.path"  # flow.metadata key: the charger's path before rewriting


def original_path(flow: http.HTTPFlow) -> str:
    """The path the charger asked for (the one recorded), before ``ocpp_upstream_path``."""
    return flow.metadata.get(ORIGINAL_PATH, flow.request.path)


class UpstreamPath:
    """``ocpp_upstream_path=/base`` sends the charger's ``/ocpp/CP1`` to ``/base/ocpp/CP1``."""

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "ocpp_upstream_path",
            str,
            "",
            "Path prepended to the charger's request path on the way upstream (mitmproxy's reverse "
            "mode takes no path): '/base' sends /ocpp/CP1 to /base/ocpp/CP1.",
        )

    def configure(self, updated: set[str]) -> None:
        if "ocpp_upstream_path" in updated:
            prefix = ctx.options.ocpp_upstream_path
            if prefix and (not prefix.startswith("/") or "?" in prefix or "#" in prefix):
                raise exceptions.OptionsError(
                    f"ocpp_upstream_path must be a path starting with '/': {prefix!r}"
                )

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        flow.metadata[ORIGINAL_PATH] = flow.request.path
        prefix = ctx.options.ocpp_upstream_path.rstrip("/")
        if prefix:
            flow.request.path = prefix + flow.request.path
