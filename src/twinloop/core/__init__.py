"""The lowest layer: ids, units, reading batches, events, commands, uncertainty, errors, clocks.

Only the standard library, numpy, pyarrow and pint are imported here.
"""

from twinloop.core.clock import Clock, ManualClock, SystemClock
from twinloop.core.commands import Command
from twinloop.core.errors import TwinloopError
from twinloop.core.events import Event
from twinloop.core.ids import new_id, validate_id
from twinloop.core.readings import Quality, ReadingBatch
from twinloop.core.uncertainty import Gaussian, Samples

__all__ = [
    "Clock",
    "Command",
    "Event",
    "Gaussian",
    "ManualClock",
    "Quality",
    "ReadingBatch",
    "Samples",
    "SystemClock",
    "TwinloopError",
    "new_id",
    "validate_id",
]
