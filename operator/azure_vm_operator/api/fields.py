"""What every kind's typed spec shares: the spec error, enum/default declarations kept in step with the CRD schema
(a test compares them), secret references and the reconcile policies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


class SpecError(ValueError):
    """The spec cannot be acted upon as written; the user must change it (reported as Stalled)."""

    def __init__(self, message: str, reason: str = "InvalidSpec") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Field:
    """An enum-valued or defaulted spec field, as the CRD declares it.

    ``default`` is the CRD's own default (None: the CRD declares none); ``fallback`` is what the operator uses
    when the field is unset and the right value depends on other fields (so the CRD cannot declare it)."""

    enum: tuple[str, ...] | None = None
    default: Any = None
    fallback: Any = None

    def pick(self, value: Any, path: str) -> Any:
        """The value as given, else the default; an enum value outside the declared ones is a SpecError."""
        if value is None or value == "":
            value = self.default if self.default is not None else self.fallback
        if self.enum is not None and value is not None and value not in self.enum:
            raise SpecError(f"{path} must be one of {', '.join(self.enum)}, not {value!r}")
        return value


@dataclass(frozen=True)
class SecretKeyRef:
    name: str
    key: str


def secret_key_ref(raw: Mapping[str, Any] | None, default_key: str, what: str) -> SecretKeyRef | None:
    if not raw:
        return None
    if not raw.get("name"):
        raise SpecError(f"{what}.name is required")
    return SecretKeyRef(name=str(raw["name"]), key=str(raw.get("key") or default_key))


#: The policies every kind has, with the CRD's enums and defaults.
POLICY_FIELDS: dict[str, Field] = {
    "spec.deletionPolicy": Field(("Delete", "Orphan"), "Delete"),
    "spec.reconcilePolicy": Field(("Manage", "Observe", "Pause"), "Manage"),
    "spec.adoptionPolicy": Field(("Never", "IfTagged", "Always"), "IfTagged"),
    "spec.driftPolicy": Field(("Correct", "Report"), "Correct"),
}


@dataclass(frozen=True)
class Policies:
    deletion: str = "Delete"  #: Delete | Orphan
    reconcile: str = "Manage"  #: Manage | Observe | Pause
    adoption: str = "IfTagged"  #: Never | IfTagged | Always
    drift: str = "Correct"  #: Correct | Report
    ignore_drift_fields: tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> "Policies":
        def pick(key: str) -> str:
            return str(POLICY_FIELDS[f"spec.{key}"].pick(spec.get(key), f"spec.{key}"))

        return cls(deletion=pick("deletionPolicy"), reconcile=pick("reconcilePolicy"),
                   adoption=pick("adoptionPolicy"), drift=pick("driftPolicy"),
                   ignore_drift_fields=tuple(str(f) for f in spec.get("ignoreDriftFields") or []))


def subscription_of(spec: Mapping[str, Any], credentials_subscription_id: str | None,
                    default_subscription_id: str | None) -> str:
    """spec.subscriptionId, else the credentials Secret's, else the operator's default."""
    subscription_id = spec.get("subscriptionId") or credentials_subscription_id or default_subscription_id
    if not subscription_id:
        raise SpecError(
            "spec.subscriptionId is not set and the operator has no default subscription "
            "(set AZURE_SUBSCRIPTION_ID or --subscription-id on the operator)"
        )
    return str(subscription_id)
