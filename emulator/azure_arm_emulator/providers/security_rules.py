"""Microsoft.Network/networkSecurityGroups/{nsg}/securityRules/{rule}: NSG rules as sub-resources.

What ``az vm open-port`` and ``security_rules.begin_create_or_update`` use. The rules live inside the NSG's
``properties.securityRules`` (so ``GET`` of the NSG shows them); they are checked like inline rules (priority
100-4096, access, direction, protocol, port ranges, one priority per direction: 400 ``SecurityRuleConflict``).
PUT and DELETE are long-running (2 s realistic).
"""

from __future__ import annotations

import copy
from typing import Any

from .. import ids, lro, util
from ..errors import ArmError, bad_request
from ..lro import Operation
from ..routing import RESOURCE_GROUP, Call, Reply, Router
from ..services import Services
from ..store import Resource
from .network import check_security_rule, check_security_rule_conflicts, find_named, nested_get, nested_list, nested_parent

NS = "Microsoft.Network"
RULE = "Microsoft.Network/networkSecurityGroups/securityRules"

lro.LATENCY_SECONDS.setdefault("nsgrule.put", 2.0)
lro.LATENCY_SECONDS.setdefault("nsgrule.delete", 2.0)


def _find(nsg: Resource, name: str) -> dict[str, Any] | None:
    return find_named(nsg.properties.get("securityRules", []), name)


class SecurityRulesProvider:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store

    def register(self, router: Router) -> None:
        rules = router.register(RESOURCE_GROUP, NS, ("networkSecurityGroups", "securityRules"))
        rules.on_item("PUT", self.put_rule).on_item("GET", self.get_rule).on_item("DELETE", self.delete_rule)
        rules.on_collection("GET", self.list_rules)
        self.services.engine.register("nsgrule.put", self._complete)
        self.services.engine.register("nsgrule.delete", self._complete)

    def _nsg(self, call: Call, *, for_write: bool) -> Resource | None:
        nsg = nested_parent(self.services, call, for_write=for_write)
        if nsg is not None and nsg.properties.get("provisioningState") == "Deleting":
            return None
        return nsg

    def get_rule(self, call: Call) -> Reply:
        return nested_get(call, self._nsg(call, for_write=False))

    def list_rules(self, call: Call) -> Reply:
        return nested_list(self.services, call, self._nsg(call, for_write=False))

    def put_rule(self, call: Call) -> Reply:
        nsg = self._nsg(call, for_write=True)
        if nsg is None:
            raise ArmError(
                404,
                "ParentResourceNotFound",
                f"Failed to perform 'write' on resource(s) of type 'networkSecurityGroups/securityRules', because the "
                f"parent resource '{call.names[0]}' could not be found.",
            )
        request = call.body if isinstance(call.body, dict) else {}
        old = _find(nsg, call.names[1])
        name = old["name"] if old is not None else call.names[1]
        rule_props = copy.deepcopy(request.get("properties") or {})
        priority = rule_props.get("priority")
        if isinstance(priority, bool) or not isinstance(priority, int) or not 100 <= priority <= 4096:
            raise bad_request(
                "SecurityRuleInvalidPriority",
                f"Security rule {name} has invalid Priority. Value provided: {priority} Allowed range 100-4096.",
            )
        if rule_props.get("access") not in ("Allow", "Deny") or rule_props.get("direction") not in ("Inbound", "Outbound"):
            raise bad_request(
                "SecurityRuleParameterContainsUnsupportedValue",
                f"Security rule {name} needs access Allow|Deny and direction Inbound|Outbound.",
            )
        rule_props = check_security_rule(name, rule_props)
        rule_props["provisioningState"] = "Updating"
        rule = {"name": name, "id": f"{nsg.id}/securityRules/{name}", "etag": util.new_etag(),
                "type": RULE, "properties": rule_props}
        edited = self.store.edit(nsg.id)
        assert edited is not None
        others = [r for r in edited.properties.get("securityRules", []) if r["name"].lower() != name.lower()]
        check_security_rule_conflicts([*others, rule])
        edited.properties["securityRules"] = [
            rule if r["name"].lower() == name.lower() else r for r in edited.properties["securityRules"]
        ] if old is not None else [*others, rule]
        edited.body["etag"] = util.new_etag()
        self.store.put(edited)
        operation = self._begin(call, "nsgrule.put", rule["id"], nsg.body["location"])
        return Reply(200 if old is not None else 201, rule, self.services.lro_headers(call, operation))

    def delete_rule(self, call: Call) -> Reply:
        nsg = self._nsg(call, for_write=True)
        rule = _find(nsg, call.names[1]) if nsg is not None else None
        if nsg is None or rule is None:
            return Reply(204)
        edited = self.store.edit(nsg.id)
        assert edited is not None
        edited_rule = _find(edited, call.names[1])
        assert edited_rule is not None
        edited_rule["properties"]["provisioningState"] = "Deleting"
        self.store.put(edited)
        operation = self._begin(call, "nsgrule.delete", rule["id"], nsg.body["location"])
        return Reply(202, None, self.services.lro_headers(call, operation, location=True))

    def _begin(self, call: Call, kind: str, resource_id: str, location: str) -> Operation:
        return self.services.begin(call, kind, resource_id, location, NS)

    def _complete(self, operation: Operation, error: dict[str, Any] | None) -> None:
        parsed = ids.parse(operation.resource_id)
        nsg = self.store.edit(parsed.parent_id) if parsed is not None else None
        rule = _find(nsg, parsed.name) if nsg is not None and parsed is not None else None
        if nsg is None or rule is None:
            return
        if operation.kind == "nsgrule.delete" and not error:
            nsg.properties["securityRules"] = [r for r in nsg.properties["securityRules"] if r is not rule]
            nsg.body["etag"] = util.new_etag()
        else:
            rule["properties"]["provisioningState"] = "Failed" if error else "Succeeded"
        self.store.put(nsg)
