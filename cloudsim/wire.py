"""The two answer formats of Alibaba's RPC protocol: JSON and XML.

``Format`` is a common parameter of RPC-style APIs: ``JSON`` or ``XML``, and XML when it is
absent (the documented default). Every SDK sends it on v1-signed calls (``Format=json`` from
tea-openapi and the credentials providers, ``JSON`` or ``XML`` from aliyun-python-sdk-core),
so the default only meets hand-made requests. ACS3-signed calls carry no ``Format`` but an
``Accept: application/json`` header and get JSON unless they ask for XML.

XML answers mirror the JSON ones: the body is ``<{Action}Response>`` (errors: ``<Error>``),
objects become nested elements, a list under a key becomes that element repeated
(``{"Roles": {"Role": [a, b]}}`` → ``<Roles><Role>a</Role><Role>b</Role></Roles>``), booleans
are ``true``/``false``; a null value is left out.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from cloudsim.errors import ApiError

JSON = "json"
XML = "xml"
CONTENT_TYPES = {JSON: "application/json;charset=utf-8", XML: "text/xml;charset=utf-8"}
_XML_ACCEPT = ("application/xml", "text/xml")


def invalid_format() -> ApiError:
    # [UNVERIFIED] code: Alibaba documents the values, not the error for another one.
    return ApiError("InvalidParameter.Format", "Specified Format is not valid.", 400)


def response_format(params: dict[str, str], headers: dict[str, str]) -> str:
    """JSON or XML for this request; raises ``InvalidParameter.Format`` for another value."""
    given = params.get("Format")
    if given is not None:
        lowered = given.lower()
        if lowered not in (JSON, XML):
            raise invalid_format()
        return lowered
    if "authorization" in headers:
        accept = headers.get("accept", "").lower()
        return XML if accept.startswith(_XML_ACCEPT) else JSON
    return XML if "Signature" in params else JSON


def _element(parts: list[str], name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            _element(parts, name, item)
        return
    parts.append(f"<{name}>")
    if isinstance(value, dict):
        for key, child in value.items():
            _element(parts, key, child)
    elif isinstance(value, bool):
        parts.append("true" if value else "false")
    else:
        parts.append(escape(str(value)))
    parts.append(f"</{name}>")


def to_xml(root: str, body: dict[str, Any]) -> bytes:
    parts = ["<?xml version='1.0' encoding='UTF-8'?>"]
    _element(parts, root, body)
    return "".join(parts).encode()
