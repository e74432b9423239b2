"""twinloop: open AI digital twins of physical assets.

The package tree is the architecture (see ARCHITECTURE.md): ``core`` at the bottom, then
``twins``, ``store``, ``runtime`` and the faces ``api`` and ``cli`` on top. Imports only point down.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
