"""pyln.client for cln-wasm-host guests: pyln-client 25.12.1's own Plugin,
LightningRpc and Millisatoshi (plugin.py, lightning.py, version.py, unmodified),
with their transport replaced by the guest's world (see _sandbox.py).

Gossmap and GossmapStats read lightningd's gossip_store file and need
pyln.proto's native crypto: a guest has neither files nor native modules, so
naming them raises ImportError (at build time for a top-level import)."""

from .lightning import LightningRpc, RpcError, Millisatoshi
from .plugin import Plugin, monkey_patch, RpcException
from .version import NodeVersion
from . import _sandbox  # noqa: F401  (replaces the transport)

__version__ = "25.12.1"

_NO_GOSSMAP = ("Gossmap", "GossmapNode", "GossmapChannel", "GossmapHalfchannel",
               "GossmapNodeId", "LnFeatureBits", "GossmapStats")

__all__ = [
    "LightningRpc",
    "Plugin",
    "RpcError",
    "RpcException",
    "Millisatoshi",
    "__version__",
    "monkey_patch",
    "NodeVersion",
]


def __getattr__(name):
    if name in _NO_GOSSMAP:
        raise ImportError(
            f"pyln.client.{name} is not available in the cln-wasm-host sandbox: "
            "it reads lightningd's gossip_store file and needs pyln.proto's native "
            "crypto, and a guest has no files and no native modules")
    raise AttributeError(f"module 'pyln.client' has no attribute {name!r}")
