#!/usr/bin/env python3
"""myplugin written the idiomatic way with pyln-client: a baseline for
benches/myplugin.rs. Same manifest and answers as benches/seed/myplugin.py.
Run with the venv benches/python-venv.sh makes (target/toolchains/pyln).
pyln-client's LightningRpc opens a new connection to the node for every call (its own design)."""

from pyln.client import Plugin

plugin = Plugin()
plugin.add_option("foo_opt", "bar", "description")


@plugin.init()
def init(options, configuration, plugin, **kwargs):
    # Without an init function pyln-client answers init with null.
    return {}


@plugin.method("myplugin")
def myplugin(plugin, **cli_params):
    """description"""
    info = plugin.rpc.call("getinfo", filter={"id": True})
    return {
        "node_id": info["id"],
        "option": {"foo_opt": plugin.get_option("foo_opt")},
        "cli_params": cli_params,
    }


plugin.run()
