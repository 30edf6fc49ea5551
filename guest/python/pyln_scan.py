"""Scan a pyln-client plugin's sources before it becomes a guest.

    python3 pyln_scan.py LIGHTNING_PY OUT_ASKS_PY SOURCE.py...

A pyln plugin declares no node methods: it calls `plugin.rpc.X(...)` or
`rpc.call("X", ...)` where it likes. This finds those calls (with Python's own
parser, so comments and strings are not mistaken for calls) and writes them to
OUT_ASKS_PY as the guest's asks, each with the place it was found as its
reason; `install` turns them into commented-out grants. A call it cannot see
(a method name computed at run time) is refused by the host at run time and
named in NAME-audit.

It finds the places that use files too (`open`, `os.makedirs`,
`Path.write_text`, `shutil`…): then the guest asks for its private directory,
with those places as the reason (`DIR` in OUT_ASKS_PY), and the operator
decides (`[grants] dir`).

It also refuses, with the file and line, imports of what the sandbox cannot
give (threads, sockets, processes, native code): better a clear no at build
time than a plugin that half works. Exit status 1 and one line per refusal on
stderr when anything is refused.
"""

import ast
import os
import re
import sys

# Modules whose use the sandbox refuses, and why (the first dotted part).
REFUSED = {
    "threading": "threads (a guest runs only inside the call it answers)",
    "_thread": "threads",
    "multiprocessing": "processes",
    "concurrent": "threads and processes (concurrent.futures)",
    "subprocess": "processes",
    "socket": "sockets (the node is reached through plugin.rpc)",
    "socketserver": "sockets",
    "ssl": "sockets",
    "selectors": "sockets",
    "asyncio": "background event loops and sockets",
    "sched": "background loops",
    "ctypes": "native code",
    "cffi": "native code",
}

# Calls that reach files: `open(...)`, `os.X(...)`/`shutil.X(...)`/`io.open`,
# and pathlib's own (`Path(...).write_text(...)`).
FILE_MODULE_CALLS = {
    "os": {"open", "makedirs", "mkdir", "remove", "unlink", "rename", "replace",
           "listdir", "scandir", "rmdir", "removedirs", "truncate", "symlink", "link",
           "chmod", "utime", "fdopen"},
    "io": {"open"},
    "shutil": None,  # every shutil function works on files
}
PATH_METHODS = {"write_text", "read_text", "write_bytes", "read_bytes", "touch",
                "mkdir", "iterdir", "glob", "rglob"}

# LightningRpc's own methods that call a node method of another name, read
# from pyln-client's lightning.py: `def NAME(...)` ... `self.call("METHOD"`.
DEF = re.compile(r"^    def (\w+)\(")
CALL = re.compile(r"""self\.call\(\s*["']([\w-]+)["']""")


def typed_methods(lightning_py):
    names, current = {}, None
    with open(lightning_py, encoding="utf-8") as f:
        for line in f:
            m = DEF.match(line)
            if m:
                current = m.group(1)
                continue
            m = CALL.search(line)
            if m and current and current not in names:
                names[current] = m.group(1)
    return names


def rpc_receiver(node):
    """Whether `node` names an RPC client: `plugin.rpc`, `rpc`, `self.rpc`, `l1_rpc`..."""
    # Ends in `rpc`: `rpcversion.split(...)` is a string, not a client.
    if isinstance(node, ast.Attribute):
        return node.attr.lower().endswith("rpc")
    if isinstance(node, ast.Name):
        return node.id.lower().endswith("rpc")
    return False


def file_use(node):
    """What a call does with files, if anything: `open`, `os.makedirs`…"""
    func = node.func
    if isinstance(func, ast.Name) and func.id == "open":
        return "open"
    if not isinstance(func, ast.Attribute):
        return None
    if isinstance(func.value, ast.Name) and func.value.id in FILE_MODULE_CALLS:
        names = FILE_MODULE_CALLS[func.value.id]
        if names is None or func.attr in names:
            return f"{func.value.id}.{func.attr}"
        return None
    if func.attr in PATH_METHODS and not rpc_receiver(func.value):
        return f".{func.attr}"
    return None


def scan(path, typed, asks, refusals, files):
    with open(path, encoding="utf-8") as f:
        source = f.read()
    shown = os.path.basename(path)
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as e:
        refusals.append(f"{shown}:{e.lineno}: not Python: {e.msg}")
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods = [node.module]
        else:
            mods = []
        for mod in mods:
            top = mod.split(".")[0]
            if top in REFUSED:
                refusals.append(f"{shown}:{node.lineno}: imports {mod}: the cln-wasm-host "
                                f"sandbox gives a plugin no {REFUSED[top]}")
            if mod.startswith("pyln.client.gossmap") or mod == "pyln.proto" \
                    or mod.startswith("pyln.proto."):
                refusals.append(f"{shown}:{node.lineno}: imports {mod}: needs native crypto "
                                "and lightningd's files, which a guest does not have")
        if not isinstance(node, ast.Call):
            continue
        use = file_use(node)
        if use:
            files.append((shown, node.lineno, use))
        if not isinstance(node.func, ast.Attribute):
            continue
        func = node.func
        if func.attr == "call" and rpc_receiver(func.value):
            if node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                method = node.args[0].value
            else:
                kw = [k.value for k in node.keywords if k.arg == "method"]
                if not (kw and isinstance(kw[0], ast.Constant) and isinstance(kw[0].value, str)):
                    print(f"{shown}:{node.lineno}: rpc.call with a method computed at run "
                          "time: not asked for; the host refuses it unless granted "
                          "(see NAME-audit)", file=sys.stderr)
                    continue
                method = kw[0].value
        elif rpc_receiver(func.value):
            method = typed.get(func.attr, func.attr.replace("_", "-"))
        else:
            continue
        asks.setdefault(method, []).append(f"{shown}:{node.lineno}")


def dir_reason(files, shown=8):
    """The `dir` ask's reason: the places that use files (the first few)."""
    if not files:
        return None
    files = [f"{use} at {shown}:{line}" for shown, line, use in sorted(files)]
    more = f", and {len(files) - shown} more" if len(files) > shown else ""
    return "uses files: " + ", ".join(files[:shown]) + more


def main(argv):
    if len(argv) < 4:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    typed = typed_methods(argv[1])
    asks, refusals, files = {}, [], []
    for path in argv[3:]:
        scan(path, typed, asks, refusals, files)
    for r in refusals:
        print(f"refused: {r}", file=sys.stderr)
    if refusals:
        return 1
    rows = [(m, "called at " + ", ".join(places)) for m, places in sorted(asks.items())]
    with open(argv[2], "w", encoding="utf-8") as f:
        f.write("# The node methods the plugin's source calls, found by pyln_scan.py.\n")
        f.write(f"RPC = {rows!r}\n")
        f.write("# Why it wants its private directory (None: it uses no files).\n")
        f.write(f"DIR = {dir_reason(files)!r}\n")
    for m, reason in rows:
        print(f"asks for node method {m!r}: {reason}", file=sys.stderr)
    if files:
        print(f"asks for a private directory: {dir_reason(files)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
