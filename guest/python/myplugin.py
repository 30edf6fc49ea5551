"""The seed's myplugin.py, minus all protocol plumbing: a string option
`foo_opt` (default `bar`) and a method `myplugin` that answers the node's id,
the option's value and the call's params. Same manifest and answers as the
Rust guest in guest/myplugin."""

from cln_guest import Plugin, node

plugin = Plugin(dynamic=True)
plugin.option("foo_opt", default="bar", description="description", type="string")
plugin.rpc("getinfo", reason="to answer the node's id")


@plugin.method("myplugin", usage="", description="description")
def myplugin(cli_params):
    info = node.getinfo(filter={"id": True})
    return {
        "node_id": info["id"],
        "option": {"foo_opt": plugin.options["foo_opt"]},
        "cli_params": cli_params,
    }


# componentize-py exports the WIT world through this module-level class.
WitWorld = plugin.world()
