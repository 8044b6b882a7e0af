"""ARM failures are classified from real SDK exceptions built from real ARM error bodies."""

import json

import pytest
from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError, ResourceExistsError,
                                   ResourceNotFoundError, ServiceRequestError)
from azure.core.pipeline.transport import HttpResponse
from azure.core.rest import HttpRequest
from azure.mgmt.core.exceptions import ARMErrorFormat

from azure_vm_operator.azure.errors import ErrorKind, classify


class _Response(HttpResponse):
    def __init__(self, status, body):
        super().__init__(HttpRequest("PUT", "https://arm/x"), None)
        self.status_code = status
        self._body = json.dumps(body).encode()
        self.headers = {"content-type": "application/json"}
        self.reason = "reason"

    def body(self):
        return self._body

    def text(self, encoding=None):
        return self._body.decode()


def arm_error(status, code, message="msg", cls=HttpResponseError):
    return cls(response=_Response(status, {"error": {"code": code, "message": message}}), error_format=ARMErrorFormat)


@pytest.mark.parametrize("status, code, kind", [
    (429, "TooManyRequests", ErrorKind.TRANSIENT),
    (200, "AllocationFailed", ErrorKind.TRANSIENT),  # an LRO that ended Failed
    (409, "OperationNotAllowed", ErrorKind.TRANSIENT),
    (503, "ServiceUnavailable", ErrorKind.TRANSIENT),
    (500, "SomethingNew", ErrorKind.TRANSIENT),
    (400, "InvalidParameter", ErrorKind.PERMANENT),
    (404, "PlatformImageNotFound", ErrorKind.PERMANENT),
    (403, "AuthorizationFailed", ErrorKind.PERMANENT),
    (409, "PropertyChangeNotAllowed", ErrorKind.PERMANENT),
    (400, "SomethingElseNew", ErrorKind.PERMANENT),
])
def test_table(status, code, kind):
    cls = {404: ResourceNotFoundError, 409: ResourceExistsError}.get(status, HttpResponseError)
    failure = classify(arm_error(status, code, cls=cls))
    assert failure.kind is kind
    assert failure.code == code
    assert failure.message == "msg"


def test_quota_exceeded_reported_as_operation_not_allowed_is_permanent():
    exc = arm_error(409, "OperationNotAllowed", "Operation could not be completed as it results in exceeding "
                    "approved standardDSv3Family Cores quota.", cls=ResourceExistsError)
    assert classify(exc).kind is ErrorKind.PERMANENT


def test_connection_errors_are_transient_and_auth_errors_permanent():
    assert classify(ServiceRequestError("connection refused")).kind is ErrorKind.TRANSIENT
    assert classify(ClientAuthenticationError("bad secret")).kind is ErrorKind.PERMANENT


def test_bugs_are_not_swallowed():
    with pytest.raises(KeyError):
        classify(KeyError("x"))


def test_rate_limit_headers_become_buckets():
    from azure_vm_operator.azure.clients import rate_limit_buckets

    buckets = rate_limit_buckets({
        "x-ms-ratelimit-remaining-subscription-reads": "11999",
        "x-ms-ratelimit-remaining-resource": "Microsoft.Compute/PutVM3Min;239,Microsoft.Compute/PutVM30Min;1198",
        "x-ms-ratelimit-remaining-subscription-writes": "garbage",
    })
    assert buckets == {"subscription-reads": 11999.0, "Microsoft.Compute/PutVM3Min": 239.0,
                       "Microsoft.Compute/PutVM30Min": 1198.0}
