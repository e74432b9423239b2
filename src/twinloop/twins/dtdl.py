"""DTDL v3 import and export of asset types, so models move to and from Azure Digital Twins.

How an asset type maps onto a DTDL interface (``@context``: ``dtmi:dtdl:context;3`` plus the
QuantitativeTypes extension; v2 and v4 contexts are read too):

=====================  ==========================================================================
twinloop               DTDL
=====================  ==========================================================================
``id`` / ``dtmi``      ``@id`` (default ``dtmi:twinloop:<id>;1``); an id the dtmi cannot give back
                       is kept in the interface comment
``extends``            ``extends`` (dtmis)
channel                ``Telemetry`` (numeric or boolean schema)
attribute              ``Property``, ``writable: false``, comment ``"attribute": true``
property               ``Property`` with ``writable``
command                ``Command``: one argument → a scalar ``CommandRequest``; several → an
                       ``Object`` request, one ``Field`` per argument; ``response`` →
                       ``CommandResponse``
relationship           ``Relationship`` with ``target`` dtmi, ``maxMultiplicity``, ``properties``
component              ``Component`` whose ``schema`` is the component type's dtmi
enum / array / map     ``Enum`` (string or integer values), ``Array`` and ``Map`` of primitives
display_name, descr.   ``displayName``, ``description`` (language maps read as English)
=====================  ==========================================================================

Units DTDL has (see `UNITS`: ``degC`` → ``Temperature``/``degreeCelsius``, ``m**3/h`` →
``VolumeFlowRate``/``cubicMetrePerHour``, ``rpm`` → ``AngularVelocity``/``revolutionPerMinute``…)
are written as a semantic co-type and ``unit``. What DTDL has no word for travels losslessly in
the element's standard ``comment`` as ``twinloop:`` + JSON: ``unit`` (a pint string, when DTDL
lacks the unit or spells it differently), ``min``/``max``, ``expected_rate_hz`` /
``expected_period_s``, ``attribute``/``required``/``default``, and the interface's ``id``. Every
DTDL parser accepts a comment, and foreign comments without the prefix are left alone.

Not supported on import (a `DeclarationError` says so): Object schemas outside command requests,
nested complex schemas, string/date telemetry, inline interfaces as component schemas.

>>> from twinloop.twins.asset_type import AssetType
>>> t = AssetType(id="Fan", channels=[{"name": "speed", "unit": "rpm", "max": 3000}])
>>> from_dtdl(to_dtdl(t)) == [t]
True
"""

from __future__ import annotations

from twinloop.twins.dtdl_export import UNITS, export_dtdl, to_dtdl
from twinloop.twins.dtdl_import import from_dtdl, load_dtdl

__all__ = ["UNITS", "export_dtdl", "from_dtdl", "load_dtdl", "to_dtdl"]
