"""budcore's built-in adapters (installed as ``budcore_adapters``).

Each adapter registers through the ``budcore.plugins`` entry point, exactly as a third-party
package would; nothing in ``budcore`` imports this package.
"""
