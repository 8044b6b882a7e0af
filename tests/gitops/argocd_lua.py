"""Runs an Argo CD health.lua the way Argo CD does (util/lua: ExecuteHealthLua), under a real Lua 5.1 (lupa).

Argo CD runs gopher-lua (Lua 5.1) with only the base, table, package and a "safe" os library open, sets the
object as the global ``obj`` and takes the table the chunk returns: {status = ..., message = ...}. The same
environment here: a Lua 5.1 state whose string, math, io, debug libraries and string methods are removed, so a
script that would fail in Argo CD fails here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import yaml

#: Argo CD's health status codes (gitops-engine pkg/health): anything else becomes Unknown.
HEALTH_CODES = ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")

_SANDBOX = """
local string_meta = getmetatable("")
string_meta.__index = nil
string, math, io, debug, coroutine, dofile, loadfile = nil, nil, nil, nil, nil, nil, nil
local safe_os = {time = os.time, date = os.date, clock = os.clock, difftime = os.difftime}
os = safe_os
package.loaded.os = safe_os
package.loaded.string, package.loaded.math, package.loaded.io, package.loaded.debug = nil, nil, nil, nil
"""


def _to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    if isinstance(value, bool) or isinstance(value, str) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)  # gopher-lua has one number type, float64
    return str(value)  # timestamps that YAML parsed as datetimes are strings in JSON


def run_health(script: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The health status {status, message} Argo CD would derive from ``obj`` with ``script``."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=False, register_eval=False, register_builtins=False)
    runtime.execute(_SANDBOX)
    runtime.globals()["obj"] = _to_lua(runtime, obj)
    result = runtime.execute(script)
    if lua51.lua_type(result) != "table":
        raise TypeError(f"a health script must return a table, not {lua51.lua_type(result)}")
    status = {k: result[k] for k in ("status", "message") if result[k] is not None}
    if status.get("status") not in HEALTH_CODES:
        return {"status": "Unknown", "message": "Lua returned an invalid health status"}
    return status


def load_cases(kind_dir: Path) -> list[dict[str, Any]]:
    """health_test.yaml as Argo CD's resource_customizations tests read it: tests[] of healthStatus + inputPath."""
    return list(yaml.safe_load((kind_dir / "health_test.yaml").read_text())["tests"])
