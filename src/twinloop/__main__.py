"""``python -m twinloop`` is the ``twinloop`` command (handy where the script is not on PATH)."""

from twinloop.cli.main import app

app(prog_name="twinloop")
